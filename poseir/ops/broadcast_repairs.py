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
from poseir.syntax import ast

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
        candidates += _sliced_parameter(ctx, types, ats, mine, theirs, position, rank)
    candidates += _unmerged_axis(ctx, types, ats)
    candidates += moved_operation(ctx, types, ats)
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
    # A parameter sized by a name the data has for one of its axes (`num_frame`) was made for that axis:
    # the operation is in the wrong place, not the declaration.
    axis_names = {atom.name for operand, at in zip(types, ats) for group in ctx.axes(operand, at) for atom in group}
    return [resize_parameter(owner[0], owner[1], types[mine].shape[axis], types[theirs].shape[other], names,
                             numbers=False, unless_named=axis_names)]


def _sliced_parameter(ctx, types, ats, mine, theirs, position, rank) -> list:
    """A parameter longer than the data along the axis, where the network made the data's length (a positional
    embedding for the full clip, met by the clip a strided layer shortened): its first part, as long as the
    data (`pos_embedding[:, :x.shape[1]]`). Against an input's own length the two disagree about the model
    (built for 81 frames, fed 27), which no edit here settles."""
    axis, other = _axis_of(types[mine], position, rank), _axis_of(types[theirs], position, rank)
    texts = ctx.text_of(ats[mine]), ctx.text_of(ats[theirs])
    if axis is None or other is None or None in texts or parameter_axis(ctx, types[mine], ats[mine], axis) is None:
        return []
    atoms = ctx.axes(types[theirs], ats[theirs])[other]
    if not atoms or any(atom.key[0] != "born" or atom.key[1] not in ctx.nodes for atom in atoms):
        return []
    if ctx.facts.greater(types[mine].shape[axis], types[theirs].shape[other]) is not Tri.YES:
        return []
    subscript = ", ".join([":"] * axis + [f":{receiver_text(texts[1])}.shape[{other}]"])
    sliced = f"{receiver_text(texts[0])}[{subscript}]"
    return [ctx.fix(f"take the first part of the parameter, as long as the data: `{sliced}`", sliced, at=ats[mine],
                    safe=False)]


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
        if not all(ctx.provably_equal(mine, theirs) or ctx.provably_equal(mine, 1) or
                   ctx.provably_equal(theirs, 1) for mine, theirs in zip(split, types[long_].shape)):
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


# --------------------------------------------------------------------------- across a rearrange

LAYOUT_OPS = ("rearrange", "reshape", "permute", "transpose", "flatten", "unflatten")


def moved_operation(ctx: ShapeContext, types: list, ats: list) -> list:
    """`x = x + P` on the wrong side of a rearrange of `x`: apply it before the rearrange that made `x`, or after
    the one that uses it next, where `P` lines up with the axes it was made for."""
    texts = [ctx.text_of(ats[0]), ctx.text_of(ats[1])]
    if None in texts or ctx.op not in SYMBOLS:
        return []
    candidates = [_after_consumer(ctx, texts)]
    producer = ctx.producer(0)
    if producer is not None and producer.op in LAYOUT_OPS and producer.inputs and producer.inputs[0] in ctx.values:
        source = ctx.values[producer.inputs[0]].type
        if _broadcasts_to(ctx, types[1], source):
            candidates.append(_before_producer(ctx, texts, producer))
    return candidates


def _broadcasts_to(ctx: ShapeContext, small: TensorType, big: TensorType) -> bool:
    """Every axis of `small` provably 1 or equal to `big`'s, aligned from the right, with no extra axes."""
    if small.rank > big.rank:
        return False
    return all(ctx.provably_equal(mine, 1) or ctx.provably_equal(mine, theirs)
               for mine, theirs in zip(small.shape, big.shape[big.rank - small.rank:]))


def _rebinding(index, span, name_text: str):
    """The statement `n = n OP P` whose value is the operation at `span` (n the left operand), or None."""
    statement = index.enclosing(span, ast.Assign)
    if (statement is None or (statement.value.span.start, statement.value.span.end) != (span.start, span.end)
            or len(statement.targets) != 1 or statement.targets[0].on_self or statement.targets[0].name != name_text):
        return None
    return statement


def _after_consumer(ctx: ShapeContext, texts: list):
    """Deferred: delete `x = x + P` and apply `+ P` to the layout call of `x` in the next statement."""
    span, name, other, symbol = ctx.span, texts[0].strip(), texts[1], SYMBOLS[ctx.op]

    def build(index) -> list:
        from poseir.syntax.index import next_statement, statement_lines

        statement = _rebinding(index, span, name)
        following = next_statement(index, statement) if statement is not None else None
        lines = statement_lines(index, statement) if statement is not None else None
        if following is None or lines is None or _mentions(index, span, name, skip_left=True):
            return []
        uses = [node for node, _ in index.nodes() if isinstance(node, ast.Name) and node.id == name
                and following.span.start <= node.span.start < following.span.end]
        calls = [node for node, _ in index.nodes() if isinstance(node, ast.Call) and _layout_call(node)
                 and following.span.start <= node.span.start < following.span.end and _first_input(node) in uses]
        if len(uses) != 1 or len(calls) != 1:
            return []
        call = calls[0]
        whole = isinstance(following, (ast.Assign, ast.Return)) and any(
            value is call for value in ((following.value,) if isinstance(following, ast.Assign) else following.values))
        moved = f"{index.text(call.span)} {symbol} {other}"
        return [Fix(f"apply `{symbol} {other}` after the rearrange on the next line, where it lines up",
                    (Edit(lines, ""), Edit(call.span, moved if whole else f"({moved})")), safe=False)]

    return build


def _before_producer(ctx: ShapeContext, texts: list, producer):
    """Deferred: delete `x = x + P` and apply `+ P` to the input of the rearrange that made `x`."""
    span, name, other, symbol = ctx.span, texts[0].strip(), texts[1], SYMBOLS[ctx.op]
    argument = next(((arg_span, text) for key, arg_span, text in producer.arguments if key == 0), None)

    def build(index) -> list:
        from poseir.syntax.index import previous_statement, statement_lines

        statement = _rebinding(index, span, name)
        earlier = previous_statement(index, statement) if statement is not None else None
        lines = statement_lines(index, statement) if statement is not None else None
        if (argument is None or earlier is None or lines is None or not isinstance(earlier, ast.Assign)
                or [target.name for target in earlier.targets] != [name] or earlier.targets[0].on_self
                or not (earlier.span.start <= producer.span.start and producer.span.end <= earlier.span.end)
                or _mentions(index, span, name, skip_left=True)):
            return []
        moved = f"{receiver_text(argument[1])} {symbol} {other}"
        return [Fix(f"apply `{symbol} {other}` before the rearrange on the line above, where it lines up",
                    (Edit(lines, ""), Edit(argument[0], moved)), safe=False)]

    return build


def _mentions(index, span, name: str, skip_left: bool) -> bool:
    """Whether `name` occurs in the operation at `span` other than as its left operand."""
    names = [node for node, _ in index.nodes() if isinstance(node, ast.Name) and node.id == name
             and span.start <= node.span.start < span.end]
    return len(names) > (1 if skip_left else 0)


def _layout_call(call: ast.Call) -> bool:
    """A call of a layout op, as a function (`rearrange(x, ...)`) or a method (`x.reshape(...)`)."""
    function = call.function
    name = function.id if isinstance(function, ast.Name) else function.name if isinstance(function, ast.Attribute) \
        else None
    return name in LAYOUT_OPS or name == "view"


def _first_input(call: ast.Call):
    """The tensor a layout call applies to: its receiver, or its first argument."""
    if isinstance(call.function, ast.Attribute) and not isinstance(call.function.value, ast.SelfRef):
        return call.function.value
    positional = [argument.value for argument in call.arguments if argument.name is None]
    return positional[0] if positional else None
