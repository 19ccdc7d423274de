"""Weight files keyed by PyTorch state_dict names: read and write safetensors and `.npz`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError


def load_weights(path: str) -> dict[str, np.ndarray]:
    """Read `.safetensors` or `.npz` (never unpickling); E403 for anything else or a bad file."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(path))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
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

        save_file({key: np.ascontiguousarray(value) for key, value in weights.items()}, path)
    else:
        np.savez(path, **weights)
