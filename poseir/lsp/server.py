"""`poseir lsp`: the language server face (pygls, stdio).

Checks run one at a time on a worker thread, so the server keeps answering while one runs. An
edit schedules a check after a short quiet period (`debounce`); a newer edit cancels the
scheduled one and stops a running one at its next model boundary, and diagnostics are published
only for the version that is still current. Requests wait for the check of the current text.
While the text does not parse, features read the last check that did, through a line map.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from poseir.compiler import check
from poseir.lsp.documents import CheckedDocument, LineMap, Positions, code_units  # noqa: F401  (public helpers)
from poseir.lsp.diagnostics import SOURCE, document_diagnostics
from poseir.syntax.source import SourceFile

DEBOUNCE_SECONDS = 0.25  # a check costs 0.1-0.5 s; typing faster than this checks only the last text


def serve() -> None:
    """Run the language server on stdin/stdout until the client says exit."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # The protocol owns stdout: anything else printed goes to stderr instead of corrupting it.
    sys.stdout = sys.stderr
    build_server().start_io(stdin, stdout)


class _Answered:
    """Stands for a request already answered with an error while it was being decoded."""

    jsonrpc = "answered"


_ANSWERED = _Answered()


class PoseProtocol(LanguageServerProtocol):
    """pygls's protocol, answering every request: one whose params do not decode gets an
    InvalidParams error instead of silence, and a body that is not JSON a ParseError."""

    def structure_message(self, data):
        """Decode a message; a request that cannot be decoded is answered with its error here."""
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if isinstance(data, dict) and "id" in data and "method" in data:
                cause = error.__cause__ or error
                reason = JsonRpcInvalidParams(f"invalid params for {data['method']}: {_first_line(cause)}")
                self._send_response(data["id"], error=reason.to_response_error())
                return _ANSWERED
            raise

    def handle_message(self, message):
        """Dispatch a decoded message; skip one answered already and anything that is not a message."""
        if message is _ANSWERED:
            return
        if not hasattr(message, "jsonrpc"):
            self._send_data({"jsonrpc": "2.0", "id": None,
                             "error": {"code": -32600, "message": "Invalid Request: not a JSON-RPC message"}})
            return
        super().handle_message(message)


def _first_line(error: BaseException) -> str:
    """The first line of an exception's text (cattrs' messages run long)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


class PoseLanguageServer(LanguageServer):
    """pygls's server plus the checks of each open document and their scheduling."""

    def __init__(self) -> None:
        super().__init__(SOURCE, _version(), text_document_sync_kind=types.TextDocumentSyncKind.Full,
                         protocol_cls=PoseProtocol)
        self.debounce = DEBOUNCE_SECONDS
        self.checks: dict[str, CheckedDocument] = {}  # uri -> the latest finished check
        self.last_good: dict[str, CheckedDocument] = {}  # uri -> the latest check whose text parsed
        self.versions: dict[str, int] = {}  # uri -> the latest version the client sent
        self.scheduled: dict[str, asyncio.Task] = {}  # uri -> the pending publication
        self.running: dict[str, tuple] = {}  # uri -> ((text, generation), future of its check)
        self.generation = 0  # bumped whenever a file on disk changes, so imports are read again
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poseir-check")

    @property
    def encoding(self) -> str:
        """The position encoding agreed with the client at initialization."""
        return self.workspace.position_encoding or types.PositionEncodingKind.Utf16

    def report_server_error(self, error: Exception, source) -> None:
        """A body that is not JSON gets a ParseError response; other errors go to the log only."""
        import json

        if isinstance(error, json.JSONDecodeError):
            self.protocol._send_data({"jsonrpc": "2.0", "id": None,
                                      "error": {"code": -32700, "message": f"Parse error: {error}"}})
        self.log(f"poseir: {type(error).__name__}: {error}", types.MessageType.Warning)

    def log(self, message: str, kind=types.MessageType.Log) -> None:
        """A line in the client's log for the server."""
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    # -------------------------------------------------------------- checking
    async def checked(self, uri: str) -> CheckedDocument:
        """The check of the document's current text, reusing a finished or running one."""
        result = None
        for _ in range(8):
            document = self.workspace.get_text_document(uri)
            text, version = document.source, document.version or 0
            cached = self.checks.get(uri)
            if cached is not None and (cached.text, cached.generation) == (text, self.generation) and cached.complete:
                if cached.version != version:  # the same text again (an undo): the same check, relabelled
                    cached = self.checks[uri] = dataclasses.replace(cached, version=version)
                return cached
            key = (text, self.generation)
            running = self.running.get(uri)
            if running is None or running[0] != key:
                path = str(Path(document.path))
                future = asyncio.get_running_loop().run_in_executor(
                    self.executor, self._check, uri, path, version, text, self.generation)
                running = self.running[uri] = (key, future)
            result, report = await asyncio.shield(running[1])
            if self.running.get(uri) is running:
                del self.running[uri]
                self.log(report)  # from this thread: the worker must not write to stdout itself
            if result.complete:
                self.checks[uri] = result
                if result.parsed:
                    self.last_good[uri] = result
                return result
        return result

    def _check(self, uri: str, path: str, version: int, text: str, generation: int) -> tuple[CheckedDocument, str]:
        """One check on the worker thread, and a line for the log; it stops early once the client has
        sent a newer version."""
        started = time.perf_counter()

        def stale() -> bool:
            return self.versions.get(uri, version) != version or self.generation != generation

        compilation = check(path, text, cancelled=stale)
        result = CheckedDocument(uri, path, version, text, compilation, complete=not stale(), generation=generation)
        result.index  # built here, on the worker, rather than in the first request
        report = (f"poseir: checked {Path(path).name} version {version} in {time.perf_counter() - started:.2f} s"
                  + ("" if result.complete else " (stopped: a newer version arrived)"))
        return result, report

    def schedule(self, uri: str, delay: float) -> None:
        """Publish the diagnostics of the current version after `delay`, replacing any pending publication."""
        pending = self.scheduled.pop(uri, None)
        if pending is not None:
            pending.cancel()
        version = self.versions.get(uri)
        self.scheduled[uri] = asyncio.get_running_loop().create_task(self._publish_later(uri, version, delay))

    async def _publish_later(self, uri: str, version: int, delay: float) -> None:
        """Wait out the quiet period, check, and publish if no newer version arrived meanwhile."""
        try:
            await asyncio.sleep(delay)
            document = await self.checked(uri)
            if self.versions.get(uri) != version or document.version != version:
                return
            diagnostics = document_diagnostics(document, self.last_good.get(uri), self.encoding)
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001  (a bug in poseir must not take the editor's server down)
            self.log(f"poseir: internal error while checking {uri}:\n{traceback.format_exc()}", types.MessageType.Error)

    def refresh_importers(self, paths: set[str]) -> None:
        """Files changed on disk: check again every open document that read one of them."""
        self.generation += 1
        for uri, document in list(self.checks.items()):
            if document.paths() & paths or str(Path(document.path).resolve()) in paths:
                self.schedule(uri, 0.0)

    # -------------------------------------------------------------- views for requests
    async def view(self, uri: str) -> tuple[CheckedDocument | None, LineMap | None, CheckedDocument]:
        """The check features read (the current one, or the last that parsed with a map onto it)."""
        current = await self.checked(uri)
        if current.parsed:
            return current, None, current
        last = self.last_good.get(uri)
        return last, (LineMap(last.text, current.text) if last is not None else None), current

    def offset(self, current: CheckedDocument, position: types.Position) -> int:
        """The offset of a position in a check's text."""
        return Positions(SourceFile(current.path, current.text), self.encoding).offset(position)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("poseir")
    except PackageNotFoundError:
        return "0"


def _guarded(handler):
    """Log any exception of a handler to the client and answer with nothing; the server keeps running."""
    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def run_async(ls: PoseLanguageServer, params):
            try:
                return await handler(ls, params)
            except Exception:  # noqa: BLE001
                ls.log(f"poseir: internal error in {handler.__name__}:\n{traceback.format_exc()}", types.MessageType.Error)
                return None

        return run_async

    @functools.wraps(handler)
    def run(ls: PoseLanguageServer, params):
        try:
            return handler(ls, params)
        except Exception:  # noqa: BLE001
            ls.log(f"poseir: internal error in {handler.__name__}:\n{traceback.format_exc()}", types.MessageType.Error)
            return None

    return run


def build_server() -> PoseLanguageServer:
    """A server with every feature registered."""
    from poseir.lsp import handlers

    server = PoseLanguageServer()
    handlers.register(server, _guarded)
    return server
