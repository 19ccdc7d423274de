"""Lower a tensor subscript `x[:, :, 1::3]` into slice, select, gather and unsqueeze nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.elaborate.builder import CallSite, dim_value
from poseir.ir.dims import Dim
from poseir.diagnostics.record import fail
from poseir.elaborate.scope import Frame
from poseir.elaborate.values import POISON, Poison, Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.opcalls import OpCaller
    from poseir.elaborate.state import ElaborationState


class TensorIndexer:
    """Lowers `x[...]` on a tensor: `index` is its whole interface.

    Index expressions are evaluated by the evaluator; nodes are emitted through the op caller.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator, ops: OpCaller):
        self.state = state
        self.evaluator = evaluator
        self.ops = ops

    def index(self, tensor: Tensor, node: ast.Subscript, frame: Frame):
        """Apply each subscript item in turn; one node per item that changes something."""
        if tensor.is_error:
            return POISON
        items = _expand_ellipsis(node, tensor.type.rank, frame)
        axis = 0
        current = tensor
        for item in items:
            if isinstance(current, Poison):
                return POISON
            current, axis = self._apply_item(current, item, axis, node, frame)
        return current

    def _apply_item(self, tensor: Tensor, item, axis: int, node: ast.Subscript, frame: Frame):
        """Emit the node for one subscript item; returns the new tensor and next axis."""
        site = CallSite(frame.span_of(item), scope=frame.instance.path if frame.instance else "",
                        labels=frame.site.labels if frame.builtin and frame.site else ())
        site.spans[0] = frame.span_of(node.value)
        if isinstance(item, ast.Slice):
            return self._slice(tensor, item, axis, site, frame)
        if isinstance(item, ast.Literal) and item.value is None:
            return self.ops.emit_op("unsqueeze", [tensor], {"dim": axis}, site)[0], axis + 1
        value = self.evaluator.evaluate(item, frame)
        if isinstance(value, Poison):
            return POISON, axis
        if isinstance(value, tuple):
            site.spans["indices"] = frame.span_of(item)
            indices = tuple(dim_value(index) for index in value)
            return self.ops.emit_op("gather", [tensor], {"indices": indices, "axis": axis}, site)[0], axis + 1
        value = dim_value(value)
        if isinstance(value, bool) or not isinstance(value, (int, Dim)):
            raise fail("E103", f"a tensor index must be an int, a dim, a slice or a list, found {kind_of(value)}",
                       frame.span_of(item))
        site.spans["index"] = frame.span_of(item)
        return self.ops.emit_op("select", [tensor], {"axis": axis, "index": value}, site)[0], axis

    def _slice(self, tensor: Tensor, item: ast.Slice, axis: int, site: CallSite, frame: Frame):
        """`a:b:c` on one axis; a full `:` emits nothing."""
        if item.start is None and item.stop is None and item.step is None:
            return tensor, axis + 1
        attrs = {"axis": axis}
        for name, part in (("start", item.start), ("stop", item.stop), ("step", item.step)):
            value = None if part is None else dim_value(self.evaluator.evaluate(part, frame))
            if isinstance(value, Poison):
                return POISON, axis + 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, Dim))):
                raise fail("E103", f"slice {name} must be an int or a dim, found {kind_of(value)}",
                           frame.span_of(part))
            if part is not None:
                site.spans[name] = frame.span_of(part)
                site.texts[name] = self.state.source_text(part)
            attrs[name] = value if value is not None or name != "step" else 1
        return self.ops.emit_op("slice", [tensor], attrs, site)[0], axis + 1


def _consumes_axis(item: ast.Node) -> bool:
    """Everything but `none` and `...` indexes one existing axis."""
    return not isinstance(item, ast.EllipsisItem) and not (isinstance(item, ast.Literal) and item.value is None)


def _expand_ellipsis(node: ast.Subscript, rank: int, frame: Frame) -> list:
    """Replace `...` by as many full slices as needed; report too many indices."""
    ellipses = [item for item in node.items if isinstance(item, ast.EllipsisItem)]
    if len(ellipses) > 1:
        raise fail("E209", "an index can contain at most one `...`", frame.span_of(ellipses[1]))
    consumed = sum(1 for item in node.items if _consumes_axis(item))
    if consumed > rank:
        raise fail("E209", f"too many indices: {consumed} for a tensor of rank {rank}", frame.span_of(node),
                   label=f"the tensor has {rank} axes")
    items: list = []
    for item in node.items:
        if isinstance(item, ast.EllipsisItem):
            items.extend(ast.Slice(item.span, None, None, None) for _ in range(rank - consumed))
        else:
            items.append(item)
    return items
