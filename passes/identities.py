"""Identities: remove ops that return their input unchanged.

An `identity`, a reshape or permute that keeps every axis where it is, a transpose of an axis with
itself, a cast to the dtype the value already has: each is a copy in every runtime. Their readers
read the input instead; a graph output keeps its name by renaming the value that feeds it.
A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from dataclasses import replace

from poseir.diagnostics.record import Diagnostic
from poseir.ir.graph import Graph, Node, freeze_values
from poseir.passes.rewrite import Rewriter, consumers, output_names

_RESHAPES = ("reshape", "flatten", "unflatten", "squeeze", "unsqueeze")


def eliminate_identities(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Bypass every node that is the identity on its input."""
    renamed = _rename_into_outputs(graph)
    rewriter = Rewriter(renamed)
    bypassed = False
    outputs = output_names(renamed)
    for node in renamed.nodes:
        if is_identity(renamed, node) and node.outputs[0] not in outputs:
            rewriter.redirect(node.outputs[0], node.inputs[0])
            bypassed = True
            continue
        rewriter.keep(node)
    if bypassed:
        return rewriter.finish(), [], True
    return renamed, [], renamed is not graph


def is_identity(graph: Graph, node: Node) -> bool:
    """Whether the node returns its (first) input unchanged, as a value."""
    if node.op == "identity":
        return True
    if not node.inputs or not node.inputs[0] or len(node.outputs) != 1:
        return False
    before, after = graph.values[node.inputs[0]].type, graph.values[node.outputs[0]].type
    if node.op == "cast":
        return before.dtype == after.dtype
    if node.op in _RESHAPES:
        return before.rank == after.rank and all(graph.facts.provably_equal(a, b)
                                                 for a, b in zip(before.shape, after.shape))
    if node.op == "permute":
        rank = before.rank
        return [axis % rank for axis in _dims(node.attr("dims"))] == list(range(rank))
    if node.op == "transpose":
        rank = before.rank
        return node.attr("dim0") % rank == node.attr("dim1") % rank
    return False


def _dims(values) -> tuple:
    """A permutation given as separate ints or one tuple."""
    return tuple(values[0]) if len(values) == 1 and isinstance(values[0], tuple) else tuple(values)


def _rename_into_outputs(graph: Graph) -> Graph:
    """`pose = identity(x)`: when only the copy reads `x`, the node making `x` makes `pose` directly."""
    outputs = output_names(graph)
    readers = consumers(graph)
    made = {name for node in graph.nodes for name in node.outputs}
    renames: dict[str, str] = {}
    for node in graph.nodes:
        if node.op != "identity" or node.outputs[0] not in outputs:
            continue
        source = node.inputs[0]
        if source in made and source not in outputs and len(readers.get(source, [])) == 1:
            renames[source] = node.outputs[0]
    if not renames:
        return graph
    nodes = []
    for node in graph.nodes:
        if node.op == "identity" and node.inputs[0] in renames and node.outputs[0] == renames[node.inputs[0]]:
            continue
        nodes.append(replace(node, outputs=tuple(renames.get(name, name) for name in node.outputs)))
    values = {name: value for name, value in graph.values.items() if name not in renames}
    for old, new in renames.items():
        values[new] = replace(graph.values[old], name=new, span=graph.values[new].span)
    return replace(graph, nodes=tuple(nodes), values=freeze_values(values))
