"""Weights keyed by PyTorch state_dict names: load (safetensors, npz), check, and initialize."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poseir.diagnostics import Diagnostic, DiagnosticError, Label
from poseir.ir import Graph, Parameter

NUMPY_DTYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64, "i32": np.int32,
                "bool": np.bool_}


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


def check_weights(graph: Graph, weights: dict[str, np.ndarray]) -> list[Diagnostic]:
    """Missing (E400), unexpected (E401) and mis-shaped (E402) keys, each at the DSL line."""
    diagnostics = []
    expected = graph.parameter_table()
    for name, parameter in expected.items():
        if name not in weights:
            diagnostics.append(Diagnostic.make(
                "E400", f"the weights have no `{name}`", parameter.span,
                labels=(Label(parameter.span, f"{parameter.kind} {parameter.type} declared here"),)))
            continue
        shape = tuple(weights[name].shape)
        if shape != parameter.shape:
            diagnostics.append(Diagnostic.make(
                "E402", f"`{name}` has shape {_shape_text(shape)} in the weights, {_shape_text(parameter.shape)} here",
                parameter.span, labels=(Label(parameter.span, f"declared as {parameter.type}"),),
                helps=_shape_help(shape, parameter.shape)))
    for name in sorted(set(weights) - set(expected)):
        diagnostics.append(Diagnostic.make("E401", f"the weights have a key `{name}` the model does not use", None,
                                           notes=(f"shape {_shape_text(tuple(weights[name].shape))}",)))
    return diagnostics


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(dim) for dim in shape) + (",)" if len(shape) == 1 else ")")


def _shape_help(found, declared) -> tuple[str, ...]:
    """Advice for the common cases: a transposed weight or a changed hyper-parameter."""
    if tuple(reversed(found)) == tuple(declared) and len(found) == 2:
        return ("the weight looks transposed: TensorFlow stores (in, out), PyTorch (out, in)",)
    return ("check the hyper-parameters (channels, widths, joints) against the checkpoint's",)


def initialize(parameters, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh weights from each parameter's initializer (PyTorch defaults), reproducibly seeded."""
    rng = np.random.default_rng(seed)
    return {parameter.name: _initial_value(parameter, rng) for parameter in parameters}


def _initial_value(parameter: Parameter, rng: np.random.Generator) -> np.ndarray:
    """Draw one parameter's values."""
    kind, *arguments = parameter.init
    shape = parameter.shape
    dtype = NUMPY_DTYPES[parameter.type.dtype]
    if kind == "zeros":
        return np.zeros(shape, dtype)
    if kind == "ones":
        return np.ones(shape, dtype)
    if kind == "fill":
        return np.full(shape, arguments[0], dtype)
    if kind == "uniform":
        return rng.uniform(arguments[0], arguments[1], shape).astype(dtype)
    if kind == "normal":
        return rng.normal(arguments[0], arguments[1], shape).astype(dtype)
    if kind == "trunc_normal":
        std, low, high = arguments
        values = rng.normal(0.0, std, shape)
        outside = (values < low) | (values > high)
        while outside.any():
            values[outside] = rng.normal(0.0, std, int(outside.sum()))
            outside = (values < low) | (values > high)
        return values.astype(dtype)
    raise ValueError(f"internal compiler error: unknown initializer {kind!r}")


def save_weights(path: str, weights: dict[str, np.ndarray]) -> None:
    """Write `.safetensors` or `.npz` by suffix."""
    if Path(path).suffix.lower() == ".safetensors":
        from safetensors.numpy import save_file

        save_file({key: np.ascontiguousarray(value) for key, value in weights.items()}, path)
    else:
        np.savez(path, **weights)
