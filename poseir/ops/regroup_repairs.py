"""The candidate repair of W310's regrouped operands: rearrange one to the other's layout.

`s + t` with `s` holding `[(B·F), J, C]` and `t` holding `[(B·J), F, C]` (MixSTE's temporal output added
to the spatial stream before being rearranged back) becomes `s + rearrange(t, "(b j) f c -> (b f) j c",
j = num_joints)`: the pattern is read off the atoms. When the operation rebinds one operand
(`s = s + t`), that operand's layout is the one the program carries on with, so only the other is
rearranged; otherwise both are candidates, and re-checking decides.
"""

from __future__ import annotations

from poseir.ir.axes import Axes, is_named
from poseir.ops.registry import ShapeContext
from poseir.syntax import ast


def regrouped_candidates(ctx: ShapeContext, left: Axes, right: Axes, differing: list) -> list:
    """Rearranging the right operand to the left's layout, or the left to the right's (see the module doc)."""
    texts = ctx.text_of(0), ctx.text_of(1)
    if None in texts or len(left) != len(right):
        return []
    letters = _letters(left, right, {mine for mine, _ in differing})
    if letters is None:
        return []
    candidates = []
    for at, source, target in ((1, right, left), (0, left, right)):
        rearranged = _rearranged(texts[at], source, target, letters, {mine for mine, _ in differing})
        if rearranged is not None:
            fix = ctx.fix(f"rearrange the {'right' if at == 1 else 'left'} operand to the other's layout: "
                          f"`{rearranged}`", rearranged, at=at, safe=False)
            candidates.append(fix if at == 1 else _unless_rebound(ctx, texts[0], fix))
    return candidates


def _letters(left: Axes, right: Axes, differing: set) -> dict | None:
    """A pattern letter for each atom of the differing axes and for each other axis position."""
    letters: dict = {}
    used: set = set()
    for position, axis in enumerate(left):
        keys = [atom.key for atom in axis] if position in differing else [("position", position)]
        names = [atom.name for atom in axis] if position in differing else ["c"]
        for key, name in zip(keys, names):
            if key not in letters:
                letters[key] = _fresh(name, used)
    for axis in (right[position] for position in differing):
        if any(atom.key not in letters for atom in axis):
            return None  # the right side holds atoms the left does not: not a regrouping
    return letters


def _fresh(name: str, used: set) -> str:
    """A short lowercase letter for an atom: `f` for `num_frame`, `b` for `B`, made unique with a digit."""
    base = (name.split("_")[-1][:1] or "a").lower()
    base = base if base.isalpha() else "a"
    letter, number = base, 2
    while letter in used:
        letter, number = f"{base}{number}", number + 1
    used.add(letter)
    return letter


def _rearranged(text: str, source: Axes, target: Axes, letters: dict, differing: set) -> str | None:
    """`rearrange(text, "(b j) f c -> (b f) j c", j = num_joints)` taking `source`'s layout to `target`'s."""
    sides, sizes = [], []
    for axes, is_source in ((source, True), (target, False)):
        groups = []
        for position, axis in enumerate(axes):
            if position not in differing:
                groups.append(letters[("position", position)])
                continue
            names = [letters[atom.key] for atom in axis]
            groups.append(names[0] if len(names) == 1 else f"({' '.join(names)})")
            if is_source and len(axis) > 1:
                for atom in axis[1:]:
                    if not is_named(atom):
                        return None
                    sizes.append(f"{letters[atom.key]} = {atom.name}")
        sides.append(" ".join(groups))
    keywords = "".join(f", {size}" for size in sizes)
    return f'rearrange({text}, "{sides[0]} -> {sides[1]}"{keywords})'


def _unless_rebound(ctx: ShapeContext, left_text: str, fix):
    """The fix rearranging the left operand, unless the operation rebinds it (`s = s + t`): deferred."""
    span, name = ctx.span, left_text.strip()

    def build(index) -> list:
        statement = index.enclosing(span, ast.Assign)
        if (statement is not None and (statement.value.span.start, statement.value.span.end) == (span.start, span.end)
                and [target.name for target in statement.targets] == [name]):
            return []
        return [fix]

    return build
