"""The broken-program corpus: each `tests/cases/*.pose` marks its mistakes with `# expect: CODE`.

A case passes when `poseir check` reports exactly the marked (code, line) pairs: nothing
missing, nothing extra, so one mistake never cascades into several diagnostics.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from poseir.compiler import check
from poseir.diagnostics.render import render
from test_corpus import NOT_YET, REASONS  # the one list of what the checker cannot do yet (issue 7)

CASES = sorted((Path(__file__).parent / "cases").glob("*.pose"))
EXPECT = re.compile(r"#\s*expect:\s*([A-Z]\d{3}(?:\s*,\s*[A-Z]\d{3})*)")


def expectations(path: Path) -> set[tuple[str, int]]:
    """The (code, line) pairs a case file declares."""
    found = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            found.update((code.strip(), number) for code in match.group(1).split(","))
    return found


def test_corpus_is_large_enough():
    """The issue asks for at least 25 distinct mistakes drawn from real pose code."""
    assert len(CASES) >= 25
    assert all(expectations(path) for path in CASES), "every case marks at least one diagnostic"


@pytest.mark.parametrize("path", [
    pytest.param(path, id=path.stem, marks=[pytest.mark.xfail(strict=False, reason=REASONS["found"])]
                 if path.stem in NOT_YET["found"] else [])
    for path in CASES])
def test_case(path: Path):
    """Reported (code, line) pairs equal the marked ones."""
    result = check(str(path))
    reported = {(d.code, d.span.line if d.span else 0) for d in result.sorted_diagnostics()}
    text = render(result.sorted_diagnostics(), result.sources, "human")
    assert reported == expectations(path), text
