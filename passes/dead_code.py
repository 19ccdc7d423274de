"""Dead code: remove every node no graph output depends on, and the parameters no node reads.

A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from dataclasses import replace

from poseir.diagnostics.record import Diagnostic
from poseir.ir.analysis import live_nodes
from poseir.ir.graph import Graph, freeze_values


def eliminate_dead_code(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Keep the nodes the outputs depend on, the values they define and the parameters they read."""
    live = live_nodes(graph)
    if len(live) == len(graph.nodes):
        return graph, [], False
    return remove_dead_nodes(graph, live), [], True


def remove_dead_nodes(graph: Graph, live: set[int] | None = None) -> Graph:
    """The graph with only the nodes in `live` (default: those the outputs depend on)."""
    live = live_nodes(graph) if live is None else live
    nodes = tuple(node for index, node in enumerate(graph.nodes) if index in live)
    read = {name for node in nodes for name in node.inputs} | {value.name for value in graph.outputs}
    parameters = tuple(parameter for parameter in graph.parameters if parameter.name in read)
    defined = {value.name for value in graph.inputs} | {parameter.name for parameter in parameters}
    defined |= {name for node in nodes for name in node.outputs}
    values = {name: value for name, value in graph.values.items() if name in defined}
    return replace(graph, nodes=nodes, values=freeze_values(values), parameters=parameters)
