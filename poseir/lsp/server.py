"""`poseir lsp`: the language server face (pygls, stdio): diagnostics, hover and fix-its as quick fixes."""

from __future__ import annotations

import functools
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from poseir.elaborate import program as program_module
from poseir.compiler import Compilation, check
from poseir.diagnostics.codes import Severity
from poseir.diagnostics.record import Diagnostic, Fix
from poseir.lsp.hover import hover
from poseir.syntax.source import SourceFile, Span

SOURCE = "poseir"
_SEVERITIES = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.NOTE: types.DiagnosticSeverity.Information,
}
_UNLOADED = object()


def serve() -> None:
    """Run the language server on stdin/stdout until the client says exit."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # The protocol owns stdout: anything else printed goes to stderr instead of corrupting it.
    sys.stdout = sys.stderr
    build_server().start_io(stdin, stdout)


# ------------------------------------------------------------------ positions


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


def _overlaps(left: types.Range, right: types.Range) -> bool:
    """Whether two ranges share a position (touching counts, so a cursor at an end matches)."""
    def key(position: types.Position) -> tuple[int, int]:
        return position.line, position.character

    return key(left.start) <= key(right.end) and key(right.start) <= key(left.end)


# ------------------------------------------------------------------ checked documents


@dataclass
class CheckedDocument:
    """One check of one version of an open document; its syntax tree is loaded on first hover."""

    uri: str
    path: str
    text: str
    compilation: Compilation
    loaded: object = field(default=_UNLOADED, repr=False)

    def program(self) -> program_module.Program | None:
        """The parsed program (entry file, imports, prelude), or None when it does not parse."""
        if self.loaded is _UNLOADED:
            self.loaded, _ = program_module.load(self.path, self.text)
        return self.loaded


class PoseLanguageServer(LanguageServer):
    """pygls's server plus the latest check of each open document."""

    def __init__(self) -> None:
        super().__init__(SOURCE, _version(), text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.documents: dict[str, CheckedDocument] = {}

    @property
    def encoding(self) -> str:
        """The position encoding agreed with the client at initialization."""
        return self.workspace.position_encoding or types.PositionEncodingKind.Utf16

    def checked(self, uri: str) -> CheckedDocument:
        """The check of the document's current text, rechecking only when the text changed."""
        document = self.workspace.get_text_document(uri)
        text = document.source
        cached = self.documents.get(uri)
        if cached is not None and cached.text == text:
            return cached
        path = str(Path(document.path))
        # Check the editor's text, not the file on disk; imports still resolve next to `path`.
        cached = CheckedDocument(uri, path, text, check(path, text))
        self.documents[uri] = cached
        return cached

    def log_error(self, message: str) -> None:
        """Tell the client's log about an internal error (the server keeps running)."""
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=message))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("poseir")
    except PackageNotFoundError:
        return "0"


# ------------------------------------------------------------------ diagnostics


class _Converter:
    """Turns poseir diagnostics and fixes into LSP records for one document."""

    def __init__(self, document: CheckedDocument, encoding: str):
        self.document = document
        self.encoding = encoding
        self.sources = document.compilation.sources
        self._positions: dict[str, Positions] = {}

    def positions(self, path: str) -> Positions | None:
        """Position conversion for a file of the compilation (the document's own text for itself)."""
        if path not in self._positions:
            source = self.sources.get(path)
            if path == self.document.path:
                source = SourceFile(path, self.document.text)
            if source is None:
                return None
            self._positions[path] = Positions(source, self.encoding)
        return self._positions[path]

    def uri(self, path: str) -> str:
        """The URI of a file: the document's own URI for itself."""
        return self.document.uri if path == self.document.path else Path(path).resolve().as_uri()

    def in_document(self, span: Span | None) -> bool:
        """Whether a span points at text of this document."""
        return span is not None and span.is_known and span.path == self.document.path

    def location(self, span: Span) -> types.Location | None:
        """The LSP location of a span in a real file, or None for synthesized or built-in spans."""
        positions = self.positions(span.path) if span.is_known and not span.path.startswith("<") else None
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
            location = self.location(label.span)
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


def _publish(server: PoseLanguageServer, uri: str) -> None:
    """Check the document's current text and publish its diagnostics."""
    document = server.checked(uri)
    converter = _Converter(document, server.encoding)
    diagnostics = [converter.diagnostic(diagnostic) for diagnostic in document.compilation.sorted_diagnostics()]
    version = server.workspace.get_text_document(uri).version
    server.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version))


# ------------------------------------------------------------------ handlers


def _guarded(handler):
    """Log any exception of a handler to the client instead of failing; the server keeps running."""
    @functools.wraps(handler)
    def run(ls: PoseLanguageServer, params):
        try:
            return handler(ls, params)
        except Exception:  # noqa: BLE001  (a bug in poseir must not take the editor's server down)
            ls.log_error(f"poseir: internal error in {handler.__name__}:\n{traceback.format_exc()}")
            return None

    return run


@_guarded
def did_open(ls: PoseLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    """Check a document when it is opened."""
    _publish(ls, params.text_document.uri)


@_guarded
def did_change(ls: PoseLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    """Recheck on every change (a check takes about 0.1 s)."""
    _publish(ls, params.text_document.uri)


@_guarded
def did_save(ls: PoseLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    """Recheck on save: imported files may have changed on disk."""
    ls.documents.pop(params.text_document.uri, None)
    _publish(ls, params.text_document.uri)


@_guarded
def did_close(ls: PoseLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    """Forget a closed document and clear its diagnostics."""
    ls.documents.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


@_guarded
def on_hover(ls: PoseLanguageServer, params: types.HoverParams) -> types.Hover | None:
    """Doc comment and signature of a declaration, or the inferred type of a tensor in a forward."""
    document = ls.checked(params.text_document.uri)
    program = document.program()
    if program is None:
        return None
    positions = Positions(program.sources[program.entry.path], ls.encoding)
    found = hover(program, document.compilation, positions.offset(params.position))
    if found is None:
        return None
    range_ = types.Range(start=positions.position(found.start), end=positions.position(found.end))
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=found.markdown),
                       range=range_)


@_guarded
def on_code_action(ls: PoseLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    """Each fix-it of a diagnostic touching the requested range, as a quick fix."""
    document = ls.checked(params.text_document.uri)
    converter = _Converter(document, ls.encoding)
    actions = []
    for diagnostic in document.compilation.sorted_diagnostics():
        if not diagnostic.fixes or not converter.in_document(diagnostic.span):
            continue
        converted = converter.diagnostic(diagnostic)
        if not _overlaps(converted.range, params.range):
            continue
        for fix in diagnostic.fixes:
            action = converter.code_action(fix, converted)
            if action is not None:
                actions.append(action)
    return actions


def build_server() -> PoseLanguageServer:
    """A server with every feature registered."""
    server = PoseLanguageServer()
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    server.feature(types.TEXT_DOCUMENT_DID_SAVE)(did_save)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    server.feature(types.TEXT_DOCUMENT_HOVER)(on_hover)
    server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                   types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))(on_code_action)
    return server
