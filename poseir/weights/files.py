"""Weight files keyed by PyTorch state_dict names: read and write safetensors and `.npz`."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.limits import DEFAULT_LIMITS


class ArrayFileError(Exception):
    """An array file that cannot be read within the limits (its message names why, never its contents)."""


def read_npz(path: str, max_bytes: int = DEFAULT_LIMITS.array_bytes) -> dict[str, np.ndarray]:
    """The arrays of an `.npz`, never unpickling, each header checked before its data is read.

    A compressed archive can promise far more data than the file holds; reading the `.npy`
    headers first bounds the memory by `max_bytes` for all arrays together.
    """
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                total += _npy_bytes(member, info.filename)
            if total > max_bytes:
                raise ArrayFileError(f"its arrays need more than the `array_bytes` limit ({max_bytes:,} bytes); "
                                     "raise it with `--limit array_bytes=...`")
            with archive.open(info) as member:
                arrays[info.filename[: -len(".npy")]] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def _npy_bytes(member, name: str) -> int:
    """The data size an `.npy` header announces; object arrays (pickles) are refused."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ArrayFileError(f"`{name}` has .npy format version {version}, which poseir does not read")
    if dtype.hasobject:
        raise ArrayFileError(f"`{name}` holds Python objects, which could only be read by running pickle code")
    count = 1
    for size in shape:
        count *= size
    return count * dtype.itemsize


def load_weights(path: str, max_bytes: int = DEFAULT_LIMITS.array_bytes) -> dict[str, np.ndarray]:
    """Read `.safetensors` or `.npz` (never unpickling) of at most `max_bytes`; E403 for anything else or a bad file."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            if os.path.getsize(path) > max_bytes:
                raise ArrayFileError(f"it is larger than the `array_bytes` limit ({max_bytes:,} bytes)")
            return dict(load_file(path))
        if suffix == ".npz":
            return read_npz(path, max_bytes)
    except Exception as error:  # noqa: BLE001  (any failure to read is the user's file, reported as E403)
        raise DiagnosticError(Diagnostic.make("E403", f"cannot read weights from `{path}`: {error}", None))
    raise DiagnosticError(Diagnostic.make(
        "E403", f"cannot read weights from `{path}`: unknown format `{suffix or path}`", None,
        helps=("use .safetensors or .npz keyed by state_dict names; convert a PyTorch checkpoint first",)))


def strip_module_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the `module.` prefix DataParallel checkpoints carry."""
    if weights and all(key.startswith("module.") for key in weights):
        return {key[len("module."):]: value for key, value in weights.items()}
    return weights


def save_weights(path: str, weights: dict[str, np.ndarray]) -> None:
    """Write `.safetensors` or `.npz` by suffix."""
    if Path(path).suffix.lower() == ".safetensors":
        from safetensors.numpy import save_file

        # np.ascontiguousarray would turn a 0-d array (num_batches_tracked) into shape (1,).
        save_file({key: np.require(value, requirements="C") for key, value in weights.items()}, path)
    else:
        save_npz(path, weights)


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write an `.npz` at exactly `path` (numpy would append `.npz` to a name without it); OSError on failure."""
    import io

    from poseir.syntax.files import write_output

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_output(path, buffer.getvalue())
