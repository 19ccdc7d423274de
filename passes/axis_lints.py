"""Lints that need the graph around an op: softmax over the query axis (W311), a pose error normed over
the wrong axis (W312). A pure function `graph -> (graph, diagnostics, changed)`; it never changes the graph.

Both mistakes keep every shape intact, so no shape rule sees them: they are read off what feeds
the op — an attention score matrix `q @ kᵀ`, a difference of two poses.
"""

from __future__ import annotations

from poseir.diagnostics.record import Diagnostic, Edit, Fix, Label
from poseir.ir.dims import Dim
from poseir.ir.graph import Graph, Node

# Ops a score matrix or a pose difference passes through unchanged in layout: scaling, masking,
# dropout, casts (elementwise with an operand that broadcasts into it).
_LAYOUT_KEEPING = {"mul", "div", "add", "sub", "dropout", "identity", "cast", "neg", "abs"}
_COORDINATES = (2, 3)


def axis_lints(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """W311 and W312 for every op of the graph that matches."""
    producers = {name: node for node in graph.nodes for name in node.outputs}
    diagnostics: list[Diagnostic] = []
    for node in graph.nodes:
        if node.op in ("softmax", "log_softmax"):
            diagnostics.extend(_softmax_over_queries(graph, producers, node))
        elif node.op == "norm":
            diagnostics.extend(_pose_error_axis(graph, producers, node))
    return graph, diagnostics, False


def _source(graph: Graph, producers: dict, name: str, op: str) -> Node | None:
    """The `op` node `name` comes from through layout-keeping ops, or None."""
    shape = graph.values[name].type.shape
    while name in producers:
        node = producers[name]
        if node.op == op:
            return node
        if node.op not in _LAYOUT_KEEPING:
            return None
        same = [input_name for input_name in node.inputs
                if input_name and graph.values[input_name].type.shape == shape]
        if not same:
            return None
        name = same[0]
    return None


def _softmax_over_queries(graph: Graph, producers: dict, node: Node) -> list[Diagnostic]:
    """W311: softmax of `q @ kᵀ` (through scaling and masking) taken over the rows, the queries."""
    scores = graph.values[node.inputs[0]].type
    axis = node.attr("dim")
    if scores.rank < 2 or not isinstance(axis, int) or axis % scores.rank != scores.rank - 2:
        return []
    product = _source(graph, producers, node.inputs[0], "matmul")
    if product is None or graph.values[product.inputs[0]].type.rank < 2:
        return []
    fix = _argument_fix(node, "dim", "-1", "normalize over the keys")
    return [Diagnostic.make(
        "W311", "softmax over the query axis of attention scores", _span(node, "dim"),
        labels=(Label(product.span, "the scores are queries by keys: the keys are the last axis"),),
        notes=("attention normalizes each query's scores over the keys; over the queries, each key's "
               "scores sum to one instead",),
        helps=() if fix else ("take the softmax over the last axis: `softmax(dim = -1)`",),
        fixes=(fix,) if fix else ())]


def _pose_error_axis(graph: Graph, producers: dict, node: Node) -> list[Diagnostic]:
    """W312: the norm of a difference of two poses taken over an axis other than the coordinates."""
    error = graph.values[node.inputs[0]].type
    axis = node.attr("dim")
    if error.rank < 2 or not isinstance(axis, int):
        return []
    last = error.shape[-1]
    if not (last.is_const and last.value in _COORDINATES) or axis % error.rank == error.rank - 1:
        return []
    difference = _source(graph, producers, node.inputs[0], "sub")
    if difference is None or not all(_has_coordinates(graph.values[name].type.shape, last)
                                     for name in difference.inputs):
        return []
    reduced = error.shape[axis % error.rank]
    fix = _argument_fix(node, "dim", "-1", "take the norm over the coordinates")
    return [Diagnostic.make(
        "W312", f"the norm of a pose error is taken over an axis of size {reduced}, not the coordinates",
        _span(node, "dim"), labels=(Label(difference.span, f"a difference of two poses, {error}"),),
        notes=(f"a joint's position error is the Euclidean norm over its {last.value} coordinates (the last axis); "
               "MPJPE then averages over joints, frames and the batch",),
        helps=() if fix else ("take the norm over the last axis: `norm(dim = -1)`",),
        fixes=(fix,) if fix else ())]


def _has_coordinates(shape: tuple[Dim, ...], coordinates: Dim) -> bool:
    """A pose operand: its last axis is the coordinate axis."""
    return len(shape) >= 2 and shape[-1] == coordinates


def _span(node: Node, key):
    """The span of an argument, or of the whole call."""
    found = node.argument(key)
    return found[0] if found else node.span


def _argument_fix(node: Node, key, value: str, message: str) -> Fix | None:
    """Replace the value of argument `key` (keeping `dim = ` when it was written so)."""
    found = node.argument(key)
    if found is None:
        return None
    span, text = found
    replacement = text.split("=", 1)[0].rstrip() + " = " + value if "=" in text else value
    return Fix(f"{message}: `{replacement}`", (Edit(span, replacement),), safe=False)
