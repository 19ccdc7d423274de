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
    readers: dict[str, list] = {}
    for node in graph.nodes:
        for index, input_name in enumerate(node.inputs):
            readers.setdefault(input_name, []).append((node, index))
    diagnostics: list[Diagnostic] = []
    for node in graph.nodes:
        if node.op in ("softmax", "log_softmax"):
            diagnostics.extend(_softmax_over_queries(graph, producers, readers, node))
        elif node.op in ("norm", "sum"):
            diagnostics.extend(_pose_error_axis(graph, producers, node))
    return graph, diagnostics, False


def _source(graph: Graph, producers: dict, name: str, op: str) -> Node | None:
    """The `op` node `name` comes from through layout-keeping ops, or None."""
    shape = graph.values[name].type.shape
    while name in producers:
        node = producers[name]
        if node.op == op:
            return node
        if node.op == "reshape" and op == "sub":
            # A pose difference is often taken flat ([B, J*3]) and viewed as [B, J, 3] afterwards.
            name, shape = node.inputs[0], graph.values[node.inputs[0]].type.shape
            continue
        if node.op not in _LAYOUT_KEEPING:
            return None
        same = [input_name for input_name in node.inputs
                if input_name and graph.values[input_name].type.shape == shape]
        if not same:
            return None
        name = same[0]
    return None


def _softmax_over_queries(graph: Graph, producers: dict, readers: dict, node: Node) -> list[Diagnostic]:
    """W311: attention weights normalized over another axis than the one `@ v` contracts (the keys).

    The scores come from a matmul (`q @ kᵀ`, through scaling and masking); the weights go into a
    matmul that sums over the keys. Reading the keys off the product that consumes the weights,
    rather than off the one that made the scores, keeps `k @ qᵀ` with a softmax over -2 correct.
    """
    scores = graph.values[node.inputs[0]].type
    axis = node.attr("dim")
    if scores.rank < 2 or not isinstance(axis, int) or _source(graph, producers, node.inputs[0], "matmul") is None:
        return []
    contracted = _contracted_axis(readers, node.outputs[0], scores.rank)
    if contracted is None or axis % scores.rank == contracted:
        return []
    product = _source(graph, producers, node.inputs[0], "matmul")
    fix = _argument_fix(node, "dim", str(contracted - scores.rank), "normalize over the keys")
    return [Diagnostic.make(
        "W311", "softmax over the query axis of attention scores", _span(node, "dim"),
        labels=(Label(product.span, "the scores are queries by keys"),),
        notes=(f"the weights are then multiplied with the values, summing over axis {contracted - scores.rank}, "
               "the keys; attention normalizes each query's scores over the keys, but this softmax makes each "
               "key's scores sum to one instead",),
        helps=() if fix else (f"take the softmax over axis {contracted - scores.rank}",),
        fixes=(fix,) if fix else ())]


def _contracted_axis(readers: dict, name: str, rank: int) -> int | None:
    """Which of the weights' last two axes the matmul consuming them sums over (through dropout and transposes)."""
    swapped = False
    while True:
        users = readers.get(name, [])
        if len(users) != 1:
            return None
        user, index = users[0]
        if user.op in ("dropout", "identity", "cast"):
            name = user.outputs[0]
            continue
        if user.op == "transpose" and {user.attr("dim0") % rank, user.attr("dim1") % rank} == {rank - 2, rank - 1}:
            swapped, name = not swapped, user.outputs[0]
            continue
        if user.op != "matmul":
            return None
        contracted = rank - 1 if index == 0 else rank - 2
        return (rank - 2 if contracted == rank - 1 else rank - 1) if swapped else contracted


def _pose_error_axis(graph: Graph, producers: dict, node: Node) -> list[Diagnostic]:
    """W312: the norm of a difference of two poses taken over an axis other than the coordinates."""
    error = graph.values[node.inputs[0]].type
    axis = node.attr("dim")
    if error.rank < 2 or not isinstance(axis, int):
        return []
    last = error.shape[-1]
    if not (last.is_const and last.value in _COORDINATES) or axis % error.rank == error.rank - 1:
        return []
    difference = _difference(graph, producers, node)
    if difference is None:
        return []
    reduced = error.shape[axis % error.rank]
    fix = _argument_fix(node, "dim", "-1", "take the norm over the coordinates")
    return [Diagnostic.make(
        "W312", f"the {'norm' if node.op == 'norm' else 'sum of squares'} of a pose error is taken over an axis of "
                f"size {reduced}, not the coordinates",
        _span(node, "dim"), labels=(Label(difference.span, f"a difference of two poses, {error}"),),
        notes=(f"a joint's position error is the Euclidean norm over its {last.value} coordinates (the last axis); "
               "MPJPE then averages over joints, frames and the batch",),
        helps=() if fix else ("take the norm over the last axis: `norm(dim = -1)`",),
        fixes=(fix,) if fix else ())]


def _difference(graph: Graph, producers: dict, node: Node) -> Node | None:
    """The `a - b` a norm is taken of, or that a sum of squares (`d * d`, `d ** 2`) squares."""
    if node.op == "norm":
        return _source(graph, producers, node.inputs[0], "sub")
    square = producers.get(node.inputs[0])
    if square is None or not ((square.op == "mul" and square.inputs[0] == square.inputs[1]) or square.op == "pow"):
        return None
    return _source(graph, producers, square.inputs[0], "sub")


def _span(node: Node, key):
    """The span of an argument, or of the whole call."""
    found = node.argument(key)
    return found[0] if found else node.span


def _argument_fix(node: Node, key, value: str, message: str) -> Fix | None:
    """Replace the value of argument `key` (keeping `dim = ` when it was written so)."""
    found = node.argument(key)
    if found is None:
        return None
    span, _ = found
    # The argument's span covers `dim = 0` or `0`; writing it as a keyword is right either way.
    replacement = f"{key} = {value}" if isinstance(key, str) else value
    return Fix(f"{message}: `{replacement}`", (Edit(span, replacement),), safe=False)
