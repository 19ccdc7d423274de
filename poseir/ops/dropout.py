"""Stochastic regularizers: dropout and drop-path, identities in the inference graph."""

from __future__ import annotations

import numpy as np

from poseir.ir.graph import TensorType
from poseir.ops.common import NUMPY_DTYPES, define, number_attr, require_axes, require_float_input
from poseir.ops.registry import ATTR, TENSOR, Param, RunContext, ShapeContext


def _dropout_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same type as x; p must be a probability."""
    number_attr(ctx, attrs["p"], "p", 0.0, 1.0)
    if ctx.op == "drop_path":
        require_axes(ctx, types[0], 0)
    return [types[0]]


def _scaled_mask(ctx: RunContext, x: np.ndarray, shape: tuple, p: float) -> np.ndarray:
    """x times a keep-mask of `shape` (broadcast), scaled by 1 / (1 - p) so the mean is unchanged."""
    if p >= 1.0:
        return np.zeros_like(x)
    keep = ctx.rng.random(shape) >= p
    return (x * (keep / (1.0 - p)).astype(x.dtype)).astype(x.dtype, copy=False)


def _dropout_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Inverted dropout of single elements in training; identity in inference."""
    x = np.asarray(arrays[0])
    if not ctx.training or attrs["p"] == 0:
        return [x]
    return [_scaled_mask(ctx, x, x.shape, attrs["p"])]


def _drop_path_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Stochastic depth: drop whole samples (axis 0) in training; identity in inference."""
    x = np.asarray(arrays[0])
    if not ctx.training or attrs["p"] == 0:
        return [x]
    return [_scaled_mask(ctx, x, (x.shape[0],) + (1,) * (x.ndim - 1), attrs["p"])]


def _dropout_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Identity in inference; in training an ONNX Dropout with training_mode=true."""
    if not ctx.training:
        return [ctx.node("Identity", names)]
    require_float_input(ctx, "Dropout")
    ratio = ctx.scalar(attrs["p"], ctx.input_types[0].dtype)
    return [ctx.node("Dropout", [names[0], ratio, ctx.scalar(True, "bool")])]


def _drop_path_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Identity in inference (and for p = 0); in training a per-sample mask from RandomUniformLike."""
    x_type = ctx.input_types[0]
    if not ctx.training or attrs["p"] == 0:
        return [ctx.node("Identity", names)]
    require_float_input(ctx, "RandomUniformLike")
    p, dtype = float(attrs["p"]), x_type.dtype
    if p >= 1.0:
        return [ctx.node("Mul", [names[0], ctx.scalar(0.0, dtype)])]
    from onnx import numpy_helper

    zero = numpy_helper.from_array(np.zeros(1, dtype=NUMPY_DTYPES[dtype]))
    samples = ctx.shape([x_type.shape[0]] + [1] * (x_type.rank - 1))
    uniform = ctx.node("RandomUniformLike", [ctx.node("ConstantOfShape", [samples], value=zero)])
    keep = ctx.node("Cast", [ctx.node("GreaterOrEqual", [uniform, ctx.scalar(p, dtype)])], to=ctx.onnx_dtype(dtype))
    return [ctx.node("Mul", [names[0], ctx.node("Mul", [keep, ctx.scalar(1.0 / (1.0 - p), dtype)])])]


define(
    name="dropout",
    signature=(Param("x", TENSOR), Param("p", ATTR, 0.5)),
    infer=_dropout_infer,
    run=_dropout_run,
    onnx=_dropout_onnx,
    doc="Dropout: zero elements with probability p (inverted: survivors scaled by 1 / (1 - p)).",
    behaviour="train: zeroes each element with probability p and scales the rest by 1 / (1 - p); infer: identity",
    samples=((("B, 1024, T",), {"p": 0.25}), (("B, C",), {})),
)

define(
    name="drop_path",
    signature=(Param("x", TENSOR), Param("p", ATTR, 0.0)),
    infer=_dropout_infer,
    run=_drop_path_run,
    onnx=_drop_path_onnx,
    doc="Stochastic depth: zero whole samples (axis 0) with probability p, survivors scaled by 1 / (1 - p).",
    behaviour="train: zeroes each sample along axis 0 with probability p and scales the rest by 1 / (1 - p); "
              "infer: identity",
    samples=((("B, N, C",), {"p": 0.1}), (("B, T, 17, 3",), {})),
)
