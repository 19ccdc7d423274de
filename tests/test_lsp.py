"""`poseir lsp` driven by a real client: JSON-RPC with Content-Length framing over the server's stdio."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from lsprotocol import types

from poseir.lsp.server import Positions, code_units
from poseir.syntax.source import SourceFile

TIMEOUT = 8.0  # seconds for any one answer; a hung server fails the test instead of hanging CI

FIXED = '''\
dim B, T
model vp = Lifter(width = 51)
model addback = RootAddBack()

## Lifts 2D poses to 3D.
## The 😀 in the channel count is there to test UTF-16 columns.
module Lifter(width: int) {
    self.shrink = Conv1d(len("😀é") + 1022, width, 1)
    forward(x: f32[B, 1024, T]) -> (pose: f32[B, T, 17, 3]) {
        return self.shrink(x).permute(0, 2, 1).reshape(B, T, 17, 3)
    }
}

module RootAddBack(joints: int = 17) {
    forward(pose: f32[B, T, joints, 3], traj: f32[B, joints, 3]) -> (y: f32[B, T, joints, 3]) {
        moved = pose + traj[:, none]
        return moved
    }
}
'''
BROKEN = FIXED.replace(", width, 1)", ", widht, 1)").replace("traj[:, none]", "traj")


class LspClient:
    """A minimal language client: frames messages, answers server requests, waits with timeouts."""

    def __init__(self, log: Path):
        self.log = log.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "poseir", "lsp"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log)
        self.messages: queue.Queue = queue.Queue()
        self.notifications: list[dict] = []
        self.server_requests: list[str] = []
        self.ids = itertools.count(1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Parse framed messages from the server until its stdout closes."""
        stream = self.process.stdout
        while True:
            headers = {}
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("ascii").partition(":")
                headers[name.strip().lower()] = value.strip()
            if not headers:
                self.messages.put(None)
                return
            self.messages.put(json.loads(stream.read(int(headers["content-length"])).decode("utf-8")))

    def send(self, message: dict) -> None:
        """Write one JSON-RPC message with its Content-Length header."""
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict | None = None) -> None:
        """Send a notification."""
        self.send({"method": method, **({"params": params} if params is not None else {})})

    def request(self, method: str, params: dict | None = None) -> dict:
        """Send a request and return its response, keeping notifications that arrive meanwhile."""
        request_id = next(self.ids)
        self.send({"id": request_id, "method": method, **({"params": params} if params is not None else {})})
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._next(deadline, f"the response to {method}")
            if message.get("id") == request_id and "method" not in message:
                return message

    def notification(self, method: str, predicate=lambda params: True) -> dict:
        """The params of the first (kept or next) notification of `method` that satisfies predicate."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for index, message in enumerate(self.notifications):
                if message["method"] == method and predicate(message.get("params")):
                    return self.notifications.pop(index)["params"]
            self._next(deadline, method)

    def _next(self, deadline: float, waiting_for: str) -> dict:
        """The next message; server requests are answered and notifications kept."""
        try:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no {waiting_for} from the server within {TIMEOUT} s")
        if message is None:
            pytest.fail(f"the server closed its output while we waited for {waiting_for}")
        if "method" in message and "id" in message:
            self.server_requests.append(message["method"])
            self.send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        return message

    def diagnostics(self, uri: str, version: int | None) -> list[dict]:
        """The diagnostics published for one version of a document (None: a closed one)."""
        params = self.notification("textDocument/publishDiagnostics",
                                   lambda params: params["uri"] == uri and params.get("version") == version)
        return params["diagnostics"]

    def close(self) -> None:
        """Stop the server if the test did not (it must not outlive the test)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        self.log.close()


@pytest.fixture
def client(tmp_path):
    lsp = LspClient(tmp_path / "server.log")
    try:
        yield lsp
    finally:
        lsp.close()


def initialize(client: LspClient, root: Path) -> dict:
    """The initialize handshake; returns the server's capabilities."""
    response = client.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
    client.notify("initialized", {})
    return response["result"]["capabilities"]


def open_document(client: LspClient, path: Path, text: str) -> str:
    """didOpen with text that is not on disk; returns the URI."""
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "pose", "version": 1,
                                                            "text": text}})
    return uri


def position_of(text: str, needle: str, line_hint: str | None = None) -> dict:
    """The LSP position (UTF-16) of the first `needle` on the first line containing line_hint."""
    for number, line in enumerate(text.split("\n")):
        if needle in line and (line_hint is None or line_hint in line):
            prefix = line[:line.index(needle)]
            return {"line": number, "character": len(prefix.encode("utf-16-le")) // 2}
    raise AssertionError(f"{needle!r} not in the text")


def hover_text(client: LspClient, uri: str, position: dict) -> str | None:
    """The markdown of a hover, or None when the server has nothing to show."""
    result = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": position})["result"]
    return result["contents"]["value"] if result else None


def test_diagnostics_hover_code_actions_and_shutdown(client, tmp_path):
    capabilities = initialize(client, tmp_path)
    assert capabilities["hoverProvider"] and capabilities["codeActionProvider"]
    uri = open_document(client, tmp_path / "lifter.pose", BROKEN)

    diagnostics = client.diagnostics(uri, 1)
    assert [(d["code"], d["severity"], d["source"]) for d in diagnostics] == [
        ("E100", 1, "poseir"), ("E200", 1, "poseir")]
    typo, broadcast = diagnostics
    line = BROKEN.split("\n")[7]
    # The 😀 before the typo is one character but two UTF-16 code units.
    column = line.index("widht") + 1
    assert typo["range"] == {"start": {"line": 7, "character": column}, "end": {"line": 7, "character": column + 5}}
    assert "help: a name with a similar spelling exists: `width`" in typo["message"]
    assert broadcast["range"]["start"] == position_of(BROKEN, "traj", "moved")
    assert "note: shapes are aligned from the right" in broadcast["message"]
    related = {info["message"] for info in broadcast["relatedInformation"]}
    assert related == {"this is f32[B, T, 17, 3]", "this is f32[B, 17, 3]"}

    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": broadcast["range"],
        "context": {"diagnostics": [broadcast]}})["result"]
    assert [(action["title"], action["kind"], action["isPreferred"]) for action in actions] == [
        ("insert the missing axis: `traj[:, none]`", "quickfix", True)]
    assert actions[0]["edit"]["changes"] == {uri: [{"range": broadcast["range"], "newText": "traj[:, none]"}]}
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": typo["range"]["start"], "end": typo["range"]["start"]},
        "context": {"diagnostics": []}})["result"]
    assert [(action["title"], action["isPreferred"]) for action in actions] == [("replace with `width`", False)]
    assert actions[0]["edit"]["changes"][uri][0] == {"range": typo["range"], "newText": "width"}

    module_doc = hover_text(client, uri, position_of(BROKEN, "Lifter", "module"))
    assert "module Lifter(width: int)" in module_doc
    assert "Lifts 2D poses to 3D.\nThe 😀 in the channel count is there to test UTF-16 columns." in module_doc
    assert "forward(x: f32[B, 1024, T]) -> (pose: f32[B, T, 17, 3])" in module_doc

    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": FIXED}]})
    assert client.diagnostics(uri, 2) == []
    assert "moved: f32[B, T, joints, 3]" in hover_text(client, uri, position_of(FIXED, "moved", "return"))
    assert "traj: f32[B, joints, 3]" in hover_text(client, uri, position_of(FIXED, "traj", "forward"))
    assert "Conv1d" in hover_text(client, uri, position_of(FIXED, "Conv1d"))
    assert hover_text(client, uri, {"line": 0, "character": 3}) is None  # `dim` is a keyword

    assert client.request("shutdown")["result"] is None
    client.notify("exit")
    assert client.process.wait(timeout=TIMEOUT) == 0


def test_internal_errors_are_logged_and_the_server_keeps_going(client, tmp_path):
    initialize(client, tmp_path)
    # A document that was never opened and is not on disk: the handler fails inside.
    missing = (tmp_path / "never-opened.pose").as_uri()
    response = client.request("textDocument/hover", {"textDocument": {"uri": missing},
                                                     "position": {"line": 0, "character": 0}})
    assert response.get("result") is None and "error" not in response
    log = client.notification("window/logMessage", lambda params: "internal error" in params["message"])
    assert log["type"] == 1

    (tmp_path / "blocks.pose").write_text("## A block from another file.\nmodule Block() {\n}\n", encoding="utf-8")
    text = 'import "blocks.pose"\n\nmodule Net() {\n    self.block = Block()\n}\n'
    uri = open_document(client, tmp_path / "net.pose", text)  # imports resolve next to the file's path
    assert client.diagnostics(uri, 1) == []
    assert "A block from another file." in hover_text(client, uri, position_of(text, "Block", "self"))
    far = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                "position": {"line": 99, "character": 99}})
    assert far["result"] is None and "error" not in far
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": "module {"}]})
    assert [d["code"] for d in client.diagnostics(uri, 2)] == ["E001"]
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri, None) == []
    assert client.request("shutdown")["result"] is None
    client.notify("exit")
    assert client.process.wait(timeout=TIMEOUT) == 0


def test_positions_count_utf16_code_units():
    source = SourceFile("x.pose", 'a = "😀é"\nb = c\n')
    positions = Positions(source, types.PositionEncodingKind.Utf16)
    offset_of_b = source.text.index("b")
    closing_quote = source.text.index('"', 5)
    # `a = "` is 5 units, the emoji 2 (a surrogate pair), `é` 1.
    assert positions.position(closing_quote) == types.Position(line=0, character=8)
    assert positions.offset(types.Position(line=0, character=8)) == closing_quote
    assert positions.offset(types.Position(line=1, character=0)) == offset_of_b
    assert positions.offset(types.Position(line=0, character=500)) == source.text.index("\n")
    assert code_units("😀é", types.PositionEncodingKind.Utf8) == 6
    assert code_units("😀é", types.PositionEncodingKind.Utf32) == 2
    assert code_units("😀é", types.PositionEncodingKind.Utf16) == 3


def test_every_request_is_answered_and_garbage_does_not_stop_the_server(client, tmp_path):
    capabilities = {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}
    response = client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(),
                                             "capabilities": capabilities})
    assert response["result"]["capabilities"]["inlayHintProvider"]
    client.notify("initialized", {})
    uri = open_document(client, tmp_path / "lifter.pose", FIXED)
    assert client.diagnostics(uri, 1) == []

    # A request whose params do not decode gets InvalidParams, not silence.
    missing_position = client.request("textDocument/hover", {"textDocument": {"uri": uri}})
    assert missing_position["error"]["code"] == -32602 and "textDocument/hover" in missing_position["error"]["message"]
    wrong_type = client.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                            "position": {"line": "one", "character": 0}})
    assert wrong_type["error"]["code"] == -32602
    assert client.request("poseir/noSuchMethod", {})["error"]["code"] == -32601

    # Garbage: a body that is not JSON, JSON that is not a message, a message without a method.
    for body in (b"{not json", b"[1, 2, 3]", b'"text"', b'{"jsonrpc": "2.0", "id": 99}'):
        client.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        client.process.stdin.flush()
    client.process.stdin.write(b"this is not a header\r\n")
    client.process.stdin.flush()
    errors = []
    while len(errors) < 3:
        message = client._next(time.monotonic() + TIMEOUT, "an error response to garbage")
        if "error" in message and message.get("id") is None:
            errors.append(message["error"]["code"])
    assert sorted(errors) == [-32700, -32600, -32600]

    # Still alive and still right.
    assert "moved: f32[B, T, joints, 3]" in hover_text(client, uri, position_of(FIXED, "moved", "return"))
    assert client.server_requests == ["client/registerCapability"]  # the `.pose` watcher, answered by `_next`
    assert client.request("shutdown")["result"] is None
    client.notify("exit")
    assert client.process.wait(timeout=TIMEOUT) == 0
