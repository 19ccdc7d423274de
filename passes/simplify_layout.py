"""Layout chains: merge consecutive reshapes into one, and consecutive permutes into one.

`x.view(B, T, -1).flatten(0, 1).unsqueeze(1)` moves no data three times; one reshape to the final
shape does the same. Two transposes compose into one permute (and cancel when they are inverses,
which the identities pass then removes). Only a link whose output nothing else reads is merged,
so no value is computed twice. A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from poseir.diagnostics.record import Diagnostic
from poseir.ir.graph import Graph, Node
from poseir.passes.rewrite import Rewriter, consumers, output_names, permutation, producers, until_stable

RESHAPES = ("reshape", "flatten", "unflatten", "squeeze", "unsqueeze")
PERMUTES = ("permute", "transpose")


def simplify_layout(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Merge reshape and permute chains until none is left."""
    return until_stable(_merge_once, graph)


def _merge_once(graph: Graph) -> tuple[Graph, bool]:
    """One sweep: each node whose input comes from a mergeable link of the same kind absorbs it."""
    readers = consumers(graph)
    made_by = producers(graph)
    outputs = output_names(graph)
    absorbed: set[str] = set()
    replacements: dict[str, tuple[str, str, dict]] = {}
    for node in graph.nodes:
        link = made_by.get(node.inputs[0]) if node.inputs and node.inputs[0] else None
        if link is None or link.outputs[0] in outputs or len(readers.get(link.outputs[0], [])) != 1:
            continue
        if link.outputs[0] in absorbed or link.outputs[0] in replacements or node.outputs[0] in absorbed:
            continue  # one link per sweep: the next sweep merges the rest of a longer chain
        merged = _merge(graph, link, node)
        if merged is not None:
            replacements[node.outputs[0]] = merged
            absorbed.add(link.outputs[0])
    if not replacements:
        return graph, False
    rewriter = Rewriter(graph)
    for node in graph.nodes:
        if node.outputs and node.outputs[0] in absorbed:
            continue
        if node.outputs and node.outputs[0] in replacements:
            op, source, attrs = replacements[node.outputs[0]]
            rewriter.add(op, [source], attrs, node.span, node.scope, outputs=node.outputs)
            continue
        rewriter.keep(node)
    return rewriter.finish(), True


def _merge(graph: Graph, first: Node, second: Node) -> tuple[str, str, dict] | None:
    """(op, input, attrs) of the one node doing `second(first(x))`, or None when they do not compose."""
    if first.op in RESHAPES and second.op in RESHAPES:
        shape = graph.values[second.outputs[0]].type.shape
        return "reshape", first.inputs[0], {"shape": tuple(shape)}
    if first.op in PERMUTES and second.op in PERMUTES:
        rank = graph.values[first.inputs[0]].type.rank
        order = [permutation(first, rank)[axis] for axis in permutation(second, rank)]
        return "permute", first.inputs[0], {"dims": tuple(order)}
    return None
