"""The broken-program corpus: each `tests/cases/*.pose` marks its mistakes with `# expect: CODE`.

A case passes when `poseir check` reports exactly the marked (code, line) pairs: nothing
missing, nothing extra, so one mistake never cascades into several diagnostics.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus_support import cases, expectations
from poseir.compiler import check
from poseir.diagnostics.render import render
from test_corpus import NOT_YET, REASONS  # the one list of what the checker cannot do yet (issue 7)

CASES = cases()


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
