"""Every code's explanation is honest: its erroneous example reports that code, its fix checks clean."""

from __future__ import annotations

import re

import pytest

from poseir.diagnostics.codes import CODES
from poseir.compiler import check
from poseir.diagnostics.render import render

BLOCK = re.compile(r"```\n(.*?)```", re.DOTALL)


def pose_examples(explanation: str) -> list[str]:
    """The code blocks written in the language (not shell or Python)."""
    return [block for block in BLOCK.findall(explanation) if "module " in block or block.startswith("dim ")]


def as_model(text: str) -> str:
    """Make a snippet checkable: the last module, if it has a forward, becomes a model."""
    if "model " in text or "forward" not in text:
        return text
    name = re.findall(r"^module (\w+)\(", text, re.MULTILINE)[-1]
    return text + f"\nmodel example = {name}()\n"


def runnable(code: str) -> bool:
    """Check-time codes (E0xx-E2xx, W3xx) whose two examples are complete programs."""
    if code[1] not in "0123":
        return False  # E4xx and later happen when loading weights or exporting, not in `check`
    examples = pose_examples(CODES[code].explanation)
    return len(examples) >= 2 and all("forward" in example for example in examples[:2])


CHECKED = [code for code in sorted(CODES) if runnable(code)]


def test_most_codes_have_runnable_examples():
    assert len(CHECKED) >= 20


@pytest.mark.parametrize("code", CHECKED)
def test_explanation_examples(code):
    erroneous, corrected = pose_examples(CODES[code].explanation)[:2]
    bad = check(f"{code}-erroneous.pose", as_model(erroneous))
    good = check(f"{code}-corrected.pose", as_model(corrected))
    assert code in [d.code for d in bad.sorted_diagnostics()], render(bad.sorted_diagnostics(), bad.sources, "human")
    assert good.sorted_diagnostics() == [], render(good.sorted_diagnostics(), good.sources, "human")


def test_every_code_has_title_and_example():
    for code in CODES.values():
        assert code.title and code.title == code.title.strip()
        assert "```" in code.explanation, code.code
