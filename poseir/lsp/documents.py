"""Checked documents: LSP positions, one check of one version, and mapping onto the last text that parsed."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from lsprotocol import types

from poseir.compiler import Compilation
from poseir.elaborate.program import PRELUDE_PATH
from poseir.lsp.symbols import Index, build_index
from poseir.syntax.source import SourceFile, Span


def code_units(text: str, encoding: str) -> int:
    """The length of `text` in the code units of an LSP position encoding (UTF-16 unless negotiated)."""
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class Positions:
    """Converts between character offsets of one source file and LSP positions."""

    def __init__(self, source: SourceFile, encoding: str):
        self.source = source
        self.encoding = encoding

    def position(self, offset: int) -> types.Position:
        """The LSP position (0-based line, code units) of a character offset."""
        line, column = self.source.position(offset)
        start = self.source.line_starts[line - 1]
        return types.Position(line=line - 1, character=code_units(self.source.text[start:start + column - 1],
                                                                  self.encoding))

    def range(self, span: Span) -> types.Range:
        """The LSP range of a span of this file."""
        return types.Range(start=self.position(span.start), end=self.position(span.end))

    def offset(self, position: types.Position) -> int:
        """The character offset of an LSP position, clamped to its line and to the text."""
        starts, text = self.source.line_starts, self.source.text
        if position.line >= len(starts):
            return len(text)
        offset = starts[max(position.line, 0)]
        end = starts[position.line + 1] - 1 if position.line + 1 < len(starts) else len(text)
        units = 0
        while offset < end and units < position.character:
            units += code_units(text[offset], self.encoding)
            offset += 1
        return offset


@functools.cache
def prelude_file() -> str:
    """The installed prelude's real path, so "go to definition" on `Conv1d` opens it."""
    return str(resources.files("poseir.elaborate").joinpath("prelude.pose"))


def file_uri(path: str) -> str:
    """The URI of a file of a compilation (the prelude's installed file for `<prelude>`)."""
    return Path(prelude_file() if path == PRELUDE_PATH else path).resolve().as_uri()


@dataclass
class CheckedDocument:
    """One check of one version of an open document; its symbol index is built on first use."""

    uri: str
    path: str
    version: int
    text: str
    compilation: Compilation
    complete: bool = True  # False when a newer version stopped the check early
    generation: int = 0  # the server's count of on-disk changes when the check read its imports
    _index: Index | None = field(default=None, repr=False)
    _bindings: dict | None = field(default=None, repr=False)
    related: list = field(default_factory=list, repr=False)  # checks of open files that import this one

    @property
    def parsed(self) -> bool:
        """Whether the text (and everything it imports) parsed."""
        return self.compilation.program is not None

    @property
    def index(self) -> Index | None:
        """Every name occurrence in the program's files, or None when the text did not parse."""
        if self._index is None and self.parsed:
            self._index = build_index(self.compilation.program)
        return self._index

    def bindings(self, span: Span, name: str | None = None) -> list:
        """What the code at `span` bound, in every model, flow and instance: (Binding, (model, mode))."""
        found = self._own_bindings(span)
        if not found:
            # A file of modules only (no model) runs when an open file that imports it does.
            for other in self.related:
                found = other._own_bindings(span)
                if found:
                    break
        return [entry for entry in found if name is None or entry[0].name == name]

    def _own_bindings(self, span: Span) -> list:
        """The bindings this check made at `span`."""
        if self._bindings is None:
            table: dict = {}
            for key in sorted(self.compilation.bindings):
                for binding in self.compilation.bindings[key]:
                    table.setdefault((binding.span.path, binding.span.start), []).append((binding, key))
            self._bindings = table
        return self._bindings.get((span.path, span.start), [])

    def source(self, path: str) -> SourceFile | None:
        """A file of the compilation; the document's own text for itself."""
        if path == self.path:
            return SourceFile(path, self.text)
        return self.compilation.sources.get(path)

    def paths(self) -> set[str]:
        """Every file this document's check read (for refreshing when one of them is saved)."""
        return {str(Path(path).resolve()) for path in self.compilation.sources if not path.startswith("<")}


class LineMap:
    """Maps offsets of the current text onto an older text, through the lines both share."""

    def __init__(self, old: str, new: str):
        self.old_lines = old.splitlines(keepends=True)
        self.new_lines = new.splitlines(keepends=True)
        self.old_starts = _starts(self.old_lines)
        self.new_starts = _starts(self.new_lines)
        self.to_old: dict[int, int] = {}
        matcher = difflib.SequenceMatcher(a=self.old_lines, b=self.new_lines, autojunk=False)
        for block in matcher.get_matching_blocks():
            for step in range(block.size):
                self.to_old[block.b + step] = block.a + step
        self.to_new = {old: new for new, old in self.to_old.items()}

    def old_offset(self, offset: int, nearest: bool = False) -> int | None:
        """The offset in the old text of a current offset on an unchanged line (or the nearest above)."""
        line = _line_of(self.new_starts, offset)
        column = offset - self.new_starts[line]
        candidate = line
        while candidate not in self.to_old:
            if not nearest or candidate <= 0:
                return None
            candidate, column = candidate - 1, 0
        return self.old_starts[self.to_old[candidate]] + column

    def new_line(self, old_line: int) -> int | None:
        """The current line (0-based) of an unchanged old line, or None when it changed."""
        return self.to_new.get(old_line)


def _starts(lines: list[str]) -> list[int]:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line)
    return starts or [0]


def _line_of(starts: list[int], offset: int) -> int:
    import bisect

    return max(0, bisect.bisect_right(starts, offset) - 1)
