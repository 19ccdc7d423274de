"""Statements at compile time: assignments, loops, conditions, mode blocks, assertions, `return`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.diagnostics.record import Diagnostic, DiagnosticError, Label, fail
from poseir.elaborate.fixits import continued_expression
from poseir.elaborate.scope import Frame
from poseir.elaborate.values import POISON, ModuleInstance, ModuleList, Poison, Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.patterns import PatternMatcher
    from poseir.elaborate.state import ElaborationState


class ReturnSignal(Exception):
    """Unwinds a forward body at `return`; the caller evaluates the returned expressions."""

    def __init__(self, statement: ast.Return, frame: Frame):
        super().__init__("return")
        self.statement = statement
        self.frame = frame


class StatementRunner:
    """Runs statement lists (module bodies, forwards, loops, conditions), recovering from each mistake.

    Interface: `run_statements`. A user mistake is recorded in the state's diagnostics and the
    statement's names become POISON; `return` unwinds as a `ReturnSignal` for the forward runner.
    Expressions are evaluated by the evaluator; declared types are checked by the pattern matcher.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator, patterns: PatternMatcher):
        self.state = state
        self.evaluator = evaluator
        self.patterns = patterns

    def run_statements(self, statements, frame: Frame) -> None:
        """Run statements in order; a user mistake is recorded and the statement's names poisoned."""
        for statement in statements:
            try:
                self.run_statement(statement, frame)
            except DiagnosticError as error:
                self.state.diagnostics.append(self.state.builder.in_call_context(error.diagnostic))
                self.poison_targets(statement, frame)

    def poison_targets(self, statement, frame: Frame) -> None:
        """After a failed assignment its names hold POISON, so later uses report nothing more."""
        if isinstance(statement, (ast.Assign, ast.AugAssign)):
            for target in getattr(statement, "targets", None) or (statement.target,):
                if target.on_self and frame.instance is not None:
                    frame.instance.attributes.setdefault(target.name, POISON)
                elif not target.on_self:
                    frame.scope.define(target.name, POISON)

    def run_statement(self, statement, frame: Frame) -> None:
        """Dispatch on the statement kind."""
        handler = getattr(self, "_run_" + type(statement).__name__)
        handler(statement, frame)

    def _run_Assign(self, statement: ast.Assign, frame: Frame) -> None:
        value = self.evaluator.evaluate(statement.value, frame)
        if statement.annotation is not None and isinstance(value, Tensor):
            self.patterns.check_declared(statement.annotation, value, frame, statement.value.span, "the value")
        targets = statement.targets
        if len(targets) > 1:
            if isinstance(value, Poison):
                value = (POISON,) * len(targets)
            if not isinstance(value, tuple) or len(value) != len(targets):
                count = len(value) if isinstance(value, tuple) else 1
                raise fail("E102", f"cannot unpack {count} value(s) into {len(targets)} names", statement.span)
            for target, item in zip(targets, value):
                self.assign(target, item, frame)
            return
        self.assign(targets[0], value, frame)

    def assign(self, target: ast.Target, value, frame: Frame) -> None:
        """Bind a local, or set `self.name` in a module body."""
        self.state.record_binding(target.span, target.name, value, frame)
        if not target.on_self:
            frame.scope.define(target.name, value)
            if frame.usage is not None:
                frame.usage.assigned[target.name] = (target.span, value)
                frame.usage.read.discard(target.name)
            return
        if frame.kind != "module":
            raise fail("E105", "`self.name = ...` is only allowed in a module body, not in `forward`", target.span,
                       helps=("use a local name instead",))
        if target.name in frame.instance.attributes and not isinstance(frame.instance.attributes[target.name], Poison):
            # Report it, then replace the old value as PyTorch would, so later uses see the new one.
            self.state.diagnostics.append(Diagnostic.make(
                "E104", f"`self.{target.name}` is already defined", target.span,
                labels=(Label(target.span, "redefined here"),),
                helps=("give each submodule its own name; a second assignment silently replaces the first",)))
        if isinstance(value, tuple) and value and all(isinstance(item, (ModuleInstance, ModuleList)) for item in value):
            value = ModuleList(list(value), target.span)
        elif value == ():
            value = ModuleList([], target.span)
        frame.instance.attributes[target.name] = value

    def _run_AugAssign(self, statement: ast.AugAssign, frame: Frame) -> None:
        """`x += y` is `x = x + y` (a new value: nothing is ever modified in place)."""
        target = statement.target
        left = (ast.Attribute(target.span, ast.SelfRef(target.span), target.name, target.span) if target.on_self
                else ast.Name(target.span, target.name))
        combined = ast.Binary(statement.span, statement.op, left, statement.value)
        try:
            value = self.evaluator.evaluate(combined, frame)
        except DiagnosticError as error:
            # Fix-its of the operator would rewrite the spelled-out `x = x + y`, which is not in the text.
            raise DiagnosticError(replace(error.diagnostic, fixes=())) from None
        self.assign(target, value, frame)

    def _run_ExprStatement(self, statement: ast.ExprStatement, frame: Frame) -> None:
        if not isinstance(statement.expr, ast.Call):
            text = self.state.source_text(statement.expr)
            raise fail("E108", "this statement computes a value and throws it away", frame.span_of(statement),
                       label="this line is a statement of its own", helps=_discarded_helps(text),
                       candidates=continued_expression(statement) if not frame.builtin and
                       text.lstrip().startswith(("+", "-", "*", "/")) else ())
        value = self.evaluator.evaluate(statement.expr, frame)
        if isinstance(value, Tensor) and not value.is_error and not frame.builtin:
            self.state.builder.diagnostics.append(Diagnostic.make(
                "W302", "the result of this call is never used", statement.span,
                labels=(Label(statement.span, f"this is {value.type}"),),
                helps=("assign it (`x = ...`) or remove the call",)))

    def _run_AssertType(self, statement: ast.AssertType, frame: Frame) -> None:
        value = self.evaluator.evaluate(statement.expr, frame)
        if isinstance(value, Poison):
            return
        if not isinstance(value, Tensor):
            raise fail("E103", f"`assert x: type` needs a tensor, found {kind_of(value)}", statement.expr.span)
        what = f"`{self.state.source_text(statement.expr)}`"
        self.patterns.check_declared(statement.type, value, frame, statement.expr.span, what)

    def _run_AssertCondition(self, statement: ast.AssertCondition, frame: Frame) -> None:
        if not self.evaluator.condition(statement.condition, frame):
            if frame.kind == "module" and frame.instance is not None:
                # The configuration is invalid: running the module's forward would only report
                # consequences of this one mistake.
                frame.instance.broken = True
            message = statement.message or f"assertion `{self.state.source_text(statement.condition)}` failed"
            raise fail("E105", message, frame.span_of(statement), label="this is false")

    def _run_Return(self, statement: ast.Return, frame: Frame) -> None:
        if frame.kind != "forward":
            raise fail("E105", "`return` is only allowed in `forward`", statement.span)
        raise ReturnSignal(statement, frame)

    def _run_For(self, statement: ast.For, frame: Frame) -> None:
        for item in self.evaluator.iterate(statement.iterable, frame):
            self.state.budget.iterate(1, statement.span)
            for name, value in self.evaluator.unpack(statement.names, item, statement.span).items():
                frame.scope.define(name, value)
                self.state.record_binding(statement.span, name, value, frame)
            self.run_statements(statement.body, frame)

    def _run_If(self, statement: ast.If, frame: Frame) -> None:
        for condition, body in statement.branches:
            if self.evaluator.condition(condition, frame):
                self.run_statements(body, frame)
                return
        if statement.otherwise is not None:
            self.run_statements(statement.otherwise, frame)

    def _run_ModeBlock(self, statement: ast.ModeBlock, frame: Frame) -> None:
        if frame.kind != "forward":
            raise fail("E105", f"`{statement.mode} {{ }}` blocks belong in `forward`; parameters are shared by "
                               f"both modes", statement.span)
        if statement.mode == self.state.mode_decides():
            self.run_statements(statement.body, frame)

    def _run_Forward(self, statement: ast.Forward, frame: Frame) -> None:
        if frame.kind != "module":
            raise fail("E105", "`forward` is declared in a module body", statement.span)
        seen: dict = {}
        for param in (*statement.params, *(statement.outputs or ())):
            if param.name in seen and (param.mode is None or seen[param.name].mode in (None, param.mode)):
                raise fail("E104", f"`{param.name}` is declared twice in this forward", param.span,
                           labels=(Label(param.span, "declared again here"),
                                   Label(seen[param.name].span, "first declared here")))
            seen[param.name] = param
        if statement.mode in frame.instance.forwards:
            raise fail("E104", f"`{frame.instance.name}` already has a {statement.mode or 'plain'} forward",
                       statement.span)
        frame.instance.forwards[statement.mode] = (statement, frame.scope)


def _discarded_helps(text: str) -> tuple[str, ...]:
    """A line that starts with `+ ...` was almost always meant to continue the previous one."""
    if text.lstrip().startswith(("+", "-", "*", "/")):
        return ("a statement ends at the end of its line; to continue an expression on the next line, "
                "put the whole expression in parentheses",)
    return ("assign the value to a name, or remove the line",)
