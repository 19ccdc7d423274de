"""The VS Code extension and the editor docs: consistent files, a grammar that colours the language."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "editors" / "vscode"
DOCS = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")


def test_extension_files_agree_with_each_other():
    manifest = json.loads((EXTENSION / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["id"] == grammar["language"] == "pose" and language["extensions"] == [".pose"]
    assert json.loads((EXTENSION / language["configuration"]).read_text())["comments"]["lineComment"] == "#"
    assert json.loads((EXTENSION / grammar["path"]).read_text())["scopeName"] == grammar["scopeName"]
    main = (EXTENSION / manifest["main"]).read_text()
    assert "vscode-languageclient/node" in main and "vscode-languageclient" in manifest["dependencies"]
    for setting in manifest["contributes"]["configuration"]["properties"]:
        assert f"`{setting}`" in DOCS, f"docs/editors.md does not describe {setting}"
    assert manifest["contributes"]["configuration"]["properties"]["poseir.server.args"]["default"] == ["lsp"]
    assert "onLanguage:pose" in manifest["activationEvents"]


def _rules(grammar: dict) -> list[tuple[re.Pattern, dict | str]]:
    """Every `match` rule of the grammar, in the order a tokenizer tries them."""
    found = []

    def visit(rule: dict) -> None:
        if "include" in rule:
            visit(grammar["repository"][rule["include"][1:]])
        elif "match" in rule:
            found.append((re.compile(rule["match"]), rule.get("captures") or rule["name"]))
        for inner in rule.get("patterns", []):
            visit(inner)

    for rule in grammar["patterns"]:
        visit(rule)
    return found


def _scopes(line: str, rules) -> dict[str, str]:
    """Word -> scope for one line, trying the rules at each position like a TextMate tokenizer."""
    scopes, position = {}, 0
    while position < len(line):
        for pattern, scope in rules:
            match = pattern.match(line, position)
            if match and match.end() > position:
                if isinstance(scope, dict):
                    for group, capture in scope.items():
                        if match.group(int(group)):
                            scopes[match.group(int(group))] = capture["name"]
                else:
                    scopes[match.group(0)] = scope
                position = match.end()
                break
        else:
            position += 1
    return scopes


def test_the_grammar_colours_the_language():
    grammar = json.loads((EXTENSION / "syntaxes" / "pose.tmLanguage.json").read_text())
    rules = _rules(grammar)
    line = "module Lift(joints: int) { forward train(x: f32[B, T]) -> (y: f32[]) where T >= 3 {"
    scopes = _scopes(line, rules)
    assert scopes["module"].startswith("storage.type") and scopes["Lift"].startswith("entity.name.type")
    assert scopes["forward"].startswith("storage.type") and scopes["train"].startswith("storage.modifier")
    assert scopes["f32"].startswith("support.type") and scopes["where"].startswith("keyword")
    scopes = _scopes("        h = relu(self.fc(x)) * 2.0  # half", rules)
    assert scopes["relu"] == "entity.name.function.pose" and scopes["self"] == "variable.language.self.pose"
    assert scopes["fc"] == "variable.other.member.pose" and scopes["2.0"].startswith("constant.numeric")
    assert scopes["# half"].startswith("comment")
    assert _scopes("## A doc comment.", rules)["## A doc comment."] == "comment.block.documentation.pose"


def test_docs_set_up_each_editor_with_the_real_command():
    assert 'cmd = { "poseir", "lsp" }' in DOCS and 'command = "poseir"' in DOCS and 'args = ["lsp"]' in DOCS
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "[docs/editors.md](docs/editors.md)" in readme
