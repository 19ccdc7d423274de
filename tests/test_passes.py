"""Passes are pure functions `graph -> (graph, diagnostics, changed)`, verified after each run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poseir.ir.analysis import live_nodes, topological_order, used_parameters
from poseir.backends.numpy_interpreter import run_graph
from poseir.compiler import build
from poseir.ir.graph import format_graph
from poseir.passes.inference_cleanup import INFERENCE_IDENTITIES, inference_cleanup
from poseir.passes.infer_shapes import verify
from poseir.weights.init import initialize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CASES = [("videopose3d", {"channels": 32}, {"keypoints": (2, 250, 17, 2)}),
         ("poseformer", {"embed_dim_ratio": 8, "depth": 2, "num_frame": 9}, {"keypoints": (2, 9, 17, 2)}),
         ("simplebaseline", {"linear_size": 32}, {"pose_2d": (5, 32)})]


@pytest.mark.parametrize(("name", "overrides", "shapes"), CASES, ids=[case[0] for case in CASES])
def test_inference_cleanup_removes_identities_and_keeps_numbers(name, overrides, shapes):
    graph, _ = build(str(EXAMPLES / f"{name}.pose"), mode="infer", overrides=overrides)
    text_before = format_graph(graph)
    cleaned, diagnostics, changed = inference_cleanup(graph)
    assert changed and diagnostics == []
    assert format_graph(graph) == text_before, "the input graph is untouched"
    assert not any(node.op in INFERENCE_IDENTITIES for node in cleaned.nodes)
    assert len(cleaned.nodes) < len(graph.nodes)
    verify(cleaned)
    again, _, changed_again = inference_cleanup(cleaned)
    assert not changed_again and again is cleaned
    rng = np.random.default_rng(0)
    inputs = {key: rng.standard_normal(shape).astype(np.float32) for key, shape in shapes.items()}
    weights = initialize(graph.parameters, 0)
    before, after = run_graph(graph, inputs, weights), run_graph(cleaned, inputs, weights)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    assert used_parameters(cleaned) == used_parameters(graph)


def test_training_graphs_are_left_alone():
    graph, _ = build(str(EXAMPLES / "simplebaseline.pose"), mode="train")
    same, _, changed = inference_cleanup(graph)
    assert same is graph and not changed


def test_dead_values_are_removed_and_order_is_topological():
    text = ("dim B\nmodel m = M()\nmodule M() {\n    forward(x: f32[B, 3]) {\n"
            "        _unused = relu(x)\n        return dropout(x * 2.0, p = 0.1)\n    }\n}\n")
    graph, _ = build("m.pose", text=text)
    assert len(live_nodes(graph)) == len(graph.nodes) - 1
    order = topological_order(graph)
    assert sorted(order) == list(range(len(graph.nodes)))
    cleaned, _, _ = inference_cleanup(graph)
    assert [node.op for node in cleaned.nodes] == ["constant", "mul", "identity"]
    verify(cleaned)
