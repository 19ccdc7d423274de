"""Positive axes: every axis attribute counted from the front (`dim=-1` as `dim=3` on a rank-4 tensor).

Some runtimes reject negative axes. The rank of every value is known, so each op's axis
attributes (as its signature names them) are rewritten once here; the ONNX backend then emits
non-negative axes for them. A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from dataclasses import replace

from poseir.diagnostics.record import Diagnostic
from poseir.ir.graph import Graph, Node

# The axis attributes of each op, and whose rank they count in: "in" (input 0) or "out" (output 0).
AXIS_ATTRIBUTES = {
    "softmax": (("dim", "in"),), "log_softmax": (("dim", "in"),), "sum": (("dim", "in"),),
    "mean": (("dim", "in"),), "amax": (("dim", "in"),), "norm": (("dim", "in"),), "var": (("dim", "in"),),
    "concat": (("dim", "out"),), "stack": (("dim", "out"),), "split": (("dim", "in"),),
    "chunk": (("dim", "in"),), "select": (("axis", "in"),), "slice": (("axis", "in"),),
    "gather": (("axis", "in"),), "pad_edge": (("axis", "in"),), "squeeze": (("dim", "in"),),
    "unsqueeze": (("dim", "out"),), "flatten": (("start_dim", "in"), ("end_dim", "in")),
    "unflatten": (("dim", "in"),), "transpose": (("dim0", "in"), ("dim1", "in")), "permute": (("dims", "in"),),
    "mean_velocity_error": (("axis", "in"),),
}


def positive_axes(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Rewrite every negative axis attribute as the non-negative axis it names."""
    nodes = tuple(_positive(graph, node) for node in graph.nodes)
    if nodes == graph.nodes:
        return graph, [], False
    return replace(graph, nodes=nodes), [], True


def _positive(graph: Graph, node: Node) -> Node:
    """The node with its axis attributes made non-negative."""
    spec = AXIS_ATTRIBUTES.get(node.op)
    if not spec:
        return node
    attrs = dict(node.attrs)
    for name, counted in spec:
        if name not in attrs:
            continue
        value = node.inputs[0] if counted == "in" and node.inputs else node.outputs[0]
        rank = graph.values[value].type.rank
        attrs[name] = _normalized(attrs[name], rank)
    new = tuple((key, attrs[key]) for key, _ in node.attrs)
    return node if new == node.attrs else replace(node, attrs=new)


def _normalized(value, rank: int):
    """An axis, or a tuple of axes, with negatives counted from the end."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value % rank if rank else value
    if isinstance(value, tuple):
        return tuple(_normalized(item, rank) for item in value)
    return value
