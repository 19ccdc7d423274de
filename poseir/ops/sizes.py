"""Tensors made from dims: `arange(n)` and a dim as a scalar (`x / T`), symbolic lengths included."""

from __future__ import annotations

import numpy as np

from poseir.ir.dims import Dim
from poseir.ir.graph import DTYPES, TensorType
from poseir.ops.common import define, size_attr
from poseir.ops.registry import ATTR, Param, RunContext, ShapeContext
from poseir.ir.graph import NUMPY_DTYPES

_NUMERIC = tuple(dtype for dtype in DTYPES if dtype != "bool")


def _dtype(ctx: ShapeContext, dtype) -> str:
    """A numeric dtype name, or E103."""
    if dtype not in _NUMERIC:
        ctx.error("E103", f"dtype must be one of {', '.join(_NUMERIC)}, found `{dtype}`", at="dtype")
    return dtype


def _arange_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """[n] of 0, 1, ..., n - 1."""
    length = size_attr(ctx, attrs["n"], "n", "the length of `arange`", minimum=0)
    return [TensorType(_dtype(ctx, attrs["dtype"]), (ctx.normalize(length),))]


def _arange_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy arange (the length arrives evaluated)."""
    return [np.arange(attrs["n"], dtype=NUMPY_DTYPES[attrs["dtype"]])]


def _arange_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Range(0, n, 1) in int64 (the length computed from input shapes), cast to the dtype."""
    stop = ctx.squeeze(ctx.dim(attrs["n"]), [0])
    indices = ctx.node("Range", [ctx.scalar(0, "i64"), stop, ctx.scalar(1, "i64")])
    return [ctx.cast(indices, "i64", attrs["dtype"])]


define(
    name="arange",
    signature=(Param("n", ATTR), Param("dtype", ATTR, "f32")),
    infer=_arange_infer,
    run=_arange_run,
    onnx=_arange_onnx,
    method=False,
    doc="The values 0, 1, ..., n - 1 as a tensor of length n (n may be symbolic, e.g. `x.shape[2]`).",
    samples=(((), {"n": Dim.symbol("T")}), ((), {"n": 5, "dtype": "i64"})),
)


def _size_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """A rank-0 tensor holding the dim's value."""
    size_attr(ctx, attrs["value"], "value", "the value of `size`", minimum=None)
    return [TensorType(_dtype(ctx, attrs["dtype"]), ())]


def _size_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """The evaluated dim as a scalar array."""
    return [np.asarray(attrs["value"], dtype=NUMPY_DTYPES[attrs["dtype"]])]


def _size_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """The dim computed from input shapes, as a scalar of the dtype."""
    return [ctx.cast(ctx.squeeze(ctx.dim(attrs["value"]), [0]), "i64", attrs["dtype"])]


define(
    name="size",
    signature=(Param("value", ATTR), Param("dtype", ATTR, "f32")),
    infer=_size_infer,
    run=_size_run,
    onnx=_size_onnx,
    method=False,
    doc="A dim as a rank-0 tensor, read from the input shapes at run time (`x / T` uses it).",
    samples=(((), {"value": Dim.symbol("T") * 2 - 1}), ((), {"value": 7, "dtype": "i64"})),
)
