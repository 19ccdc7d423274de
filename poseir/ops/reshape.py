"""reshape/view: the element count (E204, E205, W300) and the order of the regrouped axes (E206)."""

from __future__ import annotations

import itertools
import re
from typing import Sequence

import numpy as np

from poseir.ir.axes import Atom, Axes, canonical, flat, is_named, read
from poseir.ir.dims import Dim, Tri, cancel_common, parse_dim
from poseir.ir.graph import TensorType
from poseir.ops.common import (define, fill_placeholder, product, receiver_text, reshape_to_output, shape_text,
                               target_sizes, unwrap_sizes, where_help)
from poseir.ops.registry import TENSOR, VARIADIC, Param, RunContext, ShapeContext
from poseir.ops.repairs import NUMBER, PRODUCT_TEXT, unused_layer_candidates, with_literal_scaled

_MAX_PERMUTED_RANK = 6  # 6! = 720 candidate orders: cheap enough to try them all


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
    fact = ctx.facts.assumption_for(left, right)
    ctx.warn("W300", f"cannot prove that reshaping {x} to {shape_text(sizes)} keeps the element count",
             at="shape", label=f"{count} elements are assumed to equal {target_count}",
             helps=(where_help(fact),), candidates=ctx.fact_candidates(fact))
    return False


def _count_error(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim, target_count: Dim):
    """E204, suggesting the size that would keep the count when one change surely does.

    Every single-size change that keeps the count is a candidate fix; re-checking the program
    (what the reshape feeds, the declared output) keeps the one that fits.
    """
    helps = []
    suggestions = _size_suggestions(ctx, x, sizes, count)
    candidates = [ctx.fix(f"write `{new}` instead of `{old}`, which keeps the {count} elements", new,
                          at=("shape", position), safe=False)
                  for position, new, old in suggestions if ("shape", position) in ctx.spans and old != new]
    if suggestions and not candidates:
        # Without the sizes' spans there is nothing to edit; with them, the candidates say it (when one fits).
        helps.append(f"did you mean `{suggestions[0][1]}` instead of `{suggestions[0][2]}`? that keeps the {count} "
                     "elements")
    helps.append("write `-1` for one size to let poseir infer it")
    if 0 in ctx.spans:
        candidates.append(unused_layer_candidates(ctx.span, ctx.span_of(0)))
    ctx.error("E204", f"cannot reshape {x} to {shape_text(sizes)}",
              label=f"{count} elements cannot become {target_count}",
              notes=(f"the input {x} has {count} elements", f"the target {shape_text(sizes)} has {target_count}"),
              helps=helps, candidates=candidates)


def _size_suggestions(ctx: ShapeContext, x: TensorType, sizes: list[Dim], count: Dim) -> list[tuple[int, str, str]]:
    """(position, new text, old text) for each target size whose replacement provably keeps the element count.

    Sizes that equal none of the input's axes come first (they are the likely typo); only a
    constant replacement is offered, and inside a product such as `joints * 3` only its literal
    changes.
    """
    inputs = [ctx.normalize(dim) for dim in x.shape]
    order = sorted(range(len(sizes)),
                   key=lambda position: (any(ctx.provably_equal(sizes[position], dim) for dim in inputs), position))
    found = []
    for position in order:
        others = ctx.normalize(product(size for index, size in enumerate(sizes) if index != position))
        wanted = count.exact_div(others)
        if wanted is None or not wanted.is_const or wanted.value < 1 or ctx.provably_equal(wanted, sizes[position]):
            continue
        if not ctx.provably_equal(others * wanted, count):
            continue
        text = ctx.text_of(("shape", position))
        changed = with_literal_scaled(text, sizes[position], wanted) if text else None
        if changed:
            found.append((position, changed, text))
        elif text is None or text.strip().isdigit():
            found.append((position, str(wanted), text or str(sizes[position])))
        # A size written with names (`h`, `C // H`): a number in its place would rarely be the intent.
    return found


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
    return next((match for match in NUMBER.finditer(text or "") if int(match.group()) == value), None)


def _symbolic_replacement(text: str | None, size: Dim, symbol: str, value: int) -> str | None:
    """`T` for a literal 81 that stands for T == 81, `B * T` for `B * 81`, `34*T` for 2754; else None."""
    literal = _literal_of(text, value)
    if literal is not None and PRODUCT_TEXT.match(text):
        return text[:literal.start()] + symbol + text[literal.end():]
    if not size.is_const or value <= 0 or size.value % value != 0:
        return None
    return str(Dim.symbol(symbol) * (size.value // value))


# --------------------------------------------------------------------------- axis order (E206), by atoms


def regroup(ctx: ShapeContext, x: TensorType, sizes: list[Dim], values: Sequence) -> Axes:
    """The output atoms of reshaping `x` to `sizes`; E206 when only a reordering of the atoms fits.

    A reshape is legal when each target axis is a run of neighbouring atoms (or a factor of one),
    whatever the sizes happen to be: `[B, 64, 8, 8]` as `[B, 8, 512]` only splits the 64. When no
    such reading exists the reshape certainly moves data the program did not move: E206, with the
    permute that gives what the target asks for when one reading is the natural one.
    """
    source = ctx.axes(x)
    reading = read(flat(source), sizes, ctx.facts)
    if reading is not None:
        _warn_named_swap(ctx, source, sizes, reading)
        return reading
    candidates = _natural(flat(source), _reorderings(ctx, x, source, sizes, values))
    if candidates:
        _reorder_error(ctx, x, source, sizes, candidates)
    return tuple(ctx.fresh(0, axis, size) for axis, size in enumerate(sizes))


def _reorderings(ctx: ShapeContext, x: TensorType, source: Axes, sizes: list[Dim], values: Sequence) -> list:
    """(resulting atoms, fix text, input order) of every permutation that makes the reshape a regrouping.

    Permuting the input's axes (`x.permute(0, 2, 1).reshape(...)`) is tried first, then
    permuting the target's axes — each split into its factors (`B * 2` into `B`, `2`), so that
    a part of a merged axis can move on its own (`x.reshape(B, T, J, C).permute(0, 2, 1, 3)`).
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
    factors, owners = _factors(sizes, [atom.size for atom in flat(source)])
    if len(factors) > _MAX_PERMUTED_RANK + 1:
        return found
    for order in itertools.permutations(range(len(factors))):
        if list(order) == list(range(len(factors))):
            continue
        reading = read(flat(source), [factors[index] for index in order], ctx.facts)
        if reading is None:
            continue
        pieces = [reading[order.index(index)] for index in range(len(factors))]
        layout = tuple(canonical([atom for index, piece in enumerate(pieces) if owners[index] == axis
                                  for atom in piece]) for axis in range(len(sizes)))
        found.append((layout, _permute_after(ctx, order, factors, owners, values), None))
    return found


def _factors(sizes: list[Dim], held: list[Dim] = ()) -> tuple[list[Dim], list[int]]:
    """The target sizes split into their factors (`2*B` into `B`, `2`; a constant into the constant sizes the
    data holds it as, `8` into `2`, `4`), and the target axis of each factor."""
    factors, owners = [], []
    for axis, size in enumerate(sizes):
        parts = _monomial_parts(size)
        if len(parts) == 1 and size.is_const:
            parts = _held_parts(size.value, [dim.value for dim in held if dim.is_const]) or parts
        factors.extend(parts)
        owners.extend([axis] * len(parts))
    return factors, owners


def _held_parts(value: int, held: list[int]) -> list[Dim] | None:
    """`value` as the product of two or more of the constant atom sizes the data holds (in their stored order),
    when exactly one choice of them multiplies to it; None otherwise."""
    choices = [combination for count in range(2, min(len(held), 4) + 1)
               for combination in itertools.combinations(range(len(held)), count)
               if _product_of(held[index] for index in combination) == value]
    if len(choices) != 1:
        return None
    return [Dim.of(held[index]) for index in choices[0]]


def _product_of(values) -> int:
    """The product of some ints."""
    total = 1
    for value in values:
        total *= value
    return total


def _monomial_parts(size: Dim) -> list[Dim]:
    """`B`, `2` for `2*B`; a sum (`T - 2`) or a lone symbol or number stays whole."""
    if len(size.terms) != 1:
        return [size]
    monomial, coefficient = size.terms[0]
    parts = [Dim.symbol(variable) for variable, power in monomial if isinstance(variable, str)
             for _ in range(power)]
    if len(parts) != sum(power for _, power in monomial):
        return [size]
    if coefficient != 1:
        parts.append(Dim.of(coefficient))
    return parts if len(parts) > 1 else [size]


def _natural(source: list[Atom], candidates: list) -> list:
    """The distinct readings that keep every merged group's atoms in their stored order (all, when none does).

    `[B, T, J, 2]` asked for as `[B, J * 2, T]` fits after moving T last, with (J·2) or with (2·J);
    only the first leaves the atoms it merges in the order memory holds them.
    """
    position = {atom.key: index for index, atom in enumerate(source)}
    kept = [candidate for candidate in candidates
            if all(_in_order(axis, position) for axis in candidate[0]) and _pieces_in_order(candidate[0])]
    distinct: dict = {}
    for candidate in kept or candidates:
        distinct.setdefault(candidate[0], candidate)
    return list(distinct.values())


def _pieces_in_order(layout: Axes) -> bool:
    """Whether the pieces of each split atom keep their order across the target (heads before head_dim)."""
    last: dict = {}
    for atom in (atom for axis in layout for atom in axis):
        if atom.key[0] == "split":
            parent, index = (atom.key[1], atom.key[2]), atom.key[3]
            if last.get(parent, -1) > index:
                return False
            last[parent] = index
    return True


def _in_order(axis, position: dict) -> bool:
    """Whether a group's atoms appear in the order the data stores them."""
    indices = [_root(atom, position) for atom in axis]
    indices = [index for index in indices if index is not None]
    return indices == sorted(indices)


def _warn_named_swap(ctx: ShapeContext, source: Axes, sizes: list[Dim], reading: Axes) -> None:
    """W314 when the legal reading gives an axis written with one atom's name to another atom of the same size.

    `x.view(B, J, T, C)` of `[B, (T·J), C]` with T == J == 17 regroups without moving data, but
    the names say frames and joints were meant to trade places: two readings, the user's to pick.
    """
    atoms = {atom.name: atom for atom in flat(source) if is_named(atom)}
    for axis, group in enumerate(reading):
        text = ctx.text_of(("shape", axis))
        if text and text in atoms and len(group) == 1 and is_named(group[0]) and group[0].name != text:
            ctx.warn("W314", f"`{text}` at position {axis} is read as `{group[0].name}`, which has the same size",
                     at=("shape", axis), label=f"this axis holds `{group[0].name}`",
                     notes=(f"one reading: the view regroups the data as stored, and this axis is `{group[0].name}`",
                            f"another: `{text}` was meant, which needs `{text}` moved here with `permute` first"),
                     helps=("write the sizes in the order the data holds them, or permute first; `rearrange` "
                            "with named axes says which is meant",))
            return


def _reorder_error(ctx: ShapeContext, x: TensorType, source: Axes, sizes: list[Dim], candidates: list) -> None:
    """E206 naming the atoms that would have to move, with the permute that moves them.

    Two repairs are possible in general: move the data (permute before, or after, the reshape)
    so that the target reads as written, or write the target in the order the data holds it. When
    only one of them exists it is the fix; otherwise each is a candidate, and re-checking the
    program with each (the later lines, the declared output) decides.
    """
    layout, suggestion, input_order = candidates[0]
    notes = ["`view` and `reshape` never move data: they only split or merge neighbouring axes"]
    moved = _moved_pair(flat(source), layout)
    if moved is not None:
        notes.append(f"the data holds {x.describe()}: `{moved[0]}` comes before `{moved[1]}`, but the target "
                     f"asks for `{moved[1]}` before `{moved[0]}`")
    if len(candidates) > 1:
        notes.append(f"equal sizes leave more than one way to move the axes: `{suggestion}` or "
                     f"`{candidates[1][1]}`")
    elif input_order is not None:
        permuted = shape_text(x.shape[axis] for axis in input_order)
        notes.append(f"after `permute({', '.join(map(str, input_order))})` the input is {permuted}, "
                     "which regroups cleanly")
    details = dict(label="this regroups axes that are not neighbours in memory", notes=notes)
    message = f"reshaping {x} to {shape_text(sizes)} reorders its axes"
    # Without the receiver's text (a call inside a prelude layer) no edit is safe to offer, so the
    # suggestion becomes a help.
    if ctx.text_of(0) is None:
        helps = (f"permute the axes first: `{suggestion}`",) if len(candidates) == 1 else \
            ("write the intended permute before the reshape, or use `rearrange` with named axes",)
        ctx.error("E206", message, helps=helps, **details)
    stored = _stored_order_fixes(ctx, source, sizes)
    if len(candidates) == 1 and not stored:
        # The fix renders as a help followed by the rewritten line.
        ctx.error("E206", message, fixes=(ctx.fix("permute the axes first", suggestion, safe=False),), **details)
    fixes = [ctx.fix("permute the axes first", text, safe=False) for _, text, _ in candidates]
    ctx.error("E206", message, candidates=fixes + stored, **details)


def _stored_order_fixes(ctx: ShapeContext, source: Axes, sizes: list[Dim]) -> list:
    """Fixes that write the target's sizes in the order the data holds them (`view(B, J, D, H, W)` for a
    `[B, J, (D·H·W)]` volume asked for as `[B, J, H, W, D]`), when the user's texts of the sizes are known."""
    texts = [ctx.text_of(("shape", position)) for position in range(len(sizes))]
    if None in texts or "shape" not in ctx.spans or len(sizes) > _MAX_PERMUTED_RANK:
        return []
    fixes = []
    for order in itertools.permutations(range(len(sizes))):
        if list(order) == list(range(len(sizes))) or read(flat(source), [sizes[i] for i in order], ctx.facts) is None:
            continue
        written = ", ".join(texts[i] for i in order)
        fixes.append(ctx.fix(f"write the sizes in the order the data holds them: `{written}`", written,
                             at="shape", safe=False))
    return fixes


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


def _permute_after(ctx: ShapeContext, order: Sequence[int], factors: list[Dim], owners: list[int],
                   values: Sequence) -> str:
    """`x.reshape(B, T, J, C).permute(0, 2, 1, 3)`: reshape to the order the data holds, move the axes,
    then merge the factors of each target axis (`.reshape(B * 2, 27, 4)`) when a target axis had several."""
    receiver = receiver_text(ctx.text_of(0))
    texts = [ctx.text_of(("shape", position)) or str(value) for position, value in enumerate(values)]
    factor_texts = [str(factor) for factor in factors]
    for axis, text in enumerate(texts):
        indices = [index for index in range(len(factors)) if owners[index] == axis]
        for index, part in zip(indices, _factor_texts(text, [factors[index] for index in indices])):
            factor_texts[index] = part
    inverse = [order.index(index) for index in range(len(order))]
    text = (f"{receiver}.reshape({', '.join(factor_texts[index] for index in order)})"
            f".permute({', '.join(map(str, inverse))})")
    if len(factors) != len(values):
        text += f".reshape({', '.join(texts)})"
    return text


def _factor_texts(text: str, factors: list[Dim]) -> list[str]:
    """The user's spelling of each factor of a size: `B * num_heads` gives `B` and `num_heads` for B and 2."""
    if len(factors) == 1:
        return [text]
    parts = [part.strip() for part in text.split("*")]
    if len(parts) != len(factors) or any(not part.replace("_", "").isalnum() for part in parts):
        return [str(factor) for factor in factors]
    named = {str(factor): factor for factor in factors if not factor.is_const}
    spelled = [part for part in parts if part in named]
    others = [part for part in parts if part not in named]
    constants = [factor for factor in factors if factor.is_const]
    if len(others) != len(constants) or len(constants) > 1:
        return [str(factor) for factor in factors]
    return [str(factor) if not factor.is_const and str(factor) in spelled else others[0] if factor.is_const
            else str(factor) for factor in factors]


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
