"""`poseir graph`: DOT with types on edges and the train-only parts marked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from poseir.compiler import build
from poseir.backends.graphviz import to_dot

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "simplebaseline.pose")


def test_dot_marks_train_only_nodes_and_types_edges():
    graphs = {mode: build(EXAMPLE, mode=mode)[0] for mode in ("infer", "train")}
    dot = to_dot(graphs)
    assert dot.startswith('digraph "simplebaseline" {') and dot.endswith("}\n")
    train_only = [line for line in dot.splitlines() if "#c0392b" in line and "label=" in line]
    assert any('label="mean' in line for line in train_only), "the loss is drawn as train-only"
    assert not any('label="linear' in line for line in train_only), "shared layers are not"
    assert '[label="f32[B, 1024]"]' in dot
    assert dot == to_dot({mode: build(EXAMPLE, mode=mode)[0] for mode in ("infer", "train")})


def test_cli_writes_dot_and_svg_or_explains(tmp_path):
    dot_path = tmp_path / "model.dot"
    result = subprocess.run([sys.executable, "-m", "poseir", "graph", EXAMPLE, "-o", str(dot_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and dot_path.read_text().startswith("digraph")
    svg = subprocess.run([sys.executable, "-m", "poseir", "graph", EXAMPLE, "-o", str(tmp_path / "m.svg")],
                         capture_output=True, text=True)
    if shutil.which("dot"):
        assert svg.returncode == 0 and "<svg" in (tmp_path / "m.svg").read_text()
    else:
        assert svg.returncode == 2 and "Graphviz" in svg.stderr
