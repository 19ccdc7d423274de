"""Shape ops that move or regroup axes by position: permute, transpose, flatten/unflatten, squeeze/unsqueeze,
expand and repeat (reshape/view, with its count and order checks, is in `reshape`)."""

from __future__ import annotations

import itertools

import numpy as np

from poseir.ir.axes import canonical, read
from poseir.ir.dims import Dim, parse_dim
from poseir.ir.graph import TensorType
from poseir.ops.common import (define, fill_placeholder, is_minus_one, product, reshape_to_output, size_attr,
                               target_sizes, unwrap_sizes)
from poseir.ops.registry import ATTR, TENSOR, VARIADIC, Param, RunContext, ShapeContext


# --------------------------------------------------------------------------- permute and transpose


def _permute_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Reorder the axes; E215 unless every axis appears exactly once."""
    (x,) = types
    dims = unwrap_sizes(attrs["dims"])
    axes = [ctx.axis(value, x.rank, at=("dims", position)) for position, value in enumerate(dims)]
    if sorted(axes) != list(range(x.rank)):
        notes = [f"axis {axis} appears {axes.count(axis)} times" for axis in sorted(set(axes)) if axes.count(axis) > 1]
        notes += [f"axis {axis} is missing" for axis in range(x.rank) if axis not in axes]
        ctx.error("E215", f"({', '.join(map(str, dims))}) is not a permutation of the {x.rank} axes of {x}",
                  at="dims", label=f"expected each of 0..{x.rank - 1} once", notes=notes,
                  candidates=_permutation_candidates(ctx, axes, x.rank))
    atoms = ctx.axes(x)
    return [TensorType(x.dtype, tuple(x.shape[axis] for axis in axes), tuple(atoms[axis] for axis in axes))]


def _permutation_candidates(ctx: ShapeContext, axes: list[int], rank: int) -> list:
    """`permute(0, 3, 3, 2)` with one axis repeated and one missing: the missing axis in place of either copy."""
    missing = [axis for axis in range(rank) if axis not in axes]
    repeated = [position for position, axis in enumerate(axes) if axes.count(axis) > 1]
    if len(missing) != 1 or len(repeated) != 2 or "dims" not in ctx.spans:
        return []
    candidates = []
    for position in repeated:
        order = list(axes)
        order[position] = missing[0]
        text = ", ".join(map(str, order))
        candidates.append(ctx.fix(f"permute to `({text})`", text, at="dims", safe=False))
    return candidates


def _permute_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy transpose."""
    return [np.transpose(arrays[0], unwrap_sizes(attrs["dims"]))]


def _permute_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Transpose with non-negative axes."""
    rank = ctx.input_types[0].rank
    return [ctx.node("Transpose", names, perm=[axis % rank for axis in unwrap_sizes(attrs["dims"])])]


define(
    name="permute",
    signature=(Param("x", TENSOR), Param("dims", VARIADIC)),
    infer=_permute_infer,
    run=_permute_run,
    onnx=_permute_onnx,
    doc="Reorder all axes: output axis i is input axis dims[i].",
    samples=((("B, T, 34",), {"dims": (0, 2, 1)}), (("B, T, 17, 3",), {"dims": (2, 0, -1, 1)})),
)


def _transpose_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Swap two axes."""
    (x,) = types
    first = ctx.axis(attrs["dim0"], x.rank, at="dim0")
    second = ctx.axis(attrs["dim1"], x.rank, at="dim1")
    shape, atoms = list(x.shape), list(ctx.axes(x))
    shape[first], shape[second] = shape[second], shape[first]
    atoms[first], atoms[second] = atoms[second], atoms[first]
    return [TensorType(x.dtype, tuple(shape), tuple(atoms))]


def _transpose_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy swapaxes."""
    return [np.swapaxes(arrays[0], attrs["dim0"], attrs["dim1"])]


def _transpose_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Transpose swapping two axes."""
    rank = ctx.input_types[0].rank
    perm = list(range(rank))
    first, second = attrs["dim0"] % rank, attrs["dim1"] % rank
    perm[first], perm[second] = perm[second], perm[first]
    return [ctx.node("Transpose", names, perm=perm)]


define(
    name="transpose",
    signature=(Param("x", TENSOR), Param("dim0", ATTR), Param("dim1", ATTR)),
    infer=_transpose_infer,
    run=_transpose_run,
    onnx=_transpose_onnx,
    doc="Swap two axes.",
    samples=((("B, T, 34",), {"dim0": 1, "dim1": 2}), (("B, N, C",), {"dim0": -1, "dim1": 0})),
)


# --------------------------------------------------------------------------- flatten and unflatten


def _flatten_range(ctx: ShapeContext, x: TensorType, attrs: dict) -> tuple[int, int]:
    """The normalized (start, end) axes of a flatten; E202 when start comes after end."""
    start = ctx.axis(attrs["start_dim"], x.rank, at="start_dim")
    end = ctx.axis(attrs["end_dim"], x.rank, at="end_dim")
    if start > end:
        ctx.error("E202", f"start_dim {attrs['start_dim']} comes after end_dim {attrs['end_dim']} for {x}",
                  at="start_dim", label=f"axis {start} is after axis {end}")
    return start, end


def _flatten_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Merge the axes start_dim..end_dim (inclusive) into one."""
    (x,) = types
    if x.rank == 0:
        return [TensorType(x.dtype, (Dim.of(1),), ((),))]
    start, end = _flatten_range(ctx, x, attrs)
    merged = ctx.normalize(product(x.shape[start:end + 1]))
    atoms = ctx.axes(x)
    joined = canonical([atom for axis in atoms[start:end + 1] for atom in axis])
    return [TensorType(x.dtype, (*x.shape[:start], merged, *x.shape[end + 1:]),
                       (*atoms[:start], joined, *atoms[end + 1:]))]


def _flatten_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy reshape with the merged size computed from the array."""
    x = np.asarray(arrays[0])
    if x.ndim == 0:
        return [x.reshape(1)]
    start, end = attrs["start_dim"] % x.ndim, attrs["end_dim"] % x.ndim
    merged = int(np.prod(x.shape[start:end + 1]))
    return [x.reshape(*x.shape[:start], merged, *x.shape[end + 1:])]


define(
    name="flatten",
    signature=(Param("x", TENSOR), Param("start_dim", ATTR, 0), Param("end_dim", ATTR, -1)),
    infer=_flatten_infer,
    run=_flatten_run,
    onnx=reshape_to_output,
    doc="Merge the axes start_dim..end_dim (inclusive) into one axis.",
    samples=(
        (("B, T, 17, 2",), {"start_dim": 2}),
        (("B, T, 17, 2",), {"start_dim": 0, "end_dim": 1}),
        (("B, C",), {}),
    ),
)


def _unflatten_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Split one axis into `sizes` (one may be -1); E216 when they do not multiply up."""
    (x,) = types
    axis = ctx.axis(attrs["dim"], x.rank, at="dim")
    values = attrs["sizes"]
    if not isinstance(values, tuple) or not values:
        ctx.error("E103", f"unflatten sizes must be a non-empty tuple, found `{values}`", at="sizes")
    length = x.shape[axis]
    sizes = target_sizes(ctx, values, "sizes", "unflatten")
    if None in sizes:
        sizes = fill_placeholder(ctx, sizes, length, "sizes", f"axis {attrs['dim']} of {x}")
    else:
        total = ctx.normalize(product(sizes))
        ctx.require_equal(total, length, code="E216", at="sizes",
                          message=f"unflatten sizes multiply to {total}, but axis {attrs['dim']} of {x} has {length}",
                          label=f"{total} elements, expected {length}")
    sizes = [ctx.normalize(size) for size in sizes]
    shape = (*x.shape[:axis], *sizes, *x.shape[axis + 1:])
    atoms = ctx.axes(x)
    pieces = read(atoms[axis], sizes, ctx.facts)
    if pieces is None:
        pieces = tuple(ctx.fresh(0, axis + index, size) for index, size in enumerate(sizes))
        _check_unflatten_order(ctx, x, axis, atoms[axis], sizes)
    return [TensorType(x.dtype, shape, (*atoms[:axis], *pieces, *atoms[axis + 1:]))]


def _check_unflatten_order(ctx: ShapeContext, x: TensorType, axis: int, held, sizes: list) -> None:
    """E206 when the axis holds its atoms in another order than the sizes ask for (`(T·J)` as `(J, T)`)."""
    if len(sizes) > 6 or len(held) < 2:
        return
    for order in itertools.permutations(range(len(sizes))):
        if read(held, [sizes[index] for index in order], ctx.facts) is not None:
            wanted = ", ".join(str(sizes[index]) for index in order)
            ctx.error("E206", f"unflattening axis {axis} of {x.describe()} into ({', '.join(map(str, sizes))}) "
                      "reorders its atoms", at="sizes", label="the axis holds these in another order",
                      notes=("`unflatten` never moves data: it only splits an axis in the order its parts are "
                             "stored",),
                      helps=(f"split in the stored order, ({wanted}), then move the axes with `permute`",))


def _unflatten_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy reshape of the one axis."""
    x = np.asarray(arrays[0])
    axis = attrs["dim"] % x.ndim
    return [x.reshape(*x.shape[:axis], *attrs["sizes"], *x.shape[axis + 1:])]


define(
    name="unflatten",
    signature=(Param("x", TENSOR), Param("dim", ATTR), Param("sizes", ATTR)),
    infer=_unflatten_infer,
    run=_unflatten_run,
    onnx=reshape_to_output,
    doc="Split one axis into several, e.g. 51 into (17, 3); one size may be -1.",
    samples=(
        (("B, T, 51",), {"dim": -1, "sizes": (17, 3)}),
        (("B*T, 34",), {"dim": 0, "sizes": (parse_dim("B"), -1)}),
        (("B, 34",), {"dim": 1, "sizes": (-1, 2)}),
    ),
)


# --------------------------------------------------------------------------- squeeze and unsqueeze


def _squeeze_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Drop an axis of size 1; E209 when it is provably not 1, W300 when unknown."""
    (x,) = types
    axis = ctx.axis(attrs["dim"], x.rank, at="dim")
    size = x.shape[axis]
    ctx.require_equal(size, 1, code="E209", at="dim",
                      message=f"cannot squeeze axis {attrs['dim']} of {x}: its size is {size}, not 1",
                      label=f"this axis has size {size}",
                      helps=("`squeeze` only removes axes of size 1; use `select` or indexing to pick one entry",))
    atoms = ctx.axes(x)
    return [TensorType(x.dtype, x.shape[:axis] + x.shape[axis + 1:], atoms[:axis] + atoms[axis + 1:])]


def _squeeze_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy squeeze of one axis."""
    return [np.squeeze(arrays[0], axis=attrs["dim"])]


def _squeeze_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Squeeze of one axis."""
    return [ctx.squeeze(names[0], [attrs["dim"] % ctx.input_types[0].rank])]


define(
    name="squeeze",
    signature=(Param("x", TENSOR), Param("dim", ATTR)),
    infer=_squeeze_infer,
    run=_squeeze_run,
    onnx=_squeeze_onnx,
    doc="Remove one axis of size 1.",
    samples=((("B, 1, 17, 3",), {"dim": 1}), (("B, 17, 1",), {"dim": -1})),
)


def _unsqueeze_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Insert an axis of size 1 before position `dim` (-1 appends)."""
    (x,) = types
    axis = ctx.axis(attrs["dim"], x.rank + 1, at="dim")
    atoms = ctx.axes(x)
    return [TensorType(x.dtype, (*x.shape[:axis], Dim.of(1), *x.shape[axis:]), (*atoms[:axis], (), *atoms[axis:]))]


def _unsqueeze_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy expand_dims."""
    return [np.expand_dims(arrays[0], attrs["dim"])]


def _unsqueeze_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Unsqueeze at one position."""
    return [ctx.unsqueeze(names[0], [attrs["dim"] % (ctx.input_types[0].rank + 1)])]


define(
    name="unsqueeze",
    signature=(Param("x", TENSOR), Param("dim", ATTR)),
    infer=_unsqueeze_infer,
    run=_unsqueeze_run,
    onnx=_unsqueeze_onnx,
    doc="Insert an axis of size 1 at position `dim`.",
    samples=((("B, T, 3",), {"dim": 2}), (("B, T",), {"dim": -1}), (("",), {"dim": 0})),
)


# --------------------------------------------------------------------------- expand and repeat


def _expand_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Broadcast to `sizes` (-1 keeps an axis); only size-1 axes may grow (E200)."""
    (x,) = types
    values = unwrap_sizes(attrs["sizes"])
    if len(values) < x.rank:
        ctx.error("E201", f"expand needs at least {x.rank} sizes for {x}, found {len(values)}", at="sizes",
                  label=f"{len(values)} sizes")
    lead = len(values) - x.rank
    shape = [size_attr(ctx, value, ("sizes", position), "a new expand size") for position, value in
             enumerate(values[:lead])]
    for axis, (dim, value) in enumerate(zip(x.shape, values[lead:])):
        shape.append(_expanded_axis(ctx, x, axis, dim, value, ("sizes", lead + axis)))
    return [TensorType(x.dtype, tuple(ctx.normalize(size) for size in shape))]


def _expanded_axis(ctx: ShapeContext, x: TensorType, axis: int, dim: Dim, value, at) -> Dim:
    """The size of one existing axis after expand."""
    if is_minus_one(value):
        return dim
    size = size_attr(ctx, value, at, "an expand size")
    if ctx.provably_equal(dim, size) or not ctx.provably_equal(dim, 1):
        ctx.require_equal(dim, size, code="E200", at=at,
                          message=f"expand cannot change axis {axis} of {x} from {dim} to {size}",
                          label="only axes of size 1 can grow",
                          helps=("use `repeat` to tile an axis, or `-1` to keep its size",))
        return dim if ctx.provably_equal(dim, size) else size
    return size


def _expand_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy broadcast_to: a read-only view (no op writes into an input it was not donated, and a view is
    never donated), so the consumer reads the repeated values without their copy."""
    x = np.asarray(arrays[0])
    values = unwrap_sizes(attrs["sizes"])
    lead = len(values) - x.ndim
    shape = [*values[:lead], *(dim if value == -1 else value for dim, value in zip(x.shape, values[lead:]))]
    return [np.broadcast_to(x, shape)]


def _expand_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Expand; kept axes ask for 1 (Expand broadcasts), so only grown axes need a size."""
    x, out = ctx.input_types[0], ctx.output_types[0]
    lead = out.rank - x.rank
    sizes = list(out.shape[:lead])
    sizes += [Dim.of(1) if before == after else after for before, after in zip(x.shape, out.shape[lead:])]
    return [ctx.node("Expand", [names[0], ctx.shape(sizes)])]


define(
    name="expand",
    signature=(Param("x", TENSOR), Param("sizes", VARIADIC)),
    infer=_expand_infer,
    run=_expand_run,
    onnx=_expand_onnx,
    doc="Broadcast size-1 axes to larger sizes (and add leading axes); -1 keeps a size.",
    samples=(
        (("1, 1, C",), {"sizes": (parse_dim("B"), parse_dim("T"), -1)}),
        (("B, 1, 17, 3",), {"sizes": (-1, parse_dim("T"), -1, -1)}),
        (("C",), {"sizes": (2, parse_dim("C"))}),
    ),
)


def _repeat_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Tile the tensor: axis i becomes size_i * repeats_i (like torch `repeat`)."""
    (x,) = types
    values = unwrap_sizes(attrs["repeats"])
    if len(values) < x.rank:
        ctx.error("E201", f"repeat needs at least {x.rank} counts for {x}, found {len(values)}", at="repeats",
                  label=f"{len(values)} counts")
    counts = [size_attr(ctx, value, ("repeats", position), "a repeat count") for position, value in enumerate(values)]
    lead = len(counts) - x.rank
    shape = counts[:lead] + [dim * count for dim, count in zip(x.shape, counts[lead:])]
    return [TensorType(x.dtype, tuple(ctx.normalize(size) for size in shape))]


def _repeat_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy tile, which matches torch repeat when there are at least as many counts as axes."""
    return [np.tile(arrays[0], unwrap_sizes(attrs["repeats"]))]


def _repeat_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Tile; extra leading counts first add leading axes, as torch `repeat` does."""
    counts = unwrap_sizes(attrs["repeats"])
    lead = len(counts) - ctx.input_types[0].rank
    x = ctx.unsqueeze(names[0], range(lead)) if lead else names[0]
    return [ctx.node("Tile", [x, ctx.shape([Dim.of(count) for count in counts])])]


define(
    name="repeat",
    signature=(Param("x", TENSOR), Param("repeats", VARIADIC)),
    infer=_repeat_infer,
    run=_repeat_run,
    onnx=_repeat_onnx,
    doc="Tile a tensor: each axis is repeated the given number of times (like torch `repeat`).",
    samples=((("B, 17, 3",), {"repeats": (1, 2, 1)}), (("T, C",), {"repeats": (parse_dim("B"), 1, 3)})),
)
