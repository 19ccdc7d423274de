"""Replayed elaboration (`poseir.elaborate.replay`) builds exactly what a real run builds.

Every `.pose` file of the repository is checked with replay on and off; the graphs (nodes, value
names, types with their atoms, spans, scopes), the diagnostics and the editor bindings must be equal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from poseir.compiler import check
from poseir.elaborate import replay
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


def _everything(path: str) -> dict:
    """What a check of `path` produced, in comparable form."""
    result = check(str(ROOT / path), repair=False)
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
