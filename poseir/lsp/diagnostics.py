"""poseir diagnostics and fix-its as LSP records; while a document does not parse, the last good ones."""

from __future__ import annotations

from lsprotocol import types

from poseir.diagnostics.codes import Severity
from poseir.diagnostics.record import Diagnostic, Fix
from poseir.lsp.documents import CheckedDocument, LineMap, Positions, file_uri
from poseir.syntax.source import Span

SOURCE = "poseir"
STALE_NOTE = "note: from the last version that parsed (version {version}); it is rechecked once this one parses"
_SEVERITIES = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.NOTE: types.DiagnosticSeverity.Information,
}


class Converter:
    """Turns poseir diagnostics and fixes into LSP records for one checked document."""

    def __init__(self, document: CheckedDocument, encoding: str):
        self.document = document
        self.encoding = encoding
        self._positions: dict[str, Positions | None] = {}

    def positions(self, path: str) -> Positions | None:
        """Position conversion for a file of the compilation (the document's own text for itself)."""
        if path not in self._positions:
            source = self.document.source(path)
            self._positions[path] = Positions(source, self.encoding) if source is not None else None
        return self._positions[path]

    def uri(self, path: str) -> str:
        """The URI of a file: the document's own URI for itself."""
        return self.document.uri if path == self.document.path else file_uri(path)

    def in_document(self, span: Span | None) -> bool:
        """Whether a span points at text of this document."""
        return span is not None and span.is_known and span.path == self.document.path

    def location(self, span: Span) -> types.Location | None:
        """The LSP location of a span in a file, or None for synthesized spans."""
        positions = self.positions(span.path) if span.is_known or span.path.startswith("<prelude") else None
        return types.Location(uri=self.uri(span.path), range=positions.range(span)) if positions else None

    def diagnostic(self, diagnostic: Diagnostic) -> types.Diagnostic:
        """An LSP diagnostic; one located in another file sits at the top of this one."""
        span = diagnostic.span
        message = diagnostic.message
        if self.in_document(span):
            range_ = self.positions(span.path).range(span)
        else:
            range_ = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
            if span is not None and span.is_known:
                message = f"{span}: {message}"
        return types.Diagnostic(
            range=range_, message=_full_message(message, diagnostic), severity=_SEVERITIES[diagnostic.severity],
            code=diagnostic.code, source=SOURCE, related_information=self.related(diagnostic) or None)

    def related(self, diagnostic: Diagnostic) -> list[types.DiagnosticRelatedInformation]:
        """The diagnostic's labelled spans ("T bound to 243 here") as related information."""
        related = []
        for label in diagnostic.labels:
            location = self.location(label.span) if label.span.is_known and not label.span.path.startswith("<") else None
            if location is not None:
                related.append(types.DiagnosticRelatedInformation(location=location,
                                                                  message=label.message or diagnostic.title))
        return related

    def code_action(self, fix: Fix, diagnostic: types.Diagnostic) -> types.CodeAction | None:
        """A quick fix applying every edit of a fix-it; preferred when the fix is safe."""
        changes: dict[str, list[types.TextEdit]] = {}
        for edit in fix.edits:
            positions = self.positions(edit.span.path)
            if positions is None:
                return None
            changes.setdefault(self.uri(edit.span.path), []).append(
                types.TextEdit(range=positions.range(edit.span), new_text=edit.replacement))
        return types.CodeAction(title=fix.message, kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                                is_preferred=fix.safe, edit=types.WorkspaceEdit(changes=changes))


def _full_message(message: str, diagnostic: Diagnostic) -> str:
    """The message with the rendered notes and helps below it, as `poseir check` prints them."""
    lines = [message]
    lines.extend(f"note: {note}" for note in diagnostic.notes)
    lines.extend(f"help: {help_}" for help_ in diagnostic.helps)
    return "\n".join(lines)


def document_diagnostics(current: CheckedDocument, last_good: CheckedDocument | None,
                         encoding: str) -> list[types.Diagnostic]:
    """The diagnostics to publish: the current check's, plus while it does not parse the last good
    check's on lines that did not change since, each marked as coming from that version."""
    converter = Converter(current, encoding)
    published = [converter.diagnostic(diagnostic) for diagnostic in current.compilation.sorted_diagnostics()]
    if current.parsed or last_good is None:
        return published
    old = Converter(last_good, encoding)
    lines = LineMap(last_good.text, current.text)
    for diagnostic in last_good.compilation.sorted_diagnostics():
        if not old.in_document(diagnostic.span):
            continue
        moved = _moved(old.diagnostic(diagnostic), lines)
        if moved is not None:
            moved.message += "\n" + STALE_NOTE.format(version=last_good.version)
            published.append(moved)
    return published


def _moved(diagnostic: types.Diagnostic, lines: LineMap) -> types.Diagnostic | None:
    """The diagnostic on its lines of the current text, or None when any of them changed."""
    first, last = diagnostic.range.start.line, diagnostic.range.end.line
    new_first = lines.new_line(first)
    if new_first is None or any(lines.new_line(line) != new_first + line - first for line in range(first, last + 1)):
        return None
    shift = new_first - first
    diagnostic.range = types.Range(start=types.Position(line=first + shift, character=diagnostic.range.start.character),
                                   end=types.Position(line=last + shift, character=diagnostic.range.end.character))
    diagnostic.related_information = None  # its spans may sit on lines that changed
    return diagnostic
