"""The candidate repairs of an elementwise op whose operands do not broadcast (E200).

Each looks at what the operands are and where they came from: a parameter declared with a size the
data names otherwise, a merged axis (`(B·T)`) the other operand holds apart, a constant list one
entry short, a slice whose bounds are off by one, an operand added on the wrong side of a rearrange.
They are candidates: re-checking the program with each keeps the one that makes it check.
"""

from __future__ import annotations

import re

from poseir.diagnostics.record import Edit, Fix
from poseir.ir.dims import Tri
from poseir.ir.graph import TensorType
from poseir.ops.common import receiver_text
from poseir.ops.registry import ShapeContext
from poseir.ops.repairs import atom_names, parameter_axis, resize_parameter

SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
IDENTITY = {"add": "0.0", "sub": "0.0", "mul": "1.0", "div": "1.0"}


def broadcast_candidates(ctx: ShapeContext, types: list, ats: list, first: int, second: int, position: int,
                         rank: int) -> list:
    """Every repair of the operands `first` and `second` that disagree at `position` (counted in `rank` axes)."""
    if len(types) != 2 or ctx.op not in SYMBOLS:
        return []
    candidates = []
    for mine, theirs in ((first, second), (second, first)):
        candidates += _parameter_resize(ctx, types, ats, mine, theirs, position, rank)
        candidates += _padded_constant(ctx, types, ats, mine, theirs, position, rank)
        candidates += _shifted_slice(ctx, types, ats, mine, theirs, position, rank)
    candidates += _unmerged_axis(ctx, types, ats)
    return candidates


def _axis_of(type_: TensorType, position: int, rank: int) -> int | None:
    """The operand's own axis at broadcast position `position` (None when it has no such axis)."""
    axis = position - (rank - type_.rank)
    return axis if axis >= 0 else None


def _parameter_resize(ctx, types, ats, mine, theirs, position, rank) -> list:
    """A parameter declared with another size than the data's axis has: declare it with the data's name for it
    (`Spatial_pos_embed[1, h36m16.J, C]` against joints the input calls `num_joints`)."""
    axis, other = _axis_of(types[mine], position, rank), _axis_of(types[theirs], position, rank)
    if axis is None or other is None:
        return []
    owner = parameter_axis(ctx, types[mine], ats[mine], axis)
    names = atom_names(ctx, types[theirs], ats[theirs], other)
    if owner is None or not names:
        return []  # an unnamed size on the data side may itself be the mistake
    return [resize_parameter(owner[0], owner[1], types[mine].shape[axis], types[theirs].shape[other], names,
                             numbers=False)]


def _padded_constant(ctx, types, ats, mine, theirs, position, rank) -> list:
    """A constant list one or more entries short of the last axis (a 2D sign vector on 3D poses): padded with
    the operation's identity, so the added coordinates are left as they are."""
    producer = ctx.producer(mine)
    text = ctx.text_of(ats[mine])
    if producer is None or producer.op != "constant" or text is None or types[mine].rank != 1 or position != rank - 1:
        return []
    wanted = types[theirs].shape[-1]
    if not wanted.is_const or not re.fullmatch(r"\s*\[[-+.\deE\s,]*\]\s*", text):
        return []
    entries = [entry.strip() for entry in text.strip()[1:-1].split(",") if entry.strip()]
    if len(entries) >= wanted.value:
        return []
    padded = "[" + ", ".join(entries + [IDENTITY[ctx.op]] * (wanted.value - len(entries))) + "]"
    return [ctx.fix(f"give the constant one entry per coordinate, the new ones leaving them unchanged: `{padded}`",
                    padded, at=ats[mine], safe=False)]


def _shifted_slice(ctx, types, ats, mine, theirs, position, rank) -> list:
    """An operand sliced along the mismatched axis to a length off by a few: one bound moved to match.

    A bound whose text ends in the extra `+ 1` is fixed by removing it; such removals are offered
    alone when there are any (an off-by-one the user wrote out is the likelier mistake than one
    to add on the other end).
    """
    producer = ctx.producer(mine)
    axis, other = _axis_of(types[mine], position, rank), _axis_of(types[theirs], position, rank)
    if producer is None or producer.op != "slice" or axis is None or other is None:
        return []
    attrs = dict(producer.attrs)
    if attrs.get("step", 1) != 1 or attrs.get("axis") % types[mine].rank != axis:
        return []
    delta = ctx.normalize(types[theirs].shape[other] - types[mine].shape[axis])
    if not delta.is_const or delta.value == 0 or abs(delta.value) > 4:
        return []
    arguments = {key: (span, text) for key, span, text in producer.arguments}
    found = []
    for bound, change in (("start", -delta.value), ("stop", delta.value)):
        if bound not in arguments or not arguments[bound][1]:
            continue
        span, text = arguments[bound]
        shifted = shift_text(text, change)
        if shifted is not None:
            found.append((shifted[1], Fix(f"slice to `{shifted[0]}` for the {bound}, so that the lengths agree",
                                          (Edit(span, shifted[0]),), safe=False)))
    removals = [fix for kind, fix in found if kind != "added"]
    return removals or [fix for _, fix in found]


def shift_text(text: str, change: int) -> tuple[str, str] | None:
    """(`text` plus `change`, how) where how is "literal" (a number changed), "removed" (a trailing `+ k`
    dropped) or "added"; None for a negative bound that would reach 0 (it would mean the start of the axis)."""
    stripped = text.strip()
    if re.fullmatch(r"-?\d+", stripped):
        value = int(stripped) + change
        if int(stripped) < 0 and value >= 0:
            return None
        return str(value), "literal"
    match = re.fullmatch(r"(.+?)\s*([+-])\s*(\d+)", stripped)
    if match:
        current = int(match.group(3)) * (1 if match.group(2) == "+" else -1) + change
        if current == 0:
            return match.group(1), "removed"
        sign = "+" if current > 0 else "-"
        return f"{match.group(1)} {sign} {abs(current)}", "literal"
    sign = "+" if change > 0 else "-"
    return f"{stripped} {sign} {abs(change)}", "added"


def _unmerged_axis(ctx, types, ats) -> list:
    """One operand holds a merged axis (`(B·T)`) whose parts the other holds apart (`[1, T, 1, C]`): split it
    by its atoms for the operation and merge it back (`(x.unflatten(0, (B, T)) + e).flatten(0, 1)`)."""
    left, right = types
    if abs(left.rank - right.rank) != 1 or ctx.text_of(ats[0]) is None or ctx.text_of(ats[1]) is None:
        return []
    short = 0 if left.rank < right.rank else 1
    long_ = 1 - short
    candidates = []
    for axis, atoms in enumerate(ctx.axes(types[short], ats[short])):
        if len(atoms) != 2:
            continue
        split = types[short].shape[:axis] + tuple(atom.size for atom in atoms) + types[short].shape[axis + 1:]
        if not all(ctx.equal(mine, theirs) is Tri.YES or ctx.equal(mine, 1) is Tri.YES or
                   ctx.equal(theirs, 1) is Tri.YES for mine, theirs in zip(split, types[long_].shape)):
            continue
        sizes = ", ".join(_size_text(atom) for atom in atoms)
        texts = [receiver_text(ctx.text_of(ats[0])), receiver_text(ctx.text_of(ats[1]))]
        texts[short] = f"{texts[short]}.unflatten({axis}, ({sizes}))"
        whole = f"({texts[0]} {SYMBOLS[ctx.op]} {texts[1]}).flatten({axis}, {axis + 1})"
        candidates.append(ctx.fix(f"split axis {axis} into its parts for the operation, then merge it back: "
                                  f"`{whole}`", whole, safe=False))
    return candidates


def _size_text(atom) -> str:
    """How to write an atom's size: its name when it has one, else its number."""
    return atom.name if atom.key[0] in ("dim", "name") else str(atom.size)
