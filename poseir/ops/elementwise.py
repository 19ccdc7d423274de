"""Elementwise ops: broadcasting arithmetic, activations, constants and dtype casts."""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, Sequence

import numpy as np

from poseir.ir.graph import DTYPES, FLOAT_DTYPES, TensorType, tensor_type
from poseir.ops.common import (CACHE_BLOCK, NUMPY_DTYPES, as_dtype, broadcast_atoms, define, dtype_name, float_dtype,
                               require_same_dtype, row_blocks)
from poseir.ops.registry import ATTR, TENSOR, Param, RunContext, ShapeContext, elementwise_dtype
from poseir.ops.special import erf, gelu  # noqa: F401  (erf is part of this module's interface)


def combined_dtype(operands: Sequence[tuple[str, int]]) -> str:
    """Result dtype of an elementwise op on (dtype, rank) operands; tensors outrank scalars."""
    # Scalars (rank 0) are literals turned into constants: they adopt the tensors' dtype.
    ordered = [dtype for dtype, rank in operands if rank > 0] + [dtype for dtype, rank in operands if rank == 0]
    return elementwise_dtype([TensorType(dtype, ()) for dtype in ordered])


def sigmoid(values, out: np.ndarray | None = None) -> np.ndarray:
    """The logistic function via tanh, which never overflows (into `out` when given)."""
    x = np.asarray(values)
    if out is None:
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


# --------------------------------------------------------------------------- binary ops


def _binary_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Broadcast the shapes; tensors must share a dtype, scalars adopt it."""
    require_same_dtype(ctx, types, scalars_exempt=True)
    shape = ctx.broadcast(types)
    dtype = combined_dtype([(type_.dtype, type_.rank) for type_ in types])
    if ctx.op == "div":
        dtype = float_dtype(dtype)
    return [TensorType(dtype, tuple(ctx.normalize(dim) for dim in shape))]


def _binary_run(function: Callable, true_division: bool = False) -> Callable:
    """A numpy run function for a binary op that keeps the inferred dtype (into a donated operand when it fits);
    operands of one shape are combined block by block over the threads, each block finished while in cache."""

    def run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
        left, right = (np.asarray(array) for array in arrays)
        dtype = combined_dtype([(dtype_name(left), left.ndim), (dtype_name(right), right.ndim)])
        dtype = float_dtype(dtype) if true_division else dtype
        if true_division and dtype not in FLOAT_DTYPES:
            left = left.astype(NUMPY_DTYPES[dtype])
        out = _donated_output(ctx, left, right, dtype)
        if out is not None and left.shape == right.shape and left.flags.c_contiguous and right.flags.c_contiguous:
            # Rows of the last axis, unless one row would not fit in cache (then blocks of a flat view).
            width = out.shape[-1] if 0 < out.shape[-1] <= CACHE_BLOCK else 1
            _blockwise(ctx, function, left.reshape(-1, width), right.reshape(-1, width), out.reshape(-1, width))
            return [out]
        result = as_dtype(function(left, right, out=out), dtype)
        ctx.finish(result)
        return [result]

    return run


def _blockwise(ctx: RunContext, function: Callable, left: np.ndarray, right: np.ndarray, out: np.ndarray) -> None:
    """out = function(left, right) on rows (the output's last axis), in cache-sized blocks of rows split over
    the threads, each finished (whole rows, so that what follows can bring a per-channel operand along)."""
    width = out.shape[1]

    def part(index: slice) -> None:
        for rows in row_blocks(index.stop - index.start, width):
            rows = slice(index.start + rows.start, index.start + rows.stop)
            function(left[rows], right[rows], out=out[rows])
            ctx.finish(out, (rows,))

    ctx.parallel([partial(part, index) for index in ctx.split(out.shape[0], out.size)])


def _donated_output(ctx: RunContext, left: np.ndarray, right: np.ndarray, dtype: str) -> np.ndarray | None:
    """A donated operand (or a recycled buffer) to hold the result, when numpy computes in the result's dtype."""
    if np.result_type(left, right) != NUMPY_DTYPES[dtype]:
        return None
    shape = np.broadcast_shapes(left.shape, right.shape)
    if not shape:
        return None
    found = ctx.reusable(0, shape, NUMPY_DTYPES[dtype])
    found = found if found is not None else ctx.reusable(1, shape, NUMPY_DTYPES[dtype])
    return found if found is not None else ctx.empty(shape, NUMPY_DTYPES[dtype])


def computation_dtype(dtypes: Sequence[str], true_division: bool = False) -> str:
    """The dtype numpy computes a binary op in (the run facet casts the result afterwards)."""
    dtype = dtype_name(np.empty(0, np.result_type(*(NUMPY_DTYPES[name] for name in dtypes))))
    return "f64" if true_division and dtype not in FLOAT_DTYPES else dtype


def _binary_onnx(op_type: str, true_division: bool = False) -> Callable:
    """An ONNX facet: both operands in numpy's computation dtype, the result in the inferred dtype."""

    def lower(ctx, names: list, attrs: dict) -> list[str]:
        dtypes = [type_.dtype for type_ in ctx.input_types]
        compute = computation_dtype(dtypes, true_division)
        if compute == "bool":
            raise ctx.error(f"arithmetic on bool tensors (`{ctx.op}`) cannot be exported to ONNX",
                            helps=("cast the operands first, e.g. `.cast(\"i64\")`",))
        operands = [ctx.cast(name, dtype, compute) for name, dtype in zip(names, dtypes)]
        return [ctx.cast(ctx.node(op_type, operands), compute, ctx.output_types[0].dtype)]

    return lower


_BINARY = (
    ("add", np.add, "Add", "Elementwise sum with numpy broadcasting (`a + b`)."),
    ("sub", np.subtract, "Sub", "Elementwise difference with numpy broadcasting (`a - b`)."),
    ("mul", np.multiply, "Mul", "Elementwise product with numpy broadcasting (`a * b`)."),
    ("div", np.true_divide, "Div", "Elementwise true division with numpy broadcasting (`a / b`)."),
    ("pow", np.power, "Pow", "Elementwise power with numpy broadcasting (`a ** b`)."),
    ("maximum", np.maximum, "Max", "Elementwise maximum of two tensors, with broadcasting."),
    ("minimum", np.minimum, "Min", "Elementwise minimum of two tensors, with broadcasting."),
)
# Binary ops the planned backend may apply after a producer, on each part it writes (pow is left out: its
# integer and negative-base rules are not worth the fusion).
_COMBINES = ("add", "sub", "mul", "div", "maximum", "minimum")
_BINARY_SAMPLES = (
    (("B, T, 17, 3", "B, T, 1, 3"), {}),
    (("B, T, 17, 3", "17, 3"), {}),
    (("B, 1, C", "T, 1"), {}),
    (("B, T", ""), {}),
)

for _name, _function, _op_type, _doc in _BINARY:
    define(
        name=_name,
        signature=(Param("a", TENSOR), Param("b", TENSOR)),
        infer=_binary_infer,
        atoms=broadcast_atoms,
        run=_binary_run(_function, true_division=_name == "div"),
        combines=_function if _name in _COMBINES else None,
        finishes=True,
        onnx=_binary_onnx(_op_type, true_division=_name == "div"),
        doc=_doc,
        samples=_BINARY_SAMPLES,
    )


# --------------------------------------------------------------------------- unary ops


def _same_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same shape and dtype as the input."""
    return [types[0]]


def _float_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same shape; integer inputs give f32 (the function is real-valued)."""
    (x,) = types
    return [TensorType(float_dtype(x.dtype), x.shape)]


def _unary_run(function: Callable, real_valued: bool, threaded: bool = False) -> Callable:
    """A numpy run function for a unary op; real-valued functions compute in float.

    `function(x, out=None)` writes into a donated input of the result's shape and dtype when there
    is one; a `threaded` function also takes `ctx=` to split its work over the backend's threads.
    """

    def run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
        x = np.asarray(arrays[0])
        dtype = float_dtype(dtype_name(x)) if real_valued else dtype_name(x)
        if real_valued:
            x = as_dtype(x, dtype)
        out = ctx.output(0, x.shape, NUMPY_DTYPES[dtype]) if x.ndim and x.dtype == NUMPY_DTYPES[dtype] else None
        result = function(x, out=out, ctx=ctx) if threaded else function(x, out=out)
        return [as_dtype(result, dtype)]

    return run


def _in_place(function: Callable) -> Callable:
    """An epilogue facet: `function` applied to a block of values in place (a strided block through a copy,
    since blockwise functions such as gelu write through flat views)."""

    def apply(block: np.ndarray) -> None:
        if block.flags.c_contiguous:
            function(block, out=block)
        else:
            block[...] = function(block)

    return apply


def _relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) in the dtype of x."""
    return np.maximum(x, np.zeros((), dtype=x.dtype), out=out)


def _relu_onnx(ctx, x: str, dtype: str) -> str:
    """Relu for floats; max(x, 0) for integers (integer Relu needs opset 14)."""
    if dtype in FLOAT_DTYPES:
        return ctx.node("Relu", [x])
    return ctx.node("Max", [x, ctx.scalar(0, dtype)])


def _gelu_onnx(ctx, x: str, dtype: str) -> str:
    """Gelu (opset 20); before it the exact erf form 0.5 x (1 + erf(x / sqrt 2))."""
    if ctx.opset >= 20:
        return ctx.node("Gelu", [x], approximate="none")
    scaled = ctx.node("Mul", [x, ctx.scalar(1.0 / math.sqrt(2.0), dtype)])
    one_plus = ctx.node("Add", [ctx.node("Erf", [scaled]), ctx.scalar(1.0, dtype)])
    return ctx.node("Mul", [ctx.node("Mul", [x, one_plus]), ctx.scalar(0.5, dtype)])


def _unary_onnx(build: Callable | str, real_valued: bool) -> Callable:
    """An ONNX facet; real-valued functions of integers compute in f32, of f16 in f32 too."""

    def lower(ctx, names: list, attrs: dict) -> list[str]:
        dtype, result = ctx.input_types[0].dtype, ctx.output_types[0].dtype
        compute = "f32" if real_valued and dtype in ("f16", "i64", "i32", "bool") else dtype
        x = ctx.cast(names[0], dtype, compute)
        y = ctx.node(build, [x]) if isinstance(build, str) else build(ctx, x, compute)
        return [ctx.cast(y, compute, result)]

    return lower


# The activations that follow a convolution or a linear layer: fused into it by the planned backend.
_EPILOGUES = {"relu", "gelu", "tanh", "sigmoid"}
_UNARY = (
    ("neg", np.negative, "Neg", False, "Elementwise negation (`-x`)."),
    ("abs", np.abs, "Abs", False, "Elementwise absolute value."),
    ("relu", _relu, _relu_onnx, False, "Rectified linear unit, max(x, 0)."),
    ("gelu", gelu, _gelu_onnx, True, "Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as torch's default."),
    ("tanh", np.tanh, "Tanh", True, "Elementwise hyperbolic tangent."),
    ("sigmoid", sigmoid, "Sigmoid", True, "Elementwise logistic sigmoid 1 / (1 + exp(-x))."),
    ("exp", np.exp, "Exp", True, "Elementwise exponential."),
    ("log", np.log, "Log", True, "Elementwise natural logarithm."),
    ("sqrt", np.sqrt, "Sqrt", True, "Elementwise square root."),
)
_UNARY_SAMPLES = ((("B, T, 17, 3",), {}), (("",), {}), (("N",), {}))

for _name, _function, _lowering, _real, _doc in _UNARY:
    define(
        name=_name,
        signature=(Param("x", TENSOR),),
        infer=_float_infer if _real else _same_infer,
        run=_unary_run(_function, _real, threaded=_function is gelu),
        epilogue=_in_place(_function) if _name in _EPILOGUES else None,
        onnx=_unary_onnx(_lowering, _real),
        doc=_doc,
        samples=_UNARY_SAMPLES,
    )


# --------------------------------------------------------------------------- constant and cast


def _check_dtype_attr(ctx: ShapeContext, dtype, at: str = "dtype") -> str:
    """A dtype attribute must name one of poseir's dtypes."""
    if dtype not in DTYPES:
        ctx.error("E103", f"`{dtype}` is not a dtype", at=at, label="expected a dtype name",
                  helps=(f"use one of {', '.join(DTYPES)}",))
    return dtype


def _nested_shape(ctx: ShapeContext, value) -> tuple[int, ...]:
    """The shape of a nested tuple of numbers; E103 when ragged or not numeric."""
    if isinstance(value, (tuple, list)):
        shapes = {_nested_shape(ctx, item) for item in value}
        if len(shapes) > 1:
            ctx.error("E103", "a constant must be a rectangular nest of numbers", at="value",
                      label="rows of different lengths")
        inner = shapes.pop() if shapes else ()
        return (len(value), *inner)
    if not isinstance(value, (int, float, bool, np.number, np.bool_)):
        ctx.error("E103", f"a constant must be numbers, found `{value!r}`", at="value")
    return ()


def _flatten_values(value) -> list:
    """Every number in a nested tuple, in order."""
    if isinstance(value, (tuple, list)):
        return [number for item in value for number in _flatten_values(item)]
    return [value]


def _constant_dtype(attrs: dict) -> str:
    """The dtype given, or the natural one of the value: bool, i64 for ints, else f32."""
    if attrs.get("dtype") is not None:
        return attrs["dtype"]
    numbers = _flatten_values(attrs["value"])
    if numbers and all(isinstance(number, (bool, np.bool_)) for number in numbers):
        return "bool"
    if numbers and all(isinstance(number, (int, np.integer)) for number in numbers):
        return "i64"
    return "f32"


def _constant_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """The shape of the nested value, with the given or natural dtype."""
    shape = _nested_shape(ctx, attrs["value"])
    dtype = _check_dtype_attr(ctx, _constant_dtype(attrs))
    if dtype not in FLOAT_DTYPES:
        _require_representable(ctx, attrs["value"], dtype)
    return [tensor_type(dtype, shape)]


def _require_representable(ctx: ShapeContext, value, dtype: str) -> None:
    """E203 when a number would silently change in an integer or boolean constant (0.5 as i64)."""
    for number in _flatten_values(value):
        exact = float(number).is_integer() if dtype != "bool" else number in (0, 1)
        if not exact:
            ctx.error("E203", f"the number {number} cannot be a {dtype} value without changing", at="value",
                      label=f"not representable as {dtype}",
                      helps=("convert the tensor first, e.g. `x.cast(\"f32\") * 0.5`",))


def _constant_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """The value as an array."""
    return [np.array(attrs["value"], dtype=NUMPY_DTYPES[_constant_dtype(attrs)])]


def _constant_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """An ONNX Constant node holding the value (so it keeps the span of the literal)."""
    from onnx import numpy_helper

    return [ctx.node("Constant", [], value=numpy_helper.from_array(_constant_run(None, [], attrs)[0]))]


define(
    name="constant",
    signature=(Param("value", ATTR), Param("dtype", ATTR, None)),
    infer=_constant_infer,
    run=_constant_run,
    onnx=_constant_onnx,
    method=False,
    doc="A compile-time tensor: a number (rank 0) or a nested tuple of numbers.",
    samples=(
        ((), {"value": 1.5, "dtype": "f32"}),
        ((), {"value": 2}),
        ((), {"value": ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))}),
    ),
)


def _cast_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same shape, the requested dtype."""
    return [TensorType(_check_dtype_attr(ctx, attrs["dtype"]), types[0].shape)]


def _cast_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy astype."""
    return [as_dtype(arrays[0], attrs["dtype"])]


def _cast_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Cast (always a node, even to the same dtype, so the result has a producer)."""
    return [ctx.node("Cast", names, to=ctx.onnx_dtype(attrs["dtype"]))]


define(
    name="cast",
    signature=(Param("x", TENSOR), Param("dtype", ATTR)),
    infer=_cast_infer,
    run=_cast_run,
    onnx=_cast_onnx,
    doc="Convert a tensor to another dtype (the only way dtypes change).",
    samples=((("B, T, 3",), {"dtype": "f16"}), (("i64[B, 3]",), {"dtype": "f32"})),
)


# --------------------------------------------------------------------------- leaky relu


def _leaky_relu_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same shape; a real-valued function, so integer inputs give f32; the slope must be a number."""
    slope = attrs["negative_slope"]
    if isinstance(slope, bool) or not isinstance(slope, (int, float)):
        ctx.error("E103", f"negative_slope must be a number, found `{slope}`", at="negative_slope")
    return _float_infer(ctx, types, attrs)


def _leaky_relu_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """x where x >= 0, else negative_slope * x, in the float dtype of the result."""
    x = np.asarray(arrays[0])
    dtype = float_dtype(dtype_name(x))
    x = as_dtype(x, dtype)
    return [as_dtype(np.where(x >= 0, x, x * float(attrs["negative_slope"])), dtype)]


def _leaky_relu_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX LeakyRelu (float inputs; integers are converted to f32 first, as the numpy facet does)."""
    dtype, result = ctx.input_types[0].dtype, ctx.output_types[0].dtype
    x = ctx.cast(names[0], dtype, result)
    return [ctx.node("LeakyRelu", [x], alpha=float(attrs["negative_slope"]))]


define(
    name="leaky_relu",
    signature=(Param("x", TENSOR), Param("negative_slope", ATTR, 0.01)),
    infer=_leaky_relu_infer,
    run=_leaky_relu_run,
    onnx=_leaky_relu_onnx,
    doc="Leaky rectified linear unit: x for x >= 0, negative_slope * x below (torch's default slope 0.01).",
    samples=((("B, T, 17, 3",), {}), (("B, C, T",), {"negative_slope": 0.2}), (("i64[N]",), {"negative_slope": 0.5})),
)
