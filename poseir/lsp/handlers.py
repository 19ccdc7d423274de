"""The LSP methods the server answers, each a thin adapter from protocol records to a feature module."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from poseir.lsp import completion, hints, navigation, tokens
from poseir.lsp.diagnostics import Converter
from poseir.lsp.documents import LineMap, Positions
from poseir.lsp.hover import hover


def register(server, guarded) -> None:
    """Register every feature of the server, each wrapped by `guarded`."""
    features = [
        (types.INITIALIZE, None, initialize), (types.INITIALIZED, None, initialized),
        (types.TEXT_DOCUMENT_DID_OPEN, None, did_open), (types.TEXT_DOCUMENT_DID_CHANGE, None, did_change),
        (types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False), did_save),
        (types.TEXT_DOCUMENT_DID_CLOSE, None, did_close),
        (types.WORKSPACE_DID_CHANGE_WATCHED_FILES, None, did_change_watched_files),
        (types.TEXT_DOCUMENT_HOVER, None, on_hover),
        (types.TEXT_DOCUMENT_DEFINITION, None, on_definition),
        (types.TEXT_DOCUMENT_REFERENCES, None, on_references),
        (types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, None, on_document_symbol),
        (types.WORKSPACE_SYMBOL, None, on_workspace_symbol),
        (types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["."]), on_completion),
        (types.TEXT_DOCUMENT_SIGNATURE_HELP, types.SignatureHelpOptions(trigger_characters=["(", ","]),
         on_signature_help),
        (types.TEXT_DOCUMENT_INLAY_HINT, None, on_inlay_hint),
        (types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
         types.SemanticTokensLegend(token_types=list(tokens.TOKEN_TYPES), token_modifiers=list(tokens.TOKEN_MODIFIERS)),
         on_semantic_tokens),
        (types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
         on_code_action),
    ]
    for method, options, handler in features:
        server.feature(method, options)(guarded(handler))


# ------------------------------------------------------------------ lifecycle and documents


def initialize(ls, params: types.InitializeParams) -> None:
    """Read `initializationOptions.debounce` (seconds of quiet before a check; tests use less)."""
    options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
    debounce = options.get("debounce")
    if isinstance(debounce, (int, float)) and 0 <= debounce <= 5:
        ls.debounce = float(debounce)


async def initialized(ls, params) -> None:
    """Ask a client that can register watchers dynamically to report `.pose` files changing on disk."""
    capabilities = ls.client_capabilities.workspace
    watched = capabilities.did_change_watched_files if capabilities else None
    if watched is None or not watched.dynamic_registration:
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern="**/*.pose")])
    await ls.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
        id="poseir-watch-pose-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)]))


def did_open(ls, params: types.DidOpenTextDocumentParams) -> None:
    """Check a document as soon as it is opened."""
    ls.versions[params.text_document.uri] = params.text_document.version
    ls.schedule(params.text_document.uri, 0.0)


def did_change(ls, params: types.DidChangeTextDocumentParams) -> None:
    """Check again once the typing pauses; only the latest version is published."""
    ls.versions[params.text_document.uri] = params.text_document.version
    ls.schedule(params.text_document.uri, ls.debounce)


def did_save(ls, params: types.DidSaveTextDocumentParams) -> None:
    """A saved file may be imported by other open documents: check them (and this one) again."""
    ls.refresh_importers({str(Path(to_fs_path(params.text_document.uri)).resolve())})


def did_change_watched_files(ls, params: types.DidChangeWatchedFilesParams) -> None:
    """A `.pose` file changed on disk: check again the open documents that import it."""
    ls.refresh_importers({str(Path(to_fs_path(change.uri)).resolve()) for change in params.changes})


def did_close(ls, params: types.DidCloseTextDocumentParams) -> None:
    """Forget a closed document and clear its diagnostics."""
    uri = params.text_document.uri
    pending = ls.scheduled.pop(uri, None)
    if pending is not None:
        pending.cancel()
    for table in (ls.checks, ls.last_good, ls.versions):
        table.pop(uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


# ------------------------------------------------------------------ position mapping


class _View:
    """A request's document: the check features read, and how its positions map onto the editor's text."""

    def __init__(self, ls, document, lines: LineMap | None, current):
        self.ls = ls
        self.document = document
        self.lines = lines
        self.current = current

    def offset(self, position: types.Position, nearest: bool = False) -> int | None:
        """The offset in the checked text of a position in the editor's text."""
        offset = self.ls.offset(self.current, position)
        return offset if self.lines is None else self.lines.old_offset(offset, nearest)

    def range(self, range_: types.Range) -> types.Range | None:
        """A range of the checked text moved onto the editor's text (None when its lines changed)."""
        if self.lines is None:
            return range_
        start, end = self.lines.new_line(range_.start.line), self.lines.new_line(range_.end.line)
        if start is None or end is None:
            return None
        return types.Range(start=types.Position(line=start, character=range_.start.character),
                           end=types.Position(line=end, character=range_.end.character))

    def location(self, location: types.Location) -> types.Location | None:
        """A location, moved when it is in this document."""
        if location.uri != self.current.uri:
            return location
        moved = self.range(location.range)
        return types.Location(uri=location.uri, range=moved) if moved else None


async def _view(ls, uri: str) -> _View | None:
    """The view for a request, or None when nothing of the document ever parsed."""
    document, lines, current = await ls.view(uri)
    if document is None:
        return None
    document.related = [other for key, other in sorted(ls.last_good.items())
                        if key != uri and document.path in other.compilation.program.units]
    return _View(ls, document, lines, current)


# ------------------------------------------------------------------ requests


async def on_hover(ls, params: types.HoverParams) -> types.Hover | None:
    """Inferred types of locals and inputs, docs of declarations and ops, dims with their facts."""
    view = await _view(ls, params.text_document.uri)
    offset = view.offset(params.position) if view else None
    if offset is None:
        return None
    found = hover(view.document, offset)
    if found is None:
        return None
    positions = Positions(view.document.source(view.document.path), ls.encoding)
    range_ = view.range(types.Range(start=positions.position(found.start), end=positions.position(found.end)))
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=found.markdown), range=range_)


async def on_definition(ls, params: types.DefinitionParams) -> list[types.Location] | None:
    """Where the name under the cursor is defined, in this file, an imported one or the prelude."""
    view = await _view(ls, params.text_document.uri)
    offset = view.offset(params.position) if view else None
    if offset is None:
        return None
    found = [view.location(location) for location in navigation.definition(view.document, offset, ls.encoding)]
    return [location for location in found if location is not None] or None


async def on_references(ls, params: types.ReferenceParams) -> list[types.Location] | None:
    """Every use of the name under the cursor in this program and in the other open documents."""
    view = await _view(ls, params.text_document.uri)
    offset = view.offset(params.position) if view else None
    if offset is None:
        return None
    others = [document for uri, document in sorted(ls.last_good.items()) if uri != params.text_document.uri]
    found = navigation.references([view.document, *others], offset, params.context.include_declaration, ls.encoding)
    return [moved for location in found if (moved := view.location(location)) is not None]


async def on_document_symbol(ls, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
    """The outline: models, modules with their hyper-parameters, layers and forwards, dims, skeletons."""
    view = await _view(ls, params.text_document.uri)
    if view is None:
        return []
    document = view.document
    symbols = navigation.document_symbols(document.compilation.program.entry.tree, document.source(document.path),
                                          ls.encoding)
    return [moved for symbol in symbols if (moved := _moved_symbol(view, symbol)) is not None]


def _moved_symbol(view: _View, symbol: types.DocumentSymbol) -> types.DocumentSymbol | None:
    """An outline entry moved onto the editor's text, dropped when its lines changed."""
    range_, selection = view.range(symbol.range), view.range(symbol.selection_range)
    if range_ is None or selection is None:
        return None
    children = [moved for child in symbol.children or () if (moved := _moved_symbol(view, child)) is not None]
    return types.DocumentSymbol(name=symbol.name, kind=symbol.kind, range=range_, selection_range=selection,
                                detail=symbol.detail, children=children or None)


def on_workspace_symbol(ls, params: types.WorkspaceSymbolParams) -> list[types.WorkspaceSymbol]:
    """Declarations in every `.pose` file of the workspace folders and the open documents."""
    roots = [to_fs_path(folder.uri) for folder in ls.workspace.folders.values()]
    if not roots and ls.workspace.root_path:
        roots = [ls.workspace.root_path]
    files: dict[str, str | None] = {path: None for path in navigation.workspace_files(roots)}
    for uri, document in ls.workspace.text_documents.items():
        if uri.endswith(".pose"):
            files[str(Path(document.path))] = document.source
    return navigation.workspace_symbols(params.query, files, ls.encoding)


async def on_completion(ls, params: types.CompletionParams) -> types.CompletionList | None:
    """Ops, layers, tensor methods, `self.` members, dims, keywords and locals, with signatures."""
    context = await _context(ls, params)
    items = completion.complete(context) if context else []
    return types.CompletionList(is_incomplete=False, items=items)


async def on_signature_help(ls, params: types.SignatureHelpParams) -> types.SignatureHelp | None:
    """The signature of the op, module or layer being called at the cursor."""
    context = await _context(ls, params)
    return completion.signature_help(context) if context else None


async def _context(ls, params) -> completion.Context | None:
    """The text before the cursor and the matching place in the checked document."""
    view = await _view(ls, params.text_document.uri)
    if view is None:
        return None
    offset = ls.offset(view.current, params.position)
    return completion.Context(view.current.text[:offset], view.document, view.offset(params.position, nearest=True))


async def on_inlay_hint(ls, params: types.InlayHintParams) -> list[types.InlayHint] | None:
    """The inferred type after each assignment and on forward inputs, in the requested range."""
    view = await _view(ls, params.text_document.uri)
    if view is None:
        return []
    start = view.offset(params.range.start, nearest=True) or 0
    end = view.offset(params.range.end, nearest=True)
    found = hints.inlay_hints(view.document, start, len(view.document.text) if end is None else end, ls.encoding)
    moved = []
    for hint in found:
        range_ = view.range(types.Range(start=hint.position, end=hint.position))
        if range_ is not None:
            hint.position = range_.start
            moved.append(hint)
    return moved


async def on_semantic_tokens(ls, params: types.SemanticTokensParams) -> types.SemanticTokens:
    """Names coloured by what they are; keywords, numbers, strings and comments too."""
    view = await _view(ls, params.text_document.uri)
    if view is None or view.lines is not None:
        # Tokens of another text would colour the wrong words; a syntax error mid-edit keeps the
        # client's previous colouring until the text parses again.
        return types.SemanticTokens(data=[]) if view is None else None
    return types.SemanticTokens(data=tokens.semantic_tokens(view.document, ls.encoding))


async def on_code_action(ls, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Each fix-it of a diagnostic touching the requested range, as a quick fix."""
    document = await ls.checked(params.text_document.uri)
    converter = Converter(document, ls.encoding)
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


def _overlaps(left: types.Range, right: types.Range) -> bool:
    """Whether two ranges share a position (touching counts, so a cursor at an end matches)."""
    def key(position: types.Position) -> tuple[int, int]:
        return position.line, position.character

    return key(left.start) <= key(right.end) and key(right.start) <= key(left.end)
