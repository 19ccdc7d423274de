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
