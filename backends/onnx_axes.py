"""ONNX files without negative axes, for runtimes that reject them.

The IR's own axes are made non-negative by a pass (`poseir.passes.positive_axes`); lowerings may
still count from the end (`axis=-1` of a LayerNormalization, the axes of a Squeeze helper). This
rewrites the file itself: every `axis`/`axes` attribute, and every constant `axes` input, counted
from the front, with ranks from ONNX shape inference. It knows ONNX's conventions, not poseir's ops.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

# ONNX ops whose axes count in the rank of their output rather than of their first input.
_OUTPUT_RANK = {"Unsqueeze"}
# ONNX ops that take their axes as an input (from opset 13 or 18), and which input it is.
_AXES_INPUT = {"Squeeze": 1, "Unsqueeze": 1, "Slice": 3, "ReduceSum": 1, "ReduceMean": 1, "ReduceMax": 1,
               "ReduceMin": 1, "ReduceProd": 1, "ReduceL1": 1, "ReduceL2": 1, "ReduceLogSumExp": 1,
               "ReduceSumSquare": 1}


def positive_axes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every negative axis counted from the front (a new model; the input is not changed)."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    ranks = _ranks(result)
    constants = _constants(result)
    graph = result.graph
    added: list[onnx.TensorProto] = []
    for node in graph.node:
        rank = ranks.get(node.output[0] if node.op_type in _OUTPUT_RANK else (node.input[0] if node.input else ""))
        if rank is None:
            continue
        for attribute in node.attribute:
            if attribute.name == "axis" and attribute.i < 0:
                attribute.i += rank
            elif attribute.name == "axes" and any(value < 0 for value in attribute.ints):
                values = [value % rank for value in attribute.ints]
                del attribute.ints[:]
                attribute.ints.extend(values)
        position = _AXES_INPUT.get(node.op_type)
        if position is not None and len(node.input) > position and node.input[position] in constants:
            values = constants[node.input[position]]
            if np.any(values < 0):
                name = f"{node.input[position]}/positive/{rank}"
                if name not in {tensor.name for tensor in added}:
                    added.append(numpy_helper.from_array((values % rank).astype(np.int64), name))
                node.input[position] = name
    graph.initializer.extend(added)
    return result


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """The rank of every value shape inference can see."""
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {}
    for value in (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info):
        if value.type.tensor_type.HasField("shape"):
            ranks[value.name] = len(value.type.tensor_type.shape.dim)
    for tensor in model.graph.initializer:
        ranks[tensor.name] = len(tensor.dims)
    return ranks


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Integer constants: initializers and Constant nodes."""
    found = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    found[node.output[0]] = numpy_helper.to_array(attribute.t)
    return {name: value for name, value in found.items() if value.dtype.kind == "i"}

