"""Surface tree to IR: the driver that wires the elaboration collaborators together and runs a model.

The collaborators, one per file, each with a narrow interface:

- `ElaborationState` (`state.py`): the program, mode, GraphBuilder, Budget, diagnostics and
  bindings every collaborator shares;
- `ExpressionEvaluator` (`expressions.py`): the value of an expression;
- `OpCaller` (`opcalls.py`): registry op calls and operator nodes;
- `TensorIndexer` (`indexing.py`): tensor subscripts;
- `CallEvaluator` (`calls.py`): attributes, and calls dispatched on their callee;
- `PatternMatcher` (`patterns.py`): declared tensor types against actual ones;
- `StatementRunner` (`statements.py`): statement lists, recovering from each mistake;
- `ModuleInstantiator` (`modules.py`): module instances and state_dict keys;
- `ForwardRunner` (`forwards.py`): module forwards, inlined at each call;
- `RootForward` (`root.py`): the model's graph inputs, facts and outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.elaborate.builder import GraphBuilder
from poseir.elaborate.calls import CallEvaluator
from poseir.elaborate.expressions import ExpressionEvaluator
from poseir.elaborate.forwards import ForwardRunner
from poseir.elaborate.indexing import TensorIndexer
from poseir.elaborate.modules import ModuleInstantiator
from poseir.elaborate.opcalls import OpCaller
from poseir.elaborate.patterns import PatternMatcher
from poseir.elaborate.program import Program, evaluate_constants
from poseir.elaborate.root import RootForward
from poseir.elaborate.scope import Frame, suggest
from poseir.elaborate.state import ElaborationState
from poseir.elaborate.statements import StatementRunner
from poseir.elaborate import replay
from poseir.ir.facts import Facts, LoggedFacts
from poseir.ir.graph import Graph
from poseir.limits import DEFAULT_LIMITS, Budget, LimitExceeded, Limits

MODES = ("train", "infer")


@dataclass(frozen=True)
class ElaborationResult:
    """A graph (None when the model could not be built at all) and everything reported."""

    graph: Graph | None
    diagnostics: list[Diagnostic]
    bindings: tuple = ()  # every `Binding` the user's code made, in elaboration order, for tools


def elaborate(program: Program, model: str, mode: str, overrides: dict | None = None, *,
              mode_optional: bool = False, limits: Limits = DEFAULT_LIMITS,
              standalone: bool = False, deadline: float | None = None) -> ElaborationResult:
    """Build the `mode` flow of `model` as a typed IR graph.

    With `mode_optional`, a model without a forward for `mode` (an inference-only model, say)
    gives no graph and no diagnostic instead of E101. A `standalone` model is a module checked on
    its own (a library file): names in its input types that nothing defines become dims. Work stops
    at `deadline` (`time.monotonic`), shared by every flow of one check.
    """
    elaborator = Elaborator(program, model, mode, overrides or {}, mode_optional, limits, deadline, standalone)
    return elaborator.run()


class Elaborator:
    """Builds one flow of one model: wires the collaborators, then instantiates and runs the root."""

    def __init__(self, program: Program, model: str, mode: str, overrides: dict, mode_optional: bool = False,
                 limits: Limits = DEFAULT_LIMITS, deadline: float | None = None, standalone: bool = False):
        self.model = model
        self.overrides = overrides
        self.mode_optional = mode_optional
        budget = Budget(limits, deadline)
        facts = LoggedFacts() if replay.memo_of(program).logs_queries else Facts()
        self.state = ElaborationState(program, mode, GraphBuilder(model, mode, facts, budget), budget, standalone)
        self.evaluator = ExpressionEvaluator(self.state)
        ops = OpCaller(self.state, self.evaluator)
        patterns = PatternMatcher(self.state, self.evaluator)
        statements = StatementRunner(self.state, self.evaluator, patterns)
        self.modules = ModuleInstantiator(self.state, self.evaluator, statements)
        forwards = ForwardRunner(self.state, self.evaluator, statements, patterns)
        self.root = RootForward(self.state, self.evaluator, forwards)
        calls = CallEvaluator(self.state, self.evaluator, ops, self.modules, forwards)
        # Expressions call back into the others (an op call evaluates its arguments, a module
        # call runs statements), so the evaluator is connected once they all exist.
        self.evaluator.connect(ops, TensorIndexer(self.state, self.evaluator, ops), calls)

    def run(self) -> ElaborationResult:
        """Elaborate the model; user mistakes end up in the diagnostics, never as exceptions."""
        try:
            return self._run()
        except LimitExceeded as error:
            # Past a limit the flow is abandoned whole: one diagnostic, no graph.
            reported = [*self.state.diagnostics, *self.state.builder.diagnostics, error.diagnostic]
            return ElaborationResult(None, reported)
        finally:
            # The evaluator and its collaborators refer to each other; without that cycle everything
            # the flow built is freed as soon as it is unused, not by a pass of the garbage collector.
            self.evaluator.connect(None, None, None)

    def _run(self) -> ElaborationResult:
        """Elaborate the model, letting a passed limit end it."""
        state = self.state
        state.diagnostics.extend(evaluate_constants(state.program, self.evaluator, state.diagnostics))
        if self.model not in state.program.models:
            return self._no_model()
        declaration, unit = state.program.models[self.model]
        try:
            root = self.modules.instantiate_root(declaration, Frame(unit.scope, "file"), self.overrides)
        except DiagnosticError as error:
            return ElaborationResult(None, [*state.diagnostics, error.diagnostic])
        self.modules.register_parameters(root)
        graph = self.root.run(root, declaration, self.mode_optional)
        return ElaborationResult(graph, state.diagnostics + state.builder.diagnostics, tuple(state.bindings))

    def _no_model(self) -> ElaborationResult:
        """E106 naming the models that do exist."""
        names = sorted(self.state.program.models)
        guess = suggest(self.model, names)
        helps = [f"did you mean `{guess}`?"] if guess else []
        helps.append("models in this file: " + (", ".join(f"`{name}`" for name in names) or "none; declare one with "
                                                 "`model name = Module(...)`"))
        diagnostic = Diagnostic.make("E106", f"no model named `{self.model}`", None, helps=tuple(helps))
        return ElaborationResult(None, [*self.state.diagnostics, diagnostic])
