"""Every `pose` snippet of docs/language.md is a complete file that checks as it claims."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from poseir.compiler import check
from poseir.diagnostics.render import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
SNIPPET = re.compile(r"```pose\n(.*?)```", re.DOTALL)
EXPECT = re.compile(r"#\s*expect:\s*([A-Z]\d{3}(?:\s*,\s*[A-Z]\d{3})*)")


def snippets() -> list[str]:
    """The pose code blocks, in document order."""
    return SNIPPET.findall(DOC.read_text())


def expected(text: str) -> set[tuple[str, int]]:
    """(code, line) pairs marked in a snippet."""
    pairs = set()
    for number, line in enumerate(text.splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            pairs.update((code.strip(), number) for code in match.group(1).split(","))
    return pairs


def test_doc_has_snippets():
    """The reference shows real code."""
    assert len(snippets()) >= 8


@pytest.mark.parametrize("index", range(len(snippets())))
def test_snippet(index: int):
    """A snippet reports exactly its marked diagnostics, and builds both modes when clean."""
    text = snippets()[index]
    result = check(f"language-{index}.pose", text)
    reported = {(d.code, d.span.line if d.span else 0) for d in result.sorted_diagnostics()}
    assert reported == expected(text), render(result.sorted_diagnostics(), result.sources, "human")
    if not expected(text):
        assert result.graphs, "a clean snippet builds at least one graph"
