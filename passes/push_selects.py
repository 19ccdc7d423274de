"""Pick before you move: push a `select` (`qkv[0]`) through the permute and the reshape that made its input.

Transformers split heads with `linear(x).reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4)` and then
take `qkv[0]`, `qkv[1]`, `qkv[2]`: a 5-D detour to reach three 4-D tensors. Selecting first gives
the same values through lower ranks: `select(permute(x, p), a)` is `permute(select(x, p[a]))`, and
a select of the outermost factor of a reshaped axis is a slice of that axis before the reshape
(`linear(x)[..., i*H*D:(i+1)*H*D].reshape(B, N, H, D).permute(0, 2, 1, 3)`). A rewrite rule with
no size coincidence in it: each step keeps every element where it was. A pure function
`graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from poseir.diagnostics.record import Diagnostic
from poseir.ir.dims import Dim
from poseir.ir.graph import Graph, Node
from poseir.passes.rewrite import Rewriter, permutation, producers, until_stable

_RESHAPES = ("reshape", "flatten", "unflatten")
_PERMUTES = ("permute", "transpose")


def push_selects(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Rewrite selects of permutes and of reshaped axes until none is left."""
    return until_stable(_sweep, graph)


def _sweep(graph: Graph) -> tuple[Graph, bool]:
    """One pass over the nodes, rewriting every select whose producer allows it."""
    made_by = producers(graph)
    rewriter = Rewriter(graph)
    changed = False
    for node in graph.nodes:
        source = made_by.get(node.inputs[0]) if node.op == "select" else None
        if source is not None and source.op in _PERMUTES and _through_permute(rewriter, graph, node, source):
            changed = True
        elif source is not None and source.op in _RESHAPES and _through_reshape(rewriter, graph, node, source):
            changed = True
        else:
            rewriter.keep(node)
    return (rewriter.finish(), True) if changed else (graph, False)


def _through_permute(rewriter: Rewriter, graph: Graph, select: Node, permute: Node) -> bool:
    """`select(permute(x, p), a)` as `permute(select(x, p[a]), p without p[a])`."""
    rank = graph.values[permute.inputs[0]].type.rank
    order = permutation(permute, rank)
    axis = select.attr("axis") % rank
    picked = order[axis]
    rest = [position - (position > picked) for position in order if position != picked]
    inner = rewriter.add("select", [permute.inputs[0]], {"axis": picked, "index": select.attr("index")},
                         select.span, select.scope)[0]
    if rest == list(range(len(rest))):
        rewriter.redirect(select.outputs[0], inner)
    else:
        rewriter.add("permute", [inner], {"dims": tuple(rest)}, select.span, select.scope, outputs=select.outputs)
    return True


def _through_reshape(rewriter: Rewriter, graph: Graph, select: Node, reshape: Node) -> bool:
    """A select of the outermost factor of a reshaped axis as a slice of that axis, then the reshape."""
    facts = graph.facts
    before = graph.values[reshape.inputs[0]].type.shape
    after = graph.values[reshape.outputs[0]].type.shape
    axis = select.attr("axis") % len(after)
    index = select.attr("index")
    if not isinstance(index, int) or not after[axis].is_const:
        return False
    index %= after[axis].value
    inner = _matching_axis(facts, before, after, axis)
    if inner is None:
        return False
    part = facts.normalize(before[inner]).exact_div(after[axis])
    if part is None:
        return False
    start, stop = part * index, part * (index + 1)
    sliced = rewriter.add("slice", [reshape.inputs[0]], {"axis": inner, "start": _attr(start), "stop": _attr(stop),
                                                          "step": 1}, select.span, select.scope)[0]
    shape = tuple(size for position, size in enumerate(after) if position != axis)
    rewriter.add("reshape", [sliced], {"shape": shape}, select.span, select.scope, outputs=select.outputs)
    return True


def _matching_axis(facts, before, after, axis: int) -> int | None:
    """The input axis whose elements, with the axes after it, are exactly output axes `axis` onwards."""
    tail = Dim.of(1)
    for size in after[axis:]:
        tail = tail * size
    inner = Dim.of(1)
    for position in range(len(before) - 1, -1, -1):
        inner = inner * before[position]
        if facts.provably_equal(inner, tail):
            return position
    return None


def _attr(dim: Dim):
    """A dim as an attribute: an int when it is a number."""
    return dim.value if dim.is_const else dim
