"""Registry-wide ONNX checks (house rule 1): every op alone, exported and run in onnxruntime against numpy.

Each registry sample becomes a one-node poseir graph with symbolic input types. The exporter never
sees sizes; the model is then run at two symbol assignments, so a size baked into a lowering fails.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from poseir.backends.onnx_export import export
from poseir.ir.dims import Dim
from poseir.ir.graph import Graph, Node, TensorType, Value, freeze_values
from poseir.ops.registry import TENSORS, RunContext, ShapeContext, all_ops, with_defaults
from poseir.syntax.source import Span
from test_registry import assignments, evaluate, parse_facts, parse_inputs, random_array, symbols_of

OPSETS = (13, 17, 21)  # oldest supported, default, and one with Gelu
TOLERANCE = {"f32": (1e-4, 1e-5), "f64": (1e-9, 1e-12), "f16": (1e-2, 1e-3)}


def one_node_graph(op, sample, mode: str) -> Graph:
    """A graph whose inputs are the sample's symbolic tensors and whose only node is `op`."""
    shapes, attrs = sample[0], with_defaults(op, sample[1])
    facts = parse_facts(sample[2] if len(sample) > 2 else ())
    types = parse_inputs(op, shapes)
    outputs = op.infer(ShapeContext(op=op.name, facts=facts, span=Span.unknown()), types, attrs)
    span = Span.unknown("registry.pose")
    inputs = [Value(f"x{index}", type_, span) for index, type_ in enumerate(types) if type_ is not None]
    names = iter(value.name for value in inputs)
    node_inputs = tuple(next(names) if type_ is not None else "" for type_ in types)
    inputs += _size_carriers(inputs, symbols_of(types, sample[1]), span)
    results = [Value(f"y{index}", type_, span) for index, type_ in enumerate(outputs)]
    node = Node(op.name, node_inputs, tuple(value.name for value in results), tuple(attrs.items()), span, op.name)
    values = freeze_values({value.name: value for value in (*inputs, *results)})
    return Graph(op.name, mode, tuple(inputs), tuple(results), (), (node,), values, facts)


def _size_carriers(inputs: list[Value], symbols: set[str], span: Span) -> list[Value]:
    """An extra input `size_S: f32[S]` for each symbol no input axis is exactly.

    In an elaborated model every symbol is bound by an input axis (the interpreter requires it);
    a lone op's sample may use a symbol only in an attribute (`repeat(B, 1, 3)`), so it gets one.
    """
    bare = {str(dim) for value in inputs for dim in value.type.shape if dim.symbols == {str(dim)}}
    return [Value(f"size_{symbol}", TensorType("f32", (Dim.symbol(symbol),)), span)
            for symbol in sorted(symbols - bare)]


def feeds(graph: Graph, env: dict, rng) -> dict[str, np.ndarray]:
    """Random arrays for every graph input at one symbol assignment."""
    return {value.name: random_array(rng, value.type, env) for value in graph.inputs}


class RecordingGenerator:
    """A numpy Generator that remembers whether anything drew from it (a random facet)."""

    def __init__(self, seed: int):
        self.generator = np.random.default_rng(seed)
        self.used = False

    def __getattr__(self, name: str):
        self.used = True
        return getattr(self.generator, name)


def run_numpy(op, graph: Graph, arrays: dict, env: dict, mode: str) -> tuple[list[np.ndarray], bool]:
    """The registry's numpy facet on the node's operands, and whether it drew random numbers."""
    node = graph.nodes[0]
    operands = [arrays[name] if name else None for name in node.inputs]
    rng = RecordingGenerator(0)
    results = op.run(RunContext(mode, rng), operands, evaluate(node.attributes, env))
    return results, rng.used


def run_onnx(model: onnx.ModelProto, arrays: dict) -> list[np.ndarray]:
    """onnxruntime on the CPU."""
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, arrays)


def cases():
    """(op, sample, mode) for every sample of every op in every mode it exists in."""
    for op in all_ops():
        for index, sample in enumerate(op.samples):
            for mode in op.modes:
                yield pytest.param(op, sample, mode, id=f"{op.name}-{index}-{mode}")


def test_every_op_has_an_onnx_facet():
    """No op is left to per-op code in the backend."""
    assert [op.name for op in all_ops() if op.onnx is None] == []


@pytest.mark.parametrize(("op", "sample", "mode"), list(cases()))
def test_single_op_model_matches_numpy(op, sample, mode):
    """Checker (full), then onnxruntime equals numpy at two symbol assignments and three opsets."""
    graph = one_node_graph(op, sample, mode)
    facts = graph.facts
    symbols = symbols_of([value.type for value in graph.inputs], sample[1])
    for opset in OPSETS:
        model = export(graph, {}, opset)
        onnx.checker.check_model(model, full_check=True)
        rng = np.random.default_rng(opset)
        for env in assignments(symbols, facts):
            arrays = feeds(graph, env, rng)
            # A random mask (training dropout) cannot equal onnxruntime's: see the property tests below.
            expected, random = run_numpy(op, graph, arrays, env, mode)
            for got, want, value in zip(run_onnx(model, arrays), expected, graph.outputs):
                assert got.shape == tuple(dim.evaluate(env) for dim in value.type.shape), (opset, env)
                assert got.dtype == np.asarray(want).dtype, (opset, env)
                if not random:
                    _assert_close(got, np.asarray(want), value.type.dtype, f"opset {opset}, {env}")


def _assert_close(got: np.ndarray, want: np.ndarray, dtype: str, where: str) -> None:
    """Equal for integers and booleans, within the dtype's tolerance for floats."""
    if dtype not in TOLERANCE:
        np.testing.assert_array_equal(got, want, err_msg=where)
        return
    rtol, atol = TOLERANCE[dtype]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=where)


def _training_op(name: str, shape: str, p: float):
    """A one-node training graph of dropout or drop-path with probability p."""
    op = next(op for op in all_ops() if op.name == name)
    return op, one_node_graph(op, ((shape,), {"p": p}), "train")


@pytest.mark.parametrize("opset", [13, 17])
def test_training_dropout_zeroes_elements_and_scales_survivors(opset):
    """Random masks cannot equal numpy's; the semantics can: each element is 0 or x / (1 - p)."""
    _, graph = _training_op("dropout", "B, C", 0.25)
    model = export(graph, {}, opset)
    x = np.random.default_rng(0).uniform(0.5, 1.5, (64, 256)).astype(np.float32)
    (y,) = run_onnx(model, {"x0": x})
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-6)
    assert 0.2 < 1 - kept.mean() < 0.3


def test_training_drop_path_drops_whole_samples():
    """Each sample (axis 0) is either all zero or all x / (1 - p)."""
    _, graph = _training_op("drop_path", "B, N, C", 0.5)
    model = export(graph, {}, 17)
    x = np.random.default_rng(0).uniform(0.5, 1.5, (200, 3, 4)).astype(np.float32)
    (y,) = run_onnx(model, {"x0": x})
    dropped = np.all(y == 0, axis=(1, 2))
    np.testing.assert_allclose(y[~dropped], x[~dropped] / 0.5, rtol=1e-6)
    assert 0.3 < dropped.mean() < 0.7


def test_inference_dropout_and_drop_path_are_identities():
    """In the inference flow neither op leaves anything but an Identity."""
    for name in ("dropout", "drop_path"):
        op = next(op for op in all_ops() if op.name == name)
        model = export(one_node_graph(op, (("B, C",), {"p": 0.5}), "infer"), {}, 17)
        assert [node.op_type for node in model.graph.node] == ["Identity"]


def test_tensors_parameters_are_listed():
    """Concat and stack samples really pass several tensors (the harness expands TENSORS params)."""
    stack = next(op for op in all_ops() if op.name == "stack")
    assert stack.tensor_params[0].kind == TENSORS
    graph = one_node_graph(stack, stack.samples[1], "infer")
    assert len(graph.nodes[0].inputs) == 3


def test_scatter_is_exact():
    """ScatterElements into a constant filled vector moves values without arithmetic: bit-equal to numpy."""
    op = next(op for op in all_ops() if op.name == "scatter")
    sample = (("6",), {"indices": (9, 0, 4, 13, 2, 7), "size": 16, "fill": -9e15})
    graph = one_node_graph(op, sample, "infer")
    values = np.random.default_rng(0).standard_normal(6).astype(np.float32)
    expected, _ = run_numpy(op, graph, {"x0": values}, {}, "infer")
    for opset in OPSETS:
        (got,) = run_onnx(export(graph, {}, opset), {"x0": values})
        np.testing.assert_array_equal(got, expected[0])
        assert got.dtype == np.float32 and got[1] == np.float32(-9e15)
