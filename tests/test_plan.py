"""The planned numpy backend: liveness, donated buffers, one plan at several sizes, fast special functions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from poseir.backends.numpy_interpreter import RunStats, run_graph
from poseir.backends.numpy_fusion import Epilogue, Link, unary_epilogue
from poseir.backends.numpy_plan import Plan, plan_for
from poseir.backends.numpy_threads import Workers
from poseir.compiler import build, prepare_for_backend
from poseir.ops.registry import RunContext, ShapeContext, all_ops, lookup
from poseir.ops.special import gelu
from poseir.syntax.source import Span
from poseir.weights.init import initialize
from test_registry import assignments, evaluate, parse_facts, parse_inputs, random_array, symbols_of

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
THREADS = Workers(3)

CHAIN = """
dim B, N
model chain = Chain()

module Chain() {
    self.first = Linear(64, 64)
    self.second = Linear(64, 64)
    forward(x: f32[B, N, 64]) -> (y: f32[B, N, 64]) {
        h = relu(self.first(x))
        g = gelu(self.second(h))
        return g + 1.0
    }
}
"""


def _prepared(tmp_path, source: str) -> tuple:
    """A model written to a file, built, prepared for the backend, and its seeded weights."""
    path = tmp_path / "model.pose"
    path.write_text(source)
    graph, result = build(str(path))
    assert graph is not None, result.diagnostics
    return prepare_for_backend(graph), initialize(graph.parameters, seed=0)


def _planned_and_unfused(graph, weights, inputs: dict) -> tuple:
    """The planned run's outputs and stats, and a traced run's outputs (every value kept, nothing fused)."""
    stats = RunStats()
    planned = run_graph(graph, inputs, weights, stats=stats)
    return planned, run_graph(graph, inputs, weights, trace={}), stats


def _chain(tmp_path) -> tuple:
    """The small chain model and its weights."""
    return _prepared(tmp_path, CHAIN)


def test_intermediates_are_released_after_their_last_reader(tmp_path):
    """The peak of live intermediates is about two activations, not every activation of the chain."""
    graph, weights = _chain(tmp_path)
    x = np.random.default_rng(0).standard_normal((4, 100, 64)).astype(np.float32)
    stats = RunStats()
    run_graph(graph, {"x": x}, weights, stats=stats)
    activation = x.nbytes
    assert stats.steps == len(graph.nodes) - 2 >= 3  # relu and gelu run inside the linear layers
    assert {"linear+relu", "linear+gelu"} <= set(stats.op_seconds), stats.op_seconds
    assert stats.peak_bytes <= 2 * activation + 64, stats.lines()  # (+ the scalar constant)
    assert stats.final_bytes == activation
    trace: dict = {}
    run_graph(graph, {"x": x}, weights, trace=trace)
    produced = [name for node in graph.nodes for name in node.outputs]
    assert all(name in trace for name in produced)  # a trace keeps every value
    assert sum(trace[name].nbytes for name in produced) >= 4 * activation


def test_donated_buffers_do_not_change_results(tmp_path):
    """Ops that write into donated inputs give the same numbers as a run that keeps everything."""
    graph, weights = _chain(tmp_path)
    x = np.random.default_rng(1).standard_normal((2, 30, 64)).astype(np.float32)
    stats = RunStats()
    planned = run_graph(graph, {"x": x}, weights, stats=stats)
    kept = run_graph(graph, {"x": x}, weights, trace={})
    assert stats.donated > 0
    np.testing.assert_array_equal(planned["y"], kept["y"])


def test_one_plan_runs_at_two_sizes_like_fresh_plans():
    """A plan bound at one clip length, then another, then the first again, matches fresh plans."""
    graph, _ = build(str(EXAMPLES / "videopose3d.pose"), overrides={"channels": 32})
    graph = prepare_for_backend(graph)
    weights = initialize(graph.parameters, seed=3)
    rng = np.random.default_rng(3)
    long, short = (rng.standard_normal((2, frames, 17, 2)).astype(np.float32) for frames in (300, 250))
    plan = plan_for(graph)
    first = run_graph(graph, {"keypoints": long}, weights)["pose"]
    second = run_graph(graph, {"keypoints": short}, weights)["pose"]
    again = run_graph(graph, {"keypoints": long}, weights)["pose"]
    assert plan_for(graph) is plan and len(plan._bindings) == 2
    assert first.shape == (2, 58, 17, 3) and second.shape == (2, 8, 17, 3)
    for inputs, result in (({"keypoints": long}, first), ({"keypoints": short}, second)):
        from poseir.backends.numpy_interpreter import bind_symbols

        fresh = Plan(graph).run(bind_symbols(graph, inputs), inputs, weights)["pose"]
        np.testing.assert_array_equal(result, fresh)
    np.testing.assert_array_equal(first, again)


def _cases():
    """(op, sample) for every sample of every op."""
    for op in all_ops():
        for index, sample in enumerate(op.samples):
            yield pytest.param(op, sample, id=f"{op.name}-{index}")


@pytest.mark.parametrize(("op", "sample"), list(_cases()))
def test_every_op_gives_the_same_numbers_with_donated_inputs_and_threads(op, sample):
    """Each op's run facet, offered every input as an output buffer and splitting even tiny work over
    three threads, equals its plain run."""
    shapes, attrs = sample[0], sample[1]
    facts = parse_facts(sample[2] if len(sample) > 2 else ())
    types = parse_inputs(op, shapes)
    op.infer(ShapeContext(op=op.name, facts=facts, span=Span.unknown()), types, attrs)
    rng = np.random.default_rng(11)
    env = assignments(symbols_of(types, attrs), facts)[0]
    arrays = [None if type_ is None else random_array(rng, type_, env) for type_ in types]
    for mode in op.modes:
        plain = op.run(RunContext(mode, np.random.default_rng(0)), arrays, evaluate(attrs, env))
        copies = [None if array is None else array.copy() for array in arrays]
        donated = {index: array for index, array in enumerate(copies) if array is not None}
        context = RunContext(mode, np.random.default_rng(0), donated, workers=THREADS, parallel_work=1)
        reused = op.run(context, copies, evaluate(attrs, env))
        for expected, got in zip(plain, reused):
            np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6, atol=1e-7,
                                       err_msg=f"{op.name} {mode}")


def _finishing_cases():
    """(op, sample, epilogue op) for every sample of every op whose run finishes its output parts."""
    for op in all_ops():
        if op.finishes:
            for index, sample in enumerate(op.samples):
                for after in ("relu", "gelu"):
                    yield pytest.param(op, sample, after, id=f"{op.name}-{index}-{after}")


@pytest.mark.parametrize(("op", "sample", "after"), list(_finishing_cases()))
def test_an_op_that_finishes_its_output_applies_a_fused_epilogue_to_all_of_it_once(op, sample, after):
    """Run with a fused epilogue (threads splitting even tiny work) equals the epilogue op run on the plain
    result: every element finished exactly once (relu twice would pass, so gelu is checked too)."""
    shapes, attrs = sample[0], sample[1]
    facts = parse_facts(sample[2] if len(sample) > 2 else ())
    types = parse_inputs(op, shapes)
    op.infer(ShapeContext(op=op.name, facts=facts, span=Span.unknown()), types, attrs)
    env = assignments(symbols_of(types, attrs), facts)[0]
    arrays = [None if type_ is None else random_array(np.random.default_rng(5), type_, env) for type_ in types]
    epilogue = lookup(after)
    plain = op.run(RunContext("infer", np.random.default_rng(0)), arrays, evaluate(attrs, env))
    expected = epilogue.run(RunContext("infer", np.random.default_rng(0)), plain, {})
    context = RunContext("infer", np.random.default_rng(0), workers=THREADS, parallel_work=1,
                         epilogue=unary_epilogue(after))
    fused = op.run(context, arrays, evaluate(attrs, env))
    np.testing.assert_allclose(np.asarray(fused[0]), np.asarray(expected[0]), rtol=1e-6, atol=1e-7,
                               err_msg=f"{op.name}+{after}")


def _operands(kind: str, shape: tuple, rng) -> np.ndarray:
    """A fused binary op's other operand: the output's shape, one value per last-axis entry, or a scalar."""
    if kind == "same":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "last":
        return rng.standard_normal(shape[-1:] if shape else ()).astype(np.float32)
    return np.asarray(rng.standard_normal(), dtype=np.float32)


@pytest.mark.parametrize(("op", "sample", "after"), [case for case in _finishing_cases() if case.values[2] == "relu"])
def test_an_op_that_finishes_its_output_applies_fused_binary_ops_with_their_operands(op, sample, after):
    """A chain of a residual-style add, a subtraction with the operand first, a scale by a scalar and a relu,
    fused after each finishing op (threads splitting even tiny work, so parts come from every task), gives the
    unfused numbers: each part meets the matching part of every operand, in the producer's own layout."""
    shapes, attrs = sample[0], sample[1]
    facts = parse_facts(sample[2] if len(sample) > 2 else ())
    types = parse_inputs(op, shapes)
    op.infer(ShapeContext(op=op.name, facts=facts, span=Span.unknown()), types, attrs)
    env = assignments(symbols_of(types, attrs), facts)[0]
    rng = np.random.default_rng(7)
    arrays = [None if type_ is None else random_array(rng, type_, env) for type_ in types]
    plain = np.asarray(op.run(RunContext("infer", np.random.default_rng(0)), arrays, evaluate(attrs, env))[0])
    if plain.dtype != np.float32:
        pytest.skip("fusion applies to float results")
    same, last, scalar = (_operands(kind, plain.shape, rng) for kind in ("same", "last", "scalar"))
    expected = np.maximum((last - (plain + same)) * scalar, 0)
    chain = (Link("add", combine=np.add, operand=0), Link("sub", combine=np.subtract, operand=1, operand_first=True),
             Link("mul", combine=np.multiply, operand=2), Link("relu", unary=lookup("relu").epilogue))
    context = RunContext("infer", np.random.default_rng(0), workers=THREADS, parallel_work=1,
                         epilogue=Epilogue(chain, [same, last, scalar], plain.shape))
    fused = op.run(context, arrays, evaluate(attrs, env))
    np.testing.assert_allclose(np.asarray(fused[0]), expected, rtol=1e-6, atol=1e-6, err_msg=f"{op.name} chain")


def _banded_cases():
    """(op, sample) for every convolution sample whose columns are built (not 1x1 with stride 1), groups 1."""
    for op in (lookup("conv1d"), lookup("conv2d")):
        for index, sample in enumerate(op.samples):
            kernel = sample[0][1].split(", ")[2:]
            if sample[1].get("groups", 1) == 1 and (set(kernel) != {"1"} or sample[1].get("stride", 1) != 1):
                yield pytest.param(op, sample, id=f"{op.name}-{index}")


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize(("op", "sample"), list(_banded_cases()))
def test_convolutions_in_bands_of_output_rows_equal_whole_images(op, sample, rows, monkeypatch):
    """Columns built and multiplied band by band of output rows (forced here to 1 or 2 rows, so the last band
    of an odd size is short) give the whole-image numbers, with a fused chain applied to every band."""
    from poseir.ops import conv

    shapes, attrs = sample[0], sample[1]
    types = parse_inputs(op, shapes)
    facts = parse_facts(sample[2] if len(sample) > 2 else ())
    op.infer(ShapeContext(op=op.name, facts=facts, span=Span.unknown()), types, attrs)
    env = assignments(symbols_of(types, attrs), facts)[0]
    rng = np.random.default_rng(11)
    arrays = [None if type_ is None else random_array(rng, type_, env) for type_ in types]
    plain = np.asarray(op.run(RunContext("infer", np.random.default_rng(0)), arrays, evaluate(attrs, env))[0])
    same = rng.standard_normal(plain.shape).astype(np.float32)
    expected = np.maximum(plain + same, 0)
    bands = []
    monkeypatch.setattr(conv, "_band_rows", lambda *args: bands.append(rows) or rows)
    chain = (Link("add", combine=np.add, operand=0), Link("relu", unary=lookup("relu").epilogue))
    for workers in (None, THREADS):
        context = RunContext("infer", np.random.default_rng(0), workers=workers, parallel_work=1,
                             epilogue=Epilogue(chain, [same], plain.shape))
        fused = np.asarray(op.run(context, arrays, evaluate(attrs, env))[0])
        np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-5, err_msg=f"{op.name} in bands of {rows}")
    assert bands  # the banded path ran


GRAPH_CONV = """
dim B
model gconv = Stack()

## SemGCN's pattern: two adjacency products summed, a bias, a batch norm's scale and shift, a relu, and a
## residual add, which all run inside the second product.
module Layer(width: int = 8) {
    self.w = Linear(width, 2 * width, bias = false)
    self.bias = param f32[width] ~ uniform(-1.0, 1.0)
    self.scale = param f32[width] ~ uniform(0.5, 1.5)
    self.shift = param f32[width] ~ uniform(-1.0, 1.0)
    forward(x, adjacency) {
        h = self.w(x)
        y = adjacency @ h[:, :, :width] + adjacency.transpose(0, 1) @ h[:, :, width:]
        return relu((y + self.bias) * self.scale + self.shift) + x
    }
}

module Stack(width: int = 8, joints: int = 5) {
    self.layers = [Layer(width) for i in 0..2]
    self.adjacency = param f32[joints, joints] ~ uniform(0.0, 1.0)
    forward(x: f32[B, joints, width]) -> (y: f32[B, joints, width]) {
        for layer in self.layers {
            x = layer(x, self.adjacency)
        }
        return x
    }
}
"""


def test_a_chain_of_elementwise_ops_runs_inside_the_product_before_it(tmp_path):
    """The sum, bias, scale, shift, relu and residual add of a graph convolution run as one step with the
    second product (whose operands were all made before it), and the numbers equal the unfused run's, for a
    small output (finished whole) and a large one (finished part by part, FINISH_IN_PARTS_FROM)."""
    graph, weights = _prepared(tmp_path, GRAPH_CONV)
    for batch in (3, 2000):  # the fused ops run on the whole output of 120 elements, on each part of 80000
        x = np.random.default_rng(batch).standard_normal((batch, 5, 8)).astype(np.float32)
        planned, unfused, stats = _planned_and_unfused(graph, weights, {"x": x})
        assert stats.op_seconds.keys() >= {"matmul+add+add+mul+add+relu+add"}, stats.op_seconds
        np.testing.assert_array_equal(planned["y"], unfused["y"])


def test_a_binary_op_runs_inside_the_later_of_its_operands_producers(tmp_path):
    """`a + b` needs both operands: it is fused into the producer that runs last, with the other as its operand
    (so the value read is always ready), and a subtraction keeps its operand order."""
    graph, weights = _prepared(tmp_path, """
dim B, T
model later = Later()

module Later() {
    self.first = Conv1d(4, 4, 1)
    self.second = Conv1d(4, 4, 1)
    forward(x: f32[B, 4, T]) -> (y: f32[B, 4, T]) {
        a = self.first(x)
        b = self.second(x)
        return a - b
    }
}
""")
    x = np.random.default_rng(0).standard_normal((2, 4, 6)).astype(np.float32)
    planned, unfused, stats = _planned_and_unfused(graph, weights, {"x": x})
    assert sorted(stats.op_seconds) == ["conv1d", "conv1d+sub"], stats.op_seconds
    np.testing.assert_array_equal(planned["y"], unfused["y"])


def test_fusion_keeps_a_value_that_another_op_or_the_caller_reads(tmp_path):
    """An activation is fused only into its operand's single reader: a convolution whose result a residual add
    also reads, or which is a graph output, keeps its own value."""
    graph, weights = _prepared(tmp_path, """
dim B, T
model kept = Kept()

module Kept() {
    self.conv = Conv1d(8, 8, 1)
    self.other = Conv1d(8, 8, 1)
    forward(x: f32[B, 8, T]) -> (y: f32[B, 8, T], z: f32[B, 8, T], raw: f32[B, 8, T]) {
        h = self.conv(x)
        raw = self.other(x)
        return relu(h) + h, relu(raw), raw
    }
}
""")
    x = np.random.default_rng(0).standard_normal((2, 8, 5)).astype(np.float32)
    planned, kept, stats = _planned_and_unfused(graph, weights, {"x": x})
    assert not any("+" in label for label in stats.op_seconds), stats.op_seconds
    for name in ("y", "z", "raw"):
        np.testing.assert_array_equal(planned[name], kept[name])


def test_float32_gelu_is_accurate_in_absolute_and_relative_terms():
    """The blockwise float32 GELU against math.erfc in float64, including the negative tail and infinities."""
    x = np.linspace(-9.0, 9.0, 180_001).astype(np.float32)
    wide = x.astype(np.float64)
    exact = wide * 0.5 * np.array([math.erfc(-value / math.sqrt(2.0)) for value in wide])
    got = gelu(x)
    assert got.dtype == np.float32
    assert np.max(np.abs(got - exact)) < 2.5e-7
    tail = x >= -6.0
    assert np.max(np.abs(got - exact)[tail] / np.maximum(np.abs(exact[tail]), 1e-30)) < 5e-6
    special = gelu(np.array([np.inf, -np.inf, 0.0, 1e30, -1e30], np.float32))
    assert special[0] == np.inf and special[2] == 0.0 and special[3] == 1e30 and special[4] == 0.0


@pytest.mark.parametrize("width", [1, 17, 48, 49, 1024, 1025])
def test_row_sums_and_maxima_equal_numpys_reductions(width):
    """The short-row reductions softmax and layer norm use (einsum sums, column-by-column maxima) against numpy's
    own, on both sides of their length thresholds; a row's sum does not depend on the rows around it."""
    from poseir.ops.common import row_maxima, row_sums

    rows = np.random.default_rng(width).standard_normal((37, width)).astype(np.float32)
    np.testing.assert_array_equal(row_maxima(rows), np.max(rows, axis=1, keepdims=True))
    np.testing.assert_allclose(row_sums(rows), rows.astype(np.float64).sum(axis=1, keepdims=True), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([row_sums(rows[:10]), row_sums(rows[10:])]), row_sums(rows))


def test_a_fused_ops_operand_is_recycled_after_its_last_read(tmp_path, monkeypatch):
    """The operands a step's fused ops read (the residuals, the other product) are released after the step and
    their buffers serve later outputs: in a repeated run only the graph's output needs new memory."""
    from poseir.backends import numpy_memory

    graph, weights = _prepared(tmp_path, GRAPH_CONV)
    x = np.random.default_rng(0).standard_normal((2000, 5, 8)).astype(np.float32)
    for _ in range(2):
        run_graph(graph, {"x": x}, weights)
    fresh = []
    real = numpy_memory.LiveMemory.empty

    def counting(self, shape, dtype):
        if not self.free.get(math.prod(shape) * np.dtype(dtype).itemsize):
            fresh.append(shape)
        return real(self, shape, dtype)

    monkeypatch.setattr(numpy_memory.LiveMemory, "empty", counting)
    run_graph(graph, {"x": x}, weights)
    assert len(fresh) <= len(graph.outputs), fresh


def _scattered_transpose(x, weight, bias, stride, padding, extra):
    """A transposed convolution by its definition: every input pixel times every tap, added at i * s + k,
    then cropped by the padding (torch's output size rule)."""
    batch, channels, height, width = x.shape
    outs, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    full = np.zeros((batch, outs, (height - 1) * stride[0] + kh + extra[0],
                     (width - 1) * stride[1] + kw + extra[1]), np.float64)
    for i in range(height):
        for j in range(width):
            for a in range(kh):
                for b in range(kw):
                    full[:, :, i * stride[0] + a, j * stride[1] + b] += x[:, :, i, j] @ weight[:, :, a, b]
    out = full[:, :, padding[0]:full.shape[2] - padding[0], padding[1]:full.shape[3] - padding[1]]
    return out + (0 if bias is None else bias.reshape(-1, 1, 1))


@pytest.mark.parametrize(("kernel", "stride", "padding", "extra"), [
    ((4, 4), (2, 2), (1, 1), (0, 0)), ((3, 3), (2, 2), (1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0), (0, 0)),
    ((1, 1), (3, 3), (0, 0), (2, 2)), ((1, 2), (2, 3), (0, 1), (1, 0)), ((5, 3), (3, 1), (2, 0), (2, 0)),
    ((3, 3), (1, 1), (1, 1), (0, 0)), ((4, 2), (3, 2), (3, 1), (0, 1))])
def test_a_transposed_convolution_by_phases_equals_its_definition(kernel, stride, padding, extra):
    """Kernels wider and narrower than the stride (phases with no taps read only the bias), padding up to
    the kernel, output padding: the phase decomposition, threaded and with a fused relu, equals the
    scatter-add definition."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    weight = rng.standard_normal((3, 2, *kernel)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    attrs = {"stride": stride, "padding": padding, "output_padding": extra}
    expected = np.maximum(_scattered_transpose(x, weight, bias, stride, padding, extra), 0)
    op = lookup("conv_transpose2d")
    context = RunContext("infer", np.random.default_rng(0), workers=THREADS, parallel_work=1,
                         epilogue=unary_epilogue("relu"))
    (result,) = op.run(context, [x, weight, bias], attrs)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
