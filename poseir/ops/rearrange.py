"""einops-style `rearrange`: split, merge and reorder axes with a pattern like `b t j c -> b (j c) t`."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from poseir.diagnostics.record import Edit, Fix
from poseir.ir.axes import axis_text, canonical, is_named, read
from poseir.ir.dims import Dim, Tri, parse_dim
from poseir.ir.facts import Facts
from poseir.ir.graph import TensorType
from poseir.ops.common import (define, divide, onnx_reshape, product, size_attr, unproved_division_help,
                               warn_unproved_multiple)
from poseir.ops.registry import ATTR, KEYWORDS, TENSOR, Param, RunContext, ShapeContext
from poseir.ops.repairs import before_end, product_fact_candidates

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<open>\()|(?P<close>\))|(?P<other>\S+?))")


class PatternError(ValueError):
    """A malformed rearrange pattern; the message is user-facing."""


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: each side is a tuple of axis groups, each group a tuple of names."""

    left: tuple[tuple[str, ...], ...]
    right: tuple[tuple[str, ...], ...]

    @property
    def left_names(self) -> tuple[str, ...]:
        """Elementary axis names of the input, in memory order."""
        return tuple(name for group in self.left for name in group)

    @property
    def right_names(self) -> tuple[str, ...]:
        """Elementary axis names of the output, in memory order."""
        return tuple(name for group in self.right for name in group)


def group_text(group: tuple[str, ...]) -> str:
    """`b` for a single name, `(b f)` for a group."""
    return group[0] if len(group) == 1 else "(" + " ".join(group) + ")"


def parse_pattern(text) -> Pattern:
    """Parse `lhs -> rhs`; PatternError says what is wrong."""
    if not isinstance(text, str):
        raise PatternError(f"a rearrange pattern must be a string, found `{text}`")
    return _parse_text(text)


@lru_cache(maxsize=256)
def _parse_text(text: str) -> Pattern:
    """The cached parse of a pattern string (patterns repeat across layers)."""
    sides = text.split("->")
    if len(sides) != 2:
        raise PatternError("a rearrange pattern needs exactly one `->`, as in `b t c -> b c t`")
    left, right = (_parse_side(side, name) for side, name in zip(sides, ("left", "right")))
    for side, groups in (("left", left), ("right", right)):
        names = [name for group in groups for name in group]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PatternError(f"axis `{repeated[0]}` appears twice on the {side} side")
    only_left = [name for group in left for name in group if name not in {n for g in right for n in g}]
    only_right = [name for group in right for name in group if name not in {n for g in left for n in g}]
    if only_left or only_right:
        name, side = (only_left[0], "left") if only_left else (only_right[0], "right")
        raise PatternError(f"axis `{name}` appears only on the {side} side")
    return Pattern(left, right)


def _parse_side(text: str, side: str) -> tuple[tuple[str, ...], ...]:
    """Names and parenthesized groups (not nested); `()` is a unit axis."""
    groups: list[tuple[str, ...]] = []
    current: list[str] | None = None
    for match in _TOKEN.finditer(text):
        kind, token = match.lastgroup, match.group(match.lastgroup)
        if kind == "name" and current is None:
            groups.append((token,))
        elif kind == "name":
            current.append(token)
        elif kind == "open":
            if current is not None:
                raise PatternError(f"groups cannot be nested on the {side} side")
            current = []
        elif kind == "close":
            if current is None:
                raise PatternError(f"unbalanced `)` on the {side} side")
            groups.append(tuple(current))
            current = None
        else:
            raise PatternError(f"unexpected `{token}` on the {side} side; use names, `(...)` groups and `()`")
    if current is not None:
        raise PatternError(f"unbalanced `(` on the {side} side")
    return tuple(groups)


def _given_sizes(ctx: ShapeContext, sizes, pattern: Pattern) -> dict[str, Dim]:
    """The `sizes` attribute as name -> dim; E210 for names not in the pattern."""
    pairs = sorted(sizes.items()) if isinstance(sizes, dict) else sizes
    if not isinstance(pairs, (tuple, list)) or not all(isinstance(pair, (tuple, list)) and len(pair) == 2
                                                       for pair in pairs):
        ctx.error("E103", f"rearrange sizes must be (name, size) pairs, found `{sizes}`", at="sizes")
    given: dict[str, Dim] = {}
    for position, (name, value) in enumerate(pairs):
        if name not in pattern.left_names:
            ctx.error("E210", f"the size of `{name}` is given, but `{name}` is not an axis of the pattern",
                      at=("sizes", position), label="unknown axis name")
        given[name] = size_attr(ctx, value, ("sizes", position), f"the size of `{name}`")
    return given


def _solve_sizes(ctx: ShapeContext, x: TensorType, pattern: Pattern, given: dict[str, Dim]) -> dict[str, Dim]:
    """Every elementary axis size, solving each input group for its one unknown name."""
    known = dict(given)
    for axis, (group, dim) in enumerate(zip(pattern.left, x.shape)):
        unknown = [name for name in group if name not in known]
        if len(unknown) > 1:
            ctx.error("E210", f"cannot infer the sizes of {' and '.join(f'`{n}`' for n in unknown)} in "
                      f"`{group_text(group)}`", at="pattern", label=f"axis {axis} has size {dim}",
                      helps=(f"give all but one of them, e.g. `{unknown[-1]}=...`",),
                      candidates=_named_size_candidates(ctx, x, axis, group, unknown))
        part = ctx.normalize(product(known[name] for name in group if name in known))
        if unknown:
            known[unknown[0]] = _divide(ctx, x, axis, dim, part, group, unknown[0])
        else:
            ctx.require_equal(part, dim, code="E210", at="pattern",
                              message=f"`{group_text(group)}` has size {part}, but axis {axis} of {x} has {dim}",
                              label=f"axis {axis} is {dim}")
    return known


def _named_size_candidates(ctx: ShapeContext, x: TensorType, axis: int, group, unknown: list) -> list:
    """`(b f)` over an axis that holds the atoms `B` and `num_frame`: give `f = num_frame`, the name the data has
    for that part (`f` rather than `b`: one given size settles the group, and the inner one is the usual)."""
    atoms = ctx.axes(x)[axis]
    if len(atoms) != len(group) or len(unknown) != len(group) or not is_named(atoms[-1]):
        return []
    keyword = f", {group[-1]} = {atoms[-1].name}"
    return [Fix(f"give the size of `{group[-1]}`: `{group[-1]} = {atoms[-1].name}`",
                (Edit(before_end(ctx.span), keyword),), safe=False)]


def _merged_group_candidates(ctx: ShapeContext, x: TensorType, pattern: Pattern) -> list:
    """A pattern naming one axis more than the input has, where an axis of the input holds two atoms (`b f n c`
    for `[B, F, (17·2)]`): name that axis as the group of two (`b f (n c)`), giving the inner size."""
    quoted = ctx.text_of("pattern")
    if quoted is None or "pattern" not in ctx.spans or len(pattern.left) != x.rank + 1:
        return []
    candidates = []
    for axis, atoms in enumerate(ctx.axes(x)):
        names = pattern.left[axis:axis + 2]
        if len(atoms) != 2 or any(len(group) != 1 for group in names):
            continue
        groups = [*pattern.left[:axis], (names[0][0], names[1][0]), *pattern.left[axis + 2:]]
        left = " ".join(group_text(group) for group in groups)
        right = quoted.strip()[1:-1].split("->", 1)[1].strip()
        quote = quoted.strip()[0]
        inner = atoms[1].name if is_named(atoms[1]) else str(atoms[1].size)
        edits = (Edit(ctx.span_of("pattern"), f"{quote}{left} -> {right}{quote}"),
                 Edit(before_end(ctx.span), f", {names[1][0]} = {inner}"))
        candidates.append(Fix(f"name axis {axis} as the group `{group_text(groups[axis])}` it holds, with "
                              f"`{names[1][0]} = {inner}`", edits, safe=False))
    return candidates


def _divide(ctx: ShapeContext, x: TensorType, axis: int, dim: Dim, part: Dim, group, name: str) -> Dim:
    """`dim / part` for an input group: E216 when provably not whole, W300 when unproved, E210 when inexpressible."""
    division = divide(ctx.facts, dim, part)
    if division.divides is Tri.NO:
        ctx.error("E216", f"axis {axis} of {x} has size {dim}, which `{group_text(group)}` cannot split into "
                  f"parts of {part}", at="pattern", label=f"{dim} is not a multiple of {part}")
    if division.quotient is None:
        # A quotient by a symbol no fact settles has no dim to stand for it (dims divide by constants only).
        ctx.error("E210", f"cannot infer the size of `{name}`: poseir cannot prove that {division.dividend} is a "
                  f"multiple of {division.divisor}", at="pattern", label=f"axis {axis} has size {dim}",
                  helps=(unproved_division_help(division, f"give the size of `{name}` too (`{name} = ...`)"),),
                  candidates=[product_fact_candidates(ctx.span, division.dividend, division.divisor)])
    if division.divides is Tri.UNKNOWN:
        warn_unproved_multiple(ctx, division.dividend, division.divisor, at="pattern")
    return division.quotient


def _rearrange_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Parse the pattern, solve the axis sizes and build the output shape."""
    (x,) = types
    try:
        pattern = parse_pattern(attrs["pattern"])
    except PatternError as error:
        ctx.error("E210", str(error), at="pattern", label="in this pattern")
    if len(pattern.left) != x.rank:
        ctx.error("E210", f"the left side of the pattern names {len(pattern.left)} axes, but the input {x} "
                  f"has rank {x.rank}", at="pattern", label=f"expected {x.rank} axes on the left",
                  candidates=_merged_group_candidates(ctx, x, pattern))
    known = _solve_sizes(ctx, x, pattern, _given_sizes(ctx, attrs["sizes"], pattern))
    shape = tuple(ctx.normalize(product(known[name] for name in group)) for group in pattern.right)
    named = _name_atoms(ctx, x, pattern, known, attrs["pattern"])
    atoms = tuple(canonical([atom for name in group for atom in named[name]]) for group in pattern.right)
    return [TensorType(x.dtype, shape, atoms)]


def _name_atoms(ctx: ShapeContext, x: TensorType, pattern: Pattern, known: dict, text: str) -> dict:
    """Each elementary name's atoms: its part of the input axis it splits (E206 if the split's order is wrong)."""
    source = ctx.axes(x)
    named: dict = {}
    for axis, group in enumerate(pattern.left):
        sizes = [ctx.normalize(known[name]) for name in group]
        pieces = read(source[axis], sizes, ctx.facts)
        if pieces is None:
            _check_split_order(ctx, x, pattern, axis, sizes, source[axis], text)
            pieces = tuple(ctx.fresh(0, axis * 16 + index, size) for index, size in enumerate(sizes))
        named.update(zip(group, pieces))
    return named


def _check_split_order(ctx: ShapeContext, x: TensorType, pattern: Pattern, axis: int, sizes: list, held,
                       text: str) -> None:
    """E206 when a group like `(f b)` splits an axis that holds `b` before `f`: the names are swapped."""
    group = pattern.left[axis]
    if len(group) < 2 or len(group) > 6:
        return
    for order in itertools.permutations(range(len(group))):
        if list(order) == list(range(len(group))) or read(held, [sizes[index] for index in order], ctx.facts) is None:
            continue
        fixed_group = tuple(group[index] for index in order)
        left = " ".join(group_text(fixed_group if index == axis else part) for index, part in enumerate(pattern.left))
        right = " ".join(group_text(part) for part in pattern.right)
        replacement = f'"{left} -> {right}"'
        fixes = (ctx.fix(f"split in the stored order: `{group_text(fixed_group)}`", replacement, at="pattern",
                         safe=False),) if ctx.text_of("pattern") else ()
        ctx.error("E206", f"`{group_text(group)}` splits axis {axis} of {x.describe()} in another order than it "
                  "is stored", at="pattern", label=f"axis {axis} holds {axis_text(held, x.shape[axis])}",
                  notes=("the left side of a pattern describes how the input is laid out; naming the parts of a "
                         "merged axis in another order reads the data as if it were transposed",),
                  helps=() if fixes else (f"write `{group_text(fixed_group)}`",), fixes=fixes)


def _rearrange_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Reshape to the elementary axes, transpose, reshape to the output groups."""
    x = np.asarray(arrays[0])
    pattern = parse_pattern(attrs["pattern"])
    known = {name: size.value for name, size in elementary_sizes(Facts(), pattern, x.shape, attrs["sizes"]).items()}
    elementary = x.reshape([known[name] for name in pattern.left_names])
    order = [pattern.left_names.index(name) for name in pattern.right_names]
    moved = np.transpose(elementary, order)
    return [moved.reshape([int(np.prod([known[name] for name in group])) for group in pattern.right])]


def elementary_sizes(facts, pattern: Pattern, shape, sizes) -> dict[str, Dim]:
    """Every elementary axis size as a dim, solved from the input shape (no diagnostics: already checked)."""
    known = {name: Dim.of(value) for name, value in (sorted(sizes.items()) if isinstance(sizes, dict) else sizes)}
    for group, dim in zip(pattern.left, shape):
        unknown = [name for name in group if name not in known]
        if unknown:
            known[unknown[0]] = divide(facts, dim, product(known[name] for name in group if name in known)).quotient
    return known


def _rearrange_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Reshape to the elementary axes, Transpose, Reshape to the output groups; sizes from runtime dims."""
    pattern = parse_pattern(attrs["pattern"])
    known = elementary_sizes(ctx.facts, pattern, ctx.input_types[0].shape, attrs["sizes"])
    result = names[0]
    if any(len(group) != 1 for group in pattern.left):
        result = onnx_reshape(ctx, result, [known[name] for name in pattern.left_names])
    order = [pattern.left_names.index(name) for name in pattern.right_names]
    if order != sorted(order):
        result = ctx.node("Transpose", [result], perm=order)
    if any(len(group) != 1 for group in pattern.right):
        result = onnx_reshape(ctx, result, ctx.output_types[0].shape)
    return [result if result != names[0] else ctx.node("Identity", [result])]


define(
    name="rearrange",
    signature=(Param("x", TENSOR), Param("pattern", ATTR), Param("sizes", KEYWORDS, ())),
    infer=_rearrange_infer,
    run=_rearrange_run,
    onnx=_rearrange_onnx,
    doc="einops-style axis rearrangement, e.g. `b t j c -> b (j c) t`; `sizes` names split sizes.",
    samples=(
        (("B, T, 17, 2",), {"pattern": "b t j c -> b (j c) t"}),
        (("B*F, P, C",), {"pattern": "(b f) p c -> b f (p c)", "sizes": (("f", parse_dim("F")),)}),
        (("B*F, N, C",), {"pattern": "(b f) n c -> (b n) f c", "sizes": (("f", parse_dim("F")),)}),
        (("B, 51, F",), {"pattern": "b (j c) f -> b f j c", "sizes": (("c", 3),)}),
        (("B, T, C",), {"pattern": "b t c -> b () t c"}),
        (("N, 17, C",), {"pattern": "(b f) n c -> b f n c", "sizes": (("f", 3),)}, ("N % 3 == 0",)),
    ),
)
