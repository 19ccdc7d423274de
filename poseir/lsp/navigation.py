"""Go to definition, find references, the outline of a file and symbols across the workspace."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lsprotocol import types

from poseir.lsp.diagnostics import Converter
from poseir.lsp.documents import CheckedDocument, Positions
from poseir.lsp.symbols import FILE, name_span
from poseir.syntax import ast, parser
from poseir.syntax.source import SourceFile, Span

_MAX_WORKSPACE_FILES = 2000
_SKIPPED_DIRECTORIES = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist"}


def definition(document: CheckedDocument, offset: int, encoding: str) -> list[types.Location]:
    """Where the name at `offset` is defined (several places for a local assigned in a loop)."""
    occurrence = document.index.at(document.path, offset)
    if occurrence is None:
        return []
    converter = Converter(document, encoding)
    if occurrence.symbol.kind == FILE:
        return [types.Location(uri=converter.uri(occurrence.symbol.name),
                               range=types.Range(start=types.Position(line=0, character=0),
                                                 end=types.Position(line=0, character=0)))]
    return _locations(converter, (found.span for found in document.index.definitions(occurrence)))


def references(documents: list[CheckedDocument], offset: int, include_declaration: bool,
               encoding: str) -> list[types.Location]:
    """Every use of the name at `offset` of the first document, in its program and the other open ones."""
    document = documents[0]
    occurrence = document.index.at(document.path, offset)
    if occurrence is None or occurrence.symbol.kind == FILE:
        return []
    locations: dict[tuple, types.Location] = {}
    for other in documents:
        if other.index is None:
            continue
        converter = Converter(other, encoding)
        for found in other.index.of(occurrence.symbol.key):
            if (found.definition and not include_declaration) or found.span.path.startswith("<"):
                continue
            location = converter.location(found.span)
            if location is not None:
                key = (location.uri, location.range.start.line, location.range.start.character)
                locations.setdefault(key, location)
    return [locations[key] for key in sorted(locations)]


def _locations(converter: Converter, spans: Iterable[Span]) -> list[types.Location]:
    """LSP locations of spans, skipping those without a file."""
    found = [converter.location(span) for span in spans if span is not None]
    return [location for location in found if location is not None]


# ------------------------------------------------------------------ outline


def document_symbols(tree: ast.File, source: SourceFile, encoding: str) -> list[types.DocumentSymbol]:
    """Models, modules (hyper-parameters, layers and parameters, forwards with their inputs), dims,
    constants, skeletons and imports of one file, nested as written."""
    outline = _Outline(source, encoding)
    symbols: list[types.DocumentSymbol] = []
    for item in tree.items:
        symbols.extend(outline.item(item))
    return symbols


class _Outline:
    """Builds DocumentSymbols for one file."""

    def __init__(self, source: SourceFile, encoding: str):
        self.source = source
        self.positions = Positions(source, encoding)

    def symbol(self, name: str, kind, span: Span, name_at: Span | None, detail: str = "",
               children: list | None = None) -> types.DocumentSymbol:
        """One outline entry; the selection is the name when it can be found."""
        return types.DocumentSymbol(name=name, kind=kind, range=self.positions.range(span),
                                    selection_range=self.positions.range(name_at or span), detail=detail or None,
                                    children=children or None)

    def text(self, span: Span) -> str:
        """A node's text on one line."""
        return " ".join(self.source.text[span.start:span.end].split())

    def item(self, item) -> list[types.DocumentSymbol]:
        """The outline entries of one top-level item."""
        text = self.source.text
        if isinstance(item, ast.ModuleDecl):
            return [self.module(item)]
        if isinstance(item, ast.ModelDecl):
            return [self.symbol(item.name, types.SymbolKind.Object, item.span, name_span(text, item.span, item.name, "model"),
                                self.text(item.value.span))]
        if isinstance(item, ast.ConstDecl):
            return [self.symbol(item.name, types.SymbolKind.Constant, item.span, name_span(text, item.span, item.name),
                                self.text(item.value.span))]
        if isinstance(item, ast.DimDecl):
            return [self.symbol(name, types.SymbolKind.TypeParameter, span, span, "dim") for name, span in item.names]
        if isinstance(item, ast.SkeletonDecl):
            return [self.symbol(item.name, types.SymbolKind.Struct, item.span,
                                name_span(text, item.span, item.name, "skeleton"), "skeleton", self.joints(item))]
        if isinstance(item, ast.Import):
            return [self.symbol(item.alias or item.path, types.SymbolKind.File, item.span, None, f'import "{item.path}"')]
        return []

    def module(self, module: ast.ModuleDecl) -> types.DocumentSymbol:
        """A module: hyper-parameters, `self.` attributes and forwards."""
        text = self.source.text
        children = [self.symbol(parameter.name, types.SymbolKind.TypeParameter, parameter.span,
                                name_span(text, parameter.span, parameter.name), self.text(parameter.span))
                    for parameter in module.hyper_params]
        for statement in _statements(module.body):
            if isinstance(statement, ast.Assign):
                for target in statement.targets:
                    if target.on_self:
                        kind = (types.SymbolKind.Field if isinstance(statement.value, ast.ParamExpr)
                                else types.SymbolKind.Property)
                        children.append(self.symbol(target.name, kind, statement.span,
                                                    name_span(text, target.span, target.name, "self"),
                                                    self.text(statement.value.span)))
            elif isinstance(statement, ast.Forward):
                children.append(self.forward(statement))
        hyper = ", ".join(self.text(parameter.span) for parameter in module.hyper_params)
        return self.symbol(module.name, types.SymbolKind.Class, module.span,
                           name_span(text, module.span, module.name, "module"), f"({hyper})", children)

    def forward(self, forward: ast.Forward) -> types.DocumentSymbol:
        """A forward with its inputs and outputs."""
        text = self.source.text
        children = [self.symbol(parameter.name, types.SymbolKind.Variable, parameter.span,
                                name_span(text, parameter.span, parameter.name), self.text(parameter.span))
                    for parameter in (*forward.params, *(forward.outputs or ()))]
        name = "forward" + (f" {forward.mode}" if forward.mode else "")
        brace = text.find("{", forward.span.start, forward.span.end)
        header = " ".join(text[forward.span.start:brace if brace >= 0 else forward.span.end].split())
        return self.symbol(name, types.SymbolKind.Method, forward.span,
                           name_span(text, forward.span, "forward"), header[len(name):].strip(), children)

    def joints(self, skeleton: ast.SkeletonDecl) -> list[types.DocumentSymbol]:
        """The joints a skeleton lists, in order."""
        found = []
        for statement in skeleton.body:
            if isinstance(statement, ast.Assign) and statement.targets[0].name == "joints":
                items = statement.value.items if isinstance(statement.value, ast.ListExpr) else ()
                for index, item in enumerate(items):
                    if isinstance(item, ast.Literal) and isinstance(item.value, str):
                        found.append(self.symbol(item.value, types.SymbolKind.EnumMember, item.span, item.span,
                                                 f"joint {index}"))
        return found


def _statements(body) -> Iterable:
    """Statements of a module body, looking inside `for` and `if` (layers made in loops)."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.For):
            yield from _statements(statement.body)
        elif isinstance(statement, ast.If):
            for _, branch in statement.branches:
                yield from _statements(branch)
            yield from _statements(statement.otherwise or ())


# ------------------------------------------------------------------ workspace


_PARSED: dict[str, tuple[float, ast.File | None, SourceFile]] = {}


def workspace_files(roots: Iterable[str]) -> list[str]:
    """The `.pose` files under the workspace folders (skipping virtualenvs and hidden folders)."""
    found: list[str] = []
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = sorted(name for name in subdirectories
                                       if name not in _SKIPPED_DIRECTORIES and not name.startswith("."))
            found.extend(os.path.join(directory, name) for name in sorted(files) if name.endswith(".pose"))
            if len(found) >= _MAX_WORKSPACE_FILES:
                return found[:_MAX_WORKSPACE_FILES]
    return found


def workspace_symbols(query: str, files: dict[str, str], encoding: str) -> list[types.WorkspaceSymbol]:
    """Top-level declarations and modules' forwards whose names match `query` (a subsequence, any case)."""
    results = []
    for path in sorted(files):
        tree, source = _parsed(path, files[path])
        if tree is None:
            continue
        uri = Path(path).resolve().as_uri()
        for symbol in document_symbols(tree, source, encoding):
            if _matches(query, symbol.name):
                results.append(types.WorkspaceSymbol(name=symbol.name, kind=symbol.kind,
                                                     location=types.Location(uri=uri, range=symbol.selection_range),
                                                     container_name=Path(path).name))
    return results


def _parsed(path: str, text: str | None) -> tuple[ast.File | None, SourceFile]:
    """A file's tree, from the given text or from disk, parsed again only when it changed."""
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
    cached = _PARSED.get(path)
    if cached is None or cached[2].text != text:
        source = SourceFile(path, text)
        cached = (0.0, parser.parse(source)[0], source)
        _PARSED[path] = cached
    return cached[1], cached[2]


def _matches(query: str, name: str) -> bool:
    """Whether the query's characters appear in the name in order, ignoring case."""
    remaining = iter(name.lower())
    return all(character in remaining for character in query.lower())
