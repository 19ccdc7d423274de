"""The editor's symbol index: every name occurrence in a program's files, resolved lexically.

The elaborator resolves names while it runs; an editor needs the same answers without running
anything, and for code that is never run (an unused module). `poseir.lsp.resolve` walks the
surface trees with the language's scoping and records each name once as a definition or a use
of a `Symbol`; this module holds the records and answers questions about them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from poseir.elaborate.program import Program
from poseir.syntax.source import Span

# Kinds of symbol, named as an editor's outline names them.
MODULE, MODEL, CONSTANT, SKELETON, DIM, JOINT = "module", "model", "constant", "skeleton", "dim", "joint"
HYPER, ATTRIBUTE, PARAMETER, LOCAL, ALIAS, FILE = "hyper", "attribute", "parameter", "local", "alias", "file"
OP, FUNCTION, SKELETON_FIELD = "op", "function", "skeleton_field"


@dataclass(frozen=True)
class Symbol:
    """A named thing: its kind, name and identity; built-ins have no declaration span."""

    kind: str
    name: str
    key: tuple
    span: Span | None = None  # the declaring name, when the symbol is declared in a file


@dataclass(frozen=True)
class Occurrence:
    """One spelling of a symbol's name in a file: its declaration or a use."""

    span: Span
    symbol: Symbol
    definition: bool


@dataclass
class Index:
    """Every occurrence in every file of a program, by file, in source order."""

    occurrences: dict[str, list[Occurrence]] = field(default_factory=dict)  # path -> occurrences
    loops: dict = field(default_factory=dict)  # (path, start) of a local's definition -> the `for` loops around it
    bound_after: dict = field(default_factory=dict)  # (path, start) of a local's definition -> where it takes effect

    def at(self, path: str, offset: int) -> Occurrence | None:
        """The occurrence whose name touches `offset` in `path` (the innermost when nested)."""
        found = None
        for occurrence in self.occurrences.get(path, ()):
            if occurrence.span.start <= offset <= occurrence.span.end:
                found = occurrence
        return found

    def of(self, key: tuple) -> Iterator[Occurrence]:
        """Every occurrence of the symbol with this key, file by file."""
        for path in sorted(self.occurrences):
            for occurrence in self.occurrences[path]:
                if occurrence.symbol.key == key:
                    yield occurrence

    def definitions(self, occurrence: Occurrence) -> list[Occurrence]:
        """Where the symbol of an occurrence is defined; for a local, the assignments reaching it."""
        found = [other for other in self.of(occurrence.symbol.key) if other.definition]
        if occurrence.symbol.key[0] != LOCAL or occurrence.definition:
            return found[:1] if occurrence.symbol.kind == ATTRIBUTE else found
        use = occurrence.span.start
        before = [other for other in found if other.span.path == occurrence.span.path
                  and self.bound_after.get((other.span.path, other.span.start), other.span.end) <= use]
        reaching = before[-1:]
        # A loop may run zero times, so what was bound before a loop also reaches past it ...
        while reaching and (outside := [loop for loop in self._loops(reaching[-1]) if not loop.start <= use <= loop.end]):
            earlier = [other for other in before if other.span.start < outside[0].start]
            if not earlier:
                break
            reaching.append(earlier[-1])
        # ... and inside a loop, what the loop binds later reaches the next iteration.
        loops = [loop for other in found for loop in self._loops(other) if loop.start <= use <= loop.end]
        reaching += [other for other in found if other not in reaching
                     and any(loop.start <= other.span.start <= loop.end for loop in loops)]
        return sorted(reaching, key=lambda other: other.span.start) or found

    def _loops(self, definition: Occurrence) -> list[Span]:
        """The `for` loops around a definition, outermost first."""
        return self.loops.get((definition.span.path, definition.span.start), [])

    def symbols(self, path: str) -> Iterator[Symbol]:
        """The distinct symbols defined in one file, in source order."""
        seen = set()
        for occurrence in self.occurrences.get(path, ()):
            if occurrence.definition and occurrence.symbol.key not in seen:
                seen.add(occurrence.symbol.key)
                yield occurrence.symbol


def build_index(program: Program) -> Index:
    """Index every file of a program (the entry, its imports and the prelude)."""
    from poseir.lsp.resolve import Indexer

    indexer = Indexer(program)
    for path in sorted(program.units):
        indexer.index_unit(program.units[path])
    prelude = indexer.prelude
    if prelude is not None:
        indexer.index_unit(prelude)
    for occurrences in indexer.index.occurrences.values():
        occurrences.sort(key=lambda occurrence: (occurrence.span.start, -occurrence.span.end))
    return indexer.index


# ------------------------------------------------------------------ name spans


_WORD = r"(?<![A-Za-z0-9_]){}(?![A-Za-z0-9_])"


def name_span(text: str, span: Span, name: str, after: str = "") -> Span | None:
    """The span of the word `name` inside `span` (after the keyword `after`), or None."""
    start = span.start
    if after:
        match = re.compile(_WORD.format(re.escape(after))).search(text, span.start, span.end)
        start = match.end() if match else span.start
    match = re.compile(_WORD.format(re.escape(name))).search(text, start, span.end)
    if match is None:
        return None
    return sub_span(text, span, match.start(), match.end())


def sub_span(text: str, span: Span, start: int, end: int) -> Span:
    """A span of the same file for offsets start..end of `text`."""
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    end_line = line + text.count("\n", start, end)
    end_column = end - (text.rfind("\n", 0, end) + 1) + 1
    return Span(span.path, start, end, line, column, end_line, end_column)
