"""`poseir fix`: before/after pairs; a fixed file re-checks clean and fixing twice changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from poseir.diagnostics.record import has_errors
from poseir.diagnostics.fixes import fix_text

PAIRS = sorted((Path(__file__).parent / "fixes").glob("*.before.pose"))


def after_of(before: Path) -> Path:
    return before.with_name(before.name.replace(".before.", ".after."))


@pytest.mark.parametrize("before", PAIRS, ids=[path.name.split(".")[0] for path in PAIRS])
def test_fix_pairs(before: Path):
    unsafe = ".unsafe." in before.name
    result = fix_text(str(before), before.read_text(), unsafe=unsafe)
    assert result.fixed == after_of(before).read_text()
    assert not has_errors(result.remaining) and result.remaining == []
    again = fix_text(str(before), result.fixed, unsafe=unsafe)
    assert again.fixed == result.fixed and not again.applied


def test_unsafe_fixes_need_the_flag():
    before = next(path for path in PAIRS if ".unsafe." in path.name)
    result = fix_text(str(before), before.read_text())
    assert result.fixed == before.read_text() and not result.applied
    assert has_errors(result.remaining)


def test_cli_shows_a_diff_and_writes_only_when_asked(tmp_path):
    source = PAIRS[0].read_text()
    target = tmp_path / "model.pose"
    target.write_text(source)
    shown = subprocess.run([sys.executable, "-m", "poseir", "fix", str(target)], capture_output=True, text=True)
    assert shown.returncode == 0
    assert "-        return pose - root\n+        return pose - root[:, none]" in shown.stdout
    assert target.read_text() == source, "no --write: the file is untouched"
    written = subprocess.run([sys.executable, "-m", "poseir", "fix", str(target), "--write"],
                             capture_output=True, text=True)
    assert written.returncode == 0 and target.read_text() == after_of(PAIRS[0]).read_text()
    assert subprocess.run([sys.executable, "-m", "poseir", "check", str(target)]).returncode == 0
