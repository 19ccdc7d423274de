"""Common subexpressions: compute each value once.

Two nodes applying the same op to the same inputs with the same attributes give the same value;
the later one's readers read the first (a transformer layer that normalizes the same tokens for
two branches, a `size` of the same dim read in several places). Random ops in training are never
merged. A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from poseir.diagnostics.record import Diagnostic
from poseir.ir.graph import Graph
from poseir.passes.rewrite import Rewriter, output_names

_RANDOM = ("dropout", "drop_path")


def eliminate_common_subexpressions(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Replace every repeated computation by its first occurrence."""
    rewriter = Rewriter(graph)
    outputs = output_names(graph)
    seen: dict[tuple, tuple[str, ...]] = {}
    merged = False
    for node in graph.nodes:
        inputs = tuple(rewriter.source(name) if name else "" for name in node.inputs)
        key = (node.op, inputs, _hashable(node.attrs))
        random = node.op in _RANDOM and graph.mode == "train"
        if not random and key in seen and not any(name in outputs for name in node.outputs):
            for name, first in zip(node.outputs, seen[key]):
                rewriter.redirect(name, first)
            merged = True
            continue
        if not random:
            seen.setdefault(key, node.outputs)
        rewriter.keep(node)
    if not merged:
        return graph, [], False
    return rewriter.finish(), [], True


def _hashable(value):
    """Attributes as a hashable key (they are tuples already; lists are turned into tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(item) for item in value)
    return value
