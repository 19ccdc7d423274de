"""Lower a tensor subscript `x[:, :, 1::3]` into slice, select, gather and unsqueeze nodes."""

from __future__ import annotations

from poseir.syntax import ast
from poseir.elaborate.builder import CallSite, dim_value
from poseir.ir.dims import Dim
from poseir.diagnostics.record import fail
from poseir.elaborate.scope import Frame
from poseir.elaborate.values import POISON, Poison, Tensor, kind_of


def index_tensor(evaluator, tensor: Tensor, node: ast.Subscript, frame: Frame):
    """Apply each subscript item in turn; one node per item that changes something."""
    if tensor.is_error:
        return POISON
    items = _expand_ellipsis(node, tensor.type.rank, evaluator, frame)
    axis = 0
    current = tensor
    for item in items:
        if isinstance(current, Poison):
            return POISON
        current, axis = _apply_item(evaluator, current, item, axis, node, frame)
    return current


def _consumes_axis(item: ast.Node) -> bool:
    """Everything but `none` and `...` indexes one existing axis."""
    return not isinstance(item, ast.EllipsisItem) and not (isinstance(item, ast.Literal) and item.value is None)


def _expand_ellipsis(node: ast.Subscript, rank: int, evaluator, frame: Frame) -> list:
    """Replace `...` by as many full slices as needed; report too many indices."""
    ellipses = [item for item in node.items if isinstance(item, ast.EllipsisItem)]
    if len(ellipses) > 1:
        raise fail("E209", "an index can contain at most one `...`", evaluator.span(ellipses[1], frame))
    consumed = sum(1 for item in node.items if _consumes_axis(item))
    if consumed > rank:
        raise fail("E209", f"too many indices: {consumed} for a tensor of rank {rank}", evaluator.span(node, frame),
                   label=f"the tensor has {rank} axes")
    items: list = []
    for item in node.items:
        if isinstance(item, ast.EllipsisItem):
            items.extend(ast.Slice(item.span, None, None, None) for _ in range(rank - consumed))
        else:
            items.append(item)
    return items


def _apply_item(evaluator, tensor: Tensor, item, axis: int, node: ast.Subscript, frame: Frame):
    """Emit the node for one subscript item; returns the new tensor and next axis."""
    site = CallSite(evaluator.span(item, frame), scope=frame.instance.path if frame.instance else "",
                    labels=frame.site.labels if frame.builtin and frame.site else ())
    site.spans[0] = evaluator.span(node.value, frame)
    if isinstance(item, ast.Slice):
        return _slice(evaluator, tensor, item, axis, site, frame)
    if isinstance(item, ast.Literal) and item.value is None:
        return evaluator.emit_op("unsqueeze", [tensor], {"dim": axis}, site)[0], axis + 1
    value = evaluator.evaluate(item, frame)
    if isinstance(value, Poison):
        return POISON, axis
    if isinstance(value, tuple):
        site.spans["indices"] = evaluator.span(item, frame)
        indices = tuple(dim_value(index) for index in value)
        return evaluator.emit_op("gather", [tensor], {"indices": indices, "axis": axis}, site)[0], axis + 1
    value = dim_value(value)
    if isinstance(value, bool) or not isinstance(value, (int, Dim)):
        raise fail("E103", f"a tensor index must be an int, a dim, a slice or a list, found {kind_of(value)}",
                   evaluator.span(item, frame))
    site.spans["index"] = evaluator.span(item, frame)
    return evaluator.emit_op("select", [tensor], {"axis": axis, "index": value}, site)[0], axis


def _slice(evaluator, tensor: Tensor, item: ast.Slice, axis: int, site: CallSite, frame: Frame):
    """`a:b:c` on one axis; a full `:` emits nothing."""
    if item.start is None and item.stop is None and item.step is None:
        return tensor, axis + 1
    attrs = {"axis": axis}
    for name, part in (("start", item.start), ("stop", item.stop), ("step", item.step)):
        value = None if part is None else dim_value(evaluator.evaluate(part, frame))
        if isinstance(value, Poison):
            return POISON, axis + 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, Dim))):
            raise fail("E103", f"slice {name} must be an int or a dim, found {kind_of(value)}",
                       evaluator.span(part, frame))
        if part is not None:
            site.spans[name] = evaluator.span(part, frame)
            site.texts[name] = evaluator.source_text(part)
        attrs[name] = value if value is not None or name != "step" else 1
    return evaluator.emit_op("slice", [tensor], attrs, site)[0], axis + 1
