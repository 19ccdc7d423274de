"""Reductions over one, several or all axes (sum, mean, amax, L2 norm, variance, deviation) and softmax."""

from __future__ import annotations

from typing import Callable

from functools import partial

import numpy as np

from poseir.ir.dims import Dim
from poseir.ir.graph import NUMPY_DTYPES, TensorType
from poseir.ops.common import (as_dtype, define, dtype_name, float_dtype, product, reduced_atoms, row_blocks, row_maxima,
                               row_sums)
from poseir.ops.registry import ATTR, TENSOR, Param, RunContext, ShapeContext


def reduced_axes(ctx: ShapeContext, dim, rank: int, at: str = "dim") -> tuple[int, ...]:
    """The sorted, normalized axes named by `dim` (None means every axis); E202 for repeats."""
    if dim is None:
        return tuple(range(rank))
    items = dim if isinstance(dim, tuple) else (dim,)
    axes: list[int] = []
    for position, item in enumerate(items):
        where = (at, position) if isinstance(dim, tuple) else at
        axis = ctx.axis(item, rank, at=where)
        if axis in axes:
            ctx.error("E202", f"axis {item} is reduced twice", at=where, label="repeated axis")
        axes.append(axis)
    return tuple(sorted(axes))


def reduced_shape(shape: tuple, axes: tuple[int, ...], keepdim: bool, one=None) -> tuple:
    """The shape (of Dims, or of ints with `one=1`) after reducing `axes`: kept as `one` with keepdim, else dropped."""
    if keepdim:
        unit = Dim.of(1) if one is None else one
        return tuple(unit if axis in axes else dim for axis, dim in enumerate(shape))
    return tuple(dim for axis, dim in enumerate(shape) if axis not in axes)


def _reduce_atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list:
    """The input's atoms without the reduced axes."""
    (x,) = types
    return [reduced_atoms(ctx, reduced_axes(ctx, attrs["dim"], x.rank), attrs["keepdim"], x)]


def _check_keepdim(ctx: ShapeContext, keepdim) -> bool:
    """keepdim must be a bool."""
    if not isinstance(keepdim, bool):
        ctx.error("E103", f"keepdim must be true or false, found `{keepdim}`", at="keepdim")
    return keepdim


def _reduce_infer(result_dtype: Callable[[str], str]) -> Callable:
    """A shape rule for a reduction whose dtype is `result_dtype(input dtype)`."""

    def infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
        (x,) = types
        axes = reduced_axes(ctx, attrs["dim"], x.rank)
        keepdim = _check_keepdim(ctx, attrs["keepdim"])
        return [TensorType(result_dtype(x.dtype), reduced_shape(x.shape, axes, keepdim))]

    return infer


def _run_axes(array: np.ndarray, dim) -> tuple[int, ...]:
    """Normalized numpy axes for `dim` at run time."""
    return tuple(_onnx_axes(array.ndim, dim))


def _reduce_run(reduction: Callable, result_dtype: Callable[[str], str]) -> Callable:
    """A numpy run function for `reduction(x, axes, keepdims)`, split over the threads along a kept first axis.

    Each slice of a kept first axis reduces on its own, so the slices run in parallel and write their
    part of the output (integral's three marginal sums over 151 MB of heatmaps: 35 ms whole, 18 split).
    """

    def run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
        x = np.asarray(arrays[0])
        dtype = result_dtype(dtype_name(x))
        axes, keepdims = _run_axes(x, attrs["dim"]), attrs["keepdim"]

        def reduce(block: np.ndarray) -> np.ndarray:
            return as_dtype(reduction(as_dtype(block, dtype), axes, keepdims, attrs), dtype)

        parts = ctx.split(x.shape[0], x.size) if x.ndim and 0 not in axes else []
        if len(parts) < 2:
            return [reduce(x)]
        out = ctx.empty(reduced_shape(x.shape, axes, keepdims, one=1), NUMPY_DTYPES[dtype])

        def part(index: slice) -> None:
            out[index] = reduce(x[index])

        ctx.parallel([partial(part, index) for index in parts])
        return [out]

    return run


def _sum_dtype(dtype: str) -> str:
    """Sums of booleans count, so they are integers."""
    return "i64" if dtype == "bool" else dtype


def _keep(dtype: str) -> str:
    """The input dtype."""
    return dtype


def _sum(x, axes, keepdims, attrs):
    return np.sum(x, axis=axes, keepdims=keepdims)


def _mean(x, axes, keepdims, attrs):
    return np.mean(x, axis=axes, keepdims=keepdims)


def _amax(x, axes, keepdims, attrs):
    return np.amax(x, axis=axes, keepdims=keepdims)


def _norm(x, axes, keepdims, attrs):
    return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))


def _var(x, axes, keepdims, attrs):
    return np.var(x, axis=axes, keepdims=keepdims, ddof=1 if attrs.get("unbiased") else 0)


def _onnx_axes(rank: int, dim) -> list[int]:
    """Sorted non-negative axes named by `dim` (every axis when it is none), for numpy and ONNX alike."""
    if dim is None:
        return list(range(rank))
    items = dim if isinstance(dim, tuple) else (dim,)
    return sorted(item % rank for item in items)


def _reduce_onnx(op_type: str, result_dtype: Callable[[str], str]) -> Callable:
    """An ONNX facet: cast to the result dtype as numpy does, then one Reduce* node."""

    def lower(ctx, names: list, attrs: dict) -> list[str]:
        x_type = ctx.input_types[0]
        dtype = result_dtype(x_type.dtype)
        x = ctx.cast(names[0], x_type.dtype, dtype)
        return [ctx.reduce(op_type, x, _onnx_axes(x_type.rank, attrs["dim"]), attrs["keepdim"])]

    return lower


def _var_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """mean((x - mean x)^2), times n / (n - 1) when unbiased, n the runtime count of reduced entries."""
    x_type = ctx.input_types[0]
    dtype = float_dtype(x_type.dtype)
    axes = _onnx_axes(x_type.rank, attrs["dim"])
    x = ctx.cast(names[0], x_type.dtype, dtype)
    centred = ctx.node("Sub", [x, ctx.reduce("ReduceMean", x, axes, True)])
    if not attrs["unbiased"]:
        return [ctx.reduce("ReduceMean", ctx.node("Mul", [centred, centred]), axes, attrs["keepdim"])]
    squares = ctx.reduce("ReduceSum", ctx.node("Mul", [centred, centred]), axes, attrs["keepdim"])
    count = ctx.dim(product(x_type.shape[axis] for axis in axes) - 1)
    divisor = ctx.node("Cast", [ctx.squeeze(count, [0])], to=ctx.onnx_dtype(dtype))
    return [ctx.node("Div", [squares, divisor])]


_SIGNATURE = (Param("x", TENSOR), Param("dim", ATTR, None), Param("keepdim", ATTR, False))
_SAMPLES = (
    (("B, T, 17, 3",), {"dim": -1, "keepdim": False}),
    (("B, T, 17, 3",), {"dim": (1, 2), "keepdim": True}),
    (("B, T, 17, 3",), {"dim": None, "keepdim": False}),
    (("B, N",), {"dim": 0, "keepdim": True}),
)

_REDUCTIONS = (
    ("sum", _sum, "ReduceSum", _sum_dtype, "Sum over `dim` (an axis, a tuple of axes, or none for all)."),
    ("mean", _mean, "ReduceMean", float_dtype,
     "Arithmetic mean over `dim` (an axis, a tuple of axes, or none for all)."),
    ("amax", _amax, "ReduceMax", _keep, "Maximum over `dim` (an axis, a tuple of axes, or none for all)."),
    ("norm", _norm, "ReduceL2", float_dtype,
     "Euclidean (L2) norm over `dim` (an axis, a tuple of axes, or none for all)."),
)

for _name, _reduction, _op_type, _dtype_rule, _doc in _REDUCTIONS:
    define(
        name=_name,
        signature=_SIGNATURE,
        infer=_reduce_infer(_dtype_rule),
        atoms=_reduce_atoms,
        run=_reduce_run(_reduction, _dtype_rule),
        onnx=_reduce_onnx(_op_type, _dtype_rule),
        doc=_doc,
        samples=_SAMPLES,
    )


def _var_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """A reduction that also checks the `unbiased` flag."""
    if not isinstance(attrs["unbiased"], bool):
        ctx.error("E103", f"unbiased must be true or false, found `{attrs['unbiased']}`", at="unbiased")
    return _reduce_infer(float_dtype)(ctx, types, attrs)


define(
    name="var",
    signature=(*_SIGNATURE, Param("unbiased", ATTR, True)),
    infer=_var_infer,
    atoms=_reduce_atoms,
    run=_reduce_run(_var, float_dtype),
    onnx=_var_onnx,
    doc="Variance over `dim`; unbiased (divide by n - 1) as torch's default, `unbiased=false` divides by n.",
    samples=(
        (("B, T, C",), {"dim": -1, "keepdim": True, "unbiased": False}),
        (("B, T, C",), {"dim": (0, 1), "keepdim": False, "unbiased": True}),
        (("B, N",), {"dim": 1}),
    ),
)


def _std(x, axes, keepdims, attrs):
    return np.sqrt(_var(x, axes, keepdims, attrs))


def _std_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """The square root of the variance's lowering."""
    return [ctx.node("Sqrt", _var_onnx(ctx, names, attrs))]


define(
    name="std",
    signature=(*_SIGNATURE, Param("unbiased", ATTR, True)),
    infer=_var_infer,
    atoms=_reduce_atoms,
    run=_reduce_run(_std, float_dtype),
    onnx=_std_onnx,
    doc="Standard deviation over `dim`; unbiased (n - 1) as torch's default, `unbiased=false` divides by n.",
    samples=(
        (("B, T, C",), {"dim": -1, "keepdim": True}),
        (("B, T, C",), {"dim": (0, 1), "keepdim": False, "unbiased": False}),
        (("i64[B, N]",), {"dim": None}),
    ),
)


# --------------------------------------------------------------------------- softmax


def _softmax_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same shape; float dtype."""
    (x,) = types
    ctx.axis(attrs["dim"], x.rank, at="dim")
    return [TensorType(float_dtype(x.dtype), x.shape)]


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    """x minus its maximum along `axis`, so exp never overflows."""
    return x - np.max(x, axis=axis, keepdims=True)


def _softmax_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """exp(x - max) / sum(exp(x - max)), in place in the result buffer (a donated input when offered)."""
    x = np.asarray(arrays[0]).astype(float_dtype_numpy(arrays[0]), copy=False)
    axis = attrs["dim"]
    if x.ndim and axis % x.ndim == x.ndim - 1 and x.flags.c_contiguous:
        return [_softmax_last_axis(ctx, x)]
    exponent = np.subtract(x, np.max(x, axis=axis, keepdims=True), out=_result_buffer(ctx, x))
    np.exp(exponent, out=exponent)
    exponent /= np.sum(exponent, axis=axis, keepdims=True)
    return [exponent]


def _result_buffer(ctx: RunContext, x: np.ndarray) -> np.ndarray | None:
    """The donated input when it can hold a result shaped like x (None: numpy allocates)."""
    return ctx.output(0, x.shape, x.dtype) if x.ndim else None


# Passes a softmax makes over its input (maximum, shift, exp, sum, divide; exp alone costs several), as
# work for `split`: MHFormer's 8 x 351 x 351 scores, just under a million elements, ran on one thread
# and took 12.2 ms for nine; split, 8.0-10.0 ms (three runs). (Layer norm split at MHFormer's 351 x 512
# took longer: its parts are too small for its ten numpy calls each, so it keeps the plain element count.)
SOFTMAX_PASSES = 4


def _softmax_last_axis(ctx: RunContext, x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a contiguous array, block by block of rows so each block stays in cache."""
    result = ctx.output(0, x.shape, x.dtype)
    width = x.shape[-1]
    source, target = x.reshape(-1, width), result.reshape(-1, width)

    def part(index: slice) -> None:
        for rows in row_blocks(index.stop - index.start, width):
            rows = slice(index.start + rows.start, index.start + rows.stop)
            block = np.subtract(source[rows], row_maxima(source[rows]), out=target[rows])
            np.exp(block, out=block)
            block /= row_sums(block)

    ctx.parallel([partial(part, index) for index in ctx.split(source.shape[0], source.size * SOFTMAX_PASSES)])
    return result


def _log_softmax_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """(x - max) - log(sum(exp(x - max)))."""
    x = np.asarray(arrays[0]).astype(float_dtype_numpy(arrays[0]), copy=False)
    shifted = _shifted(x, attrs["dim"])
    return [shifted - np.log(np.sum(np.exp(shifted), axis=attrs["dim"], keepdims=True))]


def float_dtype_numpy(array: np.ndarray) -> np.dtype:
    """The array's dtype when it is floating point, else float32."""
    dtype = np.asarray(array).dtype
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


def _softmax_onnx(op_type: str) -> Callable:
    """Softmax or LogSoftmax along one axis (opset 13 semantics), integers computed in f32."""

    def lower(ctx, names: list, attrs: dict) -> list[str]:
        x_type = ctx.input_types[0]
        x = ctx.cast(names[0], x_type.dtype, ctx.output_types[0].dtype)
        return [ctx.node(op_type, [x], axis=attrs["dim"] % x_type.rank)]

    return lower


define(
    name="softmax",
    signature=(Param("x", TENSOR), Param("dim", ATTR)),
    infer=_softmax_infer,
    run=_softmax_run,
    onnx=_softmax_onnx("Softmax"),
    doc="Numerically stable softmax along `dim`.",
    samples=((("B, H, N, N",), {"dim": -1}), (("B, 18, D",), {"dim": 2})),
)

define(
    name="log_softmax",
    signature=(Param("x", TENSOR), Param("dim", ATTR)),
    infer=_softmax_infer,
    run=_log_softmax_run,
    onnx=_softmax_onnx("LogSoftmax"),
    doc="Numerically stable log of the softmax along `dim`.",
    samples=((("B, C",), {"dim": 1}), (("B, T, C",), {"dim": -1})),
)
