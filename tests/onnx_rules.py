"""An independent oracle for target-profile rules: reads an ONNX model and lists what breaks them.

It judges what poseir's legalization produced, so it shares nothing with it: it never imports
poseir and reads only the ONNX file, through the `onnx` package (`shape_inference` for the
ranks and shapes of every value, `numpy_helper` and `reference` for constant values, `defs`
for each operator's inputs at the model's opset).

Shapes. ONNX shape inference runs twice, strictly and with data propagation:

- on a copy without the file's intermediate `value_info`, so every rank is ONNX's own and
  never the exporter's bookkeeping; a value whose rank ONNX cannot infer is reported by the
  rules that need it, never passed;
- on the file as written, which checks its `value_info` against everything ONNX derives (a
  conflict is reported as `[shape inference]`). A size that ONNX alone cannot derive (it names
  it `unk__N`) is then taken from the file's own declaration, so `explicit_broadcast` can see
  that two `T-8` axes are the same on a graph with symbolic dims. `innermost_nonunit` never
  uses declared sizes: it only accepts a 1 that ONNX derives itself.

Constants. A value is *literal* when it is a non-overridable initializer or a `Constant`
output (`static` demands literals: anything else is size arithmetic at run time). The other
rules read *values*: literals, or a subgraph with no graph input below it, evaluated with
`onnx.reference` (so `Neg(1)` feeding a reshape is seen as the -1 it is). A value the checker
cannot obtain where a rule needs one is a violation, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import defs, helper, numpy_helper, shape_inference

# A shape is a tuple of dims: an int (a size), a str (a dim_param) or None (unknown).
NOT_A_TENSOR = "not a tensor"  # a sequence, map or optional: rank rules do not apply

BROADCASTING_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "Sum", "Mean", "PRelu", "Where",
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor",
    "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "StringConcat",
})
MATMUL_OPERANDS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
# Inputs (by their name in the operator schema) that fix a size or an axis; `static` wants literals.
SIZE_INPUTS = {
    "Reshape": ("shape",), "Expand": ("shape",), "Tile": ("repeats",), "ConstantOfShape": ("input",),
    "Range": ("start", "limit", "delta"), "Slice": ("starts", "ends", "axes", "steps"),
    "Squeeze": ("axes",), "Unsqueeze": ("axes",), "Pad": ("pads", "axes"), "Split": ("split",),
    "TopK": ("K",), "OneHot": ("depth",), "Resize": ("scales", "sizes"), "Upsample": ("scales",),
    "CenterCropPad": ("shape",),
}
# Where the values of a reshape target flow through unchanged (input positions; None = all).
PASS_THROUGH = {
    "Concat": None, "Identity": (0,), "Cast": (0,), "CastLike": (0,), "Squeeze": (0,),
    "Unsqueeze": (0,), "Reshape": (0,), "Flatten": (0,), "Expand": (0,), "Tile": (0,),
    "Slice": (0,), "Gather": (0,), "GatherElements": (0,), "GatherND": (0,), "Transpose": (0,),
    "Where": (1, 2),
}
NOT_FOLDABLE = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
    "Multinomial", "If", "Loop", "Scan",
})
FOLD_LIMIT = 256  # nodes evaluated to obtain one value


# --------------------------------------------------------------------------- the model's view


def _graphs_of(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            yield attribute.g
        elif attribute.type == onnx.AttributeProto.GRAPHS:
            yield from attribute.graphs


def _all_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for subgraph in _graphs_of(node):
            yield from _all_graphs(subgraph)


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for subgraph in _graphs_of(node):
            yield from _all_nodes(subgraph)


def _shape_of(type_proto: onnx.TypeProto):
    """The dims of a type, None when ONNX does not know the rank, NOT_A_TENSOR for sequences."""
    kind = type_proto.WhichOneof("value")
    if kind is None:
        return None
    if kind not in ("tensor_type", "sparse_tensor_type"):
        return NOT_A_TENSOR
    tensor = getattr(type_proto, kind)
    if not tensor.HasField("shape"):
        return None
    return tuple(dim.dim_value if dim.HasField("dim_value") else dim.dim_param if dim.HasField("dim_param")
                 else None for dim in tensor.shape.dim)


def _types_of(model: onnx.ModelProto) -> dict[str, object]:
    shapes = {}
    for graph in _all_graphs(model.graph):
        for info in [*graph.value_info, *graph.input, *graph.output]:
            shapes[info.name] = _shape_of(info.type)
    return shapes


def _derived(dim) -> bool:
    """A size ONNX states: a number or a dim_param, not one of the `unk__N` it makes up."""
    return isinstance(dim, int) or (isinstance(dim, str) and not dim.startswith("unk__"))


def _infer(model: onnx.ModelProto, what: str, problems: list[str]) -> dict[str, object]:
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError) as error:
        problems.append(f"[shape inference] ONNX shape inference rejects {what}: {str(error).strip()}")
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    return _types_of(inferred)


def _for_inference(model: onnx.ModelProto, *, declarations: bool) -> onnx.ModelProto:
    """The model as shape inference needs it: large float weights become typed graph inputs
    (their values never decide a shape, and copying them twice per check is slow); without
    `declarations`, no intermediate value_info, so every shape is ONNX's own."""
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph = light.graph
    graph.name = model.graph.name
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    graph.sparse_initializer.extend(model.graph.sparse_initializer)
    if declarations:
        graph.value_info.extend(model.graph.value_info)
    else:
        for subgraph in _all_graphs(graph):
            del subgraph.value_info[:]
    inputs = {info.name for info in graph.input}
    for tensor in model.graph.initializer:
        integral = tensor.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        if integral or int(np.prod(tensor.dims)) <= 64:
            graph.initializer.append(tensor)
        elif tensor.name not in inputs:
            graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    return light


def format_shape(shape) -> str:
    """`[B, 81, 17, 2]`, `?` for an unknown size, `rank unknown` when there is no shape at all."""
    if shape is None:
        return "(rank unknown)"
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


class ModelView:
    """Everything the rules read of one model: nodes, producers, constants, shapes, schemas."""

    def __init__(self, model: onnx.ModelProto, *, shapes: bool):
        self.model = model
        self.opset = self._default_opset(model)
        self.nodes = list(_all_nodes(model.graph))
        self.index = {id(node): position for position, node in enumerate(self.nodes)}
        self.producer = {name: node for node in self.nodes for name in node.output if name}
        graphs = list(_all_graphs(model.graph))
        self.initializers = {tensor.name: tensor for graph in graphs for tensor in graph.initializer}
        self.input_names = {info.name for graph in graphs for info in graph.input}
        self.subgraph_input_names = {info.name for graph in graphs[1:] for info in graph.input}
        # From IR 4 on, an initializer that is also a graph input is only a default: not a constant.
        self.overridable = self.input_names if model.ir_version >= 4 else set()
        self._schemas: dict[str, object] = {}
        self._values: dict[str, np.ndarray | None] = {}
        self.problems: list[str] = []
        self.shapes: dict[str, object] = {}
        self.derived: dict[str, object] = {}
        if shapes:
            self._infer_shapes()

    @staticmethod
    def _default_opset(model: onnx.ModelProto) -> int:
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                return opset.version
        raise ValueError("the model imports no version of the default ONNX domain")

    def _infer_shapes(self) -> None:
        own = _infer(_for_inference(self.model, declarations=False), "the model", self.problems)
        has_declarations = any(len(graph.value_info) for graph in _all_graphs(self.model.graph))
        declared = {}
        if has_declarations:
            declared = _infer(_for_inference(self.model, declarations=True), "the file's value_info", self.problems)
        for name, tensor in self.initializers.items():
            own[name] = tuple(tensor.dims)
        for name, shape in own.items():
            self.derived[name] = shape
            self.shapes[name] = self._merge(name, shape, declared.get(name))

    def _merge(self, name: str, own, declared):
        if own is None or own is NOT_A_TENSOR or declared is None or declared is NOT_A_TENSOR:
            return own
        if len(declared) != len(own):
            self.problems.append(f"[shape inference] {self.where(name)}: the file's value_info declares "
                                 f"{format_shape(declared)}, ONNX infers {format_shape(own)}")
            return own
        return tuple(mine if _derived(mine) or not _derived(theirs) else theirs
                     for mine, theirs in zip(own, declared))

    # -- naming

    def label(self, node: onnx.NodeProto) -> str:
        """`node 'name' (Op, doc_string)`: what a message names."""
        name = node.name or f"<unnamed #{self.index[id(node)]}>"
        details = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if node.doc_string:
            details += f", {node.doc_string}"
        return f"node '{name}' ({details})"

    def where(self, name: str) -> str:
        """The value named for a message: by the node that makes it, or as an input/initializer."""
        if name in self.producer:
            return f"{self.label(self.producer[name])} output '{name}'"
        if name in self.subgraph_input_names:
            return f"subgraph input '{name}'"
        if name in self.input_names:
            return f"graph input '{name}'"
        if name in self.initializers:
            return f"initializer '{name}'"
        return f"value '{name}'"

    def tensors(self) -> Iterator[str]:
        """Every value once: graph inputs, initializers, node outputs (subgraphs included)."""
        seen = set()
        names = [*(info.name for graph in _all_graphs(self.model.graph) for info in graph.input),
                 *self.initializers, *(name for node in self.nodes for name in node.output)]
        for name in names:
            if name and name not in seen:
                seen.add(name)
                yield name

    # -- operators

    def standard(self, node: onnx.NodeProto) -> bool:
        return node.domain in ("", "ai.onnx")

    def schema(self, node: onnx.NodeProto):
        """The node's operator schema at the model's opset, or None for other domains and unknown ops."""
        if not self.standard(node):
            return None
        if node.op_type not in self._schemas:
            try:
                self._schemas[node.op_type] = defs.get_schema(node.op_type, self.opset, "")
            except defs.SchemaError:
                self._schemas[node.op_type] = None
        return self._schemas[node.op_type]

    def since(self, node: onnx.NodeProto) -> int:
        schema = self.schema(node)
        return schema.since_version if schema is not None else self.opset

    def input_named(self, node: onnx.NodeProto, formal: str) -> str | None:
        """The value bound to the schema input called `formal`, None when absent or not in this version."""
        schema = self.schema(node)
        if schema is None:
            return None
        for position, parameter in enumerate(schema.inputs):
            if parameter.name == formal:
                return node.input[position] if position < len(node.input) and node.input[position] else None
        return None

    # -- constants

    def is_literal(self, name: str) -> bool:
        """A non-overridable initializer or the output of a Constant node."""
        if name in self.initializers and name not in self.overridable:
            return True
        node = self.producer.get(name)
        return node is not None and node.op_type == "Constant" and self.standard(node)

    def value(self, name: str) -> np.ndarray | None:
        """The value of a literal or of a subgraph with no graph input below it; None otherwise."""
        if name not in self._values:
            try:
                self._values[name] = self._fold(name)
            except Exception:  # an op the reference evaluator cannot run: not a known value
                self._values[name] = None
        return self._values[name]

    def _fold(self, name: str) -> np.ndarray | None:
        if name in self.initializers and name not in self.overridable:
            return numpy_helper.to_array(self.initializers[name])
        if name in self.input_names or name not in self.producer:
            return None
        node = self.producer[name]
        if node.op_type == "Constant" and self.standard(node):
            return _constant_attribute(node)
        needed = self._ancestors(name)
        if needed is None:
            return None
        nodes = [self.nodes[position] for position in sorted(self.index[id(node)] for node in needed)]
        used = {value for node in nodes for value in node.input}
        graph = helper.make_graph(nodes, "fold", [], [helper.make_value_info(name, onnx.TypeProto())],
                                  [self.initializers[value] for value in sorted(used & self.initializers.keys())])
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import), ir_version=self.model.ir_version)
        from onnx.reference import ReferenceEvaluator  # imported when first needed: it loads every op

        return np.asarray(ReferenceEvaluator(model).run(None, {})[0])

    def _ancestors(self, name: str) -> list[onnx.NodeProto] | None:
        """The nodes computing `name` when none of them reads a graph input; None otherwise."""
        found: dict[int, onnx.NodeProto] = {}
        pending = [name]
        while pending:
            value = pending.pop()
            if not value or (value in self.initializers and value not in self.overridable):
                continue
            node = self.producer.get(value)
            if node is None or value in self.input_names:
                return None
            if id(node) in found:
                continue
            if not self.standard(node) or node.op_type in NOT_FOLDABLE or any(_graphs_of(node)):
                return None
            found[id(node)] = node
            if len(found) > FOLD_LIMIT:
                return None
            pending.extend(node.input)
        return list(found.values())


def _constant_attribute(node: onnx.NodeProto) -> np.ndarray | None:
    for attribute in node.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
        if attribute.name == "value_int":
            return np.array(attribute.i, dtype=np.int64)
        if attribute.name == "value_ints":
            return np.array(list(attribute.ints), dtype=np.int64)
        if attribute.name == "value_float":
            return np.array(attribute.f, dtype=np.float32)
        if attribute.name == "value_floats":
            return np.array(list(attribute.floats), dtype=np.float32)
    return None  # sparse or string constants: no numeric value to judge


def _listed(values) -> str:
    return "[" + ", ".join(str(value) for value in np.asarray(values).reshape(-1).tolist()) + "]"


# --------------------------------------------------------------------------- the rules


def _max_rank(view: ModelView, limit: int) -> Iterator[str]:
    for name in view.tensors():
        shape = view.shapes.get(name)
        if shape is NOT_A_TENSOR:
            continue
        if shape is None:
            yield f"{view.where(name)}: ONNX shape inference cannot determine its rank, so it may exceed {limit}"
        elif len(shape) > limit:
            yield f"{view.where(name)} has rank {len(shape)} > {limit}: {format_shape(shape)}"


def _max_matmul_rank(view: ModelView, limit: int) -> Iterator[str]:
    for node in view.nodes:
        if not view.standard(node):
            continue
        if node.op_type == "Gemm":
            if limit < 2:
                yield f"{view.label(node)}: Gemm multiplies rank-2 matrices, above {limit}"
            continue
        for position in MATMUL_OPERANDS.get(node.op_type, ()):
            operand = node.input[position] if position < len(node.input) else ""
            shape = view.shapes.get(operand)
            if shape is None or shape is NOT_A_TENSOR:
                yield f"{view.label(node)}: the rank of input '{operand}' is unknown, so it may exceed {limit}"
            elif len(shape) > limit:
                yield (f"{view.label(node)}: input '{operand}' has rank {len(shape)} > {limit}: "
                       f"{format_shape(shape)}")


def _same_dim(left, right) -> bool:
    return left is not None and left == right


def _explicit_broadcast(view: ModelView, required: bool) -> Iterator[str]:
    # A rank-0 operand is allowed: every runtime applies a scalar to a tensor of any shape.
    for node in view.nodes:
        if not view.standard(node) or node.op_type not in BROADCASTING_OPS:
            continue
        operands = [name for name in node.input if name]
        shapes = [view.shapes.get(name) for name in operands]
        listing = ", ".join(f"'{name}' {format_shape(shape)}" for name, shape in zip(operands, shapes))
        if any(shape is None or shape is NOT_A_TENSOR for shape in shapes):
            yield f"{view.label(node)}: an input's rank is unknown, so broadcasting cannot be ruled out: {listing}"
            continue
        tensors = [shape for shape in shapes if len(shape) > 0]
        first = tensors[0] if tensors else ()
        if any(len(shape) != len(first) or not all(map(_same_dim, shape, first)) for shape in tensors[1:]):
            yield f"{view.label(node)} broadcasts implicitly: inputs {listing}"


def _negative_axes(view: ModelView, allowed: bool) -> Iterator[str]:
    for node in view.nodes:
        for attribute in node.attribute:
            if attribute.name != "perm" and not attribute.name.endswith(("axis", "axes")):
                continue
            if attribute.type not in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS):
                continue
            values = np.asarray(helper.get_attribute_value(attribute))
            if (values < 0).any():
                yield f"{view.label(node)}: attribute {attribute.name}={_listed(values)} has a negative axis"
        for formal in ("axes", "axis"):
            operand = view.input_named(node, formal)
            if operand is None:
                continue
            values = view.value(operand)
            if values is None:
                yield (f"{view.label(node)}: its {formal} input '{operand}' is computed at run time, "
                       f"so negative axes cannot be ruled out")
            elif (values < 0).any():
                yield f"{view.label(node)}: its {formal} input '{operand}' = {_listed(values)} has a negative axis"


def _pieces(view: ModelView, name: str, seen: set[str]) -> Iterator[tuple[str, np.ndarray]]:
    """The known values that flow unchanged into `name` (the whole of it when it is known)."""
    if not name or name in seen:
        return
    seen.add(name)
    values = view.value(name)
    if values is not None:
        yield name, values
        return
    node = view.producer.get(name)
    if node is None or not view.standard(node) or node.op_type not in PASS_THROUGH:
        return
    positions = PASS_THROUGH[node.op_type]
    for position, operand in enumerate(node.input):
        if positions is None or position in positions:
            yield from _pieces(view, operand, seen)


def _reshape_placeholders(view: ModelView, allowed: bool) -> Iterator[str]:
    for node in view.nodes:
        if not view.standard(node) or node.op_type != "Reshape" or len(node.input) < 2:
            continue
        target = node.input[1]
        for piece, values in _pieces(view, target, set()):
            if (np.asarray(values) <= 0).any():
                source = f"its shape '{target}'" if piece == target else f"the piece '{piece}' of its shape '{target}'"
                yield f"{view.label(node)}: {source} = {_listed(values)} holds a -1 or 0 placeholder"


def _stepped_slices(view: ModelView, allowed: bool) -> Iterator[str]:
    for node in view.nodes:
        if node.op_type != "Slice":
            continue
        steps = view.input_named(node, "steps")
        if steps is None:
            continue
        values = view.value(steps)
        if values is None:
            yield f"{view.label(node)}: its steps '{steps}' are computed at run time, so a step above 1 cannot be ruled out"
        elif (values != 1).any():
            yield f"{view.label(node)}: steps '{steps}' = {_listed(values)}"


def _static(view: ModelView, required: bool) -> Iterator[str]:
    for node in view.nodes:
        if not view.standard(node):
            continue
        if node.op_type in ("Shape", "Size"):
            yield f"{view.label(node)} reads a size at run time"
        formals = ("axes",) if node.op_type.startswith("Reduce") else SIZE_INPUTS.get(node.op_type, ())
        for formal in formals:
            operand = view.input_named(node, formal)
            if operand is not None and not view.is_literal(operand):
                maker = view.producer.get(operand)
                origin = f"made by {view.label(maker)}" if maker is not None else "a graph input"
                yield f"{view.label(node)}: its {formal} input '{operand}' is not a constant ({origin})"
    graph = view.model.graph
    for kind, infos in (("input", graph.input), ("output", graph.output)):
        for info in infos:
            shape = _shape_of(info.type)
            if shape is NOT_A_TENSOR:
                yield f"graph {kind} '{info.name}' is not a tensor"
            elif shape is None or not all(isinstance(dim, int) for dim in shape):
                yield f"graph {kind} '{info.name}' has non-numeric dims: {format_shape(shape)}"


def _innermost_nonunit(view: ModelView, innermost: int) -> Iterator[str]:
    # Only sizes ONNX derives count: a 1 declared by the file but not inferred is not trusted.
    for name in view.tensors():
        shape = view.derived.get(name)
        if shape is NOT_A_TENSOR:
            continue
        if shape is None:
            yield f"{view.where(name)}: ONNX shape inference cannot determine its rank"
            continue
        outer = [(axis, dim) for axis, dim in enumerate(shape[:max(len(shape) - innermost, 0)]) if dim != 1]
        if outer:
            axes = ", ".join(f"axis {axis} is {'unknown' if dim is None else dim}" for axis, dim in outer)
            yield (f"{view.where(name)} {format_shape(shape)}: only the innermost {innermost} axes may "
                   f"differ from 1, but {axes}")


def _attribute(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _reduced_axes(view: ModelView, node: onnx.NodeProto, rank: int):
    """The axes `node` reduces over (negative ones normalized), a reason string when unknown,
    or None when the node reduces nothing."""
    op = node.op_type
    if op.startswith("Reduce"):
        if any(parameter.name == "axes" for parameter in view.schema(node).inputs):
            operand = view.input_named(node, "axes")
            values = np.zeros(0, np.int64) if operand is None else view.value(operand)
            if values is None:
                return f"its axes '{operand}' are computed at run time"
            axes = values.reshape(-1).tolist()
            if not axes and _attribute(node, "noop_with_empty_axes", 0):
                return None
        else:
            axes = list(_attribute(node, "axes", []))
        return set(range(rank)) if not axes else {axis % rank for axis in axes}
    if op in ("ArgMax", "ArgMin"):
        return {_attribute(node, "axis", 0) % rank}
    if op in ("Softmax", "LogSoftmax", "Hardmax"):
        if view.since(node) < 13:  # the input is seen as 2-D: [axes before axis, axis and after]
            return set(range(_attribute(node, "axis", 1) % rank, rank))
        return {_attribute(node, "axis", -1) % rank}
    if op in ("LayerNormalization", "RMSNormalization"):
        return set(range(_attribute(node, "axis", -1) % rank, rank))
    if op == "LpNormalization":
        return {_attribute(node, "axis", -1) % rank}
    if op == "MeanVarianceNormalization":
        return {axis % rank for axis in _attribute(node, "axes", [0, 2, 3])}
    if op == "BatchNormalization":
        if view.since(node) >= 14:
            training = _attribute(node, "training_mode", 0)
        else:
            training = sum(1 for name in node.output if name) > 1
        return set(range(rank)) - {1} if training else None
    return None


REDUCING_OPS = frozenset({
    "ArgMax", "ArgMin", "Softmax", "LogSoftmax", "Hardmax", "LayerNormalization", "RMSNormalization",
    "LpNormalization", "MeanVarianceNormalization", "BatchNormalization",
})


def _batch_reduction(view: ModelView, allowed: bool) -> Iterator[str]:
    for node in view.nodes:
        if view.schema(node) is None or not (node.op_type.startswith("Reduce") or node.op_type in REDUCING_OPS):
            continue
        data = node.input[0] if node.input else ""
        shape = view.shapes.get(data)
        if shape is None or shape is NOT_A_TENSOR:
            yield f"{view.label(node)}: the rank of input '{data}' is unknown, so a reduction over axis 0 cannot be ruled out"
            continue
        if len(shape) < 2:
            continue
        axes = _reduced_axes(view, node, len(shape))
        keepdims = _attribute(node, "keepdims", 1)
        if isinstance(axes, str):
            yield f"{view.label(node)}: {axes}, so a reduction over axis 0 cannot be ruled out"
        elif axes is not None and 0 in axes:
            kept = f", keepdims={keepdims}" if node.op_type.startswith(("Reduce", "Arg")) else ""
            yield (f"{view.label(node)} reduces over axis 0 (the batch axis) of '{data}' {format_shape(shape)}: "
                   f"reduced axes {sorted(axes)}{kept}")


# --------------------------------------------------------------------------- the table


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _boolean(value) -> bool:
    return isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    """One profile key: its check, how its value is validated, for which values it checks
    anything, how it reads, and whether it needs shape inference."""

    check: Callable
    valid: Callable
    active: Callable
    text: Callable
    shapes: bool = False


RULES: dict[str, Rule] = {
    "max_rank": Rule(_max_rank, _integer, lambda value: True, lambda value: (
        f"no tensor (graph input, output, initializer or intermediate) has more than {value} axes; "
        "a rank ONNX shape inference cannot determine counts as a violation"), shapes=True),
    "max_matmul_rank": Rule(_max_matmul_rank, _integer, lambda value: True, lambda value: (
        f"both inputs of every MatMul (and MatMulInteger, QLinearMatMul) have rank <= {value}; "
        "Gemm counts as rank 2"), shapes=True),
    "explicit_broadcast": Rule(_explicit_broadcast, _boolean, lambda value: value, lambda value: (
        "elementwise ops with several inputs get inputs of one shape, dim by dim (equal numbers or "
        "equal dim_params); a rank-0 scalar input is allowed" if value else "implicit broadcasting allowed"),
        shapes=True),
    "negative_axes": Rule(_negative_axes, _boolean, lambda value: not value, lambda value: (
        "negative axes allowed" if value else "no negative value in any axis/axes/perm attribute "
        "nor in any axes input (which must then be known)")),
    "reshape_placeholders": Rule(_reshape_placeholders, _boolean, lambda value: not value, lambda value: (
        "reshape placeholders allowed" if value else "no -1 and no 0 in a Reshape target, nor in any "
        "known piece of a target computed at run time")),
    "stepped_slices": Rule(_stepped_slices, _boolean, lambda value: not value, lambda value: (
        "stepped slices allowed" if value else "every Slice's steps input, when present, is known and all ones")),
    "static": Rule(_static, _boolean, lambda value: value, lambda value: (
        "no Shape or Size op; every size input (Reshape/Expand shape, Tile repeats, ConstantOfShape, "
        "Range, Slice starts/ends/axes/steps, Squeeze/Unsqueeze/Reduce axes, Pad, Split, TopK, OneHot, "
        "Resize, Upsample) is a literal constant; graph inputs and outputs have numeric dims only"
        if value else "dynamic shapes allowed")),
    "innermost_nonunit": Rule(_innermost_nonunit, _integer, lambda value: True, lambda value: (
        f"every tensor of rank above {value} has size 1 (derived by ONNX) on every axis but the "
        f"innermost {value}"), shapes=True),
    "batch_reduction": Rule(_batch_reduction, _boolean, lambda value: not value, lambda value: (
        "reductions over the batch axis allowed" if value else "no Reduce*, ArgMax/ArgMin, "
        "Softmax/LogSoftmax/Hardmax, LayerNormalization, LpNormalization, MeanVarianceNormalization "
        "or training BatchNormalization reduces over axis 0 of a tensor of rank >= 2"), shapes=True),
}


def _validated(rules: dict) -> dict:
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}; supported: {sorted(RULES)}")
    for key, value in rules.items():
        if not RULES[key].valid(value):
            kind = "a boolean" if RULES[key].valid is _boolean else "a non-negative integer"
            raise TypeError(f"rule {key} takes {kind}, not {value!r}")
    return rules


def describe(rules: dict) -> str:
    """One line per rule: what it demands of the ONNX file."""
    _validated(rules)
    return "\n".join(f"{key} = {str(value).lower()}: {RULES[key].text(value)}" for key, value in rules.items())


def violations(model: onnx.ModelProto, rules: dict) -> list[str]:
    """One message per broken rule: `[rule] node 'name' (Op, .pose location): what is wrong`."""
    active = [key for key in RULES if key in _validated(rules) and RULES[key].active(rules[key])]
    view = ModelView(model, shapes=any(RULES[key].shapes for key in active))
    found = list(view.problems)
    for key in active:
        found.extend(f"[{key}] {message}" for message in RULES[key].check(view, rules[key]))
    return found
