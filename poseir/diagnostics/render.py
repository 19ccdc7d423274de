"""Turn diagnostics into text: human (rustc style), JSON, gcc-style lines and SARIF.

This is the only module that formats diagnostics; passes build Diagnostic records.
"""

from __future__ import annotations

import dataclasses
import io
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

from rich.cells import cell_len

from poseir.diagnostics.codes import lookup
from poseir.diagnostics.codes import Severity
from poseir.diagnostics.record import Diagnostic, Edit, Fix, Label, count, sort_diagnostics
from poseir.syntax.source import SourceFile, SourceMap, Span

TAB_WIDTH = 4
FORMATS = ("human", "json", "gcc", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

_SEVERITY_STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.NOTE: "bold cyan",
}
_GUTTER = "bold blue"
_EMPHASIS = "bold"
_NOTE = "bold cyan"
_SECONDARY = "bold blue"
_REPLACEMENT = "bold green"


# ---------------------------------------------------------------- display text


def _printable(text: str) -> str:
    """Text as it is displayed: tabs expanded, control characters made visible."""
    if text.isprintable():
        return text
    # rich drops some control characters; replacing them keeps plain and ANSI
    # output identical and shows the user that something odd is in the source.
    return "".join(
        " " * TAB_WIDTH if char == "\t" else "\ufffd" if unicodedata.category(char) == "Cc" else char
        for char in text
    )


def _display_width(text: str) -> int:
    """Terminal cells the text occupies once made printable."""
    return cell_len(_printable(text))


def _display_column(line: str, column: int) -> int:
    """0-based terminal cell where the 1-based character column starts."""
    before = line[: column - 1]
    # Columns past the end of the line (or of unavailable text) still get a place.
    return _display_width(before) + max(0, column - 1 - len(line))


class _Writer:
    """Collects styled lines so plain and ANSI output share one construction."""

    def __init__(self) -> None:
        self.lines: list[list[tuple[str, str]]] = []

    def line(self, *segments: tuple[str, str]) -> None:
        """Append one line made of (text, style) segments, trailing spaces removed."""
        parts = [(_printable(text), style) for text, style in segments if text]
        while parts and not parts[-1][0].rstrip():
            parts.pop()
        if parts:
            text, style = parts[-1]
            parts[-1] = (text.rstrip(), style)
        self.lines.append(parts)

    def blank(self) -> None:
        """Append an empty line."""
        self.lines.append([])

    def plain(self) -> str:
        """The collected lines without styles."""
        return "".join("".join(text for text, _ in parts) + "\n" for parts in self.lines)

    def ansi(self, width: int) -> str:
        """The collected lines with ANSI styles, exported through rich."""
        # rich's console is the heavy part of rich: imported only when colors are asked for.
        from rich.console import Console
        from rich.text import Text

        text = Text()
        for parts in self.lines:
            for part, style in parts:
                text.append(part, style or None)
            text.append("\n")
        console = Console(
            file=io.StringIO(),
            record=True,
            force_terminal=True,
            width=width,
            color_system="standard",
            no_color=False,
            legacy_windows=False,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,  # never wrap: stripped ANSI must equal the plain text
        )
        console.print(text, end="")
        return console.export_text(styles=True)


# ---------------------------------------------------------------- snippet layout


@dataclass(frozen=True)
class _Mark:
    """One underline on one source line."""

    line: int
    column: int
    start: int
    length: int
    primary: bool
    message: str


@dataclass(frozen=True)
class _Block:
    """The source lines of one file that a diagnostic points into."""

    path: str
    anchor: Span
    marks: tuple[_Mark, ...]

    def line_numbers(self) -> list[int]:
        """Each involved line once, in order."""
        return sorted({mark.line for mark in self.marks})


@dataclass(frozen=True)
class _PreviewLine:
    """One line of source with a fix applied, and which cells changed."""

    number: int
    text: str
    changes: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class _PreviewFile:
    """A fix's edits in one file and, when the text is available, the edited lines."""

    path: str
    anchor: Span
    edits: tuple[Edit, ...]
    lines: tuple[_PreviewLine, ...]


@dataclass(frozen=True)
class _Preview:
    """A fix's message and the resulting source lines, per touched file."""

    message: str
    files: tuple[_PreviewFile, ...]


def _source_line(sources: SourceMap, path: str, line: int) -> str:
    """The text of a line, or "" when the file or line is not available."""
    file = sources.get(path)
    if file is None or not 1 <= line <= file.line_count:
        return ""
    return file.line_text(line)


def _mark(label: Label, primary: bool, sources: SourceMap) -> _Mark:
    """Where the underline for label goes on its first line."""
    span = label.span
    text = _source_line(sources, span.path, span.line)
    start = _display_column(text, span.column)
    # Multi-line spans are underlined to the end of their first line.
    end = _display_column(text, span.end_column) if span.end_line == span.line else _display_width(text)
    return _Mark(span.line, span.column, start, max(1, end - start), primary, label.message)


def _labels_to_draw(diagnostic: Diagnostic) -> list[tuple[Label, bool]]:
    """The primary label (possibly without message) and the secondary labels."""
    span = diagnostic.span
    labels: list[tuple[Label, bool]] = []
    primary_found = False
    for label in diagnostic.labels:
        is_primary = not primary_found and span is not None and label.span == span
        primary_found = primary_found or is_primary
        labels.append((label, is_primary))
    if span is not None and span.is_known and not primary_found:
        labels.insert(0, (Label(span), True))
    return [(label, primary) for label, primary in labels if label.span.is_known]


def _blocks(diagnostic: Diagnostic, sources: SourceMap) -> list[_Block]:
    """One block per file, the primary span's file first, then by path."""
    by_path: dict[str, list[tuple[Label, bool]]] = {}
    for label, primary in _labels_to_draw(diagnostic):
        by_path.setdefault(label.span.path, []).append((label, primary))
    primary_path = diagnostic.span.path if diagnostic.span is not None else None
    paths = sorted(by_path, key=lambda path: (path != primary_path, path))
    blocks = []
    for path in paths:
        labels = by_path[path]
        anchor = next((label.span for label, primary in labels if primary), None)
        anchor = anchor or min((label.span for label, _ in labels), key=lambda span: span.start)
        marks = sorted(
            (_mark(label, primary, sources) for label, primary in labels),
            key=lambda mark: (mark.line, mark.start, mark.length, not mark.primary, mark.message),
        )
        blocks.append(_Block(path, anchor, tuple(marks)))
    return blocks


def _unplaced_label_notes(diagnostic: Diagnostic) -> list[str]:
    """Messages of labels that have no real location, shown as notes instead."""
    return [label.message for label in diagnostic.labels if label.message and not label.span.is_known]


# ---------------------------------------------------------------- fix previews


def _line_end(file: SourceFile, line: int) -> int:
    """Offset just past the last character of line, before its terminator."""
    start = file.line_starts[line - 1]
    return start + len(file.line_text(line))


def _apply_edits(file: SourceFile, edits: list[Edit]) -> tuple[int, str, list[tuple[int, int, str]]]:
    """Apply edits to the lines they touch; return first line, new text, changed ranges."""
    first_line = min(edit.span.line for edit in edits)
    region_end = _line_end(file, max(edit.span.end_line for edit in edits))
    cursor = file.line_starts[first_line - 1]
    pieces: list[str] = []
    changes: list[tuple[int, int, str]] = []
    length = 0
    for edit in sorted(edits, key=lambda edit: (edit.span.start, edit.span.end)):
        if edit.span.start < cursor:
            continue  # overlapping edits are a compiler bug; show the first one
        kept = file.text[cursor : edit.span.start]
        kind = "+" if edit.span.start == edit.span.end else "~"
        changes.append((length + len(kept), length + len(kept) + len(edit.replacement), kind))
        pieces += [kept, edit.replacement]
        length += len(kept) + len(edit.replacement)
        cursor = edit.span.end
    pieces.append(file.text[cursor:region_end])
    return first_line, "".join(pieces), changes


def _preview_lines(file: SourceFile, edits: list[Edit]) -> tuple[_PreviewLine, ...]:
    """The edited lines, numbered from the first touched line, with change markers."""
    first_line, text, changes = _apply_edits(file, edits)
    lines, offset = [], 0
    for index, raw in enumerate(text.split("\n")):
        line = raw.removesuffix("\r")
        line_changes = []
        for start, end, kind in changes:
            low, high = max(start, offset), min(end, offset + len(line))
            if low < high:
                cell = _display_width(line[: low - offset])
                line_changes.append((cell, _display_width(line[low - offset : high - offset]), kind))
        lines.append(_PreviewLine(first_line + index, line, tuple(line_changes)))
        offset += len(raw) + 1
    return tuple(lines)


def _preview(fix: Fix, sources: SourceMap) -> _Preview:
    """Group a fix's edits by file and apply them to the source text."""
    by_path: dict[str, list[Edit]] = {}
    for edit in fix.edits:
        by_path.setdefault(edit.span.path, []).append(edit)
    files = []
    for path in sorted(by_path):
        edits = by_path[path]
        file = sources.get(path)
        anchor = min((edit.span for edit in edits), key=lambda span: span.start)
        usable = file is not None and all(
            edit.span.is_known and edit.span.end_line <= file.line_count for edit in edits
        )
        lines = _preview_lines(file, edits) if usable else ()
        ordered = tuple(sorted(edits, key=lambda edit: (edit.span.start, edit.span.end)))
        files.append(_PreviewFile(path, anchor, ordered, lines))
    return _Preview(fix.message, tuple(files))


# ---------------------------------------------------------------- human format


def _gutter_width(blocks: list[_Block], previews: list[_Preview]) -> int:
    """Digits of the largest line number the diagnostic shows."""
    numbers = [number for block in blocks for number in block.line_numbers()]
    numbers += [line.number for preview in previews for file in preview.files for line in file.lines]
    return len(str(max(numbers, default=1)))


def _write_block(writer: _Writer, block: _Block, width: int, sources: SourceMap, style: str) -> None:
    """The `-->` line, the involved source lines and their underlines."""
    pad = " " * width
    writer.line((f"{pad}--> ", _GUTTER), (str(block.anchor), ""))
    writer.line((f"{pad} |", _GUTTER))
    if block.path not in sources:
        _write_marks_without_source(writer, block, width)
        return
    previous = None
    for number in block.line_numbers():
        if previous is not None and number > previous + 1:
            writer.line(("...", _GUTTER))
        previous = number
        marks = [mark for mark in block.marks if mark.line == number]
        text, marks = _windowed(_source_line(sources, block.path, number), marks)
        writer.line((f"{number:>{width}} | ", _GUTTER), (text, ""))
        for mark in marks:
            _write_mark(writer, mark, width, style)


# A snippet line wider than this is shown as a window around its marks: a minified or hostile
# file must not print megabytes of one line to a terminal or a CI log.
_MAX_LINE_CELLS = 160
_ELLIPSIS = "..."


def _windowed(text: str, marks: list[_Mark]) -> tuple[str, list[_Mark]]:
    """The part of a long line around its marks, with the marks moved to match."""
    total = _display_width(text)
    if total <= _MAX_LINE_CELLS or not marks:
        return text, marks
    first = min(mark.start for mark in marks)
    low = max(0, min(first - 40, total - _MAX_LINE_CELLS))
    high = min(total, low + _MAX_LINE_CELLS)
    prefix = _ELLIPSIS if low > 0 else ""
    suffix = _ELLIPSIS if high < total else ""
    shift = low - len(prefix)
    moved = []
    for mark in marks:
        start = min(max(mark.start, low), high)
        end = min(mark.start + mark.length, high)
        moved.append(dataclasses.replace(mark, start=start - shift, length=max(1, end - start)))
    return prefix + _cells(text, low, high) + suffix, moved


def _cells(text: str, low: int, high: int) -> str:
    """The characters of `text` that fall in display cells low..high."""
    out, position = [], 0
    for character in text:
        width = _display_width(character)
        if position >= low and position + width <= high:
            out.append(character)
        position += width
        if position >= high:
            break
    return "".join(out)


def _write_marks_without_source(writer: _Writer, block: _Block, width: int) -> None:
    """Label messages with their positions, for a file whose text is not loaded."""
    for mark in block.marks:
        if mark.message:
            writer.line((f"{' ' * width} | ", _GUTTER), (f"{mark.line}:{mark.column}: {mark.message}", ""))


def _write_mark(writer: _Writer, mark: _Mark, width: int, style: str) -> None:
    """One underline row, with continuation rows for a multi-line message."""
    mark_style = style if mark.primary else _SECONDARY
    underline = ("^" if mark.primary else "-") * mark.length
    first, *rest = mark.message.split("\n") if mark.message else [""]
    prefix = (f"{' ' * width} | ", _GUTTER)
    writer.line(prefix, (" " * mark.start, ""), (underline, mark_style), (f" {first}" if first else "", mark_style))
    for continuation in rest:
        writer.line(prefix, (" " * (mark.start + mark.length + 1), ""), (continuation, mark_style))


def _write_note(writer: _Writer, width: int, kind: str, message: str) -> None:
    """A `= note: ...` or `= help: ...` line; later lines of message are indented."""
    first, *rest = message.split("\n")
    writer.line((f"{' ' * width} = ", _GUTTER), (f"{kind}:", _NOTE), (f" {first}", ""))
    for continuation in rest:
        writer.line((" " * (width + len(kind) + 5), ""), (continuation, ""))


def _describe_edit(edit: Edit) -> str:
    """Words for an edit whose source text is not available to show."""
    replacement = edit.replacement.replace("\n", "\\n")
    if edit.span.start == edit.span.end:
        return f"insert `{replacement}`"
    return f"replace with `{replacement}`" if replacement else "delete"


def _write_preview(writer: _Writer, preview: _Preview, width: int, primary_path: str | None) -> None:
    """A fix: its help line, then the source as it reads after the fix."""
    _write_note(writer, width, "help", preview.message)
    for file in preview.files:
        if file.path != primary_path:
            writer.line((f"{' ' * width}--> ", _GUTTER), (str(file.anchor), ""))
        writer.line((f"{' ' * width} |", _GUTTER))
        if not file.lines:
            for edit in file.edits:
                position = f"{edit.span.line}:{edit.span.column}"
                writer.line((f"{' ' * width} | ", _GUTTER), (f"{position}: {_describe_edit(edit)}", ""))
        for line in file.lines:
            writer.line((f"{line.number:>{width}} | ", _GUTTER), (line.text, ""))
            if line.changes:
                _write_changes(writer, line.changes, width)


def _write_changes(writer: _Writer, changes: tuple[tuple[int, int, str], ...], width: int) -> None:
    """Marks under the replaced (`~`) or inserted (`+`) text of a preview line."""
    segments, cell = [(f"{' ' * width} | ", _GUTTER)], 0
    for start, length, kind in changes:
        segments += [(" " * (start - cell), ""), (kind * length, _REPLACEMENT)]
        cell = start + length
    writer.line(*segments)


def _write_diagnostic(writer: _Writer, diagnostic: Diagnostic, sources: SourceMap) -> None:
    """One complete diagnostic in rustc style."""
    severity = diagnostic.severity
    style = _SEVERITY_STYLES[severity]
    writer.line((f"{severity.value}[{diagnostic.code}]", style), (f": {diagnostic.message}", _EMPHASIS))
    blocks = _blocks(diagnostic, sources)
    previews = [_preview(fix, sources) for fix in diagnostic.fixes]
    width = _gutter_width(blocks, previews)
    for index, block in enumerate(blocks):
        if index:
            writer.line((f"{' ' * width} |", _GUTTER))
        _write_block(writer, block, width, sources, style)
    notes = [*diagnostic.notes, *_unplaced_label_notes(diagnostic)]
    if blocks and (notes or diagnostic.helps or previews):
        writer.line((f"{' ' * width} |", _GUTTER))
    for note in notes:
        _write_note(writer, width, "note", note)
    for help_text in diagnostic.helps:
        _write_note(writer, width, "help", help_text)
    primary_path = diagnostic.span.path if diagnostic.span is not None else None
    for preview in previews:
        _write_preview(writer, preview, width, primary_path)


def _plural(number: int, word: str) -> str:
    """`1 error`, `2 errors`."""
    return f"{number} {word}" + ("" if number == 1 else "s")


def _write_summary(writer: _Writer, diagnostics: list[Diagnostic]) -> None:
    """The closing count line; nothing when there are no errors or warnings."""
    errors, warnings = count(diagnostics)
    if errors:
        text = f": could not compile due to {_plural(errors, 'error')}"
        if warnings:
            text += f"; {_plural(warnings, 'warning')} emitted"
        writer.line(("error", _SEVERITY_STYLES[Severity.ERROR]), (text, _EMPHASIS))
    elif warnings:
        text = f": {_plural(warnings, 'warning')} emitted"
        writer.line(("warning", _SEVERITY_STYLES[Severity.WARNING]), (text, _EMPHASIS))


def render_human(
    diagnostics: Iterable[Diagnostic],
    sources: SourceMap,
    *,
    color: bool = False,
    width: int = 100,
) -> str:
    """rustc-style text; with color, the same characters plus ANSI styles (width is the console width)."""
    ordered = sort_diagnostics(diagnostics)
    writer = _Writer()
    for index, diagnostic in enumerate(ordered):
        if index:
            writer.blank()
        _write_diagnostic(writer, diagnostic, sources)
    errors, warnings = count(ordered)
    if errors or warnings:
        writer.blank()
        _write_summary(writer, ordered)
    return writer.ansi(width) if color else writer.plain()


def render_location(title: str, span: Span, message: str, sources: SourceMap, *, color: bool = False) -> str:
    """A title line and the source snippet of one span, drawn like a diagnostic's primary label."""
    writer = _Writer()
    writer.line((title, _EMPHASIS))
    block = _Block(span.path, span, (_mark(Label(span, message), True, sources),))
    width = _gutter_width([block], [])
    _write_block(writer, block, width, sources, _NOTE)
    return writer.ansi(100) if color else writer.plain()


# ---------------------------------------------------------------- machine formats


def _location(span: Span | None) -> dict[str, object]:
    """File and 1-based positions of a span; all None when it has no location."""
    if span is None or not span.is_known:
        return {"file": None, "line": None, "column": None, "end_line": None, "end_column": None}
    return {
        "file": span.path,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }


def _edit_json(edit: Edit) -> dict[str, object]:
    """One edit with both positions and character offsets."""
    known = edit.span.is_known
    return {
        **_location(edit.span),
        "start": edit.span.start if known else None,
        "end": edit.span.end if known else None,
        "replacement": edit.replacement,
    }


def _diagnostic_json(diagnostic: Diagnostic) -> dict[str, object]:
    """The JSON object for one diagnostic."""
    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity.value,
        "title": diagnostic.title,
        "message": diagnostic.message,
        **_location(diagnostic.span),
        "labels": [{**_location(label.span), "message": label.message} for label in diagnostic.labels],
        "notes": list(diagnostic.notes),
        "helps": list(diagnostic.helps),
        "fixes": [
            {"message": fix.message, "safe": fix.safe, "edits": [_edit_json(edit) for edit in fix.edits]}
            for fix in diagnostic.fixes
        ],
    }


def render_json(diagnostics: Iterable[Diagnostic], sources: SourceMap) -> str:
    """A JSON list of diagnostics with sorted keys; sources is unused but kept for symmetry."""
    data = [_diagnostic_json(diagnostic) for diagnostic in sort_diagnostics(diagnostics)]
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _gcc_location(span: Span | None) -> str:
    """`path:line:column`, or the tool name when there is no location."""
    if span is None or not span.is_known:
        return "poseir"
    return str(span)


def render_gcc(diagnostics: Iterable[Diagnostic], sources: SourceMap) -> str:
    """One `path:line:column: severity: message [code]` line each, plus label notes."""
    lines = []
    for diagnostic in sort_diagnostics(diagnostics):
        location = _gcc_location(diagnostic.span)
        lines.append(f"{location}: {diagnostic.severity.value}: {diagnostic.message} [{diagnostic.code}]")
        for label in diagnostic.labels:
            if label.message:
                lines.append(f"{_gcc_location(label.span)}: note: {label.message}")
    return "".join(line + "\n" for line in lines)


def _artifact_uri(path: str) -> str:
    """A SARIF artifact URI: file:// for absolute paths, a relative reference otherwise."""
    # Decided from the text alone, not the host OS, so output is the same everywhere.
    if path.startswith("/"):
        return PurePosixPath(path).as_uri()
    if PureWindowsPath(path).is_absolute():
        return PureWindowsPath(path).as_uri()
    return quote(path.replace("\\", "/"), safe="/")


def _sarif_region(span: Span) -> dict[str, int]:
    """A SARIF region; columns count characters and the end column is exclusive."""
    return {
        "startLine": span.line,
        "startColumn": span.column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
    }


def _sarif_location(span: Span) -> dict[str, object]:
    """A SARIF location holding one physicalLocation."""
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": _artifact_uri(span.path)},
            "region": _sarif_region(span),
        }
    }


def _sarif_fix(fix: Fix) -> dict[str, object]:
    """A SARIF fix: replacements grouped by file."""
    by_path: dict[str, list[Edit]] = {}
    for edit in fix.edits:
        if edit.span.is_known:
            by_path.setdefault(edit.span.path, []).append(edit)
    changes = []
    for path in sorted(by_path):
        replacements = [
            {
                "deletedRegion": _sarif_region(edit.span),
                "insertedContent": {"text": edit.replacement},
            }
            for edit in by_path[path]
        ]
        changes.append({"artifactLocation": {"uri": _artifact_uri(path)}, "replacements": replacements})
    return {"description": {"text": fix.message}, "artifactChanges": changes}


def _sarif_result(diagnostic: Diagnostic, rule_index: int) -> dict[str, object]:
    """One SARIF result."""
    result: dict[str, object] = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": diagnostic.severity.value,
        "message": {"text": diagnostic.message},
    }
    if diagnostic.span is not None and diagnostic.span.is_known:
        result["locations"] = [_sarif_location(diagnostic.span)]
    related = []
    for label in (label for label in diagnostic.labels if label.span.is_known):
        location = {"id": len(related), **_sarif_location(label.span)}
        if label.message:
            location["message"] = {"text": label.message}
        related.append(location)
    if related:
        result["relatedLocations"] = related
    fixes = [_sarif_fix(fix) for fix in diagnostic.fixes]
    if any(fix["artifactChanges"] for fix in fixes):
        result["fixes"] = [fix for fix in fixes if fix["artifactChanges"]]
    if diagnostic.notes or diagnostic.helps:
        # SARIF has no notes; a property bag keeps them for tools that want them.
        result["properties"] = {"notes": list(diagnostic.notes), "helps": list(diagnostic.helps)}
    return result


def render_sarif(diagnostics: Iterable[Diagnostic], sources: SourceMap, tool_version: str) -> str:
    """A SARIF 2.1.0 log with one run, one rule per code used."""
    ordered = sort_diagnostics(diagnostics)
    used = sorted({diagnostic.code for diagnostic in ordered})
    rules = [
        {
            "id": code,
            "name": lookup(code).title,
            "shortDescription": {"text": lookup(code).title},
            "fullDescription": {"text": lookup(code).explanation},
            "defaultConfiguration": {"level": lookup(code).severity.value},
        }
        for code in used
    ]
    log = {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [
            {
                "tool": {"driver": {"name": "poseir", "version": tool_version, "rules": rules}},
                "columnKind": "unicodeCodePoints",
                "results": [_sarif_result(diagnostic, used.index(diagnostic.code)) for diagnostic in ordered],
            }
        ],
    }
    return json.dumps(log, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- entry points


def _installed_version() -> str:
    """poseir's version from the installed package metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("poseir")
    except PackageNotFoundError:
        return "unknown"


def render(
    diagnostics: Iterable[Diagnostic],
    sources: SourceMap,
    fmt: str,
    *,
    color: bool = False,
    tool_version: str | None = None,
) -> str:
    """Render in one of FORMATS: "human", "json", "gcc" or "sarif"."""
    if fmt == "human":
        return render_human(diagnostics, sources, color=color)
    if fmt == "json":
        return render_json(diagnostics, sources)
    if fmt == "gcc":
        return render_gcc(diagnostics, sources)
    if fmt == "sarif":
        return render_sarif(diagnostics, sources, tool_version or _installed_version())
    raise ValueError(f"unknown diagnostic format {fmt!r}; expected one of {', '.join(FORMATS)}")


def explain(code: str) -> str:
    """The long explanation of a code, headed by `CODE: title`; KeyError if unknown."""
    entry = lookup(code)
    return f"{entry.code}: {entry.title}\n\n{entry.explanation}"
