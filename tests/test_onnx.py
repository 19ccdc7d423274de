"""The ONNX backend end to end: every example exported, checked, shape-inferred and run in onnxruntime.

Untyped values: ONNX shape inference (opset 13) leaves the output of a Reshape whose shape is
computed at run time, and everything downstream of it, without a shape; from opset 14 it types
those values but invents `unk__N` names for sizes it cannot derive. Those are counted as
unknown; a shape ONNX does give (an int or one of our dim_param names) must equal poseir's, and
one `unk__N` name must always stand for the same poseir size.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper, shape_inference

from poseir.backends.numpy_interpreter import run_graph
from poseir.backends.onnx_explain import explain_node, find_origin
from poseir.backends.onnx_export import export, save
from poseir.compiler import build
from poseir.diagnostics.record import DiagnosticError
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts
from poseir.ir.graph import Graph, TensorType, freeze_values
from poseir.weights.init import initialize
from test_examples import SIZES, SMALL, example

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("videopose3d", "simplebaseline", "poseformer", "mixste", "motionbert", "semgcn")
NAMES = (*NAMES, "integral", "mhformer", "semgcn_nonlocal", "pstmo")


def randomized_weights(graph: Graph, seed: int) -> dict[str, np.ndarray]:
    """Seeded init with every batch-norm statistic, affine parameter and embedding made non-trivial."""
    weights = initialize(graph.parameters, seed)
    rng = np.random.default_rng(seed + 50)
    for name, value in weights.items():
        if name.endswith("running_var"):
            weights[name] = rng.uniform(0.5, 2.0, value.shape).astype(np.float32)
        elif value.dtype == np.float32 and name.endswith(("running_mean", "bias", "pos_embed")):
            weights[name] = rng.normal(0, 0.2, value.shape).astype(np.float32)
        elif value.dtype == np.float32 and name.endswith("weight") and value.ndim == 1:
            weights[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    return weights


def random_inputs(shapes: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.standard_normal(shape).astype(np.float32) for key, shape in shapes.items()}


def run_onnx(model: onnx.ModelProto | str, inputs: dict) -> dict[str, np.ndarray]:
    """onnxruntime outputs by name, from a model or a path."""
    source = model if isinstance(model, str) else model.SerializeToString()
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    return dict(zip([output.name for output in session.get_outputs()], session.run(None, inputs)))


def assert_matches_numpy(model, graph: Graph, weights: dict, inputs: dict) -> None:
    """onnxruntime equals the numpy backend within 1e-4 on every output."""
    expected = run_graph(graph, inputs, weights)
    got = run_onnx(model, inputs)
    assert set(got) == set(expected)
    for name, array in expected.items():
        np.testing.assert_allclose(got[name], array, rtol=1e-4, atol=1e-4, err_msg=name)


def small_graph(name: str, mode: str = "infer", **overrides) -> Graph:
    graph, result = build(example(name), mode=mode, overrides={**SMALL[name], **overrides})
    assert graph is not None, result.sorted_diagnostics()
    return graph


# --------------------------------------------------------------------------- every example, inference


def infer_cases():
    for name in NAMES:
        for index, (shapes, extra) in enumerate(SIZES[(name, "infer")]):
            yield pytest.param(name, shapes, extra, index, id=f"{name}-{index}")


@pytest.mark.parametrize(("name", "shapes", "extra", "index"), list(infer_cases()))
def test_example_exports_checks_and_matches_numpy(name, shapes, extra, index):
    """Full checker, strict shape inference agreeing with poseir, onnxruntime == numpy within 1e-4."""
    graph = small_graph(name, **extra)
    weights = randomized_weights(graph, index)
    model = export(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    typed, known, unknown = compare_shape_inference(model, graph)
    assert typed > 10 and known > 0
    assert_matches_numpy(model, graph, weights, random_inputs(shapes, index))


def compare_shape_inference(model: onnx.ModelProto, graph: Graph) -> tuple[int, int, int]:
    """ONNX's own inference (our value_info removed) against poseir's types: (typed values, known, unknown dims)."""
    shape_inference.infer_shapes(model, strict_mode=True)  # our value_info must not contradict ONNX either
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    inferred = shape_inference.infer_shapes(bare, strict_mode=True)
    typed, known, unknown, invented = 0, 0, 0, {}
    for info in [*inferred.graph.value_info, *inferred.graph.output]:
        if info.name not in graph.values or not info.type.tensor_type.HasField("shape"):
            continue
        type_ = graph.values[info.name].type
        assert info.type.tensor_type.elem_type == onnx_type(type_), info.name
        dims = info.type.tensor_type.shape.dim
        assert len(dims) == type_.rank, info.name
        for dim, ours in zip(dims, type_.shape):
            known += dim.HasField("dim_value") or (dim.dim_param and not dim.dim_param.startswith("unk__"))
            if dim.HasField("dim_value"):
                assert ours == dim.dim_value, (info.name, dim.dim_value, ours)
            elif dim.dim_param.startswith("unk__"):
                assert invented.setdefault(dim.dim_param, ours) == ours, (info.name, dim.dim_param)
                unknown += 1
            elif dim.dim_param:
                assert dim.dim_param == ours.to_dim_param(), (info.name, dim.dim_param, ours)
            else:
                unknown += 1
        typed += 1
    return typed, known, unknown


def onnx_type(type_: TensorType) -> int:
    from poseir.backends.onnx_context import ONNX_DTYPES

    return ONNX_DTYPES[type_.dtype]


def test_symbolic_dims_are_dim_params_everywhere():
    """Inputs, outputs and value_info carry `B`, `T`, `T-242` as dim_param names."""
    model = export(small_graph("videopose3d"))
    params = {dim.dim_param for info in [*model.graph.input, *model.graph.output, *model.graph.value_info]
              for dim in info.type.tensor_type.shape.dim if dim.dim_param}
    assert {"B", "T", "T-2", "T-242"} <= params
    assert [dim.dim_param for dim in model.graph.output[0].type.tensor_type.shape.dim][:2] == ["B", "T-242"]
    assert len(model.graph.value_info) >= len(small_graph("videopose3d").nodes) - 1


def test_initializers_are_state_dict_keys():
    """Every weight the graph reads is an initializer named by its state_dict key, with its values."""
    graph = small_graph("poseformer")
    weights = randomized_weights(graph, 3)
    model = export(graph, weights)
    stored = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for key, array in weights.items():
        np.testing.assert_array_equal(stored[key], array)
    assert set(stored) - set(weights) == {name for name in stored if name.startswith("const/")}


# --------------------------------------------------------------------------- no baked sizes


def integers_in(model: onnx.ModelProto) -> set[int]:
    """Every integer the file holds: int tensors (initializers, Constant nodes) and int attributes."""
    found: set[int] = set()
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attribute in node.attribute:
            found |= set(attribute.ints) | ({attribute.i} if attribute.type == onnx.AttributeProto.INT else set())
            if attribute.type == onnx.AttributeProto.TENSOR:
                tensors.append(attribute.t)
    for tensor in tensors:
        array = numpy_helper.to_array(tensor)
        if array.dtype.kind in "iu":
            found |= {int(value) for value in array.ravel()}
    return found


def symbolic_values(graph: Graph, env: dict) -> set[int]:
    """The value at `env` of every symbolic dim in the graph's types and attributes."""
    dims = [dim for value in graph.values.values() for dim in value.type.shape]
    dims += [item for node in graph.nodes for _, value in node.attrs for item in _flatten(value)]
    return {dim.evaluate(env) for dim in dims if isinstance(dim, Dim) and not dim.is_const}


def constant_values(graph: Graph) -> set[int]:
    """Every size the hyper-parameters give: constant dims and integer attributes."""
    dims = [dim for value in graph.values.values() for dim in value.type.shape]
    dims += [item for node in graph.nodes for _, value in node.attrs for item in _flatten(value)]
    return {int(dim) for dim in dims if (isinstance(dim, Dim) and dim.is_const)
            or (isinstance(dim, int) and not isinstance(dim, bool))}


def _flatten(value):
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def baked(graph: Graph, env: dict) -> Graph:
    """The graph with its symbols replaced by sizes: what an exporter tracing example inputs sees."""

    def fixed(type_: TensorType) -> TensorType:
        return replace(type_, shape=tuple(dim.substitute(env) for dim in type_.shape))

    def attr(value):
        if isinstance(value, Dim):
            return value.substitute(env)
        return tuple(attr(item) for item in value) if isinstance(value, tuple) else value

    values = {name: replace(value, type=fixed(value.type)) for name, value in graph.values.items()}
    nodes = tuple(replace(node, attrs=tuple((key, attr(value)) for key, value in node.attrs)) for node in graph.nodes)
    return replace(graph, values=freeze_values(values), nodes=nodes, facts=Facts(),
                   inputs=tuple(values[value.name] for value in graph.inputs),
                   outputs=tuple(values[value.name] for value in graph.outputs))


# Example sizes are distinct primes above 1000: no hyper-parameter of the examples produces them
# (asserted below), so an integer in the file equal to one of their dims can only be a baked size.
EXAMPLE_SIZES = {"videopose3d": {"B": 1013, "T": 1291}, "simplebaseline": {"B": 1019}, "poseformer": {"B": 1021},
                 "mixste": {"B": 1031}, "motionbert": {"B": 1033, "T": 1039}}
EXAMPLE_SIZES["semgcn"] = {"B": 1049}
# Image sides are multiples of 32 whose halvings (35, 70, 140, 280, 560; 37, 74, ...) are no constant.
EXAMPLE_SIZES["integral"] = {"B": 1051, "H": 1120, "W": 1184}
EXAMPLE_SIZES["mhformer"] = {"B": 1061}
EXAMPLE_SIZES["semgcn_nonlocal"] = {"B": 1063}
EXAMPLE_SIZES["pstmo"] = {"B": 1069}


@pytest.mark.parametrize("name", NAMES)
def test_no_constant_equals_an_example_size(name):
    """No integer in the file is the value of a symbolic dim at the example sizes; a baked export is caught."""
    graph = small_graph(name)
    env = EXAMPLE_SIZES[name]
    sizes = symbolic_values(graph, env)
    assert sizes and not sizes & constant_values(graph)  # the criterion is sound for this graph
    model = export(graph)
    assert not integers_in(model) & sizes
    # Control: the same graph with the example sizes substituted, as a tracing exporter would see it,
    # is caught wherever the lowering needs a size: a shape op on a value computed from the inputs
    # (SimpleBaseline's Gemms need none; SemGCN reshapes only its weights).
    weights = {initializer.name for initializer in model.graph.initializer}
    from_inputs = {value.name for value in model.graph.input} - weights
    for node in model.graph.node:
        if from_inputs & set(node.input):
            from_inputs |= set(node.output)
    needs_sizes = any(node.op_type in ("Reshape", "Slice", "Expand", "Split") and node.input[0] in from_inputs
                      for node in model.graph.node)
    assert needs_sizes == (name not in ("simplebaseline", "semgcn"))
    assert bool(integers_in(export(baked(graph, env))) & sizes) == needs_sizes


def test_videopose3d_runs_at_any_clip_length():
    """One export, several (B, T): every output equals numpy's (a baked T could not pass all)."""
    graph = small_graph("videopose3d")
    weights = randomized_weights(graph, 5)
    model = export(graph, weights)
    for seed, shape in enumerate([(1, 243, 17, 2), (2, 300, 17, 2), (3, 251, 17, 2)]):
        assert_matches_numpy(model, graph, weights, random_inputs({"keypoints": shape}, seed))


def test_motionbert_runs_at_any_clip_length():
    """One export, several T <= maxlen: temp_embed[:, :T] and the temporal attention's split use the runtime T."""
    graph = small_graph("motionbert")
    weights = randomized_weights(graph, 6)
    model = export(graph, weights)
    for seed, shape in enumerate([(1, 27, 17, 3), (2, 4, 17, 3), (3, 13, 17, 3)]):
        assert_matches_numpy(model, graph, weights, random_inputs({"keypoints": shape}, seed))


@pytest.mark.parametrize(("name", "overrides"), [("mixste", {"drop_path_rate": 0.0}), ("motionbert", {})])
def test_transformer_train_flows_match_numpy(name, overrides):
    """MixSTE's weighted loss and MotionBERT's MPJPE + N-MPJPE + velocity loss, in onnxruntime."""
    graph = small_graph(name, "train", **overrides)
    weights = randomized_weights(graph, 8)
    model = export(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    for seed, (shapes, extra) in enumerate(SIZES[(name, "train")]):
        if not extra:
            assert_matches_numpy(model, graph, weights, random_inputs(shapes, seed))


# --------------------------------------------------------------------------- determinism


def test_export_is_byte_identical():
    """Same graph and weights twice in one process: the same bytes."""
    graph = small_graph("poseformer")
    weights = randomized_weights(graph, 1)
    assert export(graph, weights).SerializeToString() == export(graph, weights).SerializeToString()


def test_node_names_are_stable_and_unique():
    """Names are `{scope}/{op_type}_{n}`, unique, and each node says where in the .pose file it came from."""
    graph = small_graph("videopose3d")
    model = export(graph)
    names = [node.name for node in model.graph.node]
    assert len(set(names)) == len(names)
    assert "expand_conv/Conv_0" in names and "layers_bn.0/BatchNormalization_0" in names
    spans = {output: node.span for node in graph.nodes for output in node.outputs}
    for node in model.graph.node:
        origin = find_origin(model, node.name)
        for output in node.output:
            if output in spans:
                assert (origin.path, origin.line, origin.column) == (spans[output].path, spans[output].line,
                                                                      spans[output].column)


# --------------------------------------------------------------------------- train flow


@pytest.mark.parametrize("opset", [13, 17])
def test_simplebaseline_train_matches_numpy_batch_statistics(opset):
    """The train flow (dropout forced to 0 with --set) equals numpy's train mode with batch statistics."""
    graph = small_graph("simplebaseline", "train", p_dropout=0.0)
    weights = randomized_weights(graph, 2)
    model = export(graph, weights, opset)
    onnx.checker.check_model(model, full_check=True)
    kinds = {node.op_type for node in model.graph.node}
    assert ("BatchNormalization" in kinds) == (opset >= 14)  # opset 13 spells batch statistics out
    for seed, (shapes, _) in enumerate(SIZES[("simplebaseline", "train")]):
        assert_matches_numpy(model, graph, weights, random_inputs(shapes, seed))


def test_videopose3d_train_matches_numpy():
    """Strided training convolutions, batch-norm in training mode and the MPJPE loss."""
    graph = small_graph("videopose3d", "train", dropout=0.0, filter_widths=(3, 3, 3))
    weights = randomized_weights(graph, 4)
    model = export(graph, weights)
    training = [node for node in model.graph.node if node.op_type == "BatchNormalization"]
    assert training and all(any(a.name == "training_mode" and a.i == 1 for a in node.attribute) for node in training)
    assert_matches_numpy(model, graph, weights, random_inputs({"keypoints": (5, 27, 17, 2), "target": (5, 1, 17, 3)}, 0))


def test_train_flow_with_dropout_and_drop_path_runs():
    """With p > 0 the masks are random: the model checks, runs, and contains training-mode Dropout."""
    graph = small_graph("poseformer", "train", drop_rate=0.1)
    model = export(graph)
    onnx.checker.check_model(model, full_check=True)
    kinds = [node.op_type for node in model.graph.node]
    assert "Dropout" in kinds and "RandomUniformLike" in kinds
    outputs = run_onnx(model, random_inputs({"keypoints": (2, 81, 17, 2), "target": (2, 1, 17, 3)}, 0))
    assert outputs["pose"].shape == (2, 1, 17, 3) and np.isfinite(outputs["loss"])


# --------------------------------------------------------------------------- files, CLI, explain-node


def test_external_data_for_large_models(tmp_path):
    """Over the threshold the weights go to `<file>.data`; onnxruntime loads it from the path."""
    graph = small_graph("simplebaseline")
    weights = randomized_weights(graph, 0)
    model = export(graph, weights)
    files = save(model, str(tmp_path / "model.onnx"), external_threshold=1000)
    assert files == [str(tmp_path / "model.onnx"), str(tmp_path / "model.onnx.data")]
    assert (tmp_path / "model.onnx").stat().st_size < 20_000
    onnx.checker.check_model(str(tmp_path / "model.onnx"), full_check=True)
    inputs = random_inputs({"pose_2d": (3, 32)}, 0)
    expected = run_graph(graph, inputs, weights)["pose_3d"]
    np.testing.assert_allclose(run_onnx(str(tmp_path / "model.onnx"), inputs)["pose_3d"], expected, rtol=1e-4,
                               atol=1e-4)
    save(model, str(tmp_path / "again.onnx"), external_threshold=1000)
    assert (tmp_path / "again.onnx.data").read_bytes() == (tmp_path / "model.onnx.data").read_bytes()


def test_explain_node_shows_the_pose_line(tmp_path):
    """A node name (or a value name) maps back to its `.pose` line and column."""
    path = tmp_path / "vp.onnx"
    export(small_graph("videopose3d"), path=str(path))
    text = explain_node(str(path), "videopose3d/Slice_0")
    lines = Path(example("videopose3d")).read_text().splitlines()
    line = next(number for number, content in enumerate(lines, 1) if "res = x[:, :, pad[" in content)
    assert "--> " + example("videopose3d") + f":{line}:27" in text
    assert "res = x[:, :, pad[i + 1]:length - pad[i + 1]]" in text
    assert "size computation" in explain_node(str(path), "dims/Sub_0")
    assert "Conv" in explain_node(str(path), "conv1d")


def poseir(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "poseir", *map(str, arguments)], capture_output=True, text=True,
                          cwd=ROOT)


def test_cli_compile_onnx_opsets_and_ir(tmp_path):
    """`poseir compile` at opsets 13 and 20 writes valid models equal to numpy; `--target ir` writes IR text."""
    flags = ["--set", "linear_size=64"]
    graph = small_graph("simplebaseline")
    weights = initialize(graph.parameters, 0)
    inputs = random_inputs({"pose_2d": (5, 32)}, 0)
    for opset in (13, 20):
        out = tmp_path / f"sb{opset}.onnx"
        result = poseir("compile", "examples/simplebaseline.pose", "--opset", opset, "-o", out, *flags)
        assert result.returncode == 0, result.stderr
        model = onnx.load(str(out))
        assert model.opset_import[0].version == opset
        onnx.checker.check_model(model, full_check=True)
        assert_matches_numpy(model, graph, weights, inputs)
    again = tmp_path / "again.onnx"
    assert poseir("compile", "examples/simplebaseline.pose", "--opset", 20, "-o", again, *flags).returncode == 0
    assert again.read_bytes() == (tmp_path / "sb20.onnx").read_bytes()  # across processes too
    text = tmp_path / "sb.txt"
    assert poseir("compile", "examples/simplebaseline.pose", "--target", "ir", "-o", text, *flags).returncode == 0
    from poseir.compiler import prepare_for_backend
    from poseir.ir.graph import format_graph

    prepared = prepare_for_backend(graph)
    assert text.read_text() == format_graph(prepared).replace(example("simplebaseline"), "examples/simplebaseline.pose")


def test_cli_compile_weights_train_and_errors(tmp_path):
    """--weights, --mode train, explain-node, and exit codes 1 (user error) and 2 (usage)."""
    graph = small_graph("simplebaseline")
    weights = randomized_weights(graph, 7)
    np.savez(tmp_path / "w.npz", **weights)
    out = tmp_path / "sb.onnx"
    result = poseir("compile", "examples/simplebaseline.pose", "--set", "linear_size=64", "--weights",
                    tmp_path / "w.npz", "-o", out)
    assert result.returncode == 0, result.stderr
    assert_matches_numpy(onnx.load(str(out)), graph, weights, random_inputs({"pose_2d": (4, 32)}, 1))
    train = poseir("compile", "examples/simplebaseline.pose", "--mode", "train", "-o", tmp_path / "t.onnx")
    assert train.returncode == 0 and {"Dropout", "BatchNormalization"} <= {
        node.op_type for node in onnx.load(str(tmp_path / "t.onnx")).graph.node}
    explained = poseir("explain-node", out, "w1/Gemm_0")
    assert explained.returncode == 0 and "simplebaseline.pose:38:53" in explained.stdout
    wrong = poseir("compile", "examples/simplebaseline.pose", "--weights", tmp_path / "w.npz", "-o", out)
    assert wrong.returncode == 1 and "E402" in wrong.stderr and "Traceback" not in wrong.stderr
    assert poseir("compile", "examples/simplebaseline.pose", "--opset", 9, "-o", out).returncode == 2
    assert poseir("compile", "missing.pose", "-o", out).returncode == 2
    assert poseir("explain-node", out, "nope").returncode == 1
    assert poseir("explain-node", tmp_path / "missing.onnx", "x").returncode == 2


# --------------------------------------------------------------------------- what cannot be exported


POOL = """\
dim B, T
model pool = Pool()

module Pool() {
    forward(x: i64[B, 17, T]) -> (y: i64[B, 17, T // 2]) where T >= 2 {
        return x.max_pool1d(2)
    }
}
"""


def test_unexportable_dtype_is_a_diagnostic_at_the_line(tmp_path):
    """ONNX MaxPool takes floats only: E406 at the call, exit 1, no traceback."""
    (tmp_path / "pool.pose").write_text(POOL)
    result = poseir("compile", tmp_path / "pool.pose", "-o", tmp_path / "pool.onnx")
    assert result.returncode == 1
    assert "error[E406]" in result.stderr and "pool.pose:6:16" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "pool.onnx").exists()


def reshape_graph(source: str, target: str) -> Graph:
    """A one-reshape graph from `x: f32[source]` to `target` (dims as text), built through the API."""
    from poseir.ir.dims import parse_dim
    from poseir.ir.graph import Node, Value
    from poseir.syntax.source import Span

    span = Span.unknown("api.pose")
    x = Value("x", TensorType("f32", tuple(parse_dim(part) for part in source.split(","))), span)
    y = Value("y", TensorType("f32", tuple(parse_dim(part) for part in target.split(","))), span)
    node = Node("reshape", ("x",), ("y",), (("shape", y.type.shape),), span)
    return Graph("api", "infer", (x,), (y,), (), (node,), freeze_values({"x": x, "y": y}), Facts())


def test_symbols_are_solved_from_linear_axes_or_reported():
    """`2*T` gives T = size / 2 at run time; a symbol only inside `B*T` cannot be read off: E406."""
    model = export(reshape_graph("B, 2*T", "T, 2*B"))
    x = np.arange(3 * 10, dtype=np.float32).reshape(3, 10)
    np.testing.assert_array_equal(run_onnx(model, {"x": x})["y"], x.reshape(5, 6))
    with pytest.raises(DiagnosticError) as raised:
        export(reshape_graph("B*T, 34", "T, B, 34"))
    assert raised.value.diagnostic.code == "E406" and "the size `T` cannot be computed" in str(raised.value)
    with pytest.raises(DiagnosticError, match="opset 12 is not supported"):
        export(reshape_graph("B, 2*T", "T, 2*B"), opset=12)


# --------------------------------------------------------------------------- SemGCN


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("name", ["semgcn", "semgcn_nonlocal"])
def test_semgcn_train_flow_matches_numpy(name, opset):
    """Batch statistics over (batch, joints) of every graph convolution (and non-local block) and the MSE
    loss, in onnxruntime."""
    graph = small_graph(name, "train")
    weights = randomized_weights(graph, 9)
    rng = np.random.default_rng(9)
    for key in weights:  # learned adjacency weights away from their initial 1
        if key.endswith(".e"):
            weights[key] = rng.normal(0, 1.0, weights[key].shape).astype(np.float32)
    model = export(graph, weights, opset)
    onnx.checker.check_model(model, full_check=True)
    # The masked adjacency reads only weights: the export computes it once, into an initializer.
    assert "ScatterElements" not in {node.op_type for node in model.graph.node}
    assert any(".e/" in initializer.name for initializer in model.graph.initializer)
    for seed, (shapes, extra) in enumerate(SIZES[(name, "train")]):
        if not extra:
            assert_matches_numpy(model, graph, weights, random_inputs(shapes, seed))


def test_integral_train_flow_matches_numpy():
    """Integral regression's train flow: batch-statistics BN in every ResNet and deconv layer, the L1 loss.

    53 batch-statistics normalizations in float32 amplify rounding differences to a few 1e-4, and
    up to ~2e-3 in a few elements since convolutions sum each output as one GEMM (im2col) instead
    of tap by tap: a different float32 summation order than before, not a different result.
    """
    graph = small_graph("integral", "train")
    weights = randomized_weights(graph, 9)
    model = export(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    assert {"MaxPool", "ConvTranspose", "Softmax"} <= {node.op_type for node in model.graph.node}
    # The first train size, and one more: one export serves every image size that is a multiple of 32.
    shapes = [SIZES[("integral", "train")][0][0], {"image": (1, 3, 128, 32), "target": (1, 18, 3),
                                                   "visibility": (1, 18, 3)}]
    for seed, shape in enumerate(shapes):
        inputs = random_inputs(shape, seed)
        expected, got = run_graph(graph, inputs, weights), run_onnx(model, inputs)
        for name in ("heatmaps", "coords", "loss"):
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-3, atol=2e-3, err_msg=name)


# --------------------------------------------------------------------------- MHFormer


def test_mhformer_train_flow_matches_numpy():
    """Seq2seq training: batch-statistics regression BN and the root-zeroed MPJPE, with dropout and drop-path
    at 0 (36 frames: bare convolution embeddings, no hard-coded Dropout(0.25)), at two batch sizes."""
    graph = small_graph("mhformer", "train", frames=36, drop_rate=0.0, drop_path_rate=0.0)
    weights = randomized_weights(graph, 10)
    model = export(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    for seed, batch in enumerate((2, 5)):
        shapes = {"keypoints": (batch, 36, 17, 2), "target": (batch, 36, 17, 3)}
        assert_matches_numpy(model, graph, weights, random_inputs(shapes, seed))


def test_pstmo_train_flow_matches_numpy():
    """P-STMO's two-term loss (VTE on every frame, STE at the centre) with batch-statistics BatchNorms,
    dropout 0, at two batch sizes; both outputs too."""
    graph = small_graph("pstmo", "train", dropout=0.0)
    weights = randomized_weights(graph, 11)
    model = export(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    for seed, batch in enumerate((2, 5)):
        shapes = {"x": (batch, 2, 27, 17, 1), "target": (batch, 27, 17, 3)}
        assert_matches_numpy(model, graph, weights, random_inputs(shapes, seed))


def test_mhformer_flip_augmentation_exports():
    """The inference-only flip TTA (mirrored clip as a second batch half) runs in onnxruntime as in numpy."""
    graph = small_graph("mhformer", test_time_flip=True)
    weights = randomized_weights(graph, 11)
    model = export(graph, weights)
    for seed, batch in enumerate((1, 3)):
        assert_matches_numpy(model, graph, weights, random_inputs({"keypoints": (batch, 27, 17, 2)}, seed))
