"""Weight files keyed by PyTorch state_dict names: safetensors, `.npz` and PyTorch checkpoints; writing too."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.limits import DEFAULT_LIMITS
from poseir.weights.torch_checkpoint import CHECKPOINT_SUFFIXES, read_checkpoint, strip_wrapper_prefixes

WEIGHT_FORMATS = ".safetensors, .npz, or a PyTorch checkpoint (.pth, .pt, .bin, .pth.tar, .ckpt)"


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


def load_weights(path: str, max_bytes: int = DEFAULT_LIMITS.array_bytes, key: str | None = None
                 ) -> dict[str, np.ndarray]:
    """Read weights by suffix, never running pickle code, at most `max_bytes`; `key` picks a checkpoint entry."""
    return read_weights(path, max_bytes, key)[0]


def read_weights(path: str, max_bytes: int = DEFAULT_LIMITS.array_bytes, key: str | None = None
                 ) -> tuple[dict[str, np.ndarray], str | None]:
    """The weights and the checkpoint entry they came from (None: the whole file). E403 for a bad file."""
    suffix = Path(path).suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        return read_checkpoint(path, key, max_bytes)
    if suffix not in (".safetensors", ".npz"):
        raise DiagnosticError(Diagnostic.make(
            "E403", f"cannot read weights from `{path}`: unknown format `{suffix or path}`", None,
            helps=(f"use {WEIGHT_FORMATS}",)))
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            if os.path.getsize(path) > max_bytes:
                raise ArrayFileError(f"it is larger than the `array_bytes` limit ({max_bytes:,} bytes)")
            weights = dict(load_file(path))
        else:
            weights = read_npz(path, max_bytes)
    except Exception as error:  # noqa: BLE001  (any failure to read is the user's file, reported as E403)
        raise DiagnosticError(Diagnostic.make("E403", f"cannot read weights from `{path}`: {error}", None))
    return strip_wrapper_prefixes(_under_key(weights, key, path)), key


def _under_key(weights: dict[str, np.ndarray], key: str | None, path: str) -> dict[str, np.ndarray]:
    """In a flat file, `key` selects the entries named `key.<name>`, without the prefix."""
    if key is None:
        return weights
    prefix = key + "."
    selected = {name[len(prefix):]: value for name, value in weights.items() if name.startswith(prefix)}
    if not selected:
        raise DiagnosticError(Diagnostic.make(
            "E412", f"`{path}` has no entries under `{key}.`", None,
            notes=("in a flat weights file, `--weights-key KEY` selects the names that start with `KEY.`",)))
    return selected


def strip_module_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the `module.` prefix DataParallel checkpoints carry (and torch.compile's `_orig_mod.`)."""
    return strip_wrapper_prefixes(weights)


def save_weights(path: str, weights: dict[str, np.ndarray]) -> None:
    """Write `.safetensors` or `.npz` by suffix (E403 for another suffix)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".safetensors", ".npz"):
        raise DiagnosticError(Diagnostic.make(
            "E403", f"cannot write weights to `{path}`: unknown format `{suffix or path}`", None,
            helps=("write .safetensors or .npz",)))
    if suffix == ".safetensors":
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
