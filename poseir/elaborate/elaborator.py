"""Surface tree to IR: instantiate the model's modules, name parameters, unroll and run forward."""

from __future__ import annotations

from dataclasses import dataclass

from poseir.syntax import ast
from poseir.elaborate.builder import CallSite, GraphBuilder, dim_value
from poseir.diagnostics.record import Diagnostic, DiagnosticError, Label
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts
from poseir.diagnostics.record import fail
from poseir.elaborate.expressions import ExpressionEvaluator
from poseir.ir.graph import Graph, TensorType, Value
from poseir.elaborate.modules import ModuleBuilder
from poseir.elaborate.patterns import PatternMatcher
from poseir.elaborate.program import Program, evaluate_constants
from poseir.limits import DEFAULT_LIMITS, Budget, LimitExceeded, Limits
from poseir.elaborate.scope import Frame, Usage, suggest
from poseir.syntax.source import Span
from poseir.elaborate.statements import ReturnSignal, StatementRunner
from poseir.elaborate.values import POISON, ModuleInstance, ModuleList, Poison, Skeleton, Tensor, kind_of

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
    elaborator = Elaborator(program, model, mode, overrides or {}, mode_optional, limits, deadline)
    elaborator.standalone = standalone
    return elaborator.run()


class Elaborator(ModuleBuilder, StatementRunner, PatternMatcher, ExpressionEvaluator):
    """Runs module bodies and forwards at compile time, emitting IR nodes through a GraphBuilder."""

    def __init__(self, program: Program, model: str, mode: str, overrides: dict, mode_optional: bool = False,
                 limits: Limits = DEFAULT_LIMITS, deadline: float | None = None):
        self.program = program
        self.budget = Budget(limits, deadline)
        self.module_depth = 0
        self.standalone = False
        self.mode_optional = mode_optional
        self.model = model
        self.mode = mode
        self.overrides = overrides
        self.builder = GraphBuilder(model, mode, Facts(), self.budget)
        self.diagnostics: list[Diagnostic] = []
        self.parameter_tensors: dict[tuple[int, str], Tensor] = {}
        self.root_dims: dict[str, Dim] = {}
        self.bindings: list = []

    # ------------------------------------------------------------------ driver
    def run(self) -> ElaborationResult:
        """Elaborate the model; user mistakes end up in the diagnostics, never as exceptions."""
        try:
            return self._run()
        except LimitExceeded as error:
            # Past a limit the flow is abandoned whole: one diagnostic, no graph.
            return ElaborationResult(None, [*self.diagnostics, *self.builder.diagnostics, error.diagnostic])

    def _run(self) -> ElaborationResult:
        """Elaborate the model, letting a passed limit end it."""
        self.diagnostics.extend(evaluate_constants(self.program, self))
        if self.model not in self.program.models:
            return self._no_model()
        declaration, unit = self.program.models[self.model]
        try:
            root = self.instantiate_root(declaration, Frame(unit.scope, "file"))
        except DiagnosticError as error:
            return ElaborationResult(None, [*self.diagnostics, error.diagnostic])
        self.register_parameters(root)
        graph = self.run_root_forward(root, declaration)
        return ElaborationResult(graph, self.diagnostics + self.builder.diagnostics, tuple(self.bindings))

    def _no_model(self) -> ElaborationResult:
        """E106 naming the models that do exist."""
        names = sorted(self.program.models)
        guess = suggest(self.model, names)
        helps = [f"did you mean `{guess}`?"] if guess else []
        helps.append("models in this file: " + (", ".join(f"`{name}`" for name in names) or "none; declare one with "
                                                 "`model name = Module(...)`"))
        diagnostic = Diagnostic.make("E106", f"no model named `{self.model}`", None, helps=tuple(helps))
        return ElaborationResult(None, [*self.diagnostics, diagnostic])

    def source_text(self, node: ast.Node) -> str:
        """The exact source text of a node, for messages and fix-its."""
        source = self.program.sources.get(node.span.path)
        return source.text[node.span.start:node.span.end] if source else "?"

    # ------------------------------------------------------------------ forward
    def run_root_forward(self, root: ModuleInstance, declaration: ast.ModelDecl) -> Graph | None:
        """Create graph inputs from the root forward's signature, run it, and type the outputs."""
        if root.broken:
            return None
        if self.mode_optional and self.mode not in root.forwards and None not in root.forwards and root.forwards:
            return None
        forward = self.select_forward(root, declaration.span)
        if forward is None:
            return None
        decl, scope = forward
        frame = Frame(scope.child(), "forward", root, False)
        frame.dims = {}
        self.builder.facts = self.root_facts(decl, frame)
        arguments = []
        for param in self.active(decl.params):
            arguments.append(self.root_input(param, frame))
        try:
            results = self.execute_forward(root, decl, frame, arguments, declaration.span)
        except DiagnosticError as error:
            self.diagnostics.append(error.diagnostic)
            return None
        return self.builder.finish(self.name_outputs(decl, results))

    def root_facts(self, decl: ast.Forward, frame: Frame) -> Facts:
        """Facts from `dim ... where` declarations and the root forward's `where` clause."""
        for name, span in self.program.dims.items():
            frame.dims[name] = Dim.symbol(name)
        facts = Facts()
        relations = [(fact, Frame(unit.scope, "file", dims=frame.dims)) for fact, unit in self.program.dim_facts]
        relations += [(fact, frame) for fact in decl.facts if fact.mode in (None, self.mode)]
        for relation, relation_frame in relations:
            try:
                facts = self.add_fact(facts, relation, relation_frame)
            except DiagnosticError as error:
                self.diagnostics.append(error.diagnostic)
        frame.dims = {}
        return facts

    def add_fact(self, facts: Facts, relation: ast.Relation, frame: Frame) -> Facts:
        """Evaluate `T >= 243` or `T % 3 == 0` into the facts."""
        if isinstance(relation.left, ast.Binary) and relation.left.op == "%":
            modulus = dim_value(self.evaluate(relation.left.right, frame))
            if not isinstance(modulus, int):
                raise fail("E105", "a `where` fact can only take a remainder by a constant", relation.span,
                           helps=(f"declare a new dim and write `{self.source_text(relation.left.left)} == "
                                  f"{self.source_text(relation.left.right)} * K` instead",))
        left = self.evaluate(relation.left, frame)
        right = self.evaluate(relation.right, frame)
        for side, node in ((left, relation.left), (right, relation.right)):
            if isinstance(side, bool) or not isinstance(side, (int, Dim)):
                raise fail("E103", f"a `where` fact compares dims, found {kind_of(side)}", node.span)
        if isinstance(relation.left, ast.Binary) and relation.left.op == "%" and relation.op == "==":
            base = self.evaluate(relation.left.left, frame)
            modulus = self.evaluate(relation.left.right, frame)
            if isinstance(modulus, int) and isinstance(right, int):
                return facts.with_modulus(Dim.of(base), modulus, right)
        return facts.with_relation(Dim.of(left), relation.op, Dim.of(right))

    def root_input(self, param: ast.ForwardParam, frame: Frame) -> Tensor | Poison:
        """A graph input whose dims are the declared symbols (`B`, `T`) or hyper-parameter values."""
        if param.type is None:
            self.diagnostics.append(Diagnostic.make(
                "E105", f"the model input `{param.name}` needs a type such as `f32[B, T, 17, 2]`", param.span))
            return POISON
        try:
            type_ = self.declared_root_type(param.type, frame)
        except DiagnosticError as error:
            self.diagnostics.append(error.diagnostic)
            return POISON
        names = tuple(dim.id if isinstance(dim, ast.Name) else "" for dim in param.type.dims)
        return self.builder.add_input(param.name, type_, param.span, names)

    def declared_root_type(self, node: ast.TensorTypeExpr, frame: Frame) -> TensorType:
        """Evaluate a root input type; declared dims become symbols (and are recorded with spans)."""
        dims = []
        for dim in node.dims:
            if isinstance(dim, ast.EllipsisItem):
                raise fail("E105", "a model input needs every dim spelled out; `...` is for module inputs", dim.span)
            declared = dim.id in self.program.dims or self.standalone if isinstance(dim, ast.Name) else False
            if isinstance(dim, ast.Name) and declared and dim.id not in frame.scope:
                if dim.id not in self.root_dims:
                    self.root_dims[dim.id] = Dim.symbol(dim.id)
                    self.builder.symbols.append((dim.id, dim.span))
                frame.dims[dim.id] = self.root_dims[dim.id]
            value = dim_value(self.evaluate(dim, frame))
            if isinstance(value, bool) or not isinstance(value, (int, Dim)):
                raise fail("E103", f"a dim must be an int or a symbol, found {kind_of(value)}", dim.span)
            dims.append(self.builder.facts.normalize(Dim.of(value)))
        return TensorType(node.dtype, tuple(dims))

    def select_forward(self, instance: ModuleInstance, span: Span):
        """The forward serving the current mode: `forward train`/`forward infer`, else plain `forward`."""
        for key in (self.mode, None):
            if key in instance.forwards:
                return instance.forwards[key]
        other = [key for key in instance.forwards if key]
        message = (f"`{instance.name}` has no forward for {self.mode} mode" if other
                   else f"`{instance.name}` has no `forward`")
        self.diagnostics.append(Diagnostic.make("E101", message, span,
                                                helps=(f"add `forward {self.mode}(...)` or a plain `forward(...)`",)))
        return None

    def active(self, items):
        """The forward params/outputs that exist in the current mode."""
        return [item for item in items if item.mode in (None, self.mode)]

    def call_module(self, callee, call: ast.Call, frame: Frame):
        """`self.conv(x)`: run a submodule's forward (inlined) on evaluated arguments."""
        if frame.kind != "forward":
            raise fail("E105", "modules can only be called inside `forward`", self.span(call, frame))
        arguments = [self.evaluate(argument.value, frame) for argument in call.arguments]
        if getattr(callee, "broken", False) or any(getattr(item, "broken", False)
                                                   for item in getattr(callee, "items", ())):
            return POISON
        if any(isinstance(argument, Tensor) and argument.is_error for argument in arguments):
            return POISON  # the mistake that made it was reported; the module's checks would only echo it
        if isinstance(callee, ModuleList):
            return self.call_sequential(callee, call, frame, arguments)
        forward = self.select_forward(callee, self.span(call, frame))
        if forward is None:
            return POISON
        decl, scope = forward
        inner = Frame(scope.child(), "forward", callee, callee.definition.builtin, self.inner_site(callee, call, frame))
        return self.execute_forward(callee, decl, inner, arguments, self.span(call, frame), call)

    def call_sequential(self, container: ModuleList, call: ast.Call, frame: Frame, arguments: list):
        """A Sequential applies its items in order; a plain module list cannot be called."""
        if not container.sequential:
            raise fail("E101", "a module list cannot be called; call one of its items, e.g. `self.blocks[i](x)`",
                       self.span(call, frame))
        value = arguments[0] if len(arguments) == 1 else POISON
        for item in container.items:
            if isinstance(value, Poison):
                return POISON
            forward = self.select_forward(item, self.span(call, frame))
            if forward is None:
                return POISON
            decl, scope = forward
            inner = Frame(scope.child(), "forward", item, item.definition.builtin, self.inner_site(item, call, frame))
            value = self.execute_forward(item, decl, inner, [value], self.span(call, frame), call)
        return value

    def inner_site(self, callee: ModuleInstance, call: ast.Call, frame: Frame) -> CallSite | None:
        """The user call site that diagnostics inside a prelude module point at."""
        if frame.builtin and frame.site:
            return frame.site
        if not callee.definition.builtin:
            return None
        label = Label(callee.span, f"`{callee.name}` created here")
        return CallSite(call.span, labels=(label,), scope=callee.path)

    def execute_forward(self, instance, decl: ast.Forward, frame: Frame, arguments: list, span: Span, call=None):
        """Bind arguments to the signature, check facts, run the body, check declared outputs."""
        params = self.active(decl.params)
        if len(arguments) != len(params):
            raise fail("E102", f"`{instance.name}` forward takes {len(params)} inputs, {len(arguments)} given", span)
        bindings: dict = {}
        for param, argument in zip(params, arguments):
            if param.type is not None and isinstance(argument, Tensor) and instance.path != "<root>" and call is not None:
                self.match_type(param.type, argument, frame, bindings, span, f"input `{param.name}`")
            frame.scope.define(param.name, argument)
            self.record_binding(param.span, param.name, argument, frame)
        frame.dims = {**frame.dims, **bindings}
        for name, dim in bindings.items():
            self.record_binding(decl.span, name, dim, frame)  # a pattern dim, bound at this call
        if call is not None:
            self.check_callee_facts(decl, frame, span)
        if not frame.builtin:
            frame.usage = Usage(other_mode=self.other_mode_names(decl))
        outer = self.builder.call_labels
        if call is not None and not frame.builtin and any(param.type is None for param in params):
            # Inside an untyped helper a mistake may be the caller's: show where it was called from.
            self.builder.call_labels = (*outer, self.required_from(instance, span, arguments))
        try:
            self.run_statements(decl.body, frame)
        except ReturnSignal as returned:
            values = self.returned_values(decl, returned, span)
            self.report_unused(frame)
            return values
        finally:
            self.builder.call_labels = outer
        raise fail("E105", f"`{instance.name}` forward ends without `return`", decl.span)

    def required_from(self, instance, span: Span, arguments: list) -> Label:
        """`called here with f32[B, T, 34]`: the label a helper's diagnostics carry at its call site."""
        types = ", ".join(argument.type.describe() for argument in arguments if isinstance(argument, Tensor))
        return Label(span, f"`{instance.name}` called here" + (f" with {types}" if types else ""))

    def other_mode_names(self, decl: ast.Forward) -> dict:
        """Inputs and locals that exist only in the other mode, for a precise E100."""
        names = {param.name: param.mode for param in decl.params if param.mode not in (None, self.mode)}
        pending = list(decl.body)
        while pending:
            statement = pending.pop()
            if isinstance(statement, ast.ModeBlock) and statement.mode != self.mode:
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
            self.builder.diagnostics.append(Diagnostic.make(
                "W302", f"`{name}` is computed but never used", span, labels=(Label(span, "assigned here"),),
                helps=(f"remove it, or name it `_{name}` if it is meant to be unused",)))

    def returned_values(self, decl: ast.Forward, returned: ReturnSignal, span: Span):
        """Evaluate the returned expressions that exist in this mode; check declared types."""
        statement, frame = returned.statement, returned.frame
        if decl.outputs is None:
            values = [self.evaluate(node, frame) for node in statement.values]
            return values[0] if len(values) == 1 else tuple(values)
        if len(statement.values) != len(decl.outputs):
            raise fail("E102", f"`return` gives {_count(len(statement.values), 'value')} but the forward "
                               f"declares {_count(len(decl.outputs), 'output')}", statement.span)
        results = []
        for output, node in zip(decl.outputs, statement.values):
            if output.mode not in (None, self.mode):
                continue
            value = self.evaluate(node, frame)
            if isinstance(value, Tensor):
                self.check_declared(output.type, value, frame, node.span, f"output `{output.name}`")
            results.append(value)
        return results[0] if len(results) == 1 else tuple(results)

    def name_outputs(self, decl: ast.Forward, results) -> list[Value]:
        """Graph outputs named as declared (`pose`, `loss`), or `output`, `output_1`, ..."""
        results = list(results) if isinstance(results, tuple) else [results]
        outputs = self.active(decl.outputs) if decl.outputs is not None else []
        names = [output.name for output in outputs] or (
            ["output"] if len(results) == 1 else [f"output_{index}" for index in range(len(results))])
        values = []
        for name, result in zip(names, results):
            if not isinstance(result, Tensor):
                if not isinstance(result, Poison):
                    self.diagnostics.append(Diagnostic.make(
                        "E103", f"the model output `{name}` must be a tensor, found {kind_of(result)}", decl.span))
                continue
            values.append(self.output_value(name, result))
        return values

    def output_value(self, name: str, tensor: Tensor) -> Value:
        """Rename the producing node's value to the output name, or add an identity node."""
        producer_is_node = any(tensor.name in node.outputs for node in self.builder.nodes)
        taken = name in self.builder.values
        if producer_is_node and not taken and not tensor.name.startswith("%"):
            self.builder.rename(tensor.name, name)
            return self.builder.values[name]
        if taken:
            name = self.builder.fresh_name(name)
        site = CallSite(tensor.span)
        (copy,) = self.builder.emit(self.lookup_op("identity"), [tensor], {}, site)
        self.builder.rename(copy.name, name)
        return self.builder.values[name]

    @staticmethod
    def lookup_op(name: str):
        """A registry op the elaborator needs by name."""
        from poseir.ops.registry import lookup

        return lookup(name)

    # ------------------------------------------------------------------ skeletons
    def skeleton(self, item: ast.SkeletonDecl, frame: Frame) -> Skeleton:
        """`skeleton name { joints = [...]  parents = [...]  pairs = [...] }`, validated."""
        from poseir.elaborate.skeletons import build_skeleton

        return build_skeleton(self, item, frame)


def _count(number: int, noun: str) -> str:
    """`1 value`, `2 values`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


