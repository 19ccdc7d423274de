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


def test_readme_python_example_runs_as_written(tmp_path):
    """The README's Python block, run from a copy of the repository layout it expects."""
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    (tmp_path / "examples").mkdir()
    example = README.parent / "examples" / "videopose3d.pose"
    (tmp_path / "examples" / "videopose3d.pose").write_text(example.read_text())
    (tmp_path / "pyproject.toml").write_text("")  # the project root that imports stay inside
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "videopose3d.onnx").stat().st_size > 0
