"""What every collaborator of one elaboration shares: the program, the graph builder, limits and reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from poseir.diagnostics.record import Diagnostic
from poseir.elaborate.builder import GraphBuilder
from poseir.elaborate.program import Program
from poseir.elaborate.scope import Binding, Frame
from poseir.limits import Budget
from poseir.syntax import ast


@dataclass
class ElaborationState:
    """The shared state of one flow of one model; collaborators read it and append to its lists.

    `diagnostics` holds the mistakes statements report (the builder keeps those its shape rules
    report); `bindings` what the user's code bound, for editors.
    """

    program: Program
    mode: str  # "train" or "infer"
    builder: GraphBuilder
    budget: Budget
    standalone: bool = False  # a library module checked on its own: undeclared input dims are symbols
    diagnostics: list[Diagnostic] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)
    mode_reads: int = 0  # how often the flow's mode decided something (a run that never asked fits both)

    def mode_decides(self, relevant: bool = True) -> str:
        """The mode, counted as read when `relevant` (the caller's outcome depends on it)."""
        if relevant:
            self.mode_reads += 1
        return self.mode

    def source_text(self, node: ast.Node) -> str:
        """The exact source text of a node, for messages and fix-its."""
        source = self.program.sources.get(node.span.path)
        return source.text[node.span.start:node.span.end] if source else "?"

    def record_binding(self, span, name: str, value, frame: Frame) -> None:
        """Remember what the user's code bound a name to, for editors (prelude code is not shown)."""
        if not frame.builtin:
            self.bindings.append(Binding(span, name, value, frame.instance))
