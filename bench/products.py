"""The matrix products of an example, timed alone: what the numpy backend's BLAS allows against onnxruntime's.

Every convolution, linear layer and matmul of a planned inference graph becomes the product the numpy
backend computes for it (a convolution: its weight matrix times each image's im2col columns), with how
often it occurs. Timing those products alone, with the numpy backend's own matmul and with an
onnxruntime MatMul of the same shapes on the same threads, gives a floor for the example's ratio: the
part of the gap that lies in the BLAS kernels (OpenBLAS against onnxruntime's MLAS), not in poseir.
An operand that is a weight in the example (bound once, as folded batch norms are) is an initializer
of the onnxruntime model, as in the example's export, so MLAS may pack it once at load as it does there.
"""

from __future__ import annotations

import math
from collections import Counter

SHAPE_SECONDS = 0.15  # each shape goes on being timed until this much time has passed...
MAX_CALLS = 200  # ...or it has had this many calls

# The shapes of a and b in a @ b (numpy semantics), and whether each is a weight.
Pair = tuple[tuple[int, ...], tuple[int, ...], bool, bool]


def products(name: str, overrides: dict, shape: tuple) -> Counter:
    """(a shape, b shape) -> count, for the example's prepared inference graph at this input shape."""
    from bench import EXAMPLES

    from poseir.backends.numpy_plan import Plan
    from poseir.compiler import build, prepare_for_backend
    from poseir.passes.fold_parameters import fold_parameters
    from poseir.weights.init import initialize

    graph, _ = build(str(EXAMPLES / f"{name}.pose"), overrides=overrides)
    graph = prepare_for_backend(graph)
    graph, _ = fold_parameters(graph, initialize(graph.parameters, 0))  # as the numpy backend binds them
    weights = {value.name for value in graph.parameters}
    env = {str(dim): size for dim, size in zip(graph.inputs[0].type.shape, shape) if not dim.is_const}
    plan = Plan(graph)
    binding = plan.bind(env)
    found: Counter = Counter()
    for step, attrs, shapes in zip(plan.steps, binding.attrs, binding.shapes):
        inputs = [tuple(dim.evaluate(env) for dim in graph.values[name].type.shape) if name else None
                  for name in step.node.inputs]
        pair = _product_of(step.node.op, inputs, shapes[0], attrs)
        if pair is not None:
            found[(*pair, *_weight_operands(step.node, weights))] += 1
    return found


def _weight_operands(node, weights: set) -> tuple[bool, bool]:
    """Whether a and b of a node's product are weights: linear is x @ weight.T, a (transposed) convolution
    its weight matrix times columns, a matmul whichever of its operands is a weight."""
    first, second = (name in weights for name in node.inputs[:2])
    if node.op == "matmul":
        return first, second
    return (False, second) if node.op == "linear" else (second, False)


def _product_of(op: str, inputs: list, output: tuple, attrs: dict) -> tuple | None:
    """The product the numpy backend computes for one node, or None for an op that is no product."""
    if op == "linear":
        x, weight = inputs[0], inputs[1]
        return (math.prod(x[:-1]), x[-1]), (weight[1], weight[0])
    if op == "matmul":
        return inputs[0], inputs[1]
    if op in ("conv1d", "conv2d"):
        x, weight, groups = inputs[0], inputs[1], attrs["groups"]
        columns = weight[1] * math.prod(weight[2:])
        positions = math.prod(output[2:])
        if groups == 1:
            return (weight[0], columns), ((x[0], columns, positions) if x[0] > 1 else (columns, positions))
        return (groups, weight[0] // groups, columns), (x[0], groups, columns, positions)
    if op == "conv_transpose2d":
        x, weight = inputs[0], inputs[1]
        return (weight[1] * math.prod(weight[2:]), weight[0]), (x[0], x[1], math.prod(x[2:]))
    return None


def numpy_seconds(found: Counter, repeats: int) -> float:
    """The products' total time with the numpy backend's matmul (its threads, BLAS single-threaded)."""
    import numpy as np

    from poseir.backends.numpy_threads import single_threaded_blas, workers
    from poseir.ops.registry import RunContext, lookup

    run = lookup("matmul").run
    # Outputs go to a buffer kept from the last call, as the plan recycles them (no page faults of fresh memory).
    context = RunContext("infer", np.random.default_rng(0), workers=workers(), buffers=_KeptBuffers())
    total = 0.0
    with single_threaded_blas():
        for (a_shape, b_shape, _, _), count in found.items():
            rng = np.random.default_rng(0)
            a, b = (rng.standard_normal(shape).astype(np.float32) for shape in (a_shape, b_shape))
            total += count * _fastest(lambda: run(context, [a, b], {}), repeats)
    return total


def onnxruntime_seconds(found: Counter, repeats: int, threads: int) -> float:
    """The products' total time as onnxruntime MatMuls of the same shapes, `threads` intra-op threads."""
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    total = 0.0
    for (a_shape, b_shape, a_weight, b_weight), count in found.items():
        rng = np.random.default_rng(0)
        arrays = {"a": rng.standard_normal(a_shape).astype(np.float32),
                  "b": rng.standard_normal(b_shape).astype(np.float32)}
        weights = {"a": a_weight, "b": b_weight}
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["y"])], "product",
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape))
             for name, array in arrays.items() if not weights[name]],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            initializer=[numpy_helper.from_array(array, name) for name, array in arrays.items() if weights[name]])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = min(model.ir_version, onnx.IR_VERSION)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
        # Inputs and the output bound to arrays made once, as onnxruntime's arena serves a model's values.
        binding = session.io_binding()
        for name, array in arrays.items():
            if not weights[name]:
                binding.bind_cpu_input(name, array)
        output = np.empty_like(np.matmul(arrays["a"], arrays["b"]))
        binding.bind_output("y", "cpu", 0, np.float32, output.shape, output.ctypes.data)
        total += count * _fastest(lambda: session.run_with_iobinding(binding), repeats)
    return total


class _KeptBuffers:
    """Output buffers by shape and dtype, handed out again at every call (the numpy side's arena)."""

    def __init__(self):
        self.kept: dict = {}

    def empty(self, shape: tuple, dtype):
        """The buffer of this shape and dtype, made on first use."""
        import numpy as np

        key = (tuple(shape), np.dtype(dtype))
        if key not in self.kept:
            self.kept[key] = np.empty(shape, dtype)
        return self.kept[key]


def _fastest(function, repeats: int) -> float:
    """The minimum wall time of `function()` after a warm-up call: at least `repeats` calls, and more while
    the shape has had less than SHAPE_SECONDS (on this shared host a short product often gets one core
    for a while, so a small shape's minimum needs many tries)."""
    from bench import wall_times

    return min(wall_times(function, repeats, SHAPE_SECONDS, MAX_CALLS))
