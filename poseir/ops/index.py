"""Ops that pick, place or pad positions of one axis: slice (steps, symbolic bounds), select, gather, scatter,
edge padding."""

from __future__ import annotations

import re

import numpy as np

from poseir.ir.dims import Dim, Tri, parse_dim
from poseir.ir.graph import FLOAT_DTYPES, TensorType
from poseir.ops.common import (
    NUMPY_DTYPES, OPEN_END, argument_label, define, int_attr, receiver_text, size_attr, where_help,
)
from poseir.ops.registry import ATTR, TENSOR, Param, RunContext, ShapeContext
from poseir.ops.repairs import minus_one, parameter_axis, plus_one, resize_parameter, rewrite_at, text_candidate


def _bound_attr(ctx: ShapeContext, value, at: str) -> Dim | None:
    """A slice bound or index: None, an int or a dim (E103 otherwise)."""
    if value is None or isinstance(value, Dim):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.error("E103", f"slice {at} must be an int or a dim, found `{value}`", at=at, label="expected an int")
    return Dim.of(value)


def _from_end(bound: Dim, length: Dim) -> Dim:
    """A negative constant counts from the end of the axis, as in Python."""
    return length + bound if bound.is_const and bound.value < 0 else bound


def _check_inside(ctx: ShapeContext, x: TensorType, axis: int, bound: Dim, at: str, original) -> None:
    """E209 when a slice bound is provably outside 0..length; W301 when that cannot be proved."""
    length = x.shape[axis]
    outside = ctx.facts.less(bound, 0) | ctx.facts.greater(bound, length)
    if outside is Tri.YES:
        ctx.error("E209", f"slice {at} {original} is outside axis {axis} of {x}", at=at,
                  label=f"outside 0..{length}", notes=(f"axis {axis} has length {length}",),
                  helps=("negative bounds count from the end of the axis",))
    if outside is Tri.UNKNOWN:
        fact = ctx.facts.assumption_for(bound, length, "<=")
        ctx.warn("W301", f"cannot prove that slice {at} {original} is within axis {axis} of {x}", at=at,
                 label=f"assumed to be within 0..{length}",
                 helps=(where_help(fact),), candidates=ctx.fact_candidates(fact))


def _slice_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Python slicing `start:stop:step` on one axis; E209 when provably empty or out of range."""
    (x,) = types
    axis = ctx.axis(attrs["axis"], x.rank, at="axis")
    step = int_attr(ctx, attrs["step"], "step", "a slice step", minimum=1)
    length = x.shape[axis]
    start = _bound_attr(ctx, attrs["start"], "start")
    stop = _bound_attr(ctx, attrs["stop"], "stop")
    start = Dim.of(0) if start is None else _from_end(start, length)
    stop = length if stop is None else _from_end(stop, length)
    for name, bound in (("start", start), ("stop", stop)):
        if attrs[name] is not None:
            _check_inside(ctx, x, axis, bound, name, attrs[name])
    _check_not_empty(ctx, x, axis, start, stop)
    size = ctx.normalize((stop - start + step - 1) // step)
    return [TensorType(x.dtype, (*x.shape[:axis], size, *x.shape[axis + 1:]))]


def _check_not_empty(ctx: ShapeContext, x: TensorType, axis: int, start: Dim, stop: Dim) -> None:
    """E209 when stop <= start provably; W301 when it cannot be proved either way."""
    answer = ctx.facts.less(start, stop)
    if answer is Tri.NO:
        ctx.error("E209", f"this slice of axis {axis} of {x} is empty: it starts at {start} and stops at {stop}",
                  label="empty slice", notes=(f"axis {axis} has length {x.shape[axis]}",),
                  candidates=_empty_slice_candidates(ctx, start, stop))
    if answer is Tri.UNKNOWN:
        fact = ctx.facts.assumption_for(stop, start + 1, ">=")
        ctx.warn("W301", f"cannot prove that this slice of axis {axis} of {x} is not empty",
                 label=f"from {start} to {stop}", notes=(f"axis {axis} has length {x.shape[axis]}",),
                 helps=(where_help(fact),), candidates=ctx.fact_candidates(fact))


def _empty_slice_candidates(ctx: ShapeContext, start: Dim, stop: Dim) -> list:
    """`x[:, pad:pad]` meant one position: keep it as an axis of length one (`pad:pad + 1`), or pick it (`pad`)."""
    if not ctx.provably_equal(start, stop) or ctx.text_of("stop") is None or ctx.text_of("start") is None:
        return []
    stop_text, start_text = ctx.text_of("stop"), ctx.text_of("start")
    return [candidate for candidate in (
        text_candidate(ctx, "stop", "stop one later, keeping one position: `{replacement}`", plus_one),
        ctx.fix(f"pick the one position: `{start_text}`", start_text, safe=False) if stop_text == start_text else None,
    ) if candidate is not None]


def _slice_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy basic slicing (a view)."""
    x = np.asarray(arrays[0])
    index = [slice(None)] * x.ndim
    index[attrs["axis"]] = slice(attrs["start"], attrs["stop"], attrs["step"])
    return [x[tuple(index)]]


def _slice_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Slice; symbolic bounds are computed from the input shapes, negative ones count from the end."""
    start = Dim.of(0) if attrs["start"] is None else Dim.of(attrs["start"])
    stop = Dim.of(OPEN_END) if attrs["stop"] is None else Dim.of(attrs["stop"])
    axis = attrs["axis"] % ctx.input_types[0].rank
    return [ctx.node("Slice", [names[0], ctx.shape([start]), ctx.shape([stop]), ctx.int64s([axis]),
                               ctx.int64s([attrs["step"]])])]


define(
    name="slice",
    signature=(Param("x", TENSOR), Param("axis", ATTR), Param("start", ATTR, None), Param("stop", ATTR, None),
               Param("step", ATTR, 1)),
    infer=_slice_infer,
    run=_slice_run,
    onnx=_slice_onnx,
    doc="Python slicing `start:stop:step` of one axis; bounds may be symbolic (`T - 121`) or negative.",
    samples=(
        (("B, C, T",), {"axis": 2, "start": 3, "stop": parse_dim("T - 5")}, ("T >= 9",)),
        (("B, C, 81",), {"axis": -1, "start": 1, "stop": None, "step": 3}),
        (("B, T, C",), {"axis": 1, "start": None, "stop": -2}, ("T >= 3",)),
        (("B, T, C",), {"axis": 1, "start": 2, "stop": None, "step": 2}, ("T >= 3",)),
        (("B, 1, T",), {"axis": 2, "start": -4, "stop": None}, ("T >= 4",)),
    ),
)


def _select_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Pick one position of an axis and drop the axis; E209 when provably out of range."""
    (x,) = types
    axis = ctx.axis(attrs["axis"], x.rank, at="axis")
    index = _bound_attr(ctx, attrs["index"], "index")
    length = x.shape[axis]
    position = _from_end(index, length)
    outside = ctx.facts.less(position, 0) | ctx.facts.greater_equal(position, length)
    if outside is Tri.YES:
        last = ctx.provably_equal(position, length)
        candidates = [text_candidate(ctx, "index", "the last position is `{replacement}`", minus_one)] if last else []
        ctx.error("E209", f"index {attrs['index']} is out of range for axis {axis} of {x}", at="index",
                  label=f"valid indices are 0..{length - 1}", notes=(f"axis {axis} has length {length}",),
                  helps=("indices count from 0; negative indices count from the end",),
                  candidates=[candidate for candidate in candidates if candidate is not None])
    if outside is Tri.UNKNOWN:
        fact = ctx.facts.assumption_for(position + 1, length, "<=")
        ctx.warn("W301", f"cannot prove that index {attrs['index']} is within axis {axis} of {x}", at="index",
                 label=f"assumed to be below {length}",
                 helps=(where_help(fact),), candidates=ctx.fact_candidates(fact))
    return [TensorType(x.dtype, x.shape[:axis] + x.shape[axis + 1:])]


def _select_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy basic indexing of one position (a view: q, k and v of one qkv tensor cost no copies)."""
    x = np.asarray(arrays[0])
    return [x[(slice(None),) * (attrs["axis"] % x.ndim) + (attrs["index"],)]]


def _select_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Gather with a scalar index (which drops the axis); a symbolic index is computed, then squeezed."""
    axis = attrs["axis"] % ctx.input_types[0].rank
    index = Dim.of(attrs["index"])
    if index.is_const:
        return [ctx.node("Gather", [names[0], ctx.constant(index.value, "i64")], axis=axis)]
    return [ctx.squeeze(ctx.node("Gather", [names[0], ctx.dim(index)], axis=axis), [axis])]


define(
    name="select",
    signature=(Param("x", TENSOR), Param("axis", ATTR), Param("index", ATTR)),
    infer=_select_infer,
    run=_select_run,
    onnx=_select_onnx,
    doc="Pick one position of an axis and drop that axis (`x[:, 175]`).",
    samples=(
        (("B, T, 17, 3",), {"axis": 2, "index": 0}),
        (("B, T, 17, 3",), {"axis": 1, "index": -1}),
        (("B, T, C",), {"axis": 1, "index": parse_dim("T - 1")}),
    ),
)


def _gather_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Pick positions of an axis by a constant index list; E214 when an index is out of range."""
    (x,) = types
    axis = ctx.axis(attrs["axis"], x.rank, at="axis")
    indices = attrs["indices"]
    if not isinstance(indices, tuple) or not indices:
        ctx.error("E103", f"gather indices must be a non-empty tuple of ints, found `{indices}`", at="indices")
    length = x.shape[axis]
    for position, index in enumerate(indices):
        index = int_attr(ctx, index, ("indices", position), "a gather index")
        if length.is_const and not -length.value <= index < length.value:
            ctx.error("E214", f"index {index} is out of range for axis {axis} of {x}", at=("indices", position),
                      label=f"valid indices are 0..{length.value - 1}", notes=(f"axis {axis} has length {length}",),
                      candidates=_one_based_candidates(ctx, indices, length.value))
    return [TensorType(x.dtype, (*x.shape[:axis], Dim.of(len(indices)), *x.shape[axis + 1:]))]


def _one_based_candidates(ctx: ShapeContext, indices: tuple, length: int) -> list:
    """A list of every position 1..length counted from 1 (copied from a paper's table): count from 0."""
    if "indices" not in ctx.spans or sorted(indices) != list(range(1, length + 1)):
        return []

    def zero_based(text: str) -> str | None:
        numbers = re.findall(r"-?\d+", text)
        if not re.fullmatch(r"\s*\[[\d\s,]*\]\s*", text) or [int(number) for number in numbers] != list(indices):
            return None  # not written as a list literal here: the list comes from elsewhere
        return "[" + ", ".join(str(index - 1) for index in indices) + "]"

    return [rewrite_at(ctx.span_of("indices"), "count the positions from 0: `{replacement}`", zero_based)]


def _gather_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy take with the index list."""
    return [np.take(arrays[0], np.asarray(attrs["indices"], dtype=np.int64), axis=attrs["axis"])]


def _gather_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Gather with the constant index list."""
    axis = attrs["axis"] % ctx.input_types[0].rank
    return [ctx.node("Gather", [names[0], ctx.int64s(attrs["indices"])], axis=axis)]


_H36M_FLIP = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)

define(
    name="gather",
    signature=(Param("x", TENSOR), Param("indices", ATTR), Param("axis", ATTR)),
    infer=_gather_infer,
    run=_gather_run,
    onnx=_gather_onnx,
    doc="Pick positions of an axis by a constant index list, e.g. a skeleton's flip permutation.",
    samples=(
        (("B, T, 17, 3",), {"indices": _H36M_FLIP, "axis": 2}),
        (("B, T, 17, 3",), {"indices": (0, -1), "axis": -2}),
        (("B, T, C",), {"indices": (0, 0, 1), "axis": 1}),
    ),
)


def _scatter_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """K values placed at K distinct constant positions of a new axis of length `size`; the dual of gather.

    E201 unless the values are a vector, E214 for an index outside 0..size-1 or repeated, E207 when
    the values and the index list differ in length.
    """
    (values,) = types
    if values.rank != 1:
        receiver = receiver_text(ctx.text_of(0))
        ctx.error("E201", f"scatter needs a vector of values (rank 1), found {values}", at=0,
                  label=f"this is {values}", helps=(f"flatten the values first: `{receiver}.view(-1)`",))
    size = int_attr(ctx, attrs["size"], "size", "the scatter size", minimum=1)
    indices = attrs["indices"]
    if not isinstance(indices, tuple) or not indices:
        ctx.error("E103", f"scatter indices must be a non-empty tuple of ints, found `{indices}`", at="indices")
    seen: dict[int, int] = {}
    for position, index in enumerate(indices):
        index = int_attr(ctx, index, ("indices", position), "a scatter index")
        if not 0 <= index < size:
            ctx.error("E214", f"scatter index {index} is outside the result of size {size}",
                      at=("indices", position), label=f"valid indices are 0..{size - 1}",
                      helps=("scatter indices count from 0 and cannot be negative",))
        if index in seen:
            ctx.error("E214", f"scatter index {index} is repeated: two values would land at position {index}",
                      at=("indices", position), label="repeated index",
                      labels=argument_label(ctx, ("indices", seen[index]), "first used here"),
                      notes=(f"it is entry {seen[index]} and entry {position} of the index list",))
        seen[index] = position
    details = dict(message=f"scatter is given {values.shape[0]} values for {len(indices)} indices",
                   label=f"this is {values}", notes=("scatter needs exactly one value per index",))
    owner = parameter_axis(ctx, values, 0, 0)
    if ctx.equal(values.shape[0], len(indices)) is Tri.NO and owner is not None:
        # The indices are the program's structure (a skeleton's edges); the learned values follow them.
        ctx.error("E207", at=0, candidates=[resize_parameter(owner[0], owner[1], values.shape[0], Dim.of(len(indices)),
                                                             [])], **details)
    ctx.require_equal(values.shape[0], len(indices), code="E207", at=0, **details)
    fill = attrs["fill"]
    if isinstance(fill, bool) or not isinstance(fill, (int, float)):
        ctx.error("E103", f"the scatter fill must be a number, found `{fill}`", at="fill", label="expected a number")
    if values.dtype not in FLOAT_DTYPES and float(fill) != int(fill):
        ctx.error("E103", f"the fill {fill} is not a whole number, but the values are {values.dtype}", at="fill",
                  label=f"not representable in {values.dtype}")
    return [TensorType(values.dtype, (Dim.of(size),))]


def _scatter_base(attrs: dict, dtype) -> np.ndarray:
    """The result before scattering: `size` copies of `fill` (-9e15 overflows f16 to -inf, as in torch)."""
    with np.errstate(over="ignore"):
        return np.full(attrs["size"], attrs["fill"], dtype=dtype)


def _scatter_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy fancy-index assignment into a filled vector."""
    values = np.asarray(arrays[0])
    result = _scatter_base(attrs, values.dtype)
    result[np.asarray(attrs["indices"], dtype=np.int64)] = values
    return [result]


def _scatter_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ScatterElements of the values into a constant filled vector (exact: no arithmetic)."""
    base = ctx.constant(_scatter_base(attrs, NUMPY_DTYPES[ctx.output_types[0].dtype]))
    return [ctx.node("ScatterElements", [base, ctx.int64s(attrs["indices"]), names[0]], axis=0)]


define(
    name="scatter",
    signature=(Param("values", TENSOR), Param("indices", ATTR), Param("size", ATTR), Param("fill", ATTR, 0.0)),
    infer=_scatter_infer,
    run=_scatter_run,
    onnx=_scatter_onnx,
    doc="Place K values at K distinct constant positions of a new vector of length `size`, `fill` elsewhere.",
    samples=(
        (("5",), {"indices": (0, 3, 7, 2, 9), "size": 10}),
        (("4",), {"indices": (0, 5, 10, 15), "size": 16, "fill": -9e15}),
        (("i64[3]",), {"indices": (2, 0, 1), "size": 3, "fill": -1}),
        (("f64[2]",), {"indices": (6, 1), "size": 7, "fill": 0.5}),
    ),
)


def _pad_edge_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """The axis grows by before + after, filled with copies of its first and last entries."""
    (x,) = types
    axis = ctx.axis(attrs["axis"], x.rank, at="axis")
    before = size_attr(ctx, attrs["before"], "before", "the padding before", minimum=0)
    after = size_attr(ctx, attrs["after"], "after", "the padding after", minimum=0)
    size = ctx.normalize(x.shape[axis] + before + after)
    return [TensorType(x.dtype, (*x.shape[:axis], size, *x.shape[axis + 1:]))]


def _pad_edge_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy pad in `edge` mode on one axis."""
    x = np.asarray(arrays[0])
    widths = [(0, 0)] * x.ndim
    widths[attrs["axis"] % x.ndim] = (attrs["before"], attrs["after"])
    return [np.pad(x, widths, mode="edge")]


def _pad_edge_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Pad in edge mode; pads are (all befores, all afters), symbolic ones computed at run time."""
    rank = ctx.input_types[0].rank
    axis = attrs["axis"] % rank
    pads = [Dim.of(0)] * (2 * rank)
    pads[axis], pads[rank + axis] = Dim.of(attrs["before"]), Dim.of(attrs["after"])
    return [ctx.node("Pad", [names[0], ctx.shape(pads)], mode="edge")]


define(
    name="pad_edge",
    signature=(Param("x", TENSOR), Param("axis", ATTR), Param("before", ATTR), Param("after", ATTR)),
    infer=_pad_edge_infer,
    run=_pad_edge_run,
    onnx=_pad_edge_onnx,
    doc="Pad one axis by repeating its first and last entries (numpy `edge`, torch `replicate`).",
    samples=(
        (("B, T, 17, 2",), {"axis": 1, "before": 121, "after": 121}),
        (("B, T, 17, 2",), {"axis": 1, "before": 242, "after": 0}),
        (("B, C, T",), {"axis": -1, "before": 1, "after": 2}),
    ),
)
