"""Replayed elaboration (`poseir.elaborate.replay`) builds exactly what a real run builds.

Every `.pose` file of the repository is checked with replay on and off; the graphs (nodes, value
names, types with their atoms, spans, scopes), the diagnostics and the editor bindings must be equal.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from poseir.compiler import check
from poseir.elaborate import replay
from poseir.elaborate.forwards import ForwardRunner
from poseir.elaborate.values import ModuleInstance, ModuleList, Tensor

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(str(path.relative_to(ROOT)) for folder in ("examples", "tests")
               for path in (ROOT / folder).rglob("*.pose"))


def _atoms(type_) -> tuple | None:
    """A type's atoms with everything that identifies them (keys, sizes, names)."""
    if type_.atoms is None:
        return None
    return tuple(tuple((atom.key, atom.size, atom.name) for atom in axis) for axis in type_.atoms)


def _summary(value):
    """A binding's value as something comparable across two runs (instances by their path)."""
    if isinstance(value, Tensor):
        return ("tensor", value.name, value.type, _atoms(value.type), value.span)
    if isinstance(value, (ModuleInstance, ModuleList)):
        return (type(value).__name__, value.path)
    if isinstance(value, tuple):
        return tuple(_summary(item) for item in value)
    return value


def _everything(path: str, text: str | None = None) -> dict:
    """What a check of `path` (or of `text` as that file) produced, in comparable form."""
    result = check(str(ROOT / path), text, repair=False)
    graphs = {}
    for key, graph in result.graphs.items():
        values = {name: (value.type, _atoms(value.type), value.span) for name, value in graph.values.items()}
        graphs[key] = (graph.nodes, graph.inputs, graph.outputs, graph.parameters, values, graph.facts)
    bindings = {key: [(binding.span, binding.name, _summary(binding.value), binding.path) for binding in found]
                for key, found in result.bindings.items()}
    return {"graphs": graphs, "diagnostics": result.diagnostics, "bindings": bindings}


@pytest.mark.parametrize("path", FILES)
def test_replay_builds_what_a_real_run_builds(path, monkeypatch):
    replayed = _everything(path)
    monkeypatch.setattr(replay, "ENABLED", False)
    real = _everything(path)
    assert replayed["diagnostics"] == real["diagnostics"]
    assert replayed["graphs"].keys() == real["graphs"].keys()
    for key in real["graphs"]:
        assert replayed["graphs"][key] == real["graphs"][key], key
    assert replayed["bindings"] == real["bindings"]


def test_replay_happens_on_the_examples():
    """The transformer examples really are replayed (else the test above compares two real runs)."""
    result = check(str(ROOT / "examples" / "motionbert.pose"), repair=False)
    memo = result.program.replay_memo
    assert memo.forwards and memo.modules


MODES = """dim B, T
model net = Net()

module Inner() {
    self.fc = Linear(4, 4)
    forward(x) {
        train {
            x = x * 2.0
        }
        return self.fc(x)
    }
}

module Outer() {
    self.inner = Inner()
    self.fc = Linear(4, 4)
    forward(x) {
        return self.fc(self.inner(x))
    }
}

module Net() {
    self.first = Inner()
    self.blocks = [Outer() for i in 0..3]
    forward(x: f32[B, T, 4]) -> (y: f32[B, T, 4]) {
        x = self.first(x)
        for block in self.blocks {
            x = block(x)
        }
        return x
    }
}
"""


def test_a_run_that_reads_the_mode_is_replayed_in_that_mode_only(monkeypatch, tmp_path):
    """`Outer` never reads the mode itself, but the `Inner` it calls does, and is replayed there (from
    `first`): the training flow's template of `Outer` (with the doubling) must not serve the inference flow."""
    path = tmp_path / "modes.pose"
    replayed = _everything(str(path), MODES)
    monkeypatch.setattr(replay, "ENABLED", False)
    real = _everything(str(path), MODES)
    assert replayed == real
    ops = {mode: [node.op for node in replayed["graphs"][("net", mode)][0]] for mode in ("train", "infer")}
    assert ops["train"].count("mul") == 4 and ops["infer"].count("mul") == 0


def test_the_flows_share_a_template_unless_their_facts_answer_its_questions_differently(monkeypatch):
    """MotionBERT trains `where train T >= 2`: its blocks ask nothing that inference's facts answer otherwise,
    so inference replays every block from training and runs only its root forward for real. (The converse,
    a block whose slices only training's facts prove non-empty, is `tests/replay/flow_facts.pose` above.)"""
    runs = Counter()
    real_run = ForwardRunner.execute_forward

    def counting(self, *arguments, **keywords):
        runs[self.state.mode] += 1
        return real_run(self, *arguments, **keywords)

    monkeypatch.setattr(ForwardRunner, "execute_forward", counting)
    result = check(str(ROOT / "examples" / "motionbert.pose"))
    assert result.program.replay_memo.logs_queries
    assert runs["train"] > 20 and runs["infer"] == 1
