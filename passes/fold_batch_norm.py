"""Batch-norm folding: at inference a batch norm is a per-channel affine map; fold it into the layer before it.

With running statistics, `batch_norm(x) = x * s + t` with `s = γ / sqrt(σ² + ε)` and
`t = β - μ * s`. After a convolution or linear layer whose output only the batch norm reads,
that map folds into the layer's weights (`W * s` along the output channels) and bias
(`(b - μ) * s + β`); elsewhere (SemGCN's graph convolutions) it becomes one multiply and one
add. Either way no batch norm is left. The new weights are computed by nodes that read only
parameters; the backends evaluate those once when the weights are bound
(`poseir.passes.fold_parameters`). A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from poseir.diagnostics.record import Diagnostic
from poseir.ir.dims import Dim
from poseir.ir.graph import Graph, Node
from poseir.passes.rewrite import Rewriter, consumers, output_names, permutation, producers

# Layers whose output channels a per-channel scale can move into: op -> the weight axis of the
# output channels (conv_transpose2d stores its weight as [in, out / groups, ...]).
_FOLDABLE = {"conv1d": 0, "conv2d": 0, "linear": 0, "conv_transpose2d": 1}


def fold_batch_norm(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Fold every inference batch norm into the layer before it, or into a multiply and an add."""
    if graph.mode != "infer" or not any(node.op == "batch_norm" for node in graph.nodes):
        return graph, [], False
    readers = consumers(graph)
    made_by = producers(graph)
    parameters = {parameter.name for parameter in graph.parameters}
    layers = {}
    for node in graph.nodes:
        if node.op == "batch_norm":
            layer = made_by.get(node.inputs[0])
            if _foldable(graph, layer, node, readers, parameters):
                layers[layer.outputs[0]] = node
    rewriter = Rewriter(graph)
    for node in graph.nodes:
        if node.outputs[0] in layers:
            _fold_into_layer(rewriter, node, layers[node.outputs[0]])
        elif node.op == "batch_norm" and node.inputs[0] in layers:
            continue  # folded into its layer above
        elif node.op == "batch_norm":
            _as_affine(rewriter, node, made_by)
        else:
            rewriter.keep(node)
    return rewriter.finish(), [], True


def _foldable(graph: Graph, layer: Node | None, norm: Node, readers: dict, parameters: set) -> bool:
    """A conv/linear with parameter weights (and bias), whose output only this batch norm reads."""
    if layer is None or layer.op not in _FOLDABLE or len(readers.get(layer.outputs[0], [])) != 1:
        return False
    if layer.outputs[0] in output_names(graph):
        return False
    if layer.op == "conv_transpose2d" and layer.attr("groups", 1) != 1:
        return False
    bias = layer.inputs[2] if len(layer.inputs) > 2 else ""
    return layer.inputs[1] in parameters and (not bias or bias in parameters)


def _scale_and_shift(rewriter: Rewriter, norm: Node) -> tuple[str, str]:
    """`s = γ / sqrt(σ² + ε)` and `t = β - μ * s`, as parameter-only nodes (γ, β optional)."""
    _, weight, bias, mean, variance = (list(norm.inputs) + ["", "", "", "", ""])[:5]
    span, scope = norm.span, norm.scope
    dtype = rewriter.type_of(variance).dtype
    eps = rewriter.add("constant", [], {"value": float(norm.attr("eps", 1e-5)), "dtype": dtype}, span, scope)[0]
    root = rewriter.add("sqrt", rewriter.add("add", [variance, eps], {}, span, scope), {}, span, scope)[0]
    if weight:
        scale = rewriter.add("div", [weight, root], {}, span, scope)[0]
    else:
        one = rewriter.add("constant", [], {"value": 1.0, "dtype": dtype}, span, scope)[0]
        scale = rewriter.add("div", [one, root], {}, span, scope)[0]
    shifted = rewriter.add("mul", [mean, scale], {}, span, scope)[0]
    if bias:
        shift = rewriter.add("sub", [bias, shifted], {}, span, scope)[0]
    else:
        shift = rewriter.add("neg", [shifted], {}, span, scope)[0]
    return scale, shift


def _fold_into_layer(rewriter: Rewriter, layer: Node, norm: Node) -> None:
    """The layer with weights scaled per output channel and the shift in its bias; it makes the norm's output."""
    scale, shift = _scale_and_shift(rewriter, norm)
    span, scope = norm.span, norm.scope
    weight, bias = layer.inputs[1], layer.inputs[2] if len(layer.inputs) > 2 else ""
    weight_type = rewriter.type_of(weight)
    axis = _FOLDABLE[layer.op]
    shape = [Dim.of(1)] * weight_type.rank
    shape[axis] = weight_type.shape[axis]
    column = rewriter.add("reshape", [scale], {"shape": tuple(shape)}, span, scope)[0]
    scaled = rewriter.add("mul", [weight, column], {}, span, scope)[0]
    if bias:
        moved = rewriter.add("mul", [bias, scale], {}, span, scope)[0]
        new_bias = rewriter.add("add", [moved, shift], {}, span, scope)[0]
    else:
        new_bias = shift
    inputs = [layer.inputs[0], scaled, new_bias]
    rewriter.add(layer.op, inputs, layer.attributes, layer.span, layer.scope, outputs=norm.outputs)


def _as_affine(rewriter: Rewriter, norm: Node, made_by: dict) -> None:
    """`x * s + t` with `s` and `t` shaped to broadcast along the channels.

    When `x` is a permute of `z` (SemGCN normalizes `h.transpose(1, 2)` and transposes back), the
    map is applied to `z` along the axis that becomes the channels, then permuted: the permute
    then meets the one after the norm and the two cancel.
    """
    scale, shift = _scale_and_shift(rewriter, norm)
    span, scope = norm.span, norm.scope
    source, axis, order = norm.inputs[0], 1, None
    permute = made_by.get(norm.inputs[0])
    if permute is not None and permute.op in ("permute", "transpose"):
        rank = rewriter.type_of(permute.inputs[0]).rank
        order = permutation(permute, rank)
        source, axis = permute.inputs[0], order[1]
    x_type = rewriter.type_of(source)
    shape = tuple(x_type.shape[axis] if position == axis else Dim.of(1) for position in range(axis, x_type.rank))
    if len(shape) > 1:
        scale = rewriter.add("reshape", [scale], {"shape": shape}, span, scope)[0]
        shift = rewriter.add("reshape", [shift], {"shape": shape}, span, scope)[0]
    product = rewriter.add("mul", [source, scale], {}, span, scope)[0]
    if order is None:
        rewriter.add("add", [product, shift], {}, span, scope, outputs=norm.outputs)
        return
    moved = rewriter.add("add", [product, shift], {}, span, scope)[0]
    rewriter.add("permute", [moved], {"dims": tuple(order)}, span, scope, outputs=norm.outputs)
