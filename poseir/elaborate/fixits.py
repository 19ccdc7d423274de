"""Fix-its the elaborator's diagnostics offer: a keyword respelled, an argument converted or dropped, a
declared type rewritten. Each is a candidate the checker verifies by re-checking the file
(`poseir.diagnostics.repair`), so one that does not make the program check is never offered."""

from __future__ import annotations

from poseir.diagnostics.record import Edit, Fix
from poseir.syntax import ast
from poseir.syntax.source import Span


def keyword_span(argument: ast.Argument) -> Span:
    """The span of the keyword of `name = value` (a keyword never spans lines)."""
    span, length = argument.span, len(argument.name or "")
    return Span(span.path, span.start, span.start + length, span.line, span.column, span.line, span.column + length)


def respelled_keyword(argument: ast.Argument, guess: str) -> Fix:
    """`dilaton = 3` written `dilation = 3`."""
    return Fix(f"write the keyword `{guess}`", (Edit(keyword_span(argument), guess),), safe=False)


def converted(node: ast.Node, text: str, function: str) -> Fix:
    """`width * mlp_ratio` written `int(width * mlp_ratio)`."""
    return Fix(f"convert it with `{function}(...)`", (Edit(node.span, f"{function}({text})"),), safe=False)


def dropped_arguments(call: ast.Call, count: int) -> list:
    """Each way to drop one of `call`'s positional arguments, when it was given one too many (deferred: the
    edit takes the separating comma with it, which needs the file's text)."""
    positional = [argument for argument in call.arguments if argument.name is None]
    if count != 1 or len(positional) != len(call.arguments) or len(positional) < 2:
        return []

    def build(index) -> list:
        fixes = []
        for position, argument in enumerate(positional):
            # The comma before it, or for the first argument the one after.
            start = positional[position - 1].span.end if position else argument.span.start
            end = argument.span.end if position else positional[1].span.start
            gone = index.span(argument.span.path, start, end)
            fixes.append(Fix(f"drop the argument `{index.text(argument.span)}`", (Edit(gone, ""),), safe=False))
        return fixes

    return [build]


def untyped(param: ast.ForwardParam) -> list:
    """A forward input declared with a tensor type that is given a module: its type removed (deferred: the
    edit starts at the `:`, which needs the file's text)."""
    if param.type is None:
        return []

    def build(index) -> list:
        source = index.sources.get(param.span.path)
        colon = source.text.rfind(":", param.span.start, param.type.span.start) if source is not None else -1
        if colon < 0:
            return []
        return [Fix(f"declare `{param.name}` without a type, as it takes a module",
                    (Edit(index.span(param.span.path, colon, param.type.span.end), ""),), safe=False)]

    return [build]


def declared_size(node: ast.Node, text: str, expected, found) -> tuple:
    """A declared size that the value does not have, rewritten to the value's: a literal that differs
    (`joints * 3` for `joints * 2`), or an offset the declaration forgot (`T` for `T - 6`, the value's size
    written with the same symbols). Only the declaration changes: the program computes what it did."""
    from poseir.ops.repairs import with_literal_scaled  # ops build on the elaborator's values

    scaled = with_literal_scaled(text, expected, found)
    if scaled is None and not found.is_const and found.symbols and found.symbols <= expected.symbols:
        scaled = str(found)
    if scaled is None:
        return ()
    return (Fix(f"declare the size the value has: `{scaled}`", (Edit(node.span, scaled),), safe=False),)


def continued_expression(statement: ast.ExprStatement) -> list:
    """A line starting with an operator (`+ 20.0 * v`) that continues the assignment or return above it: the
    two joined by parentheses around the whole expression (deferred: the statement above is found by span)."""

    def build(index) -> list:
        from poseir.syntax.index import previous_statement

        above = previous_statement(index, statement)
        if isinstance(above, ast.Assign):
            start = above.value
        elif isinstance(above, ast.Return) and len(above.values) == 1:
            start = above.values[0]
        else:
            return []
        path = start.span.path
        edits = (Edit(index.span(path, start.span.start, start.span.start), "("),
                 Edit(index.span(path, statement.expr.span.end, statement.expr.span.end), ")"))
        return [Fix("continue the expression above: put the whole of it in parentheses", edits, safe=False)]

    return [build]


def overshooting_index(item: ast.Node, overshoot: int) -> list:
    """`widths[i]` reaching `overshoot` past the end inside `for i in a..b`: the loop stopping that much earlier
    (`1..len(widths) + 1` for `1..len(widths)`), or the index taken that much lower (`widths[i - 1]`); the rest
    of the program (how many layers the declared output allows) tells which (deferred: the loop is found by
    span)."""
    if not isinstance(item, ast.Name):
        return []

    def build(index) -> list:
        from poseir.ops.broadcast_repairs import shift_text

        fixes = []
        loop = next((node for node in reversed(index.ancestors(item)) if isinstance(node, ast.For)
                     and node.names == (item.id,)), None)
        if loop is not None and isinstance(loop.iterable, ast.RangeExpr):
            stop = loop.iterable.stop
            shifted = shift_text(index.text(stop.span), -overshoot)
            if shifted is not None:
                fixes.append(Fix(f"stop the loop {overshoot} earlier: `{shifted[0]}`", (Edit(stop.span, shifted[0]),),
                                 safe=False))
        lowered = f"{item.id} - {overshoot}"
        fixes.append(Fix(f"index {overshoot} lower: `{lowered}`", (Edit(item.span, lowered),), safe=False))
        return fixes

    return [build]


_SCALED = ("mul", "add", "sub", "div")  # arithmetic with a constant keeps what a value counts
_REDUCTIONS = ("sum", "mean", "amax", "amin")


def size_of_reduced_axis(producers: dict, name: str) -> tuple:
    """A tensor used as a size (`x.view(B, T, joints * 2)` with `joints = x.sum(2)`) that a reduction over one
    axis made: the reduction replaced by that axis's size (`x.shape[2]`), the count that was meant."""
    node = producers.get(name)
    while node is not None and node.op in _SCALED:
        sources = [producers.get(value) for value in node.inputs]
        kept = [source for source in sources if source is None or source.op not in ("constant", "size")]
        node = kept[0] if len(kept) == 1 else None
    if node is None or node.op not in _REDUCTIONS:
        return ()
    attrs = dict(node.attrs)
    texts = {key: text for key, _, text in node.arguments}
    if not isinstance(attrs.get("dim"), int) or attrs.get("keepdim") or not texts.get(0):
        return ()
    from poseir.ops.common import receiver_text  # ops build on the elaborator's values

    size = f"{receiver_text(texts[0])}.shape[{attrs['dim']}]"
    return (Fix(f"use the size of the axis the reduction ran over: `{size}`", (Edit(node.span, size),), safe=False),)
