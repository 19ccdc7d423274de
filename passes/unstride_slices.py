"""Stepped slices without steps: `x[:, :, o::s]` as a contiguous slice, a split of the axis and a pick.

VideoPose3D's strided training takes every third frame of its residual (`x[:, :, 1::3]`). A
runtime without stepped slices gets the same elements this way: cut a window of `n * s` frames,
view it as `n` rows of `s`, keep column `c`: element `k` is `w + k*s + c` with `w + c = o`. The
window must fit in the axis, which fixes `c`; when the sizes do not say which `c` fits, E420 names
the slice. A pure function `graph -> (graph, diagnostics, changed)`.
"""

from __future__ import annotations

from poseir.diagnostics.record import Diagnostic
from poseir.ir.dims import Dim, Tri
from poseir.ir.graph import Graph, Node
from poseir.passes.lower_rank import cannot_legalize
from poseir.passes.rewrite import Rewriter


def unstride_slices(graph: Graph, profile: str = "") -> tuple[Graph, list[Diagnostic], bool]:
    """Every slice with a step above 1 rewritten as a window, a reshape and a select."""
    if not any(node.op == "slice" and node.attr("step", 1) != 1 for node in graph.nodes):
        return graph, [], False
    rewriter = Rewriter(graph)
    diagnostics = []
    for node in graph.nodes:
        if node.op == "slice" and node.attr("step", 1) != 1:
            reason = _rewrite(rewriter, graph, node)
            if reason is None:
                continue
            diagnostics.append(cannot_legalize(node, profile, "no stepped slices", reason))
        rewriter.keep(node)
    return rewriter.finish(), diagnostics, True


def _rewrite(rewriter: Rewriter, graph: Graph, node: Node) -> str | None:
    """Emit the window form of one stepped slice; the reason when no window fits."""
    facts = graph.facts
    source = graph.values[node.inputs[0]].type
    result = graph.values[node.outputs[0]].type
    axis = node.attr("axis") % source.rank
    step, length, count = node.attr("step"), source.shape[axis], result.shape[axis]
    start = _start(node.attr("start"), length)
    if start is None:
        return "its start is not a known offset from the beginning of the axis"
    # The smallest column that lets a window of count*step elements end inside the axis.
    overhang = facts.normalize(start + count * step - length)
    if not overhang.is_const:
        return f"whether a window of {count}*{step} elements fits depends on the sizes ({overhang} past the end)"
    column = max(overhang.value, 0)
    if column >= step or facts.greater_equal(start, column) is not Tri.YES:
        return "no window of whole steps fits inside the axis"
    window_start = facts.normalize(start - column)
    window = rewriter.add("slice", [node.inputs[0]], {"axis": axis, "start": _attr(window_start),
                                                       "stop": _attr(facts.normalize(window_start + count * step)),
                                                       "step": 1}, node.span, node.scope)[0]
    shape = (*source.shape[:axis], count, Dim.of(step), *source.shape[axis + 1:])
    rows = rewriter.add("reshape", [window], {"shape": tuple(_attr(size) for size in shape)}, node.span,
                        node.scope)[0]
    rewriter.add("select", [rows], {"axis": axis + 1, "index": column}, node.span, node.scope, outputs=node.outputs)
    return None


def _start(value, length: Dim) -> Dim | None:
    """The slice's start as an offset from the beginning (None for `None`, i.e. 0)."""
    if value is None:
        return Dim.of(0)
    start = Dim.of(value)
    if start.is_const and start.value < 0:
        return length + start.value
    return start


def _attr(dim: Dim):
    """A dim as an attribute: an int when it is a number."""
    return dim.value if dim.is_const else dim
