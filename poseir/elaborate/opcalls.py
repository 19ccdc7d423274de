"""Op calls during elaboration: bind arguments to a registry signature, then emit one typed node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.elaborate.builder import CallSite, dim_value
from poseir.elaborate.fixits import respelled_keyword, size_of_reduced_axis
from poseir.diagnostics.record import fail
from poseir.ops.registry import KEYWORDS, OPTIONAL_TENSOR, REQUIRED, TENSOR, TENSORS, VARIADIC, OpDef, lookup
from poseir.elaborate.scope import Frame, suggest
from poseir.elaborate.values import POISON, ModuleDef, ModuleInstance, ModuleList, Poison, Skeleton, Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.state import ElaborationState


class OpCaller:
    """Calls registry ops from the language: binds arguments to a signature and emits typed nodes.

    Interface: `call_op` (a call such as `x.view(B, T, -1)`), `emit_op` (a node the evaluator chooses
    itself, for operators and subscripts) and `site_for` (the call site of an operator expression).
    It evaluates argument expressions with the evaluator it is given.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator):
        self.state = state
        self.evaluator = evaluator

    def call_op(self, op: OpDef, node: ast.Call, arguments, frame: Frame, receiver: Tensor | None = None):
        """Bind call arguments to an op signature, evaluate them, and emit the node."""
        if frame.kind != "forward":
            raise fail("E105", f"the op `{op.name}` can only be used inside `forward`", frame.span_of(node))
        if frame.kind == "forward" and self.state.mode_decides(len(op.modes) < 2) not in op.modes:
            raise fail("E105", f"`{op.name}` exists only in {' and '.join(op.modes)} mode",
                       frame.span_of(node), helps=(f"put it in a `{op.modes[0]} {{ ... }}` block",))
        bound = self.bind_arguments(op, node, arguments, frame)
        site = CallSite(frame.span_of(node), labels=frame.site.labels if frame.builtin and frame.site else (),
                        scope=frame.instance.path if frame.instance else "")
        tensors, attrs = [], {}
        for param in op.signature:
            entries = bound.get(param.name)
            self.collect(op, param, entries, frame, site, tensors, attrs, receiver)
        if any(isinstance(value, Poison) for value in [*tensors, *attrs.values()]):
            return POISON
        tensors = self.numbers_as_constants(tensors, frame)
        outputs = self.state.builder.emit(op, tensors, attrs, site)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def bind_arguments(self, op: OpDef, node: ast.Call, arguments, frame: Frame) -> dict:
        """Map signature parameter names to argument nodes (a list for variadics)."""
        bound: dict = {}
        params = list(op.signature)
        index = 0
        for argument in arguments:
            if argument.name is not None:
                continue
            if index >= len(params):
                raise fail("E102", f"`{op.name}` takes {len(params)} positional arguments", argument.span,
                           label="unexpected argument", notes=(self.signature_text(op),))
            param = params[index]
            if param.kind == VARIADIC:
                bound.setdefault(param.name, []).append(argument)
            else:
                bound[param.name] = argument
                index += 1
        for argument in arguments:
            if argument.name is None:
                continue
            names = [param.name for param in params]
            keywords = next((param for param in params if param.kind == KEYWORDS), None)
            if argument.name not in names and keywords is not None:
                bound.setdefault(keywords.name, []).append(argument)
                continue
            if argument.name not in names:
                guess = suggest(argument.name, names)
                raise fail("E102", f"`{op.name}` has no argument `{argument.name}`", argument.span,
                           label="unknown argument", notes=(self.signature_text(op),),
                           helps=(f"did you mean `{guess}`?",) if guess else (),
                           candidates=(respelled_keyword(argument, guess),) if guess and not frame.builtin else ())
            if argument.name in bound:
                raise fail("E102", f"argument `{argument.name}` given twice", argument.span)
            bound[argument.name] = argument
        for param in params:
            if param.name not in bound and param.default is REQUIRED and param.kind != VARIADIC:
                raise fail("E102", f"`{op.name}` is missing the argument `{param.name}`", frame.span_of(node),
                           notes=(self.signature_text(op),))
        return bound

    def collect(self, op, param, entries, frame, site, tensors, attrs, receiver) -> None:
        """Evaluate the arguments of one parameter into tensor inputs or attributes."""
        if param.kind in (TENSOR, OPTIONAL_TENSOR):
            if entries is None:
                tensors.append(None)
                return
            use_receiver = receiver is not None and not tensors
            value = receiver if use_receiver else self.evaluator.evaluate(entries.value, frame)
            if value is None and param.kind == OPTIONAL_TENSOR:
                tensors.append(None)
                return
            if _is_numeric(value):
                value = _Number(value, entries.value)
            elif not isinstance(value, (Tensor, Poison)):
                raise fail("E103", f"`{param.name}` of `{op.name}` must be a tensor, found {kind_of(value)}",
                           frame.span_of(entries))
            self.note_argument(site, len(tensors), entries, frame)
            tensors.append(value)
            return
        if param.kind == TENSORS:
            values = self.evaluator.evaluate(entries.value, frame) if entries is not None else ()
            values = values if isinstance(values, tuple) else (values,)
            for value in values:
                if not isinstance(value, (Tensor, Poison)):
                    raise fail("E103", f"`{param.name}` of `{op.name}` must be a list of tensors",
                               frame.span_of(entries))
                tensors.append(value)
            items = entries.value.items if entries is not None and isinstance(
                entries.value, (ast.ListExpr, ast.TupleExpr)) and len(entries.value.items) == len(values) else None
            for position in range(len(values)):
                site.spans[position] = frame.span_of(items[position] if items else entries)
            return
        if param.kind == VARIADIC:
            attrs[param.name] = self.variadic_attr(param, entries or [], frame, site)
            return
        if param.kind == KEYWORDS:
            attrs[param.name] = self.keyword_attrs(param, entries or [], frame, site)
            return
        if entries is None:
            attrs[param.name] = param.default
            return
        value = self.evaluator.evaluate(entries.value, frame)
        self.note_argument(site, param.name, entries, frame)
        if isinstance(entries.value, (ast.ListExpr, ast.TupleExpr)) and not frame.builtin:
            for position, item in enumerate(entries.value.items):
                site.spans[(param.name, position)] = item.span
                site.texts[(param.name, position)] = self.state.source_text(item)
        attrs[param.name] = self.attr_value(value, entries, frame)

    def numbers_as_constants(self, tensors: list, frame: Frame) -> list:
        """Numbers given for tensor inputs (`where(mask, x, 0.0)`) as constants of the tensors' dtype.

        The dtype is the first tensor input's that is not a bool mask, as a scalar operand of `+`
        takes the other operand's; f32 when there is none.
        """
        if not any(isinstance(value, _Number) for value in tensors):
            return tensors
        dtypes = [value.type.dtype for value in tensors if isinstance(value, Tensor) and not value.is_error]
        dtype = next((dtype for dtype in dtypes if dtype != "bool"), "f32")
        return [self.emit_op("constant", [], {"value": value.value, "dtype": dtype},
                             self.site_for(value.node, frame, []))[0] if isinstance(value, _Number) else value
                for value in tensors]

    def variadic_attr(self, param, entries, frame: Frame, site: CallSite) -> tuple:
        """`x.view(B, T, -1)` or `x.view((B, T, -1))`: a tuple with a span per element."""
        if len(entries) == 1 and isinstance(entries[0].value, (ast.ListExpr, ast.TupleExpr)):
            entries = [ast.Argument(item.span, None, item) for item in entries[0].value.items]
        values = []
        for position, entry in enumerate(entries):
            value = self.evaluator.evaluate(entry.value, frame)
            if isinstance(value, tuple) and len(entries) == 1:
                return tuple(self.attr_value(item, entry, frame) for item in value)
            if not frame.builtin:
                site.spans[(param.name, position)] = entry.span
                site.texts[(param.name, position)] = self.state.source_text(entry.value)
            values.append(self.attr_value(value, entry, frame))
        if not frame.builtin and entries:
            site.spans[param.name] = entries[0].span.merge(entries[-1].span)
        return tuple(values)

    def keyword_attrs(self, param, entries, frame: Frame, site: CallSite) -> tuple:
        """`rearrange(x, "...", f = T)`: extra keywords as (name, value) pairs, in call order."""
        pairs = []
        for position, entry in enumerate(entries):
            if not frame.builtin:
                site.spans[(param.name, position)] = entry.span
            pairs.append((entry.name, self.attr_value(self.evaluator.evaluate(entry.value, frame), entry, frame)))
        return tuple(pairs)

    def attr_value(self, value, entry, frame: Frame):
        """Check that an attribute is a compile-time value; normalize dims."""
        if isinstance(value, Poison):
            return POISON
        if isinstance(value, Tensor):
            raise fail("E103", "this argument must be known at compile time, found a tensor",
                       frame.span_of(entry), helps=("pass a dim, an int or a list of them",),
                       candidates=size_of_reduced_axis(self.state.builder.producers, value.name)
                       if not frame.builtin else ())
        if isinstance(value, tuple):
            return tuple(self.attr_value(item, entry, frame) for item in value)
        if isinstance(value, Skeleton):
            return value.name
        if isinstance(value, (ModuleInstance, ModuleList, ModuleDef)):
            raise fail("E103", f"expected a compile-time value, found {kind_of(value)}", frame.span_of(entry))
        return dim_value(value)

    def note_argument(self, site: CallSite, key, entry: ast.Argument, frame: Frame) -> None:
        """Remember an argument's span and text for diagnostics and fix-its."""
        if frame.builtin:
            return
        site.spans[key] = entry.span
        site.texts[key] = self.state.source_text(entry.value)

    def signature_text(self, op: OpDef) -> str:
        """`reshape(x, *shape)`-style text of a signature, for notes."""
        parts = []
        for param in op.signature:
            text = {VARIADIC: "*", KEYWORDS: "**"}.get(param.kind, "") + param.name
            if param.default is not REQUIRED:
                text += f"={param.default!r}".replace("None", "none")
            parts.append(text)
        return f"signature: {op.name}({', '.join(parts)})"

    def emit_op(self, name: str, tensors: list, attrs: dict, site: CallSite):
        """Emit a node of a registry op chosen by the elaborator itself (operators, slicing)."""
        if any(isinstance(value, Poison) for value in tensors):
            return [POISON]
        return self.state.builder.emit(lookup(name), tensors, attrs, site)

    def site_for(self, node: ast.Node, frame: Frame, parts) -> CallSite:
        """A call site for an operator expression, with a span per operand."""
        site = CallSite(frame.span_of(node), labels=frame.site.labels if frame.builtin and frame.site else (),
                        scope=frame.instance.path if frame.instance else "")
        if not frame.builtin:
            for index, part in enumerate(parts):
                site.spans[index] = part.span
                site.texts[index] = self.state.source_text(part)
        return site


@dataclass(frozen=True)
class _Number:
    """A number given for a tensor input, waiting for the dtype of the call's tensors."""

    value: object
    node: ast.Node


def _is_numeric(value) -> bool:
    """A number, or a (nested) list of numbers, that can become a constant tensor."""
    if isinstance(value, tuple):
        return bool(value) and all(_is_numeric(item) for item in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)
