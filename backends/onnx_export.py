"""Lower a poseir graph to an ONNX model through each op's `onnx` facet; save it deterministically.

The driver knows no op: it walks the graph, hands every node to its registry entry's `onnx`
facet with a `LoweringContext`, names the facet's results after the poseir values, and adds the
graph's typed inputs, outputs and value_info (symbolic dims become `dim_param` names such as
`B` and `T-242`), the weights as initializers named by their `state_dict` keys, and metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from poseir.backends.onnx_context import ONNX_DTYPES, LoweringContext, export_error
from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.ir.graph import Graph, Node, TensorType
from poseir.ops.registry import lookup, with_defaults
from poseir.passes.fold_parameters import fold_parameters
from poseir.ir.graph import NUMPY_DTYPES

DEFAULT_OPSET = 17
MIN_OPSET = 13
MAX_OPSET = 23
# The oldest IR version each opset needs, so the file loads in as many runtimes as possible.
_IR_VERSIONS = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11}
# Protobuf cannot serialize a message of 2 GiB or more; leave room for the graph itself.
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**26


def export(graph: Graph, weights: dict[str, np.ndarray] | None = None, opset: int = DEFAULT_OPSET,
           path: str | None = None, *, seed: int = 0, options=None) -> onnx.ModelProto:
    """The ONNX model of `graph` (weights by state_dict key, seeded init when None); saved when `path` is given.

    `options` (`poseir.passes.legalize.ExportOptions`) are what a target profile asks of the file:
    Reshape targets without placeholders, no negative axes.
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise export_error(f"opset {opset} is not supported", None,
                           helps=(f"choose an opset from {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})",))
    if weights is None:
        from poseir.weights.init import initialize

        weights = initialize(graph.parameters, seed)
    # Nodes that read only weights (batch norm folded into a convolution) become weights themselves.
    graph, weights = fold_parameters(graph, weights)
    context = LoweringContext(graph, opset, graph.mode, explicit_shapes=bool(options and options.explicit_shapes))
    for node in graph.nodes:
        _lower(context, node)
    model = _model(graph, context, _initializers(graph, weights, context), opset)
    if options is not None and options.explicit_broadcast:
        from poseir.backends.onnx_broadcast import explicit_broadcast

        model = explicit_broadcast(model)
    if options is not None and options.positive_axes:
        from poseir.backends.onnx_axes import positive_axes

        model = positive_axes(model)
    if path is not None:
        save(model, path)
    return model


def _lower(context: LoweringContext, node: Node) -> None:
    """Run one node's facet and give its results the poseir value names."""
    op = lookup(node.op)
    if op is None or op.onnx is None:
        raise export_error(f"the op `{node.op}` has no ONNX lowering", node.span)
    context.begin(node)
    start = len(context.emitted.nodes)
    results = op.onnx(context, list(node.inputs), with_defaults(op, node.attributes))
    results = [results] if isinstance(results, str) else list(results)
    if len(results) != len(node.outputs):
        raise AssertionError(f"internal compiler error: the onnx facet of {node.op} returned {len(results)} "
                             f"outputs for {len(node.outputs)}")
    for result, wanted in zip(results, node.outputs):
        _bind(context, start, result, wanted)


def _bind(context: LoweringContext, start: int, result: str, wanted: str) -> None:
    """Rename the facet's own result to the poseir name, or copy a shared value with Identity."""
    if result == wanted:
        return
    nodes = context.emitted.nodes
    produced = any(result in proto.output for proto in nodes[start:])
    if not produced or context.is_helper(result) or _is_graph_value(context.graph, result):
        nodes.append(_identity(context, result, wanted))
        return
    for proto in nodes[start:]:
        _rename(proto.input, result, wanted)
        _rename(proto.output, result, wanted)


def _identity(context: LoweringContext, source: str, target: str) -> onnx.NodeProto:
    """An Identity node giving `source` the name `target`."""
    context.node("Identity", [source])
    proto = context.emitted.nodes.pop()
    proto.output[0] = target
    return proto


def _is_graph_value(graph: Graph, name: str) -> bool:
    """Whether `name` is a poseir value (input, parameter or another node's output)."""
    return name in graph.values or name in graph.parameter_table()


def _rename(names, old: str, new: str) -> None:
    """Replace `old` by `new` in a repeated string field."""
    for index, name in enumerate(names):
        if name == old:
            names[index] = new


# --------------------------------------------------------------------------- the model


def value_info(name: str, type_: TensorType) -> onnx.ValueInfoProto:
    """A typed value: constant dims as dim_value, symbolic ones as dim_param (`T-242`)."""
    dims = [dim.value if dim.is_const else dim.to_dim_param() for dim in type_.shape]
    return helper.make_tensor_value_info(name, ONNX_DTYPES[type_.dtype], dims)


def _initializers(graph: Graph, weights: dict, context: LoweringContext) -> list[onnx.TensorProto]:
    """Every parameter some node reads, in declaration order, then the lowering's constants."""
    used = {name for proto in context.emitted.nodes for name in proto.input}
    tensors = []
    for parameter in graph.parameters:
        if parameter.name not in used:
            continue  # e.g. num_batches_tracked: kept out so runtimes do not warn about dead weights
        if parameter.name not in weights:
            raise DiagnosticError(Diagnostic.make("E400", f"the weights have no `{parameter.name}`", parameter.span))
        array = np.asarray(weights[parameter.name]).astype(NUMPY_DTYPES[parameter.type.dtype], copy=False)
        if tuple(array.shape) != parameter.shape:
            raise export_error(f"`{parameter.name}` has shape {tuple(array.shape)} in the weights, "
                               f"{parameter.shape} in the model", parameter.span)
        tensors.append(numpy_helper.from_array(np.require(array, requirements="C"), parameter.name))
    return tensors + context.emitted.constants


def _model(graph: Graph, context: LoweringContext, initializers, opset: int) -> onnx.ModelProto:
    """Assemble the GraphProto and ModelProto with types, value_info and metadata."""
    outputs = {value.name for value in graph.outputs}
    inputs = {value.name for value in graph.inputs}
    infos = [value_info(name, graph.values[name].type) for node in graph.nodes for name in node.outputs
             if name not in outputs and name not in inputs]
    infos += [value_info(name, type_) for name, type_ in context.emitted.helper_types.items()]
    graph_proto = helper.make_graph(
        context.emitted.nodes, graph.name,
        [value_info(value.name, value.type) for value in graph.inputs],
        [value_info(value.name, value.type) for value in graph.outputs],
        initializer=initializers, value_info=infos,
        doc_string=f"poseir {graph.mode} graph of `{graph.name}`")
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="poseir", producer_version=poseir_version())
    model.ir_version = _IR_VERSIONS[opset]
    helper.set_model_props(model, _metadata(graph))
    return model


def _metadata(graph: Graph) -> dict[str, str]:
    """What the file came from: poseir's version, the model, the flow and the `.pose` file."""
    return {
        "poseir.version": poseir_version(),
        "poseir.model": graph.name,
        "poseir.mode": graph.mode,
        "poseir.source": source_path(graph),
        "poseir.symbols": ",".join(name for name, _ in graph.symbols),
    }


def source_path(graph: Graph) -> str:
    """The `.pose` file the graph was elaborated from (as the user named it)."""
    for value in graph.inputs:
        if value.span.is_known:
            return value.span.path
    for node in graph.nodes:
        if node.span.is_known:
            return node.span.path
    return ""


def poseir_version() -> str:
    """poseir's installed version (fixed per release, so files stay byte-identical)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("poseir")
    except PackageNotFoundError:
        return "0+unknown"


# --------------------------------------------------------------------------- saving


def save(model: onnx.ModelProto, path: str, *, external_threshold: int = EXTERNAL_DATA_THRESHOLD) -> list[str]:
    """Write the model; over `external_threshold` bytes of weights they go to `<path>.data`. Returns the files."""
    path = str(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if _weight_bytes(model) <= external_threshold:
        Path(path).write_bytes(model.SerializeToString())
        return [path]
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # converting to external data rewrites the tensors in place
    location = Path(path).name + ".data"
    data = Path(path).with_name(location)
    if data.exists():
        data.unlink()  # onnx appends to an existing data file
    onnx.save_model(copy, path, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=1024, convert_attribute=False)
    return [path, str(data)]


def _weight_bytes(model: onnx.ModelProto) -> int:
    """Total size of the initializer payloads."""
    return sum(len(tensor.raw_data) or tensor.ByteSize() for tensor in model.graph.initializer)


# --------------------------------------------------------------------------- from a .pose file


def compile_file(path: str, *, model: str | None = None, mode: str = "infer", overrides: dict | None = None,
                 weights: dict | None = None, opset: int = DEFAULT_OPSET, seed: int = 0):
    """Build and export one model of a `.pose` file: (ModelProto or None, Compilation)."""
    from poseir.compiler import build

    graph, result = build(path, model=model, mode=mode, overrides=overrides)
    if graph is None:
        return None, result
    return export(graph, weights, opset, seed=seed), result

