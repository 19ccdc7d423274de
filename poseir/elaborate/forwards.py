"""Module forwards at compile time: bind arguments to a signature, run the body, check the outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.elaborate import replay
from poseir.ir.facts import logged
from poseir.elaborate.fixits import dropped_arguments, untyped
from poseir.elaborate.builder import CallSite
from poseir.diagnostics.record import Diagnostic, Label, fail
from poseir.elaborate.scope import Frame, Usage
from poseir.syntax.source import Span
from poseir.elaborate.statements import ReturnSignal
from poseir.elaborate.values import POISON, ModuleInstance, ModuleList, Poison, Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.patterns import PatternMatcher
    from poseir.elaborate.state import ElaborationState
    from poseir.elaborate.statements import StatementRunner


class ForwardRunner:
    """Runs a module's forward, inlined at each call: `self.conv(x)` becomes the nodes of its body.

    Interface: `call_module` (a call of a module instance or a Sequential in a forward),
    `select_forward` (the forward serving the mode), `active` (the params or outputs of the mode)
    and `execute_forward` (bind arguments, check facts, run the body, check the outputs; the root
    forward uses it too). Input types are matched by the pattern matcher, bodies run by the
    statement runner, returned expressions evaluated by the evaluator.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator, statements: StatementRunner,
                 patterns: PatternMatcher):
        self.state = state
        self.evaluator = evaluator
        self.statements = statements
        self.patterns = patterns
        self.memo = replay.memo_of(state.program)

    def call_module(self, callee, call: ast.Call, frame: Frame):
        """`self.conv(x)`: run a submodule's forward (inlined) on evaluated arguments."""
        if frame.kind != "forward":
            raise fail("E105", "modules can only be called inside `forward`", frame.span_of(call))
        arguments = [self.evaluator.evaluate(argument.value, frame) for argument in call.arguments]
        if getattr(callee, "broken", False) or any(getattr(item, "broken", False)
                                                   for item in getattr(callee, "items", ())):
            return POISON
        if any(isinstance(argument, Tensor) and argument.is_error for argument in arguments):
            return POISON  # the mistake that made it was reported; the module's checks would only echo it
        if isinstance(callee, ModuleList):
            return self.call_sequential(callee, call, frame, arguments)
        forward = self.select_forward(callee, frame.span_of(call))
        if forward is None:
            return POISON
        decl, scope = forward
        site = self.inner_site(callee, call, frame)
        inner = Frame(scope.child(), "forward", callee, callee.definition.builtin, site)
        return self.run_forward(callee, decl, inner, arguments, frame.span_of(call), call)

    def call_sequential(self, container: ModuleList, call: ast.Call, frame: Frame, arguments: list):
        """A Sequential applies its items in order; a plain module list cannot be called."""
        if not container.sequential:
            raise fail("E101", "a module list cannot be called; call one of its items, e.g. `self.blocks[i](x)`",
                       frame.span_of(call))
        value = arguments[0] if len(arguments) == 1 else POISON
        for item in container.items:
            if isinstance(value, Poison):
                return POISON
            forward = self.select_forward(item, frame.span_of(call))
            if forward is None:
                return POISON
            decl, scope = forward
            inner = Frame(scope.child(), "forward", item, item.definition.builtin, self.inner_site(item, call, frame))
            value = self.run_forward(item, decl, inner, [value], frame.span_of(call), call)
        return value

    def inner_site(self, callee: ModuleInstance, call: ast.Call, frame: Frame) -> CallSite | None:
        """The user call site that diagnostics inside a prelude module point at."""
        if frame.builtin and frame.site:
            return frame.site
        if not callee.definition.builtin:
            return None
        label = Label(callee.span, f"`{callee.name}` created here")
        return CallSite(call.span, labels=(label,), scope=callee.path)

    def select_forward(self, instance: ModuleInstance, span: Span):
        """The forward serving the current mode: `forward train`/`forward infer`, else plain `forward`."""
        mode = self.state.mode_decides(any(key is not None for key in instance.forwards))
        for key in (mode, None):
            if key in instance.forwards:
                return instance.forwards[key]
        other = [key for key in instance.forwards if key]
        message = (f"`{instance.name}` has no forward for {self.state.mode} mode" if other
                   else f"`{instance.name}` has no `forward`")
        helps = (f"add `forward {self.state.mode}(...)` or a plain `forward(...)`",)
        self.state.diagnostics.append(Diagnostic.make("E101", message, span, helps=helps))
        return None

    def active(self, items):
        """The forward params/outputs that exist in the current mode."""
        mode = self.state.mode_decides(any(item.mode is not None for item in items))
        return [item for item in items if item.mode in (None, mode)]

    def run_forward(self, instance, decl: ast.Forward, frame: Frame, arguments: list, span: Span, call):
        """`execute_forward` of a call, replayed when an equal call ran before (see `poseir.elaborate.replay`)."""
        key, external = replay.forward_key(self.memo, self.state, instance, decl, frame, arguments) \
            if replay.ENABLED else (None, None)
        template = self.memo.find_forward(key, self.state.mode, self.state.builder.facts) if key is not None else None
        if template is not None and template.fits(self.state):
            return template.replay(self.state, instance, arguments, external)
        mark = self.memo.mark(self.state)
        result, queries = logged(key is not None and self.memo.logs_queries,
                                 lambda: self.execute_forward(instance, decl, frame, arguments, span, call))
        if key is not None and self.memo.clean_since(self.state, mark):
            recorded = replay.ForwardTemplate.record(self.state, instance, arguments, external, mark, result)
            if recorded is not None:
                mode = self.state.mode if self.state.mode_reads != mark.mode_reads else None
                self.memo.keep_forward(key, mode, recorded, queries, self.state.builder.facts)
        return result

    def execute_forward(self, instance, decl: ast.Forward, frame: Frame, arguments: list, span: Span, call=None):
        """Bind arguments to the signature, check facts, run the body, check declared outputs."""
        params = self.active(decl.params)
        if len(arguments) != len(params):
            raise fail("E102", f"`{instance.name}` forward takes {len(params)} inputs, {len(arguments)} given", span,
                       candidates=dropped_arguments(call, len(arguments) - len(params))
                       if isinstance(call, ast.Call) and not frame.builtin else ())
        bindings: dict = {}
        for param, argument in zip(params, arguments):
            if param.type is not None and call is not None and not isinstance(argument, (Tensor, Poison)):
                raise fail("E103", f"input `{param.name}` of `{instance.name}` is declared a tensor, found "
                                   f"{kind_of(argument)}", span, labels=(Label(param.type.span, "declared here"),),
                           helps=("an input that takes a module, a number or a list is written without a type",),
                           candidates=untyped(param))
            typed = param.type is not None and isinstance(argument, Tensor)
            if typed and instance.path != "<root>" and call is not None:
                self.patterns.match_type(param.type, argument, frame, bindings, span, f"input `{param.name}`")
            frame.scope.define(param.name, argument)
            self.state.record_binding(param.span, param.name, argument, frame)
        frame.dims = {**frame.dims, **bindings}
        for name, dim in bindings.items():
            self.state.record_binding(decl.span, name, dim, frame)  # a pattern dim, bound at this call
        if call is not None:
            self.patterns.check_callee_facts(decl, frame, span)
        if not frame.builtin:
            frame.usage = Usage(other_mode=self.other_mode_names(decl))
        outer = self.state.builder.call_labels
        if call is not None and not frame.builtin and any(param.type is None for param in params):
            # Inside an untyped helper a mistake may be the caller's: show where it was called from.
            self.state.builder.call_labels = (*outer, self.required_from(instance, span, arguments))
        try:
            self.statements.run_statements(decl.body, frame)
        except ReturnSignal as returned:
            values = self.returned_values(decl, returned, span)
            self.report_unused(frame)
            return values
        finally:
            self.state.builder.call_labels = outer
        raise fail("E105", f"`{instance.name}` forward ends without `return`", decl.span)

    def required_from(self, instance, span: Span, arguments: list) -> Label:
        """`called here with f32[B, T, 34]`: the label a helper's diagnostics carry at its call site."""
        types = ", ".join(argument.type.describe() for argument in arguments if isinstance(argument, Tensor))
        return Label(span, f"`{instance.name}` called here" + (f" with {types}" if types else ""))

    def other_mode_names(self, decl: ast.Forward) -> dict:
        """Inputs and locals that exist only in the other mode, for a precise E100."""
        names = {param.name: param.mode for param in decl.params if param.mode not in (None, self.state.mode)}
        pending = list(decl.body)
        while pending:
            statement = pending.pop()
            if isinstance(statement, ast.ModeBlock) and statement.mode != self.state.mode:
                for inner in statement.body:
                    if isinstance(inner, ast.Assign):
                        names.update({target.name: statement.mode for target in inner.targets if not target.on_self})
            for attribute in ("body", "otherwise"):
                pending.extend(getattr(statement, attribute, None) or ())
            for _, body in getattr(statement, "branches", ()):
                pending.extend(body)
        return names

    def report_unused(self, frame: Frame) -> None:
        """W302 for tensors computed in a forward and never read (often a forgotten residual)."""
        if frame.usage is None:
            return
        for name, (span, value) in frame.usage.assigned.items():
            if name.startswith("_") or name in frame.usage.read or not isinstance(value, Tensor) or value.is_error:
                continue
            self.state.builder.diagnostics.append(Diagnostic.make(
                "W302", f"`{name}` is computed but never used", span, labels=(Label(span, "assigned here"),),
                helps=(f"remove it, or name it `_{name}` if it is meant to be unused",)))

    def returned_values(self, decl: ast.Forward, returned: ReturnSignal, span: Span):
        """Evaluate the returned expressions that exist in this mode; check declared types."""
        statement, frame = returned.statement, returned.frame
        if decl.outputs is None:
            values = [self.evaluator.evaluate(node, frame) for node in statement.values]
            return values[0] if len(values) == 1 else tuple(values)
        if len(statement.values) != len(decl.outputs):
            raise fail("E102", f"`return` gives {_count(len(statement.values), 'value')} but the forward "
                               f"declares {_count(len(decl.outputs), 'output')}", statement.span)
        results = []
        mode = self.state.mode_decides(any(output.mode is not None for output in decl.outputs))
        for output, node in zip(decl.outputs, statement.values):
            if output.mode not in (None, mode):
                continue
            value = self.evaluator.evaluate(node, frame)
            if isinstance(value, Tensor):
                self.patterns.check_declared(output.type, value, frame, node.span, f"output `{output.name}`")
            results.append(value)
        return results[0] if len(results) == 1 else tuple(results)


def _count(number: int, noun: str) -> str:
    """`1 value`, `2 values`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
