"""reshape/view: the element count (E204, E205, W300) and the order of the regrouped axes (E206)."""

from __future__ import annotations

import itertools
import re
from typing import Sequence

import numpy as np

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
    if counts_equal:
        _check_axis_order(ctx, x, sizes, values)
    return [TensorType(x.dtype, tuple(sizes))]


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
        return (changed, text) if changed else (str(wanted), text or str(sizes[position]))
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


# --------------------------------------------------------------------------- axis order (E206)


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
    # The fix renders as a help followed by the rewritten line; without the receiver's text (a
    # call inside a prelude layer) no edit is safe to offer, so the suggestion becomes a help.
    if ctx.text_of(0) is not None:
        helps, fixes = (), (ctx.fix("permute the axes first", suggestion, safe=False),)
    else:
        helps, fixes = (f"permute the axes first: `{suggestion}`",), ()
    ctx.error("E206", f"reshaping {x} to {shape_text(sizes)} reorders its axes",
              label="this regroups axes that are not neighbours in memory",
              notes=("`view` and `reshape` never move data: they only split or merge neighbouring axes",
                     f"after `permute({', '.join(map(str, order))})` the input is {permuted}, which regroups cleanly"),
              helps=helps, fixes=fixes)


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
