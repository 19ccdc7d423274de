"""Fusion for the planned numpy backend: the ops that run inside their producer, on each part it writes.

A producer whose op `finishes` (a convolution, a linear layer, a matrix product, a same-shape
binary op) hands every part of its output to `RunContext.finish` right after writing it. The
ops that follow it — unary ops with an `epilogue` facet (relu, gelu) and binary ops with a
`combines` facet whose other operand is ready before the producer runs (a residual add, a
batch norm's scale and shift, an attention scale) — are applied there, in order, while the
part is in cache, instead of each passing over the whole tensor again. SemGCN's
`A0 @ h0 + A1 @ h1 + bias`, then batch norm and relu, becomes one step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from poseir.ir.graph import FLOAT_DTYPES, Graph, Node
from poseir.ops.registry import lookup


@dataclass(frozen=True)
class Link:
    """One fused op: a unary op in place, or a binary op with its other operand (by position among the
    step's extra operands), which comes first when `operand_first` (`w - x` rather than `x - w`)."""

    op: str
    unary: Callable | None = None
    combine: Callable | None = None
    operand: int | None = None
    operand_first: bool = False


def chains(graph: Graph) -> list[tuple[Node, tuple[Link, ...], tuple[str, ...]]]:
    """The nodes in order, each with the links fused into it and the names of their other operands
    (absorbed nodes are left out; a node with links makes the value its last link made).

    A node is fused into the producer of its operand when the producer's op `finishes` its output,
    nothing else reads that operand and it is no graph output, the result has the operand's shape
    and float dtype, and (for a binary op) its other operand is a graph input, a parameter or made
    before the producer, in the same dtype. Fusion continues from a fused node to its own reader.
    """
    readers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in dict.fromkeys(node.inputs):
            if name:
                readers.setdefault(name, []).append(node)
    made_at = {name: index for index, node in enumerate(graph.nodes) for name in node.outputs}
    outputs = {value.name for value in graph.outputs}
    absorbed: set[int] = set()
    found = []
    for index, node in enumerate(graph.nodes):
        if id(node) in absorbed:
            continue
        chain: list[Node] = []
        if lookup(node.op).finishes and len(node.outputs) == 1:
            current = node
            while True:
                after = _fusable_reader(graph, current.outputs[0], readers, outputs, made_at, index)
                if after is None:
                    break
                chain.append(after)
                absorbed.add(id(after))
                current = after
        if chain:
            found.append((replace(node, outputs=chain[-1].outputs), *links(tuple(chain), node.outputs[0])))
        else:
            found.append((node, (), ()))
    return found


def _fusable_reader(graph: Graph, name: str, readers: dict, outputs: set, made_at: dict, head: int) -> Node | None:
    """The one reader of value `name` that can run inside the producer at position `head`, or None."""
    found = readers.get(name, [])
    if name in outputs or len(found) != 1:
        return None
    after = found[0]
    op = lookup(after.op)
    if len(after.outputs) != 1:
        return None
    made, result = graph.values[name].type, graph.values[after.outputs[0]].type
    if made.dtype != result.dtype or made.shape != result.shape or made.dtype not in FLOAT_DTYPES:
        return None
    if op.epilogue is not None and after.inputs == (name,):
        return after
    if op.combines is None or len(after.inputs) != 2 or after.inputs.count(name) != 1:
        return None
    other = after.inputs[1] if after.inputs[0] == name else after.inputs[0]
    ready = other and made_at.get(other, -1) < head  # an input, a parameter, or made before the producer
    return after if ready and graph.values[other].type.dtype == made.dtype else None


def links(chain: tuple[Node, ...], produced: str) -> tuple[tuple[Link, ...], tuple[str, ...]]:
    """The links of a chain fused after the producer of value `produced`, and the names of their other
    operands (in the order `Link.operand` counts them)."""
    found, operands, current = [], [], produced
    for node in chain:
        op = lookup(node.op)
        if op.epilogue is not None and node.inputs == (current,):
            found.append(Link(node.op, unary=op.epilogue))
        else:
            first = node.inputs[0] != current
            operands.append(node.inputs[0] if first else node.inputs[1])
            found.append(Link(node.op, combine=op.combines, operand=len(operands) - 1, operand_first=first))
        current = node.outputs[0]
    return tuple(found), tuple(operands)


class Epilogue:
    """The links of one step with their operands, applied to each part of the producer's output.

    The producer names a part as `(target, index)`: `target` is its output or the view of it that it
    writes through (a linear layer's rows, a convolution's images by positions), so each operand is
    broadcast to the output's shape and viewed like the target, once per target.
    """

    def __init__(self, chain: tuple[Link, ...], operands: list, shape: tuple):
        self.chain = chain
        self.operands = operands
        self.shape = shape
        self._views: dict[int, tuple] = {}
        self._lock = threading.Lock()

    def __call__(self, target: np.ndarray, index: tuple) -> None:
        """Apply every link, in order, to `target[index]` in place."""
        block = target[(*index, Ellipsis)]
        views = self._views_like(target) if self.operands else ()
        for link in self.chain:
            if link.unary is not None:
                link.unary(block)
                continue
            other = views[link.operand][(*index, Ellipsis)]
            if link.operand_first:
                link.combine(other, block, out=block)
            else:
                link.combine(block, other, out=block)

    def _views_like(self, target: np.ndarray) -> tuple:
        """The operands broadcast to the output's shape and reshaped like `target` (computed once per target)."""
        entry = self._views.get(id(target))
        if entry is None or entry[0] is not target:
            with self._lock:
                entry = self._views.get(id(target))
                if entry is None or entry[0] is not target:
                    views = tuple(np.broadcast_to(operand, self.shape).reshape(target.shape)
                                  for operand in self.operands)
                    entry = self._views[id(target)] = (target, views)
        return entry[1]


def unary_epilogue(op: str) -> Epilogue:
    """The epilogue of one unary op (for running a finishing op by hand, as the tests do)."""
    return Epilogue((Link(op, unary=lookup(op).epilogue),), [], ())
