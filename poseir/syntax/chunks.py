"""Editor buffers parsed by top-level item: an edit re-parses the item it touches, the rest is remembered.

A `.pose` file is a sequence of top-level items (imports, dims, skeletons, modules, models), each
beginning at column 0 outside any bracket. The buffer is cut before each item (with the comments
and blank lines above it), each piece is parsed alone and remembered by its text, and the pieces'
trees are moved to their place in the buffer (every span shifted by the piece's offset and first
line). The result equals a parse of the whole buffer (`tests/test_parse_cache.py` checks every
`.pose` file of the repository and edits of them); a piece that does not parse on its own makes
the whole buffer parse as one, so syntax errors are reported exactly as before.
"""

from __future__ import annotations

import dataclasses
import functools

from poseir.diagnostics.record import Diagnostic
from poseir.syntax import ast
from poseir.syntax.source import SourceFile, Span

_OPENING, _CLOSING = "([{", ")]}"
# A buffer cut into more pieces than this is parsed whole: a piece costs a parse call of its own, and a
# buffer of a million bytes of one-line declarations would otherwise make ~100,000 of them.
MAX_PIECES = 1000


def pieces(text: str) -> list[tuple[int, int, str]]:
    """(offset, number of lines before it, text) of each top-level piece, in order; together they are `text`."""
    starts = [(0, 0)]  # (offset, line) where each piece begins
    depth, gap = 0, None  # gap: where the comments and blank lines above the next item begin
    offset = 0
    for number, line in enumerate(text.split("\n")):  # lines as the spans count them (a line feed ends one)
        stripped = line.strip()
        if depth == 0 and (not stripped or stripped.startswith("#")):
            gap = (offset, number) if gap is None else gap
        elif depth == 0 and not line[0].isspace() and line[0] not in _CLOSING:
            start = gap if gap is not None else (offset, number)
            if start[0] > starts[-1][0]:
                starts.append(start)
            gap = None
        else:
            gap = None
        depth = max(0, depth + _depth_change(line))
        offset += len(line) + 1
    ends = [start for start, _ in starts[1:]] + [len(text)]
    return [(start, line, text[start:end]) for (start, line), end in zip(starts, ends) if end > start]


def _depth_change(line: str) -> int:
    """How much a line opens brackets (closings subtract), outside strings and comments."""
    change, quote, index = 0, None, 0
    while index < len(line):
        char = line[index]
        if quote is not None:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in _OPENING:
            change += 1
        elif char in _CLOSING:
            change -= 1
        index += 1
    return change


def parse_by_pieces(source: SourceFile, max_depth: int, parse_text) -> tuple[ast.File | None, list[Diagnostic]]:
    """The tree of a buffer from its pieces' trees (remembered by text), or `parse_text(source, max_depth)` of the
    whole buffer when a piece does not parse alone or the buffer is one piece."""
    found = pieces(source.text)
    if not 2 <= len(found) <= MAX_PIECES:
        return parse_text(source, max_depth)
    items, spans = [], []
    for offset, lines, text in found:
        tree = _piece_tree(source.path, text, max_depth, parse_text)
        if tree is None:
            return parse_text(source, max_depth)
        if tree.items:
            moved = shifted(tree, offset, lines)
            items.extend(moved.items)
            spans.append(moved.span)
    if not spans:
        return parse_text(source, max_depth)
    first, last = spans[0], spans[-1]
    span = Span(source.path, first.start, last.end, first.line, first.column, last.end_line, last.end_column)
    return ast.File(span, source.path, tuple(items)), []


@functools.lru_cache(maxsize=1024)
def _piece_tree(path: str, text: str, max_depth: int, parse_text) -> ast.File | None:
    """One piece parsed alone, with spans as if it began the file (None when it does not parse alone)."""
    tree, found = parse_text(SourceFile(path, text), max_depth)
    return tree if tree is not None and not found else None


def shifted(value, offset: int, lines: int):
    """A tree (or part of one) moved `offset` characters and `lines` lines down its file (a piece that begins at
    column 0, so columns stay)."""
    if isinstance(value, Span):
        return Span(value.path, value.start + offset, value.end + offset, value.line + lines, value.column,
                    value.end_line + lines, value.end_column)
    if isinstance(value, tuple):
        return tuple(shifted(item, offset, lines) for item in value)
    if isinstance(value, ast.Node):
        return type(value)(*(shifted(getattr(value, name), offset, lines) for name in _field_names(type(value))))
    return value


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    """The init fields of an AST node type, in order."""
    return tuple(field.name for field in dataclasses.fields(kind) if field.init)
