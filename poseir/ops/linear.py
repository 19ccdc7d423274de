"""Matrix products: matmul (numpy semantics) and linear (torch Linear, weight [out, in])."""

from __future__ import annotations

from functools import partial

import numpy as np

from poseir.diagnostics.record import Label
from poseir.ir.dims import Dim, Tri
from poseir.ir.graph import TensorType
from poseir.ops.common import (argument_label, check_bias, define, optional, receiver_text, require_axes,
                               require_axis_size, require_layer_dtype, require_same_dtype)
from poseir.ops.registry import OPTIONAL_TENSOR, TENSOR, Param, RunContext, ShapeContext
from poseir.ops.repairs import layer_input_candidates, parameter_axis, swap_parameter_axes


def _matmul_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """numpy matmul: (..., m, k) @ (..., k, n), 1-D operands as vectors, batch axes broadcast."""
    a, b = types
    for at, type_ in enumerate(types):
        require_axes(ctx, type_, at)
    require_same_dtype(ctx, types)
    inner_a, inner_b = a.shape[-1], b.shape[0] if b.rank == 1 else b.shape[-2]
    details = dict(label=f"this is {b}", labels=(Label(ctx.span_of(0), f"this is {a}"),),
                   notes=("`a @ b` needs the last axis of `a` to equal the second to last axis of `b`",),
                   helps=_matmul_helps(ctx, a, b, inner_a))
    message = f"matmul contracts {inner_a} with {inner_b}: the inner dimensions differ"
    if ctx.equal(inner_a, inner_b) is Tri.NO:
        candidates = _matmul_candidates(ctx, a, b)
        # The candidates name their repairs; the generic help would repeat (or contradict) the chosen one.
        ctx.error("E207", message, at=1, candidates=candidates, **{**details, "helps": () if candidates else
                                                                   details["helps"]})
    ctx.require_equal(inner_a, inner_b, code="E207", at=1, message=message, **details)
    rows = a.shape[-2:-1] if a.rank >= 2 else ()
    columns = b.shape[-1:] if b.rank >= 2 else ()
    batch = ()
    if a.rank > 2 or b.rank > 2:
        batch = ctx.broadcast([TensorType(a.dtype, a.shape[:-2]), TensorType(b.dtype, b.shape[:-2])])
    shape = tuple(ctx.normalize(dim) for dim in (*batch, *rows, *columns))
    return [TensorType(a.dtype, shape)]


def _matmul_atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list:
    """Broadcast batch atoms, then the rows of `a` and the columns of `b` (the contracted atoms vanish)."""
    a, b = types
    a_axes, b_axes = ctx.axes(a, 0), ctx.axes(b, 1)
    rows = a_axes[-2:-1] if a.rank >= 2 else ()
    columns = b_axes[-1:] if b.rank >= 2 else ()
    batch_rank = outputs[0].rank - len(rows) - len(columns)
    batch = []
    for position in range(batch_rank):
        chosen: tuple = ()
        for type_, axes in ((a, a_axes), (b, b_axes)):
            offset = position - (batch_rank - (type_.rank - 2))
            if type_.rank > 2 and offset >= 0 and axes[offset]:
                chosen = axes[offset]
                break
        batch.append(chosen)
    return [(*batch, *rows, *columns)]


def _matmul_helps(ctx: ShapeContext, a: TensorType, b: TensorType, inner_a: Dim) -> tuple[str, ...]:
    """Suggest transposing `b` when its last axis is the one that matches."""
    if b.rank >= 2 and ctx.provably_equal(b.shape[-1], inner_a):
        return ("the last axis of the right operand matches; transpose it with `.transpose(-2, -1)`",)
    return ()


def _blasable(array: np.ndarray) -> bool:
    """Whether numpy can hand each matrix of `array` to BLAS: one of the last two axes has unit stride."""
    if array.ndim < 2:
        return True
    size = array.itemsize
    rows, columns = array.strides[-2:]
    return (columns == size and rows >= size * max(array.shape[-1], 1) and rows % size == 0) or \
        (rows == size and columns >= size * max(array.shape[-2], 1) and columns % size == 0)


def _matmul_candidates(ctx: ShapeContext, a: TensorType, b: TensorType) -> list:
    """The repairs of a matmul whose inner sizes differ: transpose either operand, or swap them.

    An operand that is a parameter the user declared is repaired in its declaration instead (its
    layout is the program's own choice): `x @ W` with `W` declared `[out, in]` becomes `[in, out]`.
    """
    left, right = ctx.text_of(0), ctx.text_of(1)
    if left is None or right is None or a.rank < 2 or b.rank < 2:
        return []
    a_axes, b_axes = ctx.axes(a, 0), ctx.axes(b, 1)
    candidates = []
    for at, type_, text in ((1, b, right), (0, a, left)):
        contracted = (-1, -1) if at == 1 else (-2, -2)
        if not _contractible(ctx, a, b, a_axes, b_axes, *contracted):
            continue
        owner = parameter_axis(ctx, type_, at, -1)
        owner_rows = parameter_axis(ctx, type_, at, -2)
        if owner is not None and owner_rows is not None and owner[0] is owner_rows[0]:
            candidates.append(swap_parameter_axes(owner[0], owner_rows[1], owner[1]))
            continue
        side = "right" if at == 1 else "left"
        transposed = f"{receiver_text(text)}.transpose(-2, -1)"
        candidates.append(ctx.fix(f"transpose the {side} operand: `{transposed}`", transposed, at=at, safe=False))
    if _contractible(ctx, a, b, a_axes, b_axes, -2, -1):
        swapped = f"{receiver_text(right)} @ {receiver_text(left)}"
        candidates.append(ctx.fix(f"swap the operands: `{swapped}`", swapped, safe=False))
    return candidates


def _contractible(ctx: ShapeContext, a: TensorType, b: TensorType, a_axes, b_axes, a_axis: int, b_axis: int) -> bool:
    """Whether a repair may contract axis `a_axis` of `a` with axis `b_axis` of `b`: equal sizes, and not a piece
    of a split axis against something else (half of the queries against the keys, after a wrong view)."""
    if not ctx.provably_equal(a.shape[a_axis], b.shape[b_axis]):
        return False
    mine, theirs = a_axes[a_axis], b_axes[b_axis]
    pieces = any(atom.key[0] == "split" for atom in (*mine, *theirs))
    return mine == theirs or not pieces


def _matmul_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy matmul as few large BLAS calls on BLAS-ready operands, split over the backend's threads.

    Stacked rows times one matrix are a single GEMM of all rows (numpy would call BLAS once per
    stacked matrix); an operand whose matrices have no unit-stride axis is copied first (numpy
    would fall back to its slow non-BLAS loop); a stack of products is split along a batch axis.
    """
    a, b = (np.asarray(array) for array in arrays)
    if a.ndim > 2 and b.ndim == 2:
        rows = a.reshape(-1, a.shape[-1])
        rows = rows if _blasable(rows) else np.ascontiguousarray(rows)
        return [rows_times(ctx, rows, b).reshape(*a.shape[:-1], b.shape[1])]
    a = a if _blasable(a) else np.ascontiguousarray(a)
    b = b if _blasable(b) else np.ascontiguousarray(b)
    if a.ndim == 2 and b.ndim == 2:
        return [rows_times(ctx, a, b)]
    return [_stacked(ctx, a, b)]


def rows_times(ctx: RunContext, rows: np.ndarray, matrix: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """rows @ matrix (+ bias), each part of the result finished in the task that computed it."""
    result = ctx.empty((rows.shape[0], matrix.shape[1]), np.result_type(rows.dtype, matrix.dtype))

    def then(part_rows: slice, part_columns: slice) -> None:
        if bias is not None:
            result[part_rows, part_columns] += bias[part_columns]
        ctx.finish(result, (part_rows, part_columns))

    return ctx.product(rows, matrix, result, then)


def _stacked(ctx: RunContext, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A broadcast stack of matrix products (or a product with a vector), split along its first batch axis
    longer than one; every part finished."""
    a_matrix, b_matrix = a.ndim >= 2, b.ndim >= 2
    a_view = a if a_matrix else a[None, :]
    b_view = b if b_matrix else b[:, None]
    batch = np.broadcast_shapes(a_view.shape[:-2], b_view.shape[:-2])
    shape = (*batch, a_view.shape[-2], b_view.shape[-1])
    axis = next((position for position, size in enumerate(batch) if size > 1), None)
    if axis is None and a_matrix and b_matrix:  # a stack of one product: one split GEMM, as for matrices
        return rows_times(ctx, a.reshape(a.shape[-2:]), b.reshape(b.shape[-2:])).reshape(shape)
    if axis is None or not (a_matrix and b_matrix):
        result = np.asarray(np.matmul(a, b))
        ctx.finish(result)
        return result
    out = ctx.empty(shape, np.result_type(a.dtype, b.dtype))

    def part(index: slice) -> None:
        where = (slice(None),) * axis + (index,)
        np.matmul(_batch_slice(a, axis, len(batch), index), _batch_slice(b, axis, len(batch), index), out=out[where])
        ctx.finish(out, where)

    work = out.size * a.shape[-1]
    ctx.parallel([partial(part, index) for index in ctx.split(batch[axis], work)])
    return out


def _batch_slice(array: np.ndarray, axis: int, batch_rank: int, index: slice) -> np.ndarray:
    """`array` restricted to `index` along broadcast batch axis `axis` (unchanged where it broadcasts)."""
    own = axis - (batch_rank - (array.ndim - 2))
    if own < 0 or array.shape[own] == 1:
        return array
    return array[(slice(None),) * own + (index,)]


def _matmul_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX MatMul has numpy semantics, 1-D operands and broadcasting included."""
    return [ctx.node("MatMul", names)]


define(
    name="matmul",
    signature=(Param("a", TENSOR), Param("b", TENSOR)),
    infer=_matmul_infer,
    atoms=_matmul_atoms,
    run=_matmul_run,
    finishes=True,
    onnx=_matmul_onnx,
    doc="Matrix product with numpy semantics (`a @ b`): batched, broadcasting, 1-D operands as vectors.",
    samples=(
        (("B, H, N, D", "B, H, D, N"), {}),
        (("B, N, C", "C, K"), {}),
        (("1, 16, 16", "B, 16, C"), {}),
        (("C", "C, K"), {}),
        (("B, N, C", "C"), {}),
        (("C", "C"), {}),
    ),
)


def _linear_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """x[..., in] with weight[out, in] (and bias[out]) gives [..., out]."""
    x, weight, bias = types[0], types[1], optional(types, 2)
    require_axes(ctx, x, 0)
    ctx.require_rank(weight, (2,), at=1, what="weight")
    require_layer_dtype(ctx, [x, weight, bias], ("weight", "bias"))
    features, wanted = x.shape[-1], weight.shape[1]
    require_axis_size(ctx, x, -1, wanted, "last",
                      message=f"Linear expects {wanted} input features, found {features}",
                      label=f"this is {x}", labels=argument_label(ctx, 1, f"weight is {weight}"),
                      repairs=lambda: layer_input_candidates(ctx, x, -1, wanted, weight, 1, 1, keeps_shape=False))
    check_bias(ctx, bias, weight.shape[0], "Linear")
    return [TensorType(x.dtype, (*x.shape[:-1], weight.shape[0]))]


def _linear_atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list:
    """The input's atoms with the features replaced by the weight's output atom."""
    return [(*ctx.axes(types[0], 0)[:-1], ctx.axes(types[1], 1)[0])]


def _linear_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """x @ weight.T + bias as one GEMM over all leading axes (split by rows over the threads), bias in place."""
    x, weight, bias = np.asarray(arrays[0]), arrays[1], optional(arrays, 2)
    rows = x.reshape(-1, x.shape[-1])
    return [rows_times(ctx, rows, weight.T, bias).reshape(*x.shape[:-1], weight.shape[0])]


def _linear_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Gemm (transB) for a rank-2 input; otherwise MatMul with the transposed weight, then Add."""
    x, weight, bias = names[0], names[1], optional(names, 2) or ""
    if ctx.input_types[0].rank == 2:
        return [ctx.node("Gemm", [x, weight, bias] if bias else [x, weight], transB=1)]
    result = ctx.node("MatMul", [x, ctx.node("Transpose", [weight], perm=[1, 0])])
    return [ctx.node("Add", [result, bias]) if bias else result]


define(
    name="linear",
    signature=(Param("x", TENSOR), Param("weight", TENSOR), Param("bias", OPTIONAL_TENSOR, None)),
    infer=_linear_infer,
    atoms=_linear_atoms,
    run=_linear_run,
    finishes=True,
    onnx=_linear_onnx,
    doc="Affine map of the last axis: x @ weight.T + bias, weight [out, in] as in torch.",
    samples=((("B, T, 34", "1024, 34", "1024"), {}), (("N, 32", "16, 32", None), {})),
)
