"""Tensor type patterns: bind a module's input dims at a call, and check declared types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.elaborate.builder import dim_value
from poseir.elaborate.fixits import declared_size
from poseir.ops.repairs import add_fact
from poseir.diagnostics.record import Diagnostic, DiagnosticError, Label
from poseir.ir.dims import Dim, Tri
from poseir.diagnostics.record import fail
from poseir.elaborate.scope import Frame
from poseir.syntax.source import Span
from poseir.elaborate.values import Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.state import ElaborationState

_ELLIPSIS = "..."


class PatternMatcher:
    """Matches declared tensor types such as `f32[N, L, C]` against the types that reach them.

    Interface: `match_type` (a forward input at a call: binds pattern dims, checks the others),
    `check_declared` (an assertion or a declared output: E208), `check_callee_facts` (a module's
    `where` facts at a call) and `dim_of` (a dim expression's value). Dim expressions are
    evaluated by the evaluator; facts are read from and assumed into the graph builder.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator):
        self.state = state
        self.evaluator = evaluator

    def match_type(self, pattern: ast.TensorTypeExpr, tensor: Tensor, frame: Frame, bindings: dict,
                   span: Span, what: str) -> None:
        """Bind unbound declared dims of `pattern` to the actual dims; check the others."""
        actual = tensor.type
        dims = self.align(pattern, actual, span, what)
        if dims is None:
            return
        scoped = Frame(frame.scope, frame.kind, frame.instance, frame.builtin, frame.site, {**frame.dims, **bindings})
        unknown = []
        for node, dim in dims:
            if node is _ELLIPSIS:
                continue
            if self.is_pattern_variable(node, scoped):
                bindings[node.id] = dim
                scoped.dims[node.id] = dim
                continue
            expected = self.dim_of(node, scoped)
            if self.compare_dim(expected, dim, node, span, what, actual, pattern) is Tri.UNKNOWN:
                unknown.append((expected, dim))
        if unknown:
            self.warn_unproved(unknown, span, what, pattern)
        if pattern.dtype != actual.dtype:
            raise fail("E203", f"{what} expects {pattern.dtype}, found {actual.dtype}", span,
                       labels=(Label(pattern.span, "declared here"),))

    def align(self, pattern: ast.TensorTypeExpr, actual, span: Span, what: str):
        """Pair pattern dims with actual dims, expanding one `...`; E201 on a rank mismatch."""
        nodes = list(pattern.dims)
        ellipses = [index for index, node in enumerate(nodes) if isinstance(node, ast.EllipsisItem)]
        fixed = len(nodes) - len(ellipses)
        if (not ellipses and fixed != actual.rank) or (ellipses and fixed > actual.rank):
            raise fail("E201", f"{what} expects rank {fixed}{'+' if ellipses else ''}, found {actual}", span,
                       label=f"this is {actual}", labels=(Label(pattern.span, "declared here"),))
        if not ellipses:
            return list(zip(nodes, actual.shape))
        where = ellipses[0]
        tail = len(nodes) - where - 1
        pairs = list(zip(nodes[:where], actual.shape[:where]))
        pairs += [(_ELLIPSIS, dim) for dim in actual.shape[where:actual.rank - tail]]
        pairs += list(zip(nodes[where + 1:], actual.shape[actual.rank - tail:]))
        return pairs

    def is_pattern_variable(self, node, frame: Frame) -> bool:
        """A declared `dim` name not yet bound here (and not shadowed by a local) binds at the call."""
        return (isinstance(node, ast.Name) and node.id in self.state.program.dims and node.id not in frame.dims
                and node.id not in frame.scope.names)

    def dim_of(self, node: ast.Node, frame: Frame) -> Dim:
        """Evaluate a dim expression of a type."""
        value = dim_value(self.evaluator.evaluate(node, frame))
        if isinstance(value, bool) or not isinstance(value, (int, Dim)):
            raise fail("E103", f"a dim must be an int or a symbol, found {kind_of(value)}", node.span)
        return Dim.of(value)

    def compare_dim(self, expected: Dim, found: Dim, node, span: Span, what: str, actual, pattern) -> None:
        """E208 when a dim provably differs; returns the answer (UNKNOWN is warned by the caller)."""
        facts = self.state.builder.facts
        answer = facts.equal(expected, found)
        if answer is Tri.YES:
            return answer
        labels = (Label(pattern.span, f"declared as {self.pattern_text(pattern)}"),)
        if answer is Tri.NO:
            raise fail("E208", f"{what} has type {actual}, but {self.pattern_text(pattern)} is declared",
                       span, label=f"this is {actual}", labels=labels,
                       notes=(self.declared_note(node, expected, found),),
                       candidates=declared_size(node, self.state.source_text(node), expected, found))
        return answer

    def warn_unproved(self, pairs, span: Span, what: str, pattern) -> None:
        """One W300 for all the axes of a type that cannot be proved equal; assume them after."""
        facts = self.state.builder.facts
        equations = ", ".join(f"{expected} == {found}" for expected, found in pairs)
        assumptions = ", ".join(facts.assumption_for(expected, found) for expected, found in pairs)
        self.state.builder.assume(pairs)
        self.state.builder.diagnostics.append(Diagnostic.make(
            "W300", f"cannot prove {equations} for {what}", span,
            labels=(Label(pattern.span, f"declared as {self.pattern_text(pattern)}"),),
            helps=(f"add `where {assumptions}` to the forward signature to settle it",),
            candidates=(add_fact(span, assumptions),)))

    def declared_note(self, node, expected: Dim, found: Dim) -> str:
        """`T - 2` is declared (`T - 2` = ...), but the dim is ..."""
        text = self.state.source_text(node)
        shown = f"`{text}`" if text == str(expected) else f"`{text}` = {expected}"
        return f"{shown} is declared, but the dim is {found}"

    def pattern_text(self, pattern: ast.TensorTypeExpr) -> str:
        """The declared type as written."""
        return self.state.source_text(pattern)

    def check_declared(self, pattern: ast.TensorTypeExpr, tensor: Tensor, frame: Frame, span: Span, what: str) -> None:
        """An assertion or declared output type: every dim must equal the inferred one (E208)."""
        if tensor.is_error:
            return
        bindings: dict = {}
        try:
            self.match_type(pattern, tensor, frame, bindings, span, what)
        except DiagnosticError as error:
            diagnostic = error.diagnostic
            if diagnostic.code == "E201":
                diagnostic = Diagnostic.make("E208", f"{what} has type {tensor.type}, but "
                                                     f"{self.pattern_text(pattern)} is declared", span,
                                             labels=diagnostic.labels, notes=("the ranks differ",))
            raise DiagnosticError(diagnostic)

    def check_callee_facts(self, decl: ast.Forward, frame: Frame, span: Span) -> None:
        """A module's `where` facts must hold at each call: E212 if false, W301 if unprovable."""
        facts = self.state.builder.facts
        mode = self.state.mode_decides(any(fact.mode is not None for fact in decl.facts))
        for relation in (fact for fact in decl.facts if fact.mode in (None, mode)):
            left = self.dim_of(relation.left, frame)
            right = self.dim_of(relation.right, frame)
            answer = _decide(facts, left, relation.op, right)
            text = self.state.source_text(relation)
            if answer is Tri.NO:
                raise fail("E212", f"this call violates `{text}`", span,
                           labels=(Label(relation.span, "assumption declared here"),),
                           notes=(f"here it reads {left} {relation.op} {right}",))
            if answer is Tri.UNKNOWN:
                # Assume it from here on, so the callee's body does not warn about it again.
                try:
                    self.state.builder.facts = facts = facts.with_relation(left, relation.op, right)
                except ValueError:
                    pass
                self.state.builder.diagnostics.append(Diagnostic.make(
                    "W301", f"cannot prove `{text}` for this call", span,
                    labels=(Label(relation.span, "assumption declared here"),),
                    helps=(f"add `where {left} {relation.op} {right}` to the caller's forward",),
                    candidates=(add_fact(span, f"{left} {relation.op} {right}"),)))


def _decide(facts, left: Dim, op: str, right: Dim) -> Tri:
    """Tri-state truth of `left op right` under the facts."""
    methods = {"==": facts.equal, "!=": facts.not_equal, "<": facts.less, "<=": facts.less_equal,
               ">": facts.greater, ">=": facts.greater_equal}
    return methods[op](left, right)
