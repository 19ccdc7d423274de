"""reshape/view: the element count (E204, E205, W300) and the order of the regrouped axes (E206)."""

from __future__ import annotations

import itertools
import re
from typing import Sequence

import numpy as np

from poseir.ir.axes import Atom, Axes, flat, read
from poseir.ir.dims import Dim, Tri, cancel_common, parse_dim
from poseir.ir.facts import Facts
from poseir.ir.graph import TensorType
from poseir.ops.common import (define, fill_placeholder, product, receiver_text, reshape_to_output, shape_text,
                               target_sizes, unwrap_sizes, where_help)
from poseir.ops.registry import TENSOR, VARIADIC, Param, RunContext, ShapeContext

_MAX_PERMUTED_RANK = 6  # 6! = 720 candidate orders: cheap enough to try them all
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")  # an integer literal in a size's source text
_PRODUCT_TEXT = re.compile(r"^[\w\s]+(?:\*[\w\s]+)*$")  # names and literals joined by single `*`s


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
    atoms = regroup(ctx, x, sizes, values) if counts_equal else \
        tuple(ctx.fresh(0, axis, size) for axis, size in enumerate(sizes))
    return [TensorType(x.dtype, tuple(sizes), atoms)]


# --------------------------------------------------------------------------- element count


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
             helps=(where_help(ctx.facts.assumption_for(left, right)),))
    return False


def _count_error(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim, target_count: Dim):
    """E204, suggesting the size that would keep the count when one change surely does."""
    helps = []
    suggestion = _size_suggestion(ctx, x, sizes, count)
    if suggestion is not None:
        helps.append(f"did you mean `{suggestion[0]}` instead of `{suggestion[1]}`? that keeps the {count} elements")
    helps.append("write `-1` for one size to let poseir infer it")
    ctx.error("E204", f"cannot reshape {x} to {shape_text(sizes)}", label=f"{count} elements cannot become {target_count}",
              notes=(f"the input {x} has {count} elements", f"the target {shape_text(sizes)} has {target_count}"),
              helps=helps)


def _size_suggestion(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim) -> tuple[str, str] | None:
    """(new text, old text) for one target size whose replacement provably keeps the element count.

    Sizes that equal none of the input's axes are tried first (they are the likely typo); only a
    constant replacement is offered, and inside a product such as `joints * 3` only its literal
    changes. None when no single constant fits.
    """
    inputs = [ctx.normalize(dim) for dim in x.shape]
    order = sorted(range(len(sizes)),
                   key=lambda position: (any(ctx.equal(sizes[position], dim) is Tri.YES for dim in inputs), position))
    for position in order:
        others = ctx.normalize(product(size for index, size in enumerate(sizes) if index != position))
        wanted = count.exact_div(others)
        if wanted is None or not wanted.is_const or wanted.value < 1 or ctx.equal(wanted, sizes[position]) is Tri.YES:
            continue
        if ctx.equal(others * wanted, count) is not Tri.YES:
            continue
        text = ctx.text_of(("shape", position))
        changed = _with_literal_scaled(text, sizes[position], wanted) if text else None
        if changed:
            return changed, text
        if text is None or text.strip().isdigit():
            return str(wanted), text or str(sizes[position])
        # A size written with names (`h`, `C // H`): a number in its place would rarely be the intent.
    return None


def _with_literal_scaled(text: str, size: Dim, wanted: Dim) -> str | None:
    """`joints * 2` for `joints * 3` when that is `wanted`: the one literal of a product text rewritten."""
    literals = list(_NUMBER.finditer(text))
    if len(literals) != 1 or not _PRODUCT_TEXT.match(text):
        return None
    literal = literals[0]
    rest = size.exact_div(int(literal.group()))
    replacement = wanted.exact_div(rest) if rest is not None and not rest.is_zero else None
    if replacement is None or not replacement.is_const or replacement.value < 1:
        return None
    return text[:literal.start()] + str(replacement.value) + text[literal.end():]


# --------------------------------------------------------------------------- a size baked in (E205)


def _baked_size_error(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim, target_count: Dim,
                      symbol: str, value: int):
    """E205 at the size holding the literal that only fits one value of `symbol`."""
    position = _baked_position(ctx, x, sizes, value)
    at = ("shape", position) if position is not None else "shape"
    text = ctx.text_of(at) or (str(sizes[position]) if position is not None else shape_text(sizes))
    replacement = _symbolic_replacement(ctx.text_of(at), sizes[position], symbol, value) \
        if position is not None else symbol
    fixes = ()
    if position is not None and at in ctx.spans and replacement is not None:
        fixes = (ctx.fix(f"write `{replacement}` instead of `{text}`", replacement, at=at, safe=False),)
    ctx.error("E205", f"reshape only works when {symbol} == {value}", at=at,
              label=f"`{text}` fits only when {symbol} == {value}",
              notes=(f"the input {x} has {count} elements; the target {shape_text(sizes)} has {target_count}",),
              helps=((f"write the size symbolically, e.g. `{replacement or symbol}`",) if not fixes else ()) +
              (f"if only {symbol} == {value} is supported, say so in the input type or with `where {symbol} == {value}`",),
              fixes=fixes)


def _baked_position(ctx: ShapeContext, x: TensorType, sizes: list[Dim], value: int) -> int | None:
    """The target size to blame: the one whose text has the literal `value` (`B * 81`), else by value."""
    for position in range(len(sizes)):
        if _literal_of(ctx.text_of(("shape", position)), value) is not None:
            return position
    constants = [(position, size.value) for position, size in enumerate(sizes) if size.is_const]
    for position, constant in constants:
        if constant == value:
            return position
    input_constants = {dim.value for dim in x.shape if dim.is_const}
    for position, constant in constants:
        if constant not in input_constants:
            return position
    return constants[0][0] if constants else None


def _literal_of(text: str | None, value: int) -> re.Match | None:
    """The integer literal `value` in a size's source text, if it is written there."""
    return next((match for match in _NUMBER.finditer(text or "") if int(match.group()) == value), None)


def _symbolic_replacement(text: str | None, size: Dim, symbol: str, value: int) -> str | None:
    """`T` for a literal 81 that stands for T == 81, `B * T` for `B * 81`, `34*T` for 2754; else None."""
    literal = _literal_of(text, value)
    if literal is not None and _PRODUCT_TEXT.match(text):
        return text[:literal.start()] + symbol + text[literal.end():]
    if not size.is_const or value <= 0 or size.value % value != 0:
        return None
    return str(Dim.symbol(symbol) * (size.value // value))


# --------------------------------------------------------------------------- axis order (E206), by atoms


def regroup(ctx: ShapeContext, x: TensorType, sizes: list[Dim], values: Sequence) -> Axes:
    """The output atoms of reshaping `x` to `sizes`; E206 when only a reordering of the atoms fits.

    A reshape is legal when each target axis is a run of neighbouring atoms (or a factor of one),
    whatever the sizes happen to be: `[B, 64, 8, 8]` as `[B, 8, 512]` only splits the 64. When no
    such reading exists but a permutation of the input's axes, or of the target's, gives one, the
    reshape moves data the program did not move: E206, with the permute that does it.
    """
    source = ctx.axes(x)
    reading = read(flat(source), sizes, ctx.facts)
    if reading is not None:
        return reading
    candidates = _reorderings(ctx, x, source, sizes, values)
    layouts = {layout for layout, _, _ in candidates}
    if len(layouts) == 1:
        _reorder_error(ctx, x, source, sizes, candidates[0])
    if len(layouts) > 1:
        _ambiguous_warning(ctx, x, sizes, candidates)
    return tuple(ctx.fresh(0, axis, size) for axis, size in enumerate(sizes))


def _reorderings(ctx: ShapeContext, x: TensorType, source: Axes, sizes: list[Dim], values: Sequence) -> list:
    """(resulting atoms, fix text, description) of every permutation that makes the reshape a regrouping.

    Permuting the input's axes (`x.permute(0, 2, 1).reshape(...)`) is tried first, then
    permuting the target's (`x.reshape(B, T, J, C).permute(0, 2, 1, 3)`), which also covers
    axes merged earlier (`[B, (T·J), C]` asked for as `[B, J, T, C]`).
    """
    found = []
    if x.rank <= _MAX_PERMUTED_RANK:
        for order in itertools.permutations(range(x.rank)):
            if list(order) == list(range(x.rank)):
                continue
            reading = read(flat([source[axis] for axis in order]), sizes, ctx.facts)
            if reading is not None:
                found.append((reading, _permute_first(ctx, order, values), order))
        if found:
            return found
    if len(sizes) <= _MAX_PERMUTED_RANK:
        for order in itertools.permutations(range(len(sizes))):
            if list(order) == list(range(len(sizes))):
                continue
            reading = read(flat(source), [sizes[axis] for axis in order], ctx.facts)
            if reading is not None:
                layout = tuple(reading[order.index(axis)] for axis in range(len(sizes)))
                found.append((layout, _permute_after(ctx, order, values), None))
    return found


def _reorder_error(ctx: ShapeContext, x: TensorType, source: Axes, sizes: list[Dim], candidate) -> None:
    """E206 naming the atoms that would have to move, with the permute that moves them."""
    layout, suggestion, input_order = candidate
    notes = ["`view` and `reshape` never move data: they only split or merge neighbouring axes"]
    moved = _moved_pair(flat(source), layout)
    if moved is not None:
        notes.append(f"the data holds {x.describe()}: `{moved[0]}` comes before `{moved[1]}`, but the target "
                     f"asks for `{moved[1]}` before `{moved[0]}`")
    if input_order is not None:
        permuted = shape_text(x.shape[axis] for axis in input_order)
        notes.append(f"after `permute({', '.join(map(str, input_order))})` the input is {permuted}, "
                     "which regroups cleanly")
    # The fix renders as a help followed by the rewritten line; without the receiver's text (a
    # call inside a prelude layer) no edit is safe to offer, so the suggestion becomes a help.
    if ctx.text_of(0) is not None:
        helps, fixes = (), (ctx.fix("permute the axes first", suggestion, safe=False),)
    else:
        helps, fixes = (f"permute the axes first: `{suggestion}`",), ()
    ctx.error("E206", f"reshaping {x} to {shape_text(sizes)} reorders its axes",
              label="this regroups axes that are not neighbours in memory", notes=notes, helps=helps,
              fixes=fixes)


def _ambiguous_warning(ctx: ShapeContext, x: TensorType, sizes: list[Dim], candidates: list) -> None:
    """W314: equal sizes leave two reorderings possible; name them instead of guessing."""
    first, second = candidates[0][1], next(text for layout, text, _ in candidates if layout != candidates[0][0])
    ctx.warn("W314", f"reshaping {x.describe()} to {shape_text(sizes)} only fits after moving axes, and equal "
             "sizes leave two ways to move them", label="this regroups axes that are not neighbours in memory",
             notes=(f"one reading: `{first}`", f"another: `{second}`"),
             helps=("write the intended permute before the reshape, or use `rearrange` with named axes",))


def _moved_pair(source: list[Atom], layout: Axes) -> tuple[str, str] | None:
    """Two atoms of the data (by name) that the target asks for in the opposite order."""
    position = {atom.key: index for index, atom in enumerate(source)}
    wanted = [_root(atom, position) for axis in layout for atom in axis]
    wanted = [index for index in wanted if index is not None]
    for first in range(len(wanted)):
        for second in range(first + 1, len(wanted)):
            if wanted[first] > wanted[second]:
                return source[wanted[second]].name, source[wanted[first]].name
    return None


def _root(atom: Atom, position: dict) -> int | None:
    """The index in the data of the atom `atom` is (or is a piece of)."""
    key = atom.key
    while key not in position and key[0] == "split":
        key = key[1]
    return position.get(key)


def _permute_first(ctx: ShapeContext, order: Sequence[int], values: Sequence) -> str:
    """`x.permute(0, 2, 1).reshape(B, T, 17, 3)` written with the user's own texts."""
    receiver = receiver_text(ctx.text_of(0))
    return f"{receiver}.permute({', '.join(map(str, order))}).reshape({_sizes_text(ctx, values)})"


def _permute_after(ctx: ShapeContext, order: Sequence[int], values: Sequence) -> str:
    """`x.reshape(B, T, J, C).permute(0, 2, 1, 3)`: reshape to the order the data holds, then move axes."""
    receiver = receiver_text(ctx.text_of(0))
    texts = [ctx.text_of(("shape", position)) or str(value) for position, value in enumerate(values)]
    inverse = [order.index(axis) for axis in range(len(order))]
    return (f"{receiver}.reshape({', '.join(texts[axis] for axis in order)})"
            f".permute({', '.join(map(str, inverse))})")


def _sizes_text(ctx: ShapeContext, values: Sequence) -> str:
    """The target sizes as the user wrote them."""
    return ", ".join(ctx.text_of(("shape", position)) or str(value) for position, value in enumerate(values))


# --------------------------------------------------------------------------- the op


def _reshape_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy reshape (C order, like torch)."""
    return [np.reshape(arrays[0], unwrap_sizes(attrs["shape"]))]


define(
    "view",
    name="reshape",
    signature=(Param("x", TENSOR), Param("shape", VARIADIC)),
    infer=_reshape_infer,
    run=_reshape_run,
    onnx=reshape_to_output,
    doc="Regroup neighbouring axes without moving data; one size may be -1.",
    samples=(
        (("B, T, 17, 2",), {"shape": (parse_dim("B"), parse_dim("T"), 34)}),
        (("B, T, 17, 2",), {"shape": (parse_dim("B*T"), -1)}),
        (("B, T, 51",), {"shape": (parse_dim("B"), parse_dim("T"), 17, 3)}),
        (("B*T, 34",), {"shape": (parse_dim("B"), -1, 17, 2)}),
        (("B, 1, T",), {"shape": (parse_dim("B"), parse_dim("T"))}),
    ),
)
