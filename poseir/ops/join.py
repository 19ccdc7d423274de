"""Ops that join tensors or cut one apart along an axis: concat/stack, split/chunk."""

from __future__ import annotations

from functools import partial

import numpy as np

from poseir.diagnostics.record import Label
from poseir.ir.dims import Dim, Tri, parse_dim
from poseir.ir.graph import TensorType
from poseir.ops.common import (define, divide, int_attr, receiver_text, require_same_dtype, size_attr,
                               warn_unproved_multiple)
from poseir.ops.registry import ATTR, TENSOR, TENSORS, Param, RunContext, ShapeContext
from poseir.ops.repairs import text_candidate


# --------------------------------------------------------------------------- concat and stack


def _same_rank(ctx: ShapeContext, types: list, what: str, axis=None) -> TensorType:
    """The first tensor; E213 when there are none or ranks differ."""
    if not types:
        ctx.error("E213", f"{what} needs at least one tensor", label="empty list")
    first = types[0]
    for index, type_ in enumerate(types[1:], start=1):
        if type_.rank != first.rank:
            ctx.error("E213", f"cannot {what} {first} and {type_}: their ranks differ ({first.rank} and {type_.rank})",
                      at=index, label=f"this is {type_}", labels=(Label(ctx.span_of(0), f"this is {first}"),),
                      candidates=_unit_axis_candidates(ctx, types, axis) if what == "concatenate" else ())
    return first


def _unit_axis_candidates(ctx: ShapeContext, types: list, axis) -> list:
    """A tensor one axis short of the others, joined along that axis (`[B, T, 17]` appended to `[B, T, 17, 2]` on
    axis 3): give it the axis, of length one, where it then matches the others (`confidence[:, :, :, none]`)."""
    ranks = {type_.rank for type_ in types}
    if len(ranks) != 2 or not isinstance(axis, int) or isinstance(axis, bool):
        return []
    rank = max(ranks)
    full = next(type_ for type_ in types if type_.rank == rank)
    place = axis % rank if -rank <= axis < rank else None
    candidates = []
    for index, type_ in enumerate(types):
        if type_.rank == rank or place is None or index not in ctx.spans:
            continue
        widened = type_.shape[:place] + (Dim.of(1),) + type_.shape[place:]
        if all(other == place or ctx.provably_equal(mine, theirs)
               for other, (mine, theirs) in enumerate(zip(widened, full.shape))):
            subscript = ", ".join([":"] * place + ["none"])
            message = f"give it a unit axis {place} to join along: `{{replacement}}`"
            candidates.append(text_candidate(ctx, index, message, lambda text: f"{receiver_text(text)}[{subscript}]"))
    return [candidate for candidate in candidates if candidate is not None]


def _require_same_axes(ctx: ShapeContext, types: list, skip: int | None, what: str) -> None:
    """E213 (or W300) when any axis but `skip` differs between the tensors."""
    first = types[0]
    for index, type_ in enumerate(types[1:], start=1):
        for axis, (left, right) in enumerate(zip(first.shape, type_.shape)):
            if axis != skip:
                ctx.require_equal(left, right, code="E213", at=index,
                                  message=f"cannot {what} {first} and {type_}: axis {axis} is {left} and {right}",
                                  label=f"this is {type_}", labels=(Label(ctx.span_of(0), f"this is {first}"),),
                                  notes=("tensors must match on every axis except the one they are joined along",))


def _concat_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Join along an existing axis: the sizes there add up."""
    first = _same_rank(ctx, types, "concatenate", attrs["dim"])
    if first.rank == 0:
        ctx.error("E201", "cannot concatenate rank-0 tensors", at=0, label=f"this is {first}",
                  helps=("use `stack` to join scalars into a vector",))
    axis = ctx.axis(attrs["dim"], first.rank, at="dim")
    require_same_dtype(ctx, types)
    _require_same_axes(ctx, types, axis, "concatenate")
    total = ctx.normalize(sum((type_.shape[axis] for type_ in types), Dim.of(0)))
    return [TensorType(first.dtype, (*first.shape[:axis], total, *first.shape[axis + 1:]))]


def _concat_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy concatenate into one output buffer, split over the threads along another axis (the copies
    of broadcast views, a non-local block's pairs, are slow enough to share)."""
    arrays = [np.asarray(array) for array in arrays]
    axis = attrs["dim"] % arrays[0].ndim
    shape = list(arrays[0].shape)
    shape[axis] = sum(array.shape[axis] for array in arrays)
    out = ctx.empty(tuple(shape), np.result_type(*arrays))
    other = next((index for index, size in enumerate(shape) if index != axis and size > 1), None)
    if other is None:
        return [np.concatenate(arrays, axis=axis, out=out)]

    def part(index: slice) -> None:
        cut = (slice(None),) * other + (index,)
        np.concatenate([array[cut] for array in arrays], axis=axis, out=out[cut])

    ctx.parallel([partial(part, index) for index in ctx.split(shape[other], out.size)])
    return [out]


def _concat_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Concat."""
    return [ctx.node("Concat", names, axis=attrs["dim"] % ctx.input_types[0].rank)]


define(
    "cat",
    name="concat",
    signature=(Param("tensors", TENSORS), Param("dim", ATTR, 0)),
    infer=_concat_infer,
    run=_concat_run,
    onnx=_concat_onnx,
    method=False,
    doc="Join tensors along an existing axis.",
    samples=(
        ((("B, T, 17, 2", "B, T, 17, 1"),), {"dim": -1}),
        ((("B, 17, 2", "N, 17, 2", "B, 17, 2"),), {"dim": 0}),
    ),
)


def _stack_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Join equal-shaped tensors along a new axis."""
    first = _same_rank(ctx, types, "stack")
    axis = ctx.axis(attrs["dim"], first.rank + 1, at="dim")
    require_same_dtype(ctx, types)
    _require_same_axes(ctx, types, None, "stack")
    return [TensorType(first.dtype, (*first.shape[:axis], Dim.of(len(types)), *first.shape[axis:]))]


def _stack_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy stack."""
    return [np.stack(arrays, axis=attrs["dim"])]


def _stack_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Unsqueeze each tensor at the new axis, then Concat."""
    axis = attrs["dim"] % (ctx.input_types[0].rank + 1)
    return [ctx.node("Concat", [ctx.unsqueeze(name, [axis]) for name in names], axis=axis)]


define(
    name="stack",
    signature=(Param("tensors", TENSORS), Param("dim", ATTR, 0)),
    infer=_stack_infer,
    run=_stack_run,
    onnx=_stack_onnx,
    method=False,
    doc="Join equal-shaped tensors along a new axis.",
    samples=(((("B, T, 3", "B, T, 3"),), {"dim": 0}), ((("B, C", "B, C", "B, C"),), {"dim": -1})),
)


# --------------------------------------------------------------------------- split and chunk


def _split_count(attrs: dict) -> int:
    """One output per section size."""
    sections = attrs["sections"]
    return len(sections) if isinstance(sections, tuple) and sections else 1


def _split_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Cut one axis into pieces of the given sizes; E216 when they do not add up."""
    (x,) = types
    axis = ctx.axis(attrs["dim"], x.rank, at="dim")
    sections = attrs["sections"]
    if not isinstance(sections, tuple) or not sections:
        ctx.error("E103", f"split sizes must be a non-empty tuple such as (512, 512, 512), found `{sections}`",
                  at="sections", helps=("to cut an axis into equal parts use `chunk`",))
    sizes = [size_attr(ctx, value, ("sections", position), "a split size") for position, value in enumerate(sections)]
    total = ctx.normalize(sum(sizes, Dim.of(0)))
    length = x.shape[axis]
    ctx.require_equal(total, length, code="E216", at="sections",
                      message=f"split sizes add up to {total}, but axis {attrs['dim']} of {x} has {length}",
                      label=f"{total} in total, expected {length}")
    return [TensorType(x.dtype, (*x.shape[:axis], ctx.normalize(size), *x.shape[axis + 1:])) for size in sizes]


def _split_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy split at the running totals of the sizes."""
    offsets = np.cumsum(attrs["sections"])[:-1]
    return list(np.split(arrays[0], offsets, axis=attrs["dim"]))


def _split_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Split with the piece sizes as an input (symbolic sizes computed at run time)."""
    axis = attrs["dim"] % ctx.input_types[0].rank
    sizes = ctx.shape([output.shape[axis] for output in ctx.output_types])
    pieces = ctx.node("Split", [names[0], sizes], outputs=len(ctx.output_types), axis=axis)
    return [pieces] if isinstance(pieces, str) else pieces


define(
    name="split",
    signature=(Param("x", TENSOR), Param("sections", ATTR), Param("dim", ATTR, 0)),
    infer=_split_infer,
    run=_split_run,
    onnx=_split_onnx,
    outputs=0,
    count_outputs=_split_count,
    doc="Cut one axis into consecutive pieces of the given sizes (one output per piece).",
    samples=(
        (("B, T, 1536",), {"sections": (512, 512, 512), "dim": -1}),
        (("B, T, C",), {"sections": (1, parse_dim("T - 1")), "dim": 1}),
    ),
)


def _chunk_count(attrs: dict) -> int:
    """One output per chunk."""
    chunks = attrs["chunks"]
    return chunks if isinstance(chunks, int) and not isinstance(chunks, bool) and chunks > 0 else 1


def _chunk_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Cut one axis into equal parts; E216 when the count provably does not divide it, W300 when unknown."""
    (x,) = types
    axis = ctx.axis(attrs["dim"], x.rank, at="dim")
    chunks = int_attr(ctx, attrs["chunks"], "chunks", "the number of chunks", minimum=1)
    length = x.shape[axis]
    division = divide(ctx.facts, length, chunks)
    if division.divides is Tri.NO:
        ctx.error("E216", f"axis {attrs['dim']} of {x} has size {length}, which {chunks} equal chunks cannot divide",
                  at="chunks", label=f"{chunks} chunks",
                  helps=("pad or slice the axis first, or use `split` with explicit sizes",))
    if division.divides is Tri.UNKNOWN:
        warn_unproved_multiple(ctx, division.dividend, division.divisor, at="chunks")
    return [TensorType(x.dtype, (*x.shape[:axis], division.quotient, *x.shape[axis + 1:]))] * chunks


def _chunk_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy split into equal parts."""
    return list(np.split(arrays[0], attrs["chunks"], axis=attrs["dim"]))


define(
    name="chunk",
    signature=(Param("x", TENSOR), Param("chunks", ATTR), Param("dim", ATTR, 0)),
    infer=_chunk_infer,
    run=_chunk_run,
    onnx=_split_onnx,
    outputs=0,
    count_outputs=_chunk_count,
    doc="Cut one axis into `chunks` equal parts (one output per part).",
    samples=(
        (("B, T, 1536",), {"chunks": 3, "dim": -1}),
        (("2*B, T, C",), {"chunks": 2, "dim": 0}),
        (("B, T, C",), {"chunks": 3, "dim": 1}, ("T % 3 == 0",)),
    ),
)
