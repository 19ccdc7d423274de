"""Graph analyses on a networkx view built on demand (networkx is for analysis, never storage)."""

from __future__ import annotations

import networkx as nx

from poseir.ir.graph import Graph


def dataflow(graph: Graph) -> nx.DiGraph:
    """A DiGraph with one vertex per node (by index) and an edge per value passed between nodes."""
    view = nx.DiGraph()
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        view.add_node(index, op=node.op)
        for name in node.inputs:
            if name in producer:
                view.add_edge(producer[name], index, value=name)
        for name in node.outputs:
            producer[name] = index
    return view


def live_nodes(graph: Graph) -> set[int]:
    """Indices of the nodes some graph output depends on."""
    view = dataflow(graph)
    producer = {name: index for index, node in enumerate(graph.nodes) for name in node.outputs}
    roots = {producer[value.name] for value in graph.outputs if value.name in producer}
    live = set(roots)
    for root in roots:
        live |= nx.ancestors(view, root)
    return live


def topological_order(graph: Graph) -> list[int]:
    """A stable topological order of node indices (ties broken by emission order)."""
    return list(nx.lexicographical_topological_sort(dataflow(graph)))


def used_parameters(graph: Graph) -> set[str]:
    """State-dict keys read by some node."""
    names = {parameter.name for parameter in graph.parameters}
    return {name for node in graph.nodes for name in node.inputs if name in names}
