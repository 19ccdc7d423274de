"""Source files, character spans and the map the renderer reads text through."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

UNKNOWN_PATH = "<unknown>"


@dataclass(frozen=True)
class Span:
    """A half-open range of characters in one source file, with 1-based positions."""

    path: str
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    def __post_init__(self) -> None:
        # A reversed span is always a compiler bug; catch it where it is made.
        if self.end < self.start:
            raise ValueError(f"span ends before it starts: {self.start}..{self.end}")

    @classmethod
    def unknown(cls, path: str = UNKNOWN_PATH) -> Span:
        """A placeholder span for nodes the compiler synthesized."""
        return cls(path, 0, 0, 0, 0, 0, 0)

    @property
    def is_known(self) -> bool:
        """Whether the span points at real text (line numbers start at 1)."""
        return self.line > 0

    def merge(self, other: Span) -> Span:
        """The smallest span covering both spans; both must be in the same file."""
        if not other.is_known:
            return self
        if not self.is_known:
            return other
        if other.path != self.path:
            raise ValueError(f"cannot merge spans from {self.path!r} and {other.path!r}")
        first = self if self.start <= other.start else other
        last = self if self.end >= other.end else other
        return Span(
            self.path,
            first.start,
            last.end,
            first.line,
            first.column,
            last.end_line,
            last.end_column,
        )

    def __str__(self) -> str:
        if not self.is_known:
            return self.path
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SourceFile:
    """The text of one `.pose` file, with fast offset-to-position lookup."""

    path: str
    text: str
    line_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        starts.extend(index + 1 for index, char in enumerate(self.text) if char == "\n")
        # The dataclass is frozen; the cache is derived data, so set it once here.
        object.__setattr__(self, "line_starts", tuple(starts))

    @property
    def line_count(self) -> int:
        """Number of lines; text ending in a newline has an empty last line."""
        return len(self.line_starts)

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based (line, column) of a character offset, clamped to the text."""
        offset = min(max(offset, 0), len(self.text))
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line terminator."""
        if not 1 <= line <= self.line_count:
            raise IndexError(f"{self.path} has no line {line}")
        start = self.line_starts[line - 1]
        end = self.line_starts[line] - 1 if line < self.line_count else len(self.text)
        text = self.text[start:end]
        # Files written on Windows keep "\r\n"; the "\r" is not part of the line.
        return text[:-1] if text.endswith("\r") else text

    def span(self, start: int, end: int) -> Span:
        """A span for the character offsets start..end (end exclusive)."""
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(self.path, start, end, line, column, end_line, end_column)


class SourceMap(Mapping[str, SourceFile]):
    """All source files of one compilation, keyed by path."""

    def __init__(self, files: tuple[SourceFile, ...] | list[SourceFile] = ()) -> None:
        self._files: dict[str, SourceFile] = {}
        for file in files:
            self.add(file)

    def add(self, file: SourceFile) -> SourceFile:
        """Register a file (replacing one with the same path) and return it."""
        self._files[file.path] = file
        return file

    def get(self, path: str, default: SourceFile | None = None) -> SourceFile | None:
        """The file registered under path, or default when there is none."""
        return self._files.get(path, default)

    def __getitem__(self, path: str) -> SourceFile:
        return self._files[path]

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def __iter__(self) -> Iterator[str]:
        # Sorted so anything iterating the map is deterministic.
        return iter(sorted(self._files))

    def __len__(self) -> int:
        return len(self._files)
