"""Comparisons and selection: elementwise comparisons to bool masks, `where`, `masked_fill`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from poseir.ir.graph import FLOAT_DTYPES, TensorType
from poseir.ops.common import aligned_atoms, as_dtype, broadcast_atoms, define, dtype_name, require_same_dtype
from poseir.ops.elementwise import combined_dtype, computation_dtype
from poseir.ops.registry import ATTR, TENSOR, Param, RunContext, ShapeContext

# --------------------------------------------------------------------------- comparisons


def _compare_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Broadcast the shapes; operands share a dtype (scalars adopt it); the result is a bool mask."""
    require_same_dtype(ctx, types, scalars_exempt=True)
    shape = ctx.broadcast(types)
    return [TensorType("bool", tuple(ctx.normalize(dim) for dim in shape))]


def _compare_run(function: Callable) -> Callable:
    """A numpy run function comparing two arrays elementwise."""

    def run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
        left, right = (np.asarray(array) for array in arrays)
        return [np.asarray(function(left, right), dtype=np.bool_)]

    return run


def _compare_onnx(op_type: str, negate: bool = False) -> Callable:
    """An ONNX facet: both operands in numpy's computation dtype, then one comparison node (and Not for `ne`)."""

    def lower(ctx, names: list, attrs: dict) -> list[str]:
        dtypes = [type_.dtype for type_ in ctx.input_types]
        compute = computation_dtype(dtypes)
        if compute == "bool" and op_type != "Equal":
            compute = "i32"  # ordering of bools is ordering of 0 and 1; ONNX orders numbers only
        operands = [ctx.cast(name, dtype, compute) for name, dtype in zip(names, dtypes)]
        result = ctx.node(op_type, operands)
        return [ctx.node("Not", [result]) if negate else result]

    return lower


_COMPARISONS = (
    ("eq", ("equal_to",), np.equal, "Equal", False, "Elementwise `a == b` as a bool mask, with broadcasting."),
    ("ne", ("not_equal",), np.not_equal, "Equal", True, "Elementwise `a != b` as a bool mask, with broadcasting."),
    ("lt", ("less",), np.less, "Less", False, "Elementwise `a < b` as a bool mask, with broadcasting."),
    ("le", ("less_equal",), np.less_equal, "LessOrEqual", False,
     "Elementwise `a <= b` as a bool mask, with broadcasting."),
    ("gt", ("greater",), np.greater, "Greater", False, "Elementwise `a > b` as a bool mask, with broadcasting."),
    ("ge", ("greater_equal",), np.greater_equal, "GreaterOrEqual", False,
     "Elementwise `a >= b` as a bool mask, with broadcasting."),
)
_COMPARE_SAMPLES = (
    (("B, T, 17, 3", "B, T, 1, 3"), {}),
    (("B, N", ""), {}),
    (("i64[B, 3]", "i64[3]"), {}),
    (("bool[B, N]", "bool[N]"), {}),
)

for _name, _aliases, _function, _op_type, _negate, _doc in _COMPARISONS:
    define(
        *_aliases,
        name=_name,
        signature=(Param("a", TENSOR), Param("b", TENSOR)),
        infer=_compare_infer,
        atoms=broadcast_atoms,
        run=_compare_run(_function),
        onnx=_compare_onnx(_op_type, _negate),
        doc=_doc,
        samples=_COMPARE_SAMPLES,
    )


# --------------------------------------------------------------------------- where


def _require_mask(ctx: ShapeContext, type_: TensorType, at) -> None:
    """E203 unless a condition or mask is a bool tensor (a comparison such as `x > 0.0` makes one)."""
    if type_.dtype != "bool":
        ctx.error("E203", f"`{ctx.op}` needs a bool mask, found {type_}", at=at, label=f"this is {type_}",
                  helps=("compare to make a mask, e.g. `mask != 0`",))


def _where_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """The broadcast of condition, input and other; input and other share a dtype, the result's."""
    condition, first, second = types
    _require_mask(ctx, condition, 0)
    require_same_dtype(ctx, [first, second], ats=[1, 2], scalars_exempt=True)
    shape = ctx.broadcast(types)
    dtype = combined_dtype([(first.dtype, first.rank), (second.dtype, second.rank)])
    return [TensorType(dtype, tuple(ctx.normalize(dim) for dim in shape))]


def _where_atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list:
    """Each output axis takes its atoms from the values (input, then other) before the mask."""
    order = (1, 2, 0)
    operands = [(types[index], ctx.axes(types[index], index)) for index in order]
    return [aligned_atoms(operands, outputs[0].rank)]


def _where_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy where, in the result dtype."""
    condition, first, second = (np.asarray(array) for array in arrays)
    dtype = combined_dtype([(dtype_name(first), first.ndim), (dtype_name(second), second.ndim)])
    return [as_dtype(np.where(condition, first, second), dtype)]


def _where_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Where with both values in the result dtype."""
    condition, first, second = names
    dtype = ctx.output_types[0].dtype
    values = [ctx.cast(name, type_.dtype, dtype) for name, type_ in zip((first, second), ctx.input_types[1:])]
    return [ctx.node("Where", [condition, *values])]


define(
    name="where",
    signature=(Param("condition", TENSOR), Param("input", TENSOR), Param("other", TENSOR)),
    infer=_where_infer,
    atoms=_where_atoms,
    run=_where_run,
    onnx=_where_onnx,
    method=False,
    doc="`input` where the bool `condition` holds, else `other`, all three broadcast (torch.where).",
    samples=(
        (("bool[B, T, 17, 3]", "B, T, 17, 3", "B, T, 17, 3"), {}),
        (("bool[B, 1, N]", "B, H, N", ""), {}),
        (("bool[N]", "i64[B, N]", "i64[]"), {}),
    ),
)


# --------------------------------------------------------------------------- masked_fill


def _masked_fill_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """x's type; the mask broadcasts to x's shape (never x to the mask's) and the value fits x's dtype."""
    x, mask = types
    _require_mask(ctx, mask, 1)
    value = attrs["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        ctx.error("E103", f"the fill value must be a number, found `{value}`", at="value")
    if x.dtype not in FLOAT_DTYPES and not float(value).is_integer():
        ctx.error("E203", f"the number {value} cannot be a {x.dtype} value without changing", at="value",
                  label=f"not representable as {x.dtype}", helps=("fill a float tensor instead",))
    shape = ctx.broadcast([x, mask])
    if mask.rank > x.rank or any(not ctx.provably_equal(got, want) for got, want in zip(shape, x.shape)):
        ctx.error("E200", f"the mask {mask} does not broadcast to the shape of {x}", at=1,
                  label=f"this is {mask}", notes=("masked_fill keeps the input's shape: only the mask broadcasts",))
    return [x]


def _masked_fill_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """`value` where the mask holds, x elsewhere."""
    x, mask = (np.asarray(array) for array in arrays)
    return [as_dtype(np.where(mask, np.asarray(attrs["value"], dtype=x.dtype), x), dtype_name(x))]


def _masked_fill_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Where(mask, value, x)."""
    x, mask = names
    dtype = ctx.input_types[0].dtype
    return [ctx.node("Where", [mask, ctx.scalar(attrs["value"], dtype), x])]


define(
    name="masked_fill",
    signature=(Param("x", TENSOR), Param("mask", TENSOR), Param("value", ATTR)),
    infer=_masked_fill_infer,
    run=_masked_fill_run,
    onnx=_masked_fill_onnx,
    doc="x with `value` wherever the bool mask (broadcast to x's shape) holds (torch.Tensor.masked_fill).",
    samples=(
        (("B, H, N, N", "bool[B, 1, 1, N]"), {"value": -1e9}),
        (("B, T, 3", "bool[B, T, 3]"), {"value": 0.0}),
        (("i64[B, N]", "bool[N]"), {"value": 2}),
    ),
)
