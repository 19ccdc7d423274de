"""Constant folding: compute at compile time every node whose inputs are all compile-time constants.

SemGCN's masks built from the skeleton, a positional ramp once its length is fixed (`--dim T=243`),
a scale computed from a hyper-parameter: their values never change, so the backends receive them
as constants instead of recomputing them on every call. Only deterministic ops with fully known
sizes are folded, and only up to `MAX_ELEMENTS` (a constant is stored in the IR and the ONNX file).
A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

import numpy as np

from poseir.diagnostics.record import Diagnostic
from poseir.ir.graph import Graph
from poseir.ops.registry import RunContext, lookup
from poseir.passes.rewrite import concrete_attributes, has_symbolic_attribute
from poseir.passes.rewrite import Rewriter

MAX_ELEMENTS = 1 << 16
# Ops whose value depends on more than their inputs (random masks in training).
_RANDOM = ("dropout", "drop_path")


def fold_constants(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Replace constant subgraphs by `constant` nodes holding their values."""
    rewriter = Rewriter(graph)
    known: dict[str, np.ndarray] = {}
    folded = False
    context = RunContext(graph.mode, np.random.default_rng(0))
    for node in graph.nodes:
        values = _evaluate(graph, node, known, context)
        if values is None:
            rewriter.keep(node)
            continue
        for name, array in zip(node.outputs, values):
            known[name] = array
        if node.op == "constant":
            rewriter.keep(node)
            continue
        for name, array in zip(node.outputs, values):
            rewriter.add("constant", [], {"value": _nested(array), "dtype": graph.values[name].type.dtype},
                         node.span, node.scope, outputs=(name,))
        folded = True
    if not folded:
        return graph, [], False
    return rewriter.finish(), [], True


def _evaluate(graph: Graph, node, known: dict, context: RunContext) -> list[np.ndarray] | None:
    """The node's output arrays when every input is known and the outputs are small and fixed; else None."""
    if node.op in _RANDOM or any(name and name not in known for name in node.inputs):
        return None
    if has_symbolic_attribute(node):
        return None  # `arange(T)`, `size(T)`: known only when the inputs arrive
    types = [graph.values[name].type for name in node.outputs]
    if any(not all(size.is_const for size in type_.shape) for type_ in types):
        return None
    if any(int(np.prod([size.value for size in type_.shape])) > MAX_ELEMENTS for type_ in types):
        return None
    op = lookup(node.op)
    arrays = [known[name] if name else None for name in node.inputs]
    return [np.asarray(result) for result in op.run(context, arrays, concrete_attributes(node))]


def _nested(array: np.ndarray):
    """An array as the nested tuples of numbers a `constant` node holds."""
    value = array.tolist()
    return _tuples(value)


def _tuples(value):
    """Lists to tuples, all the way down (IR attributes are immutable)."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value
