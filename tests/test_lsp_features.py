"""`poseir lsp` end to end with pytest-lsp's client over stdio: every editor feature and real editing."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

TIMEOUT = 20.0  # seconds for any one wait; a hung server fails the test instead of hanging CI

LAYERS = '''\
dim N, L

WIDTH = 32
HALF = WIDTH // 2

## A residual MLP block.
module Block(width: int) {
    self.fc = Linear(width, width)
    forward(x: f32[N, L, width], frames) -> (y: f32[N, L, width]) {
        h = relu(self.fc(x))
        return x + h
    }
}
'''

NET = '''\
import "layers.pose"
import "layers.pose" as lib

dim B, T

## Joint names of a tiny stick figure.
skeleton stick {
    joints = ["pelvis", "lhip", "rhip", "spine"]
    parents = [-1, "pelvis", "pelvis", "pelvis"]
    pairs = [("lhip", "rhip")]
}

model net = Net()

## Embeds 2D points and runs the blocks.
module Net(depth: int = 2) {
    self.embed = Linear(2, 32)
    self.blocks = [Block(32) for i in 0..depth]
    self.extra = lib.Block(32)
    forward(x: f32[B, T, 2]) -> (y: f32[B, T, 32]) {
        h = self.embed(x)
        for block in self.blocks {
            h = block(h, T)
        }
        pelvis = h[:, stick.pelvis:stick.pelvis + 1]
        y = self.extra(h, T) + pelvis
        return y
    }
}
'''


def _client() -> LanguageClient:
    """pytest-lsp's client, also keeping every published diagnostics notification with its version."""
    client = LanguageClient(converter_factory=default_converter)
    client.published = []
    client.registrations = []

    def publish(client_: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        client_.published.append(params)
        client_.diagnostics[params.uri] = params.diagnostics

    def register_capability(client_: LanguageClient, params: types.RegistrationParams) -> None:
        client_.registrations.extend(params.registrations)

    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: publish,
                                   types.CLIENT_REGISTER_CAPABILITY: register_capability})
    return client


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "poseir", "lsp"],
                                              client_factory=_client))
async def client(lsp_client: LanguageClient, tmp_path):
    (tmp_path / "layers.pose").write_text(LAYERS, encoding="utf-8")
    (tmp_path / "net.pose").write_text(NET, encoding="utf-8")
    lsp_client.initialize_result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim"), root_uri=tmp_path.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=tmp_path.as_uri(), name="project")],
        initialization_options={"debounce": 0.05}))
    lsp_client.root = tmp_path
    yield
    await lsp_client.shutdown_session()


async def published(client: LanguageClient, uri: str, version: int | None, after: int = 0) -> list[types.Diagnostic]:
    """The diagnostics published for one version of a document (waiting for them)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for params in client.published[after:]:
            if params.uri == uri and params.version == version:
                return list(params.diagnostics)
        await asyncio.sleep(0.02)
    pytest.fail(f"no diagnostics for {uri} version {version} within {TIMEOUT} s")


def open_document(client: LanguageClient, name: str, text: str | None = None) -> tuple[str, str]:
    """didOpen a file of the project (with `text` instead of what is on disk); returns (uri, text)."""
    path = client.root / name
    text = path.read_text(encoding="utf-8") if text is None else text
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=path.as_uri(), language_id="pose", version=1, text=text)))
    return path.as_uri(), text


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    """didChange with the full new text."""
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


def at(text: str, needle: str, line_hint: str | None = None, offset: int = 0) -> types.Position:
    """The position of `needle` (plus `offset` characters) on the first line containing `line_hint`."""
    for number, line in enumerate(text.split("\n")):
        if needle in line and (line_hint is None or line_hint in line):
            return types.Position(line=number, character=line.index(needle) + offset)
    raise AssertionError(f"{needle!r} not found")


def document(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


async def hover_text(client: LanguageClient, uri: str, position: types.Position) -> str | None:
    result = await client.text_document_hover_async(types.HoverParams(text_document=document(uri), position=position))
    return result.contents.value if result else None


# ------------------------------------------------------------------ types in the editor


@pytest.mark.asyncio
async def test_inlay_hints_and_hover_show_inferred_types(client: LanguageClient):
    uri, text = open_document(client, "net.pose")
    assert await published(client, uri, 1) == []
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=document(uri), range=types.Range(start=types.Position(line=0, character=0),
                                                       end=types.Position(line=40, character=0))))
    labels = {(hint.position.line, hint.label) for hint in hints}
    assert (at(text, "h = self.embed").line, ": f32[B, T, 32]") in labels
    assert (at(text, "pelvis = h").line, ": f32[B, 1, 32]") in labels
    assert (at(text, "y = self.extra").line, ": f32[B, T, 32]") in labels
    end_of_pelvis = at(text, "pelvis = h")
    assert any(hint.position.character == len(text.split("\n")[end_of_pelvis.line]) for hint in hints)

    # A local assigned from a submodule call, a loop variable, a dim, an op and a module.
    assert "y: f32[B, T, 32]" in await hover_text(client, uri, at(text, "y = self.extra"))
    assert "h: f32[B, T, 32]" in await hover_text(client, uri, at(text, "h = block", offset=0))
    assert "block: Block(...)" in await hover_text(client, uri, at(text, "block(h", offset=1))
    dim_b = await hover_text(client, uri, at(text, "B, T, 2"))
    assert "dim B" in dim_b and "bound by the model input" in dim_b
    relu = await hover_text(client, uri, at(text, "Linear(2"))
    assert "module Linear(in_features: int" in relu and "built-in layer" in relu
    doc = await hover_text(client, uri, at(text, "Net()", "model"))
    assert "module Net(depth: int = 2)" in doc and "Embeds 2D points" in doc
    joint = await hover_text(client, uri, at(text, "pelvis:", offset=1))
    assert "stick.pelvis = 0" in joint

    # The imported file alone has no model; the open file that imports it runs its code.
    layers_uri, layers = open_document(client, "layers.pose")
    await published(client, layers_uri, 1)
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=document(layers_uri), range=types.Range(start=types.Position(line=0, character=0),
                                                              end=types.Position(line=20, character=0))))
    labels = {hint.label for hint in hints}
    assert ": T" in labels, "the untyped input `frames` is the clip length"
    assert " = f32[B, T, 32]" in labels, "N, L bound at each call"
    assert ": f32[B, T, 32]" in labels
    relu = await hover_text(client, layers_uri, at(layers, "relu"))
    assert "relu(x)" in relu
    assert "N = B  # blocks.0" in await hover_text(client, layers_uri, at(layers, "N, L, width"))


# ------------------------------------------------------------------ navigation


@pytest.mark.asyncio
async def test_definition_and_references_across_files(client: LanguageClient):
    uri, text = open_document(client, "net.pose")
    await published(client, uri, 1)
    layers_uri = (client.root / "layers.pose").as_uri()

    async def definition(position: types.Position) -> list[types.Location]:
        result = await client.text_document_definition_async(types.DefinitionParams(
            text_document=document(uri), position=position))
        return list(result or [])

    (block,) = await definition(at(text, "Block(32) for"))
    assert block.uri == layers_uri and block.range.start == types.Position(line=6, character=7)
    (aliased,) = await definition(at(text, "Block(32)", "lib.", offset=0))
    assert aliased.uri == layers_uri and aliased.range.start.line == 6
    (extra,) = await definition(at(text, "extra(h", offset=1))
    assert extra.uri == uri and extra.range.start == at(text, "extra", "self.extra =")
    (dim_t,) = await definition(at(text, "T)", "block(h"))
    assert dim_t.range.start == at(text, "T", "dim B")
    (joint,) = await definition(at(text, "pelvis:", offset=1))
    assert joint.range.start == at(text, "pelvis", "joints", offset=0)
    reaching = await definition(at(text, "h, T) +"))
    assert sorted(location.range.start.line for location in reaching) == [at(text, "h = self.embed").line,
                                                                         at(text, "h = block").line]
    (prelude,) = await definition(at(text, "Linear"))
    assert prelude.uri.endswith("/poseir/elaborate/prelude.pose")
    (imported,) = await definition(at(text, "layers.pose", "as lib"))
    assert imported.uri == layers_uri

    # A constant, in the imported file opened on its own.
    layers_doc, layers = open_document(client, "layers.pose")
    await published(client, layers_doc, 1)
    (width,) = await client.text_document_definition_async(types.DefinitionParams(
        text_document=document(layers_doc), position=at(layers, "WIDTH", "HALF")))
    assert width.uri == layers_uri and width.range.start == at(layers, "WIDTH", "= 32")

    references = await client.text_document_references_async(types.ReferenceParams(
        text_document=document(uri), position=at(text, "Block(32) for"),
        context=types.ReferenceContext(include_declaration=True)))
    assert sorted((location.uri == uri, location.range.start.line) for location in references) == [
        (False, 6), (True, at(text, "Block(32) for").line), (True, at(text, "lib.Block").line)]
    pelvis = await client.text_document_references_async(types.ReferenceParams(
        text_document=document(uri), position=at(text, "pelvis", "joints", offset=1),
        context=types.ReferenceContext(include_declaration=False)))
    assert len(pelvis) == 5, "three parents, two slices"


@pytest.mark.asyncio
async def test_outline_and_workspace_symbols(client: LanguageClient):
    uri, text = open_document(client, "net.pose")
    await published(client, uri, 1)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=document(uri)))
    names = [(symbol.name, symbol.kind) for symbol in symbols]
    assert ("net", types.SymbolKind.Object) in names and ("stick", types.SymbolKind.Struct) in names
    assert ("B", types.SymbolKind.TypeParameter) in names
    net = next(symbol for symbol in symbols if symbol.name == "Net")
    children = [(child.name, child.kind) for child in net.children]
    assert children == [("depth", types.SymbolKind.TypeParameter), ("embed", types.SymbolKind.Property),
                        ("blocks", types.SymbolKind.Property), ("extra", types.SymbolKind.Property),
                        ("forward", types.SymbolKind.Method)]
    forward = net.children[-1]
    assert [child.name for child in forward.children] == ["x", "y"] and "(x: f32[B, T, 2])" in forward.detail
    assert net.selection_range.start == at(text, "Net", "module")

    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="blk"))
    assert [(symbol.name, Path(symbol.location.uri).name) for symbol in found] == [("Block", "layers.pose")]
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="HALF"))
    assert [symbol.name for symbol in found] == ["HALF"]


# ------------------------------------------------------------------ writing code


@pytest.mark.asyncio
async def test_completion_and_signature_help(client: LanguageClient):
    uri, text = open_document(client, "net.pose")
    await published(client, uri, 1)

    async def complete(new_text: str, needle: str, hint: str) -> dict[str, types.CompletionItem]:
        change(client, uri, complete.version, new_text)
        complete.version += 1
        result = await client.text_document_completion_async(types.CompletionParams(
            text_document=document(uri), position=at(new_text, needle, hint, len(needle))))
        return {item.label: item for item in result.items}
    complete.version = 2

    # Mid-edit the text does not parse: names come from the last version that did.
    members = await complete(text.replace("        return y", "        z = self.\n        return y"), "self.", "z =")
    assert set(members) == {"embed", "blocks", "extra"} and members["extra"].detail == "lib.Block(32)"
    methods = await complete(text.replace("        return y", "        z = y.perm\n        return y"), "y.perm", "z =")
    assert methods["permute"].detail == "x.permute(*dims)" and "shape" in methods
    names = await complete(text.replace("        return y", "        z = so\n        return y"), "z = so", "z =")
    assert names["softmax"].detail == "softmax(x, dim)" and names["softmax"].documentation.value
    assert {"Block", "Linear", "Conv1d", "B", "T", "N", "stick", "h", "pelvis", "depth", "return", "for"} <= set(names)
    assert names["Block"].detail == "Block(width: int)" and names["Block"].kind == types.CompletionItemKind.Class
    assert names["h36m"].kind == types.CompletionItemKind.Struct
    joints = await complete(text.replace("        return y", "        z = stick.\n        return y"), "stick.", "z =")
    assert {"pelvis", "lhip", "J", "flip"} <= set(joints)

    async def signature(new_text: str, needle: str) -> types.SignatureHelp:
        change(client, uri, complete.version, new_text)
        complete.version += 1
        return await client.text_document_signature_help_async(types.SignatureHelpParams(
            text_document=document(uri), position=at(new_text, needle, None, len(needle))))

    help_ = await signature(text.replace("        return y", "        z = softmax(y, \n        return y"), "softmax(y, ")
    assert help_.signatures[0].label == "softmax(x, dim)" and help_.active_parameter == 1
    help_ = await signature(text.replace("        return y", "        z = self.extra(h, \n        return y"),
                            "self.extra(h, ")
    assert help_.signatures[0].label.startswith("self.extra(x: f32[N, L, width], frames)")
    assert help_.active_parameter == 1
    help_ = await signature(text.replace("Linear(2, 32)", "Linear(2, "), "Linear(2, ")
    assert help_.signatures[0].label.startswith("Linear(in_features: int, out_features: int")
    assert help_.active_parameter == 1


@pytest.mark.asyncio
async def test_semantic_tokens_colour_names_by_what_they_are(client: LanguageClient):
    uri, text = open_document(client, "net.pose")
    await published(client, uri, 1)
    kinds = client.initialize_result.capabilities.semantic_tokens_provider.legend.token_types
    result = await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(text_document=document(uri)))
    data = result.data
    lines = text.split("\n")
    decoded, line, start = {}, 0, 0
    for index in range(0, len(data), 5):
        line += data[index]
        start = start + data[index + 1] if data[index] == 0 else data[index + 1]
        decoded[lines[line][start:start + data[index + 2]], line] = data[index + 3]
    assert kinds[decoded["module", at(text, "module Net").line]] == "keyword"
    assert kinds[decoded["Net", at(text, "module Net").line]] == "class"
    assert kinds[decoded["B", at(text, "B, T, 2").line]] == "typeParameter"
    assert kinds[decoded["embed", at(text, "self.embed(x)").line]] == "property"
    assert kinds[decoded["pelvis", at(text, '"pelvis", "lhip"').line]] == "enumMember"
    assert kinds[decoded["relu", at(text, "relu", "h = relu").line]] == "function" if "relu" in text else True
    assert kinds[decoded["h", at(text, "h = self.embed").line]] == "variable"
    assert kinds[decoded["## Joint names of a tiny stick figure.", 5]] == "comment"


# ------------------------------------------------------------------ real editing


@pytest.mark.asyncio
async def test_a_burst_of_edits_publishes_only_the_last_version(client: LanguageClient):
    uri, text = open_document(client, "net.pose")
    await published(client, uri, 1)
    seen = len(client.published)
    for version in range(2, 52):
        # Alternate a broken and a clean text, so any stale publication would show.
        broken = version % 2 == 0
        change(client, uri, version, text.replace("Linear(2, 32)", "Linear(3, 32)") if broken else text)
    assert await published(client, uri, 51, after=seen) == []
    await asyncio.sleep(0.3)
    assert [params.version for params in client.published[seen:] if params.uri == uri] == [51]
    checks = [message.message for message in client.log_messages if "checked net.pose" in message.message]
    assert len(checks) <= 3, checks


@pytest.mark.asyncio
async def test_a_syntax_error_keeps_the_last_good_diagnostics_marked(client: LanguageClient):
    broken = NET.replace("h = self.embed(x)\n", "h = self.embed(x)\n        unused = h + 1.0\n")
    uri, text = open_document(client, "net.pose", broken)
    (shape,) = await published(client, uri, 1)
    assert shape.code == "W302"
    mid_edit = broken.replace("pelvis = h[", "\n\n  pelvis = h[[")
    change(client, uri, 2, mid_edit)
    diagnostics = await published(client, uri, 2)
    codes = sorted(diagnostic.code for diagnostic in diagnostics)
    assert codes == sorted(["E001", shape.code])
    stale = next(diagnostic for diagnostic in diagnostics if diagnostic.code == shape.code)
    assert "from the last version that parsed (version 1)" in stale.message
    assert stale.range == shape.range  # the lines above the edit did not move
    hover = await hover_text(client, uri, at(mid_edit, "h = self.embed"))
    assert "h: f32[B, T, 32]" in hover, "features read the last version that parsed"
    change(client, uri, 3, NET)
    assert await published(client, uri, 3) == []


@pytest.mark.asyncio
async def test_saving_an_imported_file_refreshes_the_importer(client: LanguageClient):
    uri, _ = open_document(client, "net.pose")
    assert await published(client, uri, 1) == []
    # Neovim does not register file watchers dynamically on Linux: saving is what tells the server.
    assert client.registrations == []
    layers_path = client.root / "layers.pose"
    seen = len(client.published)
    layers_path.write_text(LAYERS.replace("return x + h", "return x + h[:, :, 0:2]"), encoding="utf-8")
    layers_uri, _ = open_document(client, "layers.pose")
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=document(layers_uri)))
    deadline = time.monotonic() + TIMEOUT
    while not any(params.uri == uri and params.diagnostics for params in client.published[seen:]):
        assert time.monotonic() < deadline, "net.pose was not checked again after layers.pose was saved"
        await asyncio.sleep(0.02)
    seen = len(client.published)
    layers_path.write_text(LAYERS, encoding="utf-8")
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=layers_uri, type=types.FileChangeType.Changed)]))
    deadline = time.monotonic() + TIMEOUT
    while not any(params.uri == uri and not params.diagnostics for params in client.published[seen:]):
        assert time.monotonic() < deadline, "net.pose was not checked again after layers.pose changed on disk"
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------ re-checks after edits


@pytest.mark.asyncio
async def test_a_recheck_after_edits_reports_what_a_fresh_check_reports(client: LanguageClient):
    """Edits of MotionBERT in the editor (a mistake in one block, a second one, then both undone) publish
    exactly the diagnostics a fresh `poseir check` of each text gives: nothing the server or the check
    remembered (parsed trees, replayed blocks, facts) leaks from one version into the next."""
    from poseir.compiler import check

    examples = Path(__file__).resolve().parent.parent / "examples"
    original = (examples / "motionbert.pose").read_text(encoding="utf-8")
    texts = [original,
             original.replace("self.qkv(x)", "self.qkv(x.transpose(1, 2))", 1),
             original.replace("self.qkv(x)", "self.qkv(x.transpose(1, 2))", 1).replace(
                 "self.temp_embed[:, :T]", "self.temp_embed[:, :T - 1]", 1),
             original]
    assert len({*texts}) == 3
    path = client.root / "motionbert.pose"
    uri, _ = open_document(client, "motionbert.pose", texts[0])
    seen = []
    for version, text in enumerate(texts, start=1):
        if version > 1:
            change(client, uri, version, text)
        shown = await published(client, uri, version)
        fresh = check(str(path), text).sorted_diagnostics()
        assert [(diagnostic.code, diagnostic.range.start.line) for diagnostic in shown] == \
            [(diagnostic.code, diagnostic.span.line - 1) for diagnostic in fresh], version
        assert all(diagnostic.message.split("\n")[0] == expected.message
                   for diagnostic, expected in zip(shown, fresh)), version
        seen.append([diagnostic.code for diagnostic in shown])
    assert seen[0] == seen[3] == [] and seen[1] and seen[2] and seen[1] != seen[2]
