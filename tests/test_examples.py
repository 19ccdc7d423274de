"""Every example end to end: clean check, official state_dicts, shapes equal numpy's at two sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import official_tables
from poseir.backends.numpy_interpreter import bind_symbols, concrete_shape, run_graph
from poseir.compiler import build, check
from poseir.diagnostics.render import render
from poseir.weights.init import initialize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Small hyper-parameters keep the numeric runs fast; the state_dict tests use the defaults.
SMALL = {
    "videopose3d": {"channels": 64},
    "simplebaseline": {"linear_size": 64},
    "poseformer": {"embed_dim_ratio": 8, "depth": 2},
    "mixste": {"embed_dim_ratio": 16, "depth": 2, "num_frame": 9},
    "motionbert": {"dim_feat": 16, "dim_rep": 16, "depth": 2, "maxlen": 27},
    "semgcn": {"hid_dim": 32, "num_layers": 2},
    "integral": {"width": 8, "depth": 8, "deconv_filters": 16},
    "mhformer": {"frames": 27, "channel": 16, "d_hid": 32},
    "semgcn_nonlocal": {"hid_dim": 32, "num_layers": 2},
    "pstmo": {"frames": 27, "stride_num": (3, 3, 3), "layers": 2, "channel": 16, "d_hid": 24},
}

# Two different sizes per example and mode: a size baked into a reshape cannot pass both.
SIZES = {
    ("videopose3d", "infer"): [({"keypoints": (2, 243, 17, 2)}, {}), ({"keypoints": (3, 260, 17, 2)}, {})],
    ("videopose3d", "train"): [({"keypoints": (2, 243, 17, 2), "target": (2, 1, 17, 3)}, {}),
                               ({"keypoints": (5, 27, 17, 2), "target": (5, 1, 17, 3)}, {"filter_widths": (3, 3, 3)})],
    ("simplebaseline", "infer"): [({"pose_2d": (2, 32)}, {}), ({"pose_2d": (7, 32)}, {})],
    ("simplebaseline", "train"): [({"pose_2d": (4, 32), "target": (4, 48)}, {}),
                                  ({"pose_2d": (6, 32), "target": (6, 48)}, {})],
    ("poseformer", "infer"): [({"keypoints": (2, 81, 17, 2)}, {}), ({"keypoints": (3, 27, 17, 2)}, {"num_frame": 27})],
    ("poseformer", "train"): [({"keypoints": (2, 81, 17, 2), "target": (2, 1, 17, 3)}, {}),
                              ({"keypoints": (3, 9, 17, 2), "target": (3, 1, 17, 3)}, {"num_frame": 9})],
    ("mixste", "infer"): [({"keypoints": (2, 9, 17, 2)}, {}), ({"keypoints": (3, 27, 17, 2)}, {"num_frame": 27})],
    ("mixste", "train"): [({"keypoints": (2, 9, 17, 2), "target": (2, 9, 17, 3)}, {}),
                          ({"keypoints": (1, 12, 17, 2), "target": (1, 12, 17, 3)}, {"num_frame": 12})],
    # One set of hyper-parameters (maxlen 27) serves every clip length T <= maxlen.
    ("motionbert", "infer"): [({"keypoints": (2, 9, 17, 3)}, {}), ({"keypoints": (3, 27, 17, 3)}, {})],
    ("motionbert", "train"): [({"keypoints": (2, 5, 17, 3), "target": (2, 5, 17, 3)}, {}),
                              ({"keypoints": (1, 16, 17, 3), "target": (1, 16, 17, 3)}, {})],
    # SemGCN lifts single poses: two batch sizes, and the second also with another depth and width.
    ("semgcn", "infer"): [({"pose_2d": (2, 16, 2)}, {}), ({"pose_2d": (5, 16, 2)}, {"hid_dim": 24, "num_layers": 1})],
    ("semgcn", "train"): [({"pose_2d": (3, 16, 2), "target": (3, 16, 3)}, {}),
                          ({"pose_2d": (8, 16, 2), "target": (8, 16, 3)}, {"num_layers": 3})],
    # Images of two different sizes (multiples of 32) per mode, with a slim ResNet (width 8).
    ("integral", "infer"): [({"image": (2, 3, 64, 64)}, {}), ({"image": (1, 3, 96, 128)}, {})],
    ("integral", "train"): [({"image": (2, 3, 64, 96), "target": (2, 18, 3), "visibility": (2, 18, 3)}, {}),
                            ({"image": (3, 3, 32, 64), "target": (3, 5, 3), "visibility": (3, 5, 3)},
                             {"joints": 5, "layers": (1, 2, 1, 1)})],
    # MHFormer accepts only T = frames (a multiple of the 9 MHG heads): up to 27 frames the embeddings
    # carry BatchNorm, above they are bare convolutions; both kinds per mode.
    ("mhformer", "infer"): [({"keypoints": (2, 27, 17, 2)}, {}), ({"keypoints": (3, 36, 17, 2)}, {"frames": 36})],
    ("mhformer", "train"): [({"keypoints": (2, 27, 17, 2), "target": (2, 27, 17, 3)}, {}),
                            ({"keypoints": (1, 45, 17, 2), "target": (1, 45, 17, 3)}, {"frames": 45, "layers": 2})],
    ("semgcn_nonlocal", "infer"): [({"pose_2d": (2, 16, 2)}, {}),
                                   ({"pose_2d": (5, 16, 2)}, {"hid_dim": 24, "num_layers": 1})],
    ("semgcn_nonlocal", "train"): [({"pose_2d": (3, 16, 2), "target": (3, 16, 3)}, {}),
                                   ({"pose_2d": (8, 16, 2), "target": (8, 16, 3)}, {"num_layers": 3})],
    # P-STMO accepts only F = frames; each clip length comes with the official strides that reduce it
    # to one frame (9 frames: [1, 3, 3], whose first layer keeps its residual unpooled).
    ("pstmo", "infer"): [({"x": (2, 2, 27, 17, 1)}, {}),
                         ({"x": (3, 2, 9, 17, 1)}, {"frames": 9, "stride_num": (1, 3, 3)})],
    ("pstmo", "train"): [({"x": (2, 2, 27, 17, 1), "target": (2, 27, 17, 3)}, {}),
                         ({"x": (3, 2, 81, 17, 1), "target": (3, 81, 17, 3)},
                          {"frames": 81, "stride_num": (3, 3, 3, 3), "layers": 1})],
}


def example(name: str) -> str:
    return str(EXAMPLES / f"{name}.pose")


@pytest.mark.parametrize("name", sorted(official_tables.ENTRY_COUNTS))
def test_example_checks_clean(name):
    """No errors and no warnings in either mode."""
    result = check(example(name))
    assert result.sorted_diagnostics() == [], render(result.sorted_diagnostics(), result.sources, "human")
    assert set(result.graphs) == {(name, "infer"), (name, "train")}


@pytest.mark.parametrize("name", sorted(official_tables.ENTRY_COUNTS))
def test_state_dict_equals_official(name):
    """Keys and shapes equal the official PyTorch state_dict, in both modes."""
    official = getattr(official_tables, name)()
    for mode in ("infer", "train"):
        graph, result = build(example(name), mode=mode)
        assert graph is not None, render(result.sorted_diagnostics(), result.sources, "human")
        table = {parameter.name: parameter.shape for parameter in graph.parameters}
        assert table == official
        assert len(table) == official_tables.ENTRY_COUNTS[name]
        trainable = sum(int(np.prod(p.shape)) for p in graph.parameters if p.kind == "parameter")
        assert trainable == official_tables.PARAMETER_COUNTS[name]


@pytest.mark.parametrize("frames", sorted(official_tables.MHFORMER_PARAMETERS_BY_FRAMES))
def test_mhformer_state_dict_at_other_clip_lengths(frames):
    """The reference's parameter counts for 243, 81 and 27 frames (27: BatchNorm in the embeddings)."""
    graph, result = build(example("mhformer"), overrides={"frames": frames})
    assert graph is not None, render(result.sorted_diagnostics(), result.sources, "human")
    assert {parameter.name: parameter.shape for parameter in graph.parameters} == official_tables.mhformer(frames)
    trainable = sum(int(np.prod(p.shape)) for p in graph.parameters if p.kind == "parameter")
    assert trainable == official_tables.MHFORMER_PARAMETERS_BY_FRAMES[frames]


def test_semgcn_nonlocal_without_groups_is_semgcn():
    """`nodes_group = []` builds the plain SemGCN: the official class without non-local blocks."""
    graph, _ = build(example("semgcn_nonlocal"), overrides={"nodes_group": ()})
    assert {parameter.name: parameter.shape for parameter in graph.parameters} == official_tables.semgcn()


def random_inputs(shapes: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {key: rng.standard_normal(shape).astype(np.float32) for key, shape in shapes.items()}


@pytest.mark.parametrize("key", sorted(SIZES), ids=lambda key: f"{key[0]}-{key[1]}")
def test_inferred_shapes_equal_numpy_at_two_sizes(key):
    """Every node's inferred shape equals the array numpy produced, at two different sizes."""
    name, mode = key
    for index, (shapes, extra) in enumerate(SIZES[key]):
        graph, result = build(example(name), mode=mode, overrides={**SMALL[name], **extra})
        assert graph is not None, render(result.sorted_diagnostics(), result.sources, "human")
        inputs = random_inputs(shapes, index)
        trace: dict = {}
        outputs = run_graph(graph, inputs, initialize(graph.parameters, seed=index), seed=index, trace=trace)
        env = bind_symbols(graph, inputs)
        checked = 0
        for node in graph.nodes:
            for value in node.outputs:
                assert trace[value].shape == concrete_shape(graph.values[value].type, env), (node.op, node.span)
                checked += 1
        assert checked == sum(len(node.outputs) for node in graph.nodes) > 10
        for output in graph.outputs:
            assert np.isfinite(outputs[output.name]).all()


def test_videopose3d_strided_training_equals_dilated_inference():
    """Shared weights: the strided flow on a 243-frame window equals the dilated flow's prediction."""
    overrides = {"channels": 64}
    infer, _ = build(example("videopose3d"), mode="infer", overrides=overrides)
    train, _ = build(example("videopose3d"), mode="train", overrides=overrides)
    weights = initialize(infer.parameters, seed=3)
    rng = np.random.default_rng(7)
    for name in weights:  # non-trivial running statistics, so batch-norm really matters
        if name.endswith("running_mean"):
            weights[name] = rng.normal(0, 0.1, weights[name].shape).astype(np.float32)
        if name.endswith("running_var"):
            weights[name] = rng.uniform(0.5, 1.5, weights[name].shape).astype(np.float32)
    keypoints = rng.standard_normal((2, 243, 17, 2)).astype(np.float32)
    target = np.zeros((2, 1, 17, 3), np.float32)
    dilated = run_graph(infer, {"keypoints": keypoints}, weights)["pose"]
    strided = run_graph(train, {"keypoints": keypoints, "target": target}, weights, behaviour="infer")["pose"]
    assert dilated.shape == strided.shape == (2, 1, 17, 3)
    np.testing.assert_allclose(strided, dilated, rtol=1e-4, atol=1e-5)
    # On a longer sequence, each dilated output frame equals the strided model on its window.
    sequence = rng.standard_normal((1, 250, 17, 2)).astype(np.float32)
    long_output = run_graph(infer, {"keypoints": sequence}, weights)["pose"]
    for frame in (0, 4, 7):
        window = sequence[:, frame:frame + 243]
        one = run_graph(train, {"keypoints": window, "target": target[:1]}, weights, behaviour="infer")["pose"]
        np.testing.assert_allclose(one[:, 0], long_output[:, frame], rtol=1e-4, atol=1e-5)
