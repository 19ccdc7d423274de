"""Find surface nodes by span: what repairs read to edit code away from a diagnostic.

A shape rule knows spans (the call, a layer's constructor, a parameter's declaration) but not the
syntax around them; a repair that edits a constructor's argument or a forward's `where` clause
looks them up here, in the parsed files of one compilation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from poseir.syntax import ast
from poseir.syntax.source import SourceMap, Span


class SourceIndex:
    """The parsed files of one compilation (user files and the prelude), searchable by span."""

    def __init__(self, trees: list[ast.File], sources: SourceMap, builtin: dict[str, ast.ModuleDecl] | None = None):
        self.trees = list(trees)
        self.builtin = dict(builtin or {})
        self.sources = sources
        self._nodes: list[tuple[ast.Node, tuple[ast.Node, ...]]] | None = None

    @classmethod
    def of_program(cls, program) -> SourceIndex:
        """The index of a loaded `poseir.elaborate.program.Program` (its files and the prelude's layers)."""
        user = [unit.tree for unit in program.units.values() if not unit.builtin]
        layers = {}
        scope = program.entry.scope
        while scope is not None:  # the prelude's layers are bound in a scope outside the file's
            for name, value in scope.names.items():
                declaration = getattr(value, "declaration", None)
                if getattr(value, "builtin", False) and isinstance(declaration, ast.ModuleDecl):
                    layers.setdefault(name, declaration)
            scope = scope.parent
        return cls(user, program.sources, layers)

    def text(self, span: Span) -> str | None:
        """The source text a span covers."""
        source = self.sources.get(span.path)
        return source.text[span.start:span.end] if source is not None else None

    def span(self, path: str, start: int, end: int) -> Span | None:
        """A span of a file by character offsets."""
        source = self.sources.get(path)
        return source.span(start, end) if source is not None else None

    def nodes(self) -> list[tuple[ast.Node, tuple[ast.Node, ...]]]:
        """Every node of the user's files with its ancestors (outermost first), in source order."""
        if self._nodes is None:
            self._nodes = []
            for tree in self.trees:
                self._nodes.extend(_walk(tree, ()))
        return self._nodes

    def at(self, span: Span, kind: type = ast.Node) -> ast.Node | None:
        """The outermost node of `kind` covering exactly `span`."""
        return next((node for node, _ in self.nodes() if isinstance(node, kind) and _same(node.span, span)), None)

    def enclosing(self, span: Span, kind: type) -> ast.Node | None:
        """The innermost node of `kind` whose span contains `span`."""
        found = None
        for node, _ in self.nodes():
            if isinstance(node, kind) and _contains(node.span, span):
                found = node  # source order visits outer nodes first, so the last match is innermost
        return found

    def ancestors(self, node: ast.Node) -> tuple[ast.Node, ...]:
        """The nodes containing `node`, outermost first."""
        return next((parents for candidate, parents in self.nodes() if candidate is node), ())

    def builtin_module(self, name: str) -> ast.ModuleDecl | None:
        """A prelude layer's declaration (`Linear`, `Conv1d`), for its hyper-parameters and parameters."""
        return self.builtin.get(name)


def call_argument(call: ast.Call, module: ast.ModuleDecl, name: str) -> ast.Argument | None:
    """The argument that gives hyper-parameter `name` in `Module(...)`: by keyword, else by position."""
    for argument in call.arguments:
        if argument.name == name:
            return argument
    names = [param.name for param in module.hyper_params]
    positional = [argument for argument in call.arguments if argument.name is None]
    index = names.index(name) if name in names else None
    return positional[index] if index is not None and index < len(positional) else None


def _walk(node: ast.Node, parents: tuple) -> Iterator[tuple[ast.Node, tuple]]:
    """Every node below `node` (itself first), each with its ancestors."""
    yield node, parents
    inner = (*parents, node)
    for field in dataclasses.fields(node):
        yield from _children(getattr(node, field.name), inner)


def _children(value, parents: tuple) -> Iterator[tuple[ast.Node, tuple]]:
    """The nodes held by one field: a node, or nodes nested in tuples."""
    if isinstance(value, ast.Node):
        yield from _walk(value, parents)
    elif isinstance(value, tuple):
        for item in value:
            yield from _children(item, parents)


def _same(first: Span, second: Span) -> bool:
    """Two spans cover the same characters of the same file."""
    return (first.path, first.start, first.end) == (second.path, second.start, second.end)


def _contains(outer: Span, inner: Span) -> bool:
    """`outer` covers `inner`."""
    return outer.path == inner.path and outer.start <= inner.start and inner.end <= outer.end


def next_statement(index: SourceIndex, statement: ast.Node) -> ast.Node | None:
    """The statement after `statement` in the same block (None at the end of it)."""
    block = _block_of(index, statement)
    position = next((i for i, item in enumerate(block) if item is statement), None)
    return block[position + 1] if position is not None and position + 1 < len(block) else None


def previous_statement(index: SourceIndex, statement: ast.Node) -> ast.Node | None:
    """The statement before `statement` in the same block (None at its start)."""
    block = _block_of(index, statement)
    position = next((i for i, item in enumerate(block) if item is statement), None)
    return block[position - 1] if position else None


def _block_of(index: SourceIndex, statement: ast.Node) -> tuple:
    """The tuple of statements holding `statement` (a forward's body, a loop's, a branch's)."""
    parents = index.ancestors(statement)
    if not parents:
        return ()
    parent = parents[-1]
    for field in dataclasses.fields(parent):
        value = getattr(parent, field.name)
        for block in (value, *(item for item in value if isinstance(item, tuple))) if isinstance(value, tuple) else ():
            if isinstance(block, tuple) and any(item is statement for item in block):
                return block
    return ()


def statement_lines(index: SourceIndex, statement: ast.Node) -> Span | None:
    """The whole lines a statement occupies (indentation, a trailing comment and the newline included), for
    deleting it; None when it shares a line with other code."""
    source = index.sources.get(statement.span.path)
    if source is None:
        return None
    text = source.text
    start = text.rfind("\n", 0, statement.span.start) + 1
    end = text.find("\n", statement.span.end)
    end = len(text) if end < 0 else end + 1
    before, after = text[start:statement.span.start], text[statement.span.end:end].strip()
    if before.strip() or (after and not after.startswith("#")):
        return None
    return source.span(start, end)
