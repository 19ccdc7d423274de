"""ONNX files without implicit broadcasting, for runtimes whose elementwise kernels need equal shapes.

The IR's own elementwise ops are made explicit by a pass (`poseir.passes.explicit_broadcast`);
lowerings that decompose an op (a standard deviation, a batch norm at an old opset) may still
broadcast inside. This rewrites the file: every operand of a broadcasting ONNX op whose shape is
not the result's is unsqueezed to the result's rank and expanded to its shape — to a constant
shape when the sizes are numbers, else to the `Shape` of an operand that already has the result's
shape. It knows ONNX's conventions, not poseir's ops. A rank-0 operand stays a scalar.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

BROADCASTING = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "Equal", "Less", "Greater",
                "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where", "PRelu", "Sum", "Mean", "BitShift"}


def explicit_broadcast(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every implicit broadcast spelled out (a new model; the input is not changed)."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    shapes = _shapes(result)
    graph = result.graph
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type in BROADCASTING:
            nodes.extend(_spelled_out(node, shapes, initializers))
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    return result


def _shapes(model: onnx.ModelProto) -> dict[str, list]:
    """Every value's dims (ints, dim_param names, or None when unknown), from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    found = {}
    for value in (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info):
        if value.type.tensor_type.HasField("shape"):
            found[value.name] = [dim.dim_value if dim.HasField("dim_value") else
                                 dim.dim_param if dim.HasField("dim_param") else None
                                 for dim in value.type.tensor_type.shape.dim]
    for tensor in model.graph.initializer:
        found[tensor.name] = list(tensor.dims)
    return found


def _spelled_out(node: onnx.NodeProto, shapes: dict, initializers: list) -> list[onnx.NodeProto]:
    """Unsqueeze and Expand nodes for the node's broadcast operands; the node then reads them."""
    operands = [(index, name, shapes.get(name)) for index, name in enumerate(node.input) if name]
    known = [(index, name, shape) for index, name, shape in operands if shape is not None and len(shape) > 0]
    if len(known) < 2 or any(shape is None for _, _, shape in operands):
        return []
    rank = max(len(shape) for _, _, shape in known)
    result = [max((shape[axis - (rank - len(shape))] for _, _, shape in known
                   if axis - (rank - len(shape)) >= 0), key=lambda dim: (dim != 1, str(dim))) for axis in range(rank)]
    if all(len(shape) == rank and shape == result for _, _, shape in known):
        return []
    added: list[onnx.NodeProto] = []
    target = _target(node, known, result, rank, initializers, added)
    for index, name, shape in known:
        if len(shape) == rank and shape == result:
            continue
        current = name
        if len(shape) < rank:
            axes = _constant(f"{node.name}/broadcast_axes_{index}", np.arange(rank - len(shape)), initializers)
            current = _node(added, "Unsqueeze", [current, axes], f"{node.name}/broadcast_unsqueeze_{index}")
        node.input[index] = _node(added, "Expand", [current, target], f"{node.name}/broadcast_expand_{index}")
    return added


def _target(node, known, result: list, rank: int, initializers: list, added: list) -> str:
    """The result's shape as a tensor: a constant, or the Shape of an operand that has it."""
    if all(isinstance(dim, int) and dim > 0 for dim in result):
        return _constant(f"{node.name}/broadcast_shape", np.array(result), initializers)
    full = next((name for _, name, shape in known if len(shape) == rank and shape == result), None)
    if full is not None:
        return _node(added, "Shape", [full], f"{node.name}/broadcast_shape")
    shapes = [_node(added, "Shape", [name], f"{node.name}/broadcast_shape_{index}") for index, name, shape in known
              if len(shape) == rank]
    return _node(added, "Max", shapes, f"{node.name}/broadcast_shape") if len(shapes) > 1 else shapes[0]


def _constant(name: str, values: np.ndarray, initializers: list) -> str:
    """An int64 initializer."""
    initializers.append(numpy_helper.from_array(values.astype(np.int64), name))
    return name


def _node(added: list, op_type: str, inputs: list[str], name: str) -> str:
    """Append a node whose one output is named after it; returns that output."""
    added.append(helper.make_node(op_type, inputs, [name], name=name))
    return name
