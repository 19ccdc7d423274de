"""Fresh weights from each parameter's initializer, as PyTorch's default initialization."""

from __future__ import annotations

import numpy as np

from poseir.ir.graph import NUMPY_DTYPES, Parameter


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
