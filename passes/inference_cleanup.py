"""Inference cleanup: bypass ops that are the identity in inference, then drop dead nodes.

`dropout` and `drop_path` do nothing at inference; keeping them costs a copy per call in every
runtime. The pass rewires their consumers to their inputs and removes every node no output
depends on. A pure function: `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from dataclasses import replace

from poseir.diagnostics.record import Diagnostic
from poseir.ir.graph import Graph, Node
from poseir.passes.dead_code import remove_dead_nodes

# Ops whose inference behaviour is the identity on their first input.
INFERENCE_IDENTITIES = ("dropout", "drop_path")


def inference_cleanup(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Bypass inference identities and remove dead nodes; a training graph is returned unchanged."""
    if graph.mode != "infer":
        return graph, [], False
    bypassed = _bypass_identities(graph)
    pruned = remove_dead_nodes(bypassed)
    changed = pruned.nodes != graph.nodes
    return (pruned if changed else graph), [], changed


def _bypass_identities(graph: Graph) -> Graph:
    """Consumers of an identity read its input instead; graph outputs keep their names."""
    output_names = {value.name for value in graph.outputs}
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        node = replace(node, inputs=tuple(alias.get(name, name) for name in node.inputs))
        if node.op in INFERENCE_IDENTITIES:
            if node.outputs[0] not in output_names:
                alias[node.outputs[0]] = node.inputs[0]
                continue
            # A graph output keeps its name through a plain copy.
            node = replace(node, op="identity", inputs=node.inputs[:1], attrs=())
        nodes.append(node)
    return replace(graph, nodes=tuple(nodes))
