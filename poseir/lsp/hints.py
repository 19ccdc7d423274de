"""Inlay hints: the inferred type after each assignment in a forward and on forward inputs."""

from __future__ import annotations

from lsprotocol import types

from poseir.lsp.documents import CheckedDocument, Positions
from poseir.lsp.render import describe, is_shape_value, summarize
from poseir.syntax import ast


def inlay_hints(document: CheckedDocument, start: int, end: int, encoding: str) -> list[types.InlayHint]:
    """Hints for the statements and forward inputs between two offsets of the document."""
    positions = Positions(document.source(document.path), encoding)
    hints: list[types.InlayHint] = []
    for forward in _forwards(document.compilation.program.entry.tree):
        if forward.span.end < start or forward.span.start > end:
            continue
        for parameter in forward.params:
            hint = _parameter_hint(document, parameter, positions)
            if hint is not None:
                hints.append(hint)
        for assign in _assignments(forward.body):
            if start <= assign.span.end <= end:
                hint = _assignment_hint(document, assign, positions)
                if hint is not None:
                    hints.append(hint)
    return sorted(hints, key=lambda hint: (hint.position.line, hint.position.character))


def _parameter_hint(document: CheckedDocument, parameter: ast.ForwardParam, positions: Positions) -> types.InlayHint | None:
    """`: T` after an untyped input; `= f32[B, 17, 32]` after a type whose pattern dims the calls bind."""
    texts = [describe(binding.value) for binding, _ in document.bindings(parameter.span, parameter.name)
             if is_shape_value(binding.value)]
    if not texts:
        return None
    shown = summarize(texts)
    if parameter.type is None:
        name_end = parameter.span.start + document.text[parameter.span.start:parameter.span.end].find(parameter.name)
        return _hint(positions, name_end + len(parameter.name), f": {shown}", types.InlayHintKind.Type)
    declared = " ".join(document.text[parameter.type.span.start:parameter.type.span.end].split())
    if list(dict.fromkeys(texts)) == [declared]:
        return None
    return _hint(positions, parameter.type.span.end, f" = {shown}", types.InlayHintKind.Type)


def _assignment_hint(document: CheckedDocument, assign: ast.Assign, positions: Positions) -> types.InlayHint | None:
    """`: f32[B, T, 17, 3]` at the end of an assignment (one type per target)."""
    parts = []
    for target in assign.targets:
        if target.on_self:
            return None
        texts = [describe(binding.value) for binding, _ in document.bindings(target.span, target.name)
                 if is_shape_value(binding.value)]
        if not texts:
            return None
        parts.append(summarize(texts))
    label = parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"
    if assign.annotation is not None and " ".join(
            document.text[assign.annotation.span.start:assign.annotation.span.end].split()) == label:
        return None
    return _hint(positions, assign.span.end, f": {label}", types.InlayHintKind.Type)


def _hint(positions: Positions, offset: int, label: str, kind) -> types.InlayHint:
    return types.InlayHint(position=positions.position(offset), label=label, kind=kind, padding_left=True)


def _forwards(tree: ast.File):
    """Every forward of every module of the file."""
    for item in tree.items:
        if isinstance(item, ast.ModuleDecl):
            for statement in item.body:
                if isinstance(statement, ast.Forward):
                    yield statement


def _assignments(body):
    """Assignments of a forward body, inside loops, conditions and mode blocks too."""
    for statement in body:
        if isinstance(statement, ast.Assign):
            yield statement
        elif isinstance(statement, (ast.For, ast.ModeBlock)):
            yield from _assignments(statement.body)
        elif isinstance(statement, ast.If):
            for _, branch in statement.branches:
                yield from _assignments(branch)
            yield from _assignments(statement.otherwise or ())
