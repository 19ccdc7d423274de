"""Explicit broadcasting: every operand of an elementwise op takes the result's shape before the op.

Runtimes without implicit broadcasting need `root[B, 17, 3] + pose[B, T, 17, 3]` spelled as a
reshape of `root` to `[B, 1, 17, 3]` and an expand to `[B, T, 17, 3]`. A rank-0 operand (a scale,
an epsilon) stays a scalar: every runtime multiplies by one. A pure function
`graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from poseir.diagnostics.record import Diagnostic
from poseir.ir.dims import Dim
from poseir.ir.graph import Graph, Node
from poseir.passes.rewrite import Rewriter

ELEMENTWISE = ("add", "sub", "mul", "div", "pow", "maximum", "minimum")


def explicit_broadcast(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Reshape and expand the operands of every broadcasting elementwise op to the result's shape."""
    rewriter = Rewriter(graph)
    changed = False
    for node in graph.nodes:
        if node.op == "linear" and graph.values[node.inputs[0]].type.rank > 2:
            # On [B, T, C] a runtime adds the bias by broadcasting; as rows of [B*T, C] it is one Gemm.
            _as_rows(rewriter, graph, node)
            changed = True
            continue
        if node.op in ELEMENTWISE and _broadcasts(graph, node):
            inputs = [_expanded(rewriter, graph, node, name) for name in node.inputs]
            rewriter.add(node.op, inputs, node.attributes, node.span, node.scope, outputs=node.outputs)
            changed = True
            continue
        rewriter.keep(node)
    return (rewriter.finish(), [], True) if changed else (graph, [], False)


def _as_rows(rewriter: Rewriter, graph: Graph, node: Node) -> None:
    """`linear(x[..., C])` as a reshape to rows, the linear layer, and a reshape back."""
    x = graph.values[node.inputs[0]].type
    rows = Dim.of(1)
    for size in x.shape[:-1]:
        rows = rows * size
    flat = rewriter.add("reshape", [node.inputs[0]], {"shape": (_attr(graph.facts.normalize(rows)),
                                                              _attr(x.shape[-1]))}, node.span, node.scope)[0]
    product = rewriter.add("linear", [flat, *node.inputs[1:]], node.attributes, node.span, node.scope)[0]
    shape = graph.values[node.outputs[0]].type.shape
    rewriter.add("reshape", [product], {"shape": tuple(_attr(size) for size in shape)}, node.span, node.scope,
                 outputs=node.outputs)


def _same(graph: Graph, first: tuple, second: tuple) -> bool:
    """Two shapes provably equal, axis by axis."""
    return len(first) == len(second) and all(graph.facts.provably_equal(a, b) for a, b in zip(first, second))


def _broadcasts(graph: Graph, node: Node) -> bool:
    """Whether some non-scalar operand differs in shape from the result."""
    result = graph.values[node.outputs[0]].type.shape
    return any(graph.values[name].type.rank > 0 and not _same(graph, graph.values[name].type.shape, result)
               for name in node.inputs)


def _expanded(rewriter: Rewriter, graph: Graph, node: Node, name: str) -> str:
    """The operand reshaped to the result's rank (leading 1s) and expanded to its shape."""
    operand = graph.values[name].type
    result = graph.values[node.outputs[0]].type.shape
    if operand.rank == 0 or _same(graph, operand.shape, result):
        return name
    padded = (Dim.of(1),) * (len(result) - operand.rank) + operand.shape
    current = name
    if len(padded) != operand.rank:
        current = rewriter.add("reshape", [current], {"shape": tuple(_attr(size) for size in padded)}, node.span,
                               node.scope)[0]
    if not _same(graph, padded, result):
        current = rewriter.add("expand", [current], {"sizes": tuple(_attr(size) for size in result)}, node.span,
                               node.scope)[0]
    return current


def _attr(dim: Dim):
    """A dim as an attribute: an int when it is a number."""
    return dim.value if dim.is_const else dim
