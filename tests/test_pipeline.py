"""The pass pipeline: each pass against its expected IR, and the whole pipeline on every example by numbers.

- `tests/passes/<pass>.<case>.pose` is the input; `<pass>.<case>.ir` the IR text after that one pass
  (`POSEIR_UPDATE_IR=1` rewrites them; review the diff).
- Every example, both flows, runs through the pipeline with the verifier after each pass.
- Numbers: numpy before vs after the pipeline (≤ 1e-5 relative), with random batch-norm statistics;
  onnxruntime on the optimized export against numpy on the unoptimized graph; no BatchNormalization
  left in the exports of the networks that have batch norms.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from poseir.backends.numpy_interpreter import run_graph
from poseir.backends.onnx_export import export
from poseir.compiler import build, prepare_for_backend
from poseir.diagnostics.render import render
from poseir.ir.graph import format_graph
from poseir.passes.fold_parameters import fold_parameters
from poseir.passes.infer_shapes import verify
from poseir.passes.explicit_broadcast import explicit_broadcast
from poseir.passes.lower_rank import lower_rank
from poseir.passes.pipeline import PIPELINE, run_pipeline
from poseir.passes.positive_axes import positive_axes
from poseir.passes.push_selects import push_selects
from poseir.passes.specialize_dims import specialize_dims
from poseir.passes.unstride_slices import unstride_slices
from poseir.weights.init import initialize

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
CASES = sorted((HERE / "passes").glob("*.pose"))
PASSES = {compiler_pass.name: compiler_pass.function for compiler_pass in PIPELINE}
# The legalization passes a profile runs, with the settings their cases use.
PASSES.update({
    "push-selects": push_selects,
    "lower-rank": lambda graph: lower_rank(graph, 4, 3, "rank4"),
    "unstride-slices": lambda graph: unstride_slices(graph, "rank4"),
    "explicit-broadcast": explicit_broadcast,
    "positive-axes": positive_axes,
    "specialize-dims": lambda graph: specialize_dims(graph, {"B": 2, "T": 9}),
})

# Small configurations and one input size per example (the example tests cover two sizes each).
SMALL = {
    "videopose3d": ({"channels": 32}, {"keypoints": (2, 250, 17, 2)}),
    "simplebaseline": ({"linear_size": 32}, {"pose_2d": (5, 32)}),
    "poseformer": ({"embed_dim_ratio": 8, "depth": 2, "num_frame": 9}, {"keypoints": (2, 9, 17, 2)}),
    "mixste": ({"embed_dim_ratio": 16, "depth": 2, "num_frame": 9}, {"keypoints": (2, 9, 17, 2)}),
    "motionbert": ({"dim_feat": 16, "dim_rep": 16, "depth": 2, "maxlen": 27}, {"keypoints": (2, 9, 17, 3)}),
    "semgcn": ({"hid_dim": 32, "num_layers": 2}, {"pose_2d": (3, 16, 2)}),
    "semgcn_nonlocal": ({"hid_dim": 32, "num_layers": 2}, {"pose_2d": (3, 16, 2)}),
    "integral": ({"width": 8, "depth": 8, "deconv_filters": 16}, {"image": (1, 3, 64, 64)}),
    "mhformer": ({"frames": 27, "channel": 16}, {"keypoints": (2, 27, 17, 2)}),
}
WITH_BATCH_NORM = ("videopose3d", "simplebaseline", "semgcn", "semgcn_nonlocal", "integral")
NAMES = sorted(path.stem for path in EXAMPLES.glob("*.pose") if path.stem in SMALL)


def _pass_of(path: Path) -> str:
    return path.name.split(".")[0]


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_pass_gives_the_expected_ir(path):
    graph, result = build(str(path.relative_to(HERE.parent)), mode="infer")
    assert graph is not None, render(result.sorted_diagnostics(), result.sources, "human")
    before = format_graph(graph)
    after, diagnostics, changed = PASSES[_pass_of(path)](graph)
    assert format_graph(graph) == before, "a pass never changes its input"
    assert changed and diagnostics == []
    verify(after)
    expected = path.with_suffix(".ir")
    text = format_graph(after)
    if os.environ.get("POSEIR_UPDATE_IR"):
        expected.write_text(text)
    assert text == expected.read_text()
    again, _, changed_again = PASSES[_pass_of(path)](after)
    assert not changed_again and format_graph(again) == text, "a second run changes nothing"
    # The pass keeps the numbers (B = 2, T = 9, N = 5: sizes every case's facts allow).
    sizes = {"B": 2, "T": 9, "N": 5}
    rng = np.random.default_rng(0)
    inputs = {value.name: rng.standard_normal([dim.evaluate(sizes) for dim in value.type.shape]).astype(np.float32)
              for value in graph.inputs}
    weights = randomized(graph, 1)
    close(run_graph(graph, inputs, weights), run_graph(after, inputs, weights), 1e-5)


def test_every_pass_has_a_case():
    assert {_pass_of(path) for path in CASES} == set(PASSES)


def randomized(graph, seed: int) -> dict:
    """Seeded weights with batch-norm statistics away from (0, 1), so folding them is really tested."""
    rng = np.random.default_rng(seed)
    weights = initialize(graph.parameters, seed)
    for name, array in weights.items():
        if name.endswith("running_mean") or name.endswith(".bias"):
            weights[name] = rng.normal(0, 0.5, array.shape).astype(array.dtype)
        elif name.endswith("running_var"):
            weights[name] = rng.uniform(0.5, 2.0, array.shape).astype(array.dtype)
        elif name.endswith("bn.weight") or name.endswith("_bn.weight") or ".bn" in name and name.endswith("weight"):
            weights[name] = rng.uniform(0.5, 1.5, array.shape).astype(array.dtype)
    return weights


def inputs_for(shapes: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def close(expected: dict, found: dict, tolerance: float) -> None:
    for key, value in expected.items():
        scale = max(float(np.max(np.abs(value))), 1e-6)
        assert float(np.max(np.abs(value - found[key]))) <= tolerance * scale, key


@pytest.mark.parametrize("name", NAMES)
def test_the_pipeline_keeps_the_numbers(name):
    overrides, shapes = SMALL[name]
    graph, result = build(str(EXAMPLES / f"{name}.pose"), mode="infer", overrides=overrides)
    assert graph is not None, render(result.sorted_diagnostics(), result.sources, "human")
    optimized, _ = run_pipeline(graph, check=True)
    assert len(optimized.nodes) <= len(graph.nodes) or name in WITH_BATCH_NORM
    weights, inputs = randomized(graph, 3), inputs_for(shapes, 4)
    reference = run_graph(graph, inputs, weights)
    close(reference, run_graph(optimized, inputs, weights), 1e-5)
    folded, folded_weights = fold_parameters(optimized, weights)
    verify(folded)
    close(reference, run_graph(folded, inputs, folded_weights), 1e-5)
    assert not any(node.op == "batch_norm" for node in folded.nodes)


@pytest.mark.parametrize("name", NAMES)
def test_the_optimized_export_matches_numpy_in_onnxruntime(name):
    overrides, shapes = SMALL[name]
    graph, _ = build(str(EXAMPLES / f"{name}.pose"), mode="infer", overrides=overrides)
    weights, inputs = randomized(graph, 5), inputs_for(shapes, 6)
    model = export(prepare_for_backend(graph), weights)
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    if name in WITH_BATCH_NORM:
        assert "BatchNormalization" not in ops
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    found = dict(zip(names, session.run(names, inputs)))
    close(run_graph(graph, inputs, weights), found, 1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_the_verifier_passes_after_every_pass_in_both_flows(name):
    overrides, _ = SMALL[name]
    for mode in ("infer", "train"):
        graph, _ = build(str(EXAMPLES / f"{name}.pose"), mode=mode, overrides=overrides)
        run_pipeline(graph, check=True)
        run_pipeline(graph, check=True, optimize=False)


def test_the_pipeline_is_deterministic():
    graph, _ = build(str(EXAMPLES / "semgcn.pose"), overrides=SMALL["semgcn"][0])
    first, _ = run_pipeline(graph)
    second, _ = run_pipeline(graph)
    assert format_graph(first) == format_graph(second)
