"""Shape ops: reshape/view, permute, transpose, flatten/unflatten, squeeze/unsqueeze, expand, repeat.

The dim and attribute helpers at the top are shared by every family.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from poseir.diagnostics import Label
from poseir.dims import Dim, Facts, Tri, cancel_common, parse_dim
from poseir.ir import TensorType
from poseir.ops.elementwise import define
from poseir.ops.registry import ATTR, TENSOR, VARIADIC, Param, RunContext, ShapeContext

_MAX_PERMUTED_RANK = 6  # 6! = 720 candidate orders: cheap enough to try them all


# --------------------------------------------------------------------------- dim helpers


def product(dims) -> Dim:
    """The product of some dims (1 for none)."""
    total = Dim.of(1)
    for dim in dims:
        total = total * Dim.of(dim)
    return total


def shape_text(dims: Sequence) -> str:
    """`[B, T, 34]` for a sequence of dims."""
    return "[" + ", ".join(str(dim) for dim in dims) + "]"


def int_attr(ctx: ShapeContext, value, at, what: str, minimum: int | None = None) -> int:
    """An attribute that must be a plain integer (E103 otherwise), at least `minimum`."""
    if isinstance(value, Dim) and value.is_const:
        value = value.value
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.error("E103", f"{what} must be an integer, found `{value}`", at=at, label="expected an integer")
    if minimum is not None and value < minimum:
        ctx.error("E103", f"{what} must be at least {minimum}, found {value}", at=at, label=f"this is {value}")
    return value


def size_attr(ctx: ShapeContext, value, at, what: str, minimum: int = 1) -> Dim:
    """A size attribute: an int of at least `minimum` or a symbolic dim (E103 otherwise)."""
    if isinstance(value, Dim) and not value.is_const:
        return value
    return Dim.of(int_attr(ctx, value, at, what, minimum))


def unwrap_sizes(values) -> tuple:
    """`(B, T, 34)` given either as separate arguments or as one tuple."""
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        return tuple(values[0])
    return values


def _is_minus_one(value) -> bool:
    """Whether a size attribute is the placeholder `-1`."""
    if isinstance(value, Dim):
        return value.is_const and value.value == -1
    return isinstance(value, int) and not isinstance(value, bool) and value == -1


def target_sizes(ctx: ShapeContext, values: Sequence, attr: str, what: str) -> list[Dim | None]:
    """Target sizes as dims, with None for the single `-1` (E216 for a second one)."""
    sizes: list[Dim | None] = []
    first_placeholder = None
    for position, value in enumerate(values):
        at = (attr, position)
        if _is_minus_one(value):
            if first_placeholder is not None:
                ctx.error("E216", f"only one size of a {what} can be -1", at=at, label="second -1",
                          labels=(Label(ctx.span_of((attr, first_placeholder)), "first -1"),),
                          helps=("write all but one of the sizes explicitly",))
            first_placeholder = position
            sizes.append(None)
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value == 0:
            ctx.error("E103", f"a {what} size must be positive, found 0", at=at, label="zero size",
                      notes=("unlike ONNX Reshape, 0 does not mean `copy this size from the input`",))
        sizes.append(size_attr(ctx, value, at, f"a {what} size"))
    return sizes


def fill_placeholder(ctx: ShapeContext, sizes: list, total: Dim, attr: str, subject: str) -> list[Dim]:
    """Replace the `-1` in `sizes` by `total` divided by the other sizes (E216 when it does not divide)."""
    if None not in sizes:
        return sizes
    position = sizes.index(None)
    known = ctx.normalize(product(size for size in sizes if size is not None))
    quotient = ctx.normalize(total).exact_div(known)
    if quotient is None and known.is_const and ctx.facts.divisible(total, known.value) is Tri.YES:
        quotient = ctx.normalize(total // known.value)
    if quotient is None:
        ctx.error("E216", f"cannot infer the -1: {total} elements do not divide into parts of {known}",
                  at=(attr, position), label="this size cannot be inferred",
                  notes=(f"the input is {subject}",),
                  helps=("check the other sizes; their product must divide the element count",))
    return [quotient if size is None else size for size in sizes]


# --------------------------------------------------------------------------- ONNX helpers


def onnx_reshape(ctx, x: str, dims: Sequence[Dim], source: Sequence[Dim] = ()) -> str:
    """Reshape `x` (of shape `source`) to `dims` without ever writing a symbolic size as a number.

    A symbolic size at the same position as in the input becomes 0 (ONNX: copy the input's size);
    the costliest remaining one becomes -1; any other is computed from the input shapes at run time.
    """
    dims = [Dim.of(dim) for dim in dims]
    for position, (dim, before) in enumerate(zip(dims, source)):
        if not dim.is_const and dim == before:
            dims[position] = Dim.of(0)
    symbolic = [position for position, dim in enumerate(dims) if not dim.is_const]
    if symbolic:
        chosen = max(symbolic, key=lambda position: (len(str(dims[position])), position))
        dims[chosen] = Dim.of(-1)
    return ctx.node("Reshape", [x, ctx.shape(dims)])


def _reshape_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Reshape to the inferred output shape (never to example sizes)."""
    return [onnx_reshape(ctx, names[0], ctx.output_types[0].shape, ctx.input_types[0].shape)]


# --------------------------------------------------------------------------- reshape


def _reshape_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Check the element count (E204/E205/W300) and the axis order (E206)."""
    (x,) = types
    values = unwrap_sizes(attrs["shape"])
    sizes = target_sizes(ctx, values, "shape", "reshape")
    count = ctx.normalize(product(x.shape))
    if None in sizes:
        sizes = fill_placeholder(ctx, sizes, count, "shape", str(x))
        counts_equal = True
    else:
        counts_equal = _check_count(ctx, x, sizes, count)
    sizes = [ctx.normalize(size) for size in sizes]
    if counts_equal:
        _check_axis_order(ctx, x, sizes, values)
    return [TensorType(x.dtype, tuple(sizes))]


def _check_count(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim) -> bool:
    """True when the counts are provably equal; errors when they never are; W300 otherwise."""
    target_count = ctx.normalize(product(sizes))
    left, right = cancel_common(count, target_count)
    answer = ctx.facts.equal(left, right)
    if answer is Tri.YES:
        return True
    if answer is Tri.NO:
        _count_error(ctx, x, sizes, count, target_count)
    only = ctx.facts.holds_only_when(count, target_count)
    if only is not None:
        _baked_size_error(ctx, x, sizes, count, target_count, *only)
    ctx.warn("W300", f"cannot prove that reshaping {x} to {shape_text(sizes)} keeps the element count",
             at="shape", label=f"{count} elements are assumed to equal {target_count}",
             helps=(f"add `where {ctx.facts.assumption_for(left, right)}` to the forward signature to settle it",))
    return False


def _count_error(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim, target_count: Dim):
    """E204, suggesting the size that would keep the count when one is off."""
    helps = []
    for position, size in enumerate(sizes):
        others = product(other for index, other in enumerate(sizes) if index != position)
        wanted = count.exact_div(ctx.normalize(others))
        if size.is_const and wanted is not None and wanted != size:
            text = ctx.text_of(("shape", position)) or str(size)
            helps.append(f"did you mean `{wanted}` instead of `{text}`? that keeps the {count} elements")
            break
    helps.append("write `-1` for one size to let poseir infer it")
    ctx.error("E204", f"cannot reshape {x} to {shape_text(sizes)}", label=f"{count} elements cannot become {target_count}",
              notes=(f"the input {x} has {count} elements", f"the target {shape_text(sizes)} has {target_count}"),
              helps=helps)


def _baked_size_error(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim, target_count: Dim,
                      symbol: str, value: int):
    """E205 at the literal that only fits one value of `symbol`."""
    position = _baked_position(x, sizes, value)
    at = ("shape", position) if position is not None else "shape"
    text = ctx.text_of(at) or (str(sizes[position]) if position is not None else shape_text(sizes))
    replacement = _symbolic_replacement(sizes[position], symbol, value) if position is not None else symbol
    fixes = ()
    if position is not None and at in ctx.spans and replacement is not None:
        fixes = (ctx.fix(f"write `{replacement}` instead of `{text}`", replacement, at=at, safe=False),)
    ctx.error("E205", f"reshape only works when {symbol} == {value}", at=at,
              label=f"`{text}` fits only when {symbol} == {value}",
              notes=(f"the input {x} has {count} elements; the target {shape_text(sizes)} has {target_count}",),
              helps=(f"write the size symbolically, e.g. `{replacement or symbol}`",
                     f"if only {symbol} == {value} is supported, say so in the input type or with `where {symbol} == {value}`"),
              fixes=fixes)


def _baked_position(x: TensorType, sizes: list[Dim], value: int) -> int | None:
    """The constant target size to blame: the one equal to `value`, else one not among the input's sizes."""
    constants = [(position, size.value) for position, size in enumerate(sizes) if size.is_const]
    for position, constant in constants:
        if constant == value:
            return position
    input_constants = {dim.value for dim in x.shape if dim.is_const}
    for position, constant in constants:
        if constant not in input_constants:
            return position
    return constants[0][0] if constants else None


def _symbolic_replacement(size: Dim, symbol: str, value: int) -> str | None:
    """`T` for a literal 81 that stands for T == 81; `34*T` for 2754; None when no multiple."""
    if not size.is_const or value <= 0 or size.value % value != 0:
        return None
    return str(Dim.symbol(symbol) * (size.value // value))


# --------------------------------------------------------------------------- reshape axis order (E206)


def _check_axis_order(ctx: ShapeContext, x: TensorType, sizes: list[Dim], values: Sequence) -> None:
    """E206 when the reshape only regroups cleanly after reordering the input axes."""
    source = [ctx.normalize(dim) for dim in x.shape]
    if regroups(ctx.facts, source, sizes) or x.rank > _MAX_PERMUTED_RANK:
        return
    order = next((order for order in itertools.permutations(range(x.rank))
                  if regroups(ctx.facts, [source[axis] for axis in order], sizes)), None)
    if order is None:
        return
    suggestion = _permute_suggestion(ctx, order, values)
    permuted = shape_text(x.shape[axis] for axis in order)
    ctx.error("E206", f"reshaping {x} to {shape_text(sizes)} reorders its axes",
              label="this regroups axes that are not neighbours in memory",
              notes=("`view` and `reshape` never move data: they only split or merge neighbouring axes",
                     f"after `permute({', '.join(map(str, order))})` the input is {permuted}, which regroups cleanly"),
              helps=(f"permute the axes first: `{suggestion}`",),
              fixes=(ctx.fix("permute the axes before reshaping", suggestion, safe=False),))


def regroups(facts: Facts, source: Sequence[Dim], target: Sequence[Dim]) -> bool:
    """Whether `target` splits or merges runs of neighbouring `source` axes (size-1 axes ignored)."""
    source = [dim for dim in source if facts.equal(dim, 1) is not Tri.YES]
    target = [dim for dim in target if facts.equal(dim, 1) is not Tri.YES]
    i = j = 0
    while i < len(source) and j < len(target):
        left, right = source[i], target[j]
        if facts.equal(left, right) is Tri.YES:
            i, j = i + 1, j + 1
            continue
        merged = right.exact_div(left)
        split = left.exact_div(right)
        if merged is not None:
            i, j = _consume(facts, source, i + 1, merged), j + 1
        elif split is not None:
            i, j = i + 1, _consume(facts, target, j + 1, split)
        else:
            return False
        if i is None or j is None:
            return False
    return i == len(source) and j == len(target)


def _consume(facts: Facts, dims: Sequence[Dim], start: int, rest: Dim) -> int | None:
    """The index after the run of `dims` from `start` whose product is `rest`, or None."""
    position = start
    while facts.equal(rest, 1) is not Tri.YES:
        if position >= len(dims):
            return None
        if facts.equal(rest, dims[position]) is Tri.YES:
            return position + 1
        rest = rest.exact_div(dims[position])
        if rest is None:
            return None
        position += 1
    return position


def _permute_suggestion(ctx: ShapeContext, order: Sequence[int], values: Sequence) -> str:
    """`x.permute(0, 2, 1).reshape(B, T, 17, 3)` written with the user's own texts."""
    receiver = receiver_text(ctx.text_of(0))
    sizes = ", ".join(ctx.text_of(("shape", position)) or str(value) for position, value in enumerate(values))
    return f"{receiver}.permute({', '.join(map(str, order))}).reshape({sizes})"


def receiver_text(text: str | None) -> str:
    """Source text usable before `.method(...)`: parenthesized when it has a top-level operator."""
    if not text:
        return "x"
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth == 0 and char in " +-*/@%<>=!&|":
            return f"({text})"
    return text


def _reshape_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy reshape (C order, like torch)."""
    return [np.reshape(arrays[0], unwrap_sizes(attrs["shape"]))]


define(
    "view",
    name="reshape",
    signature=(Param("x", TENSOR), Param("shape", VARIADIC)),
    infer=_reshape_infer,
    run=_reshape_run,
    onnx=_reshape_onnx,
    doc="Regroup neighbouring axes without moving data; one size may be -1.",
    behaviour="same in both modes",
    samples=(
        (("B, T, 17, 2",), {"shape": (parse_dim("B"), parse_dim("T"), 34)}),
        (("B, T, 17, 2",), {"shape": (parse_dim("B*T"), -1)}),
        (("B, T, 51",), {"shape": (parse_dim("B"), parse_dim("T"), 17, 3)}),
        (("B*T, 34",), {"shape": (parse_dim("B"), -1, 17, 2)}),
        (("B, 1, T",), {"shape": (parse_dim("B"), parse_dim("T"))}),
    ),
)


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
                  at="dims", label=f"expected each of 0..{x.rank - 1} once", notes=notes)
    return [TensorType(x.dtype, tuple(x.shape[axis] for axis in axes))]


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
    behaviour="same in both modes",
    samples=((("B, T, 34",), {"dims": (0, 2, 1)}), (("B, T, 17, 3",), {"dims": (2, 0, -1, 1)})),
)


def _transpose_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Swap two axes."""
    (x,) = types
    first = ctx.axis(attrs["dim0"], x.rank, at="dim0")
    second = ctx.axis(attrs["dim1"], x.rank, at="dim1")
    shape = list(x.shape)
    shape[first], shape[second] = shape[second], shape[first]
    return [TensorType(x.dtype, tuple(shape))]


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
    behaviour="same in both modes",
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
        return [TensorType(x.dtype, (Dim.of(1),))]
    start, end = _flatten_range(ctx, x, attrs)
    merged = ctx.normalize(product(x.shape[start:end + 1]))
    return [TensorType(x.dtype, (*x.shape[:start], merged, *x.shape[end + 1:]))]


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
    onnx=_reshape_onnx,
    doc="Merge the axes start_dim..end_dim (inclusive) into one axis.",
    behaviour="same in both modes",
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
    shape = (*x.shape[:axis], *(ctx.normalize(size) for size in sizes), *x.shape[axis + 1:])
    return [TensorType(x.dtype, shape)]


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
    onnx=_reshape_onnx,
    doc="Split one axis into several, e.g. 51 into (17, 3); one size may be -1.",
    behaviour="same in both modes",
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
    return [TensorType(x.dtype, x.shape[:axis] + x.shape[axis + 1:])]


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
    behaviour="same in both modes",
    samples=((("B, 1, 17, 3",), {"dim": 1}), (("B, 17, 1",), {"dim": -1})),
)


def _unsqueeze_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Insert an axis of size 1 before position `dim` (-1 appends)."""
    (x,) = types
    axis = ctx.axis(attrs["dim"], x.rank + 1, at="dim")
    return [TensorType(x.dtype, (*x.shape[:axis], Dim.of(1), *x.shape[axis:]))]


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
    behaviour="same in both modes",
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
    if _is_minus_one(value):
        return dim
    size = size_attr(ctx, value, at, "an expand size")
    if ctx.equal(dim, size) is Tri.YES or ctx.equal(dim, 1) is not Tri.YES:
        ctx.require_equal(dim, size, code="E200", at=at,
                          message=f"expand cannot change axis {axis} of {x} from {dim} to {size}",
                          label="only axes of size 1 can grow",
                          helps=("use `repeat` to tile an axis, or `-1` to keep its size",))
        return dim if ctx.equal(dim, size) is Tri.YES else size
    return size


def _expand_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy broadcast_to, copied so later in-place updates are safe."""
    x = np.asarray(arrays[0])
    values = unwrap_sizes(attrs["sizes"])
    lead = len(values) - x.ndim
    shape = [*values[:lead], *(dim if value == -1 else value for dim, value in zip(x.shape, values[lead:]))]
    return [np.ascontiguousarray(np.broadcast_to(x, shape))]


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
    behaviour="same in both modes",
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
    behaviour="same in both modes",
    samples=((("B, 17, 3",), {"repeats": (1, 2, 1)}), (("T, C",), {"repeats": (parse_dim("B"), 1, 3)})),
)
