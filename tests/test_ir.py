"""The IR: immutable, spanned, verified, deterministic; the infer-shapes pass is a pure function."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from poseir.compiler import build
from poseir.ir.graph import format_graph
from poseir.passes.infer_shapes import infer_shapes, verify
from poseir.elaborate.program import PRELUDE_PATH

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.pose"))


@pytest.fixture(scope="module", params=[(path, mode) for path in EXAMPLES for mode in ("infer", "train")],
                ids=lambda item: f"{item[0].stem}-{item[1]}")
def example(request):
    """(path, graph) of one example in one mode."""
    path, mode = request.param
    built, result = build(str(path), mode=mode)
    assert built is not None, result.diagnostics
    return path, built


@pytest.fixture
def graph(example):
    return example[1]


def test_verifier_accepts_examples(graph):
    """Every value is defined once before use and recorded types equal re-inferred ones."""
    verify(graph)


def test_infer_shapes_pass_is_pure_and_idempotent(graph):
    """Re-running the pass changes nothing and returns the very same graph object."""
    again, diagnostics, changed = infer_shapes(graph)
    assert again is graph and not changed and diagnostics == []


def test_graph_is_immutable(graph):
    """Frozen dataclasses and a read-only value table."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.nodes = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.nodes[0].op = "relu"
    with pytest.raises(TypeError):
        graph.values["x"] = None


def test_every_node_points_at_the_users_file(graph):
    """Nodes made inside built-in layers carry the span of the user's call, never the prelude's."""
    assert all(node.span.path != PRELUDE_PATH and node.span.line > 0 for node in graph.nodes)
    assert all(parameter.span.path != PRELUDE_PATH for parameter in graph.parameters)


def test_ir_text_is_deterministic(example):
    """Building twice gives byte-identical IR text (nodes of an imported module point at its own file)."""
    path, graph = example
    rebuilt, _ = build(str(path), mode=graph.mode)
    assert format_graph(rebuilt) == format_graph(graph)
    assert "graph " in format_graph(graph).splitlines()[0]


def test_verifier_catches_a_broken_graph(graph):
    """A graph whose node reads an undefined value is rejected (the check can fail)."""
    first = graph.nodes[0]
    broken_node = dataclasses.replace(first, inputs=("no_such_value",) + first.inputs[1:])
    broken = dataclasses.replace(graph, nodes=(broken_node,) + graph.nodes[1:])
    with pytest.raises(AssertionError):
        verify(broken)
