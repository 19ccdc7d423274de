"""The README's example and its diagnostic are real: running the command prints exactly that."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_diagnostic_is_the_real_output(tmp_path):
    text = README.read_text()
    source = re.search(r"```pose\n(.*?)```", text, re.DOTALL).group(1)
    console = re.search(r"```console\n\$ poseir check lifter.pose\n(.*?)```", text, re.DOTALL).group(1)
    (tmp_path / "lifter.pose").write_text(source)
    result = subprocess.run([sys.executable, "-m", "poseir", "check", "lifter.pose"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == console


def test_readme_quick_start_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
