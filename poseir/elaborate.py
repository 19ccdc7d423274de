"""Surface tree to IR: instantiate the model's modules, name parameters, unroll and run forward."""

from __future__ import annotations

from dataclasses import dataclass

from poseir import ast
from poseir.builder import CallSite, GraphBuilder, dim_value
from poseir.diagnostics import Diagnostic, DiagnosticError, Label
from poseir.dims import Dim, Facts, Tri
from poseir.evaluate import ExpressionEvaluator, fail
from poseir.ir import Graph, Parameter, TensorType, Value
from poseir.program import Program, evaluate_constants
from poseir.scope import Frame, Scope, Usage, suggest
from poseir.source import Span
from poseir.values import (
    POISON, ModuleDef, ModuleInstance, ModuleList, ParamSpec, Poison, Skeleton, Tensor, kind_of,
)
from poseir.patterns import PatternMatcher

MODES = ("train", "infer")


class _Return(Exception):
    """Unwinds a forward body at `return`; the caller evaluates the returned expressions."""

    def __init__(self, statement: ast.Return, frame: Frame):
        super().__init__("return")
        self.statement = statement
        self.frame = frame


@dataclass(frozen=True)
class ElaborationResult:
    """A graph (None when the model could not be built at all) and everything reported."""

    graph: Graph | None
    diagnostics: list[Diagnostic]


def model_modes(program: Program, model: str) -> tuple[str, ...]:
    """The modes a model has: both, unless no forward serves one of them (decided by elaborating)."""
    return MODES


def elaborate(program: Program, model: str, mode: str, overrides: dict | None = None, *,
              mode_optional: bool = False) -> ElaborationResult:
    """Build the `mode` flow of `model` as a typed IR graph.

    With `mode_optional`, a model without a forward for `mode` (an inference-only model, say)
    gives no graph and no diagnostic instead of E101.
    """
    return Elaborator(program, model, mode, overrides or {}, mode_optional).run()


class Elaborator(PatternMatcher, ExpressionEvaluator):
    """Runs module bodies and forwards at compile time, emitting IR nodes through a GraphBuilder."""

    def __init__(self, program: Program, model: str, mode: str, overrides: dict, mode_optional: bool = False):
        self.program = program
        self.mode_optional = mode_optional
        self.model = model
        self.mode = mode
        self.overrides = overrides
        self.builder = GraphBuilder(model, mode, Facts())
        self.diagnostics: list[Diagnostic] = []
        self.parameter_tensors: dict[tuple[int, str], Tensor] = {}
        self.root_dims: dict[str, Dim] = {}

    # ------------------------------------------------------------------ driver
    def run(self) -> ElaborationResult:
        """Elaborate the model; user mistakes end up in the diagnostics, never as exceptions."""
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
        return ElaborationResult(graph, self.diagnostics + self.builder.diagnostics)

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

    # ------------------------------------------------------------------ modules
    def instantiate_root(self, declaration: ast.ModelDecl, frame: Frame) -> ModuleInstance:
        """Evaluate `model name = Module(...)`, applying `--set` overrides to its hyper-parameters."""
        call = declaration.value
        if not isinstance(call, ast.Call):
            raise fail("E103", "a model must be a module instantiation such as `TemporalModel()`", call.span)
        definition = self.evaluate(call.function, frame)
        if not isinstance(definition, ModuleDef):
            raise fail("E103", f"a model must instantiate a module, found {kind_of(definition)}", call.function.span)
        return self.instantiate(definition, call, frame, overrides=self.overrides)

    def instantiate(self, definition: ModuleDef, call: ast.Call, frame: Frame, overrides: dict | None = None):
        """Bind hyper-parameters and run the module body, collecting attributes and forwards."""
        if frame.kind == "forward":
            raise fail("E105", f"`{definition.name}(...)` creates a module; do that in a module body and call it "
                               f"from `forward`", self.span(call, frame),
                       helps=(f"add `self.name = {definition.name}(...)` to the module body",))
        hyper = self.bind_hyper_parameters(definition, call, frame, overrides or {})
        instance = ModuleInstance(definition, hyper, self.span(call, frame))
        site = CallSite(instance.span) if definition.builtin else None
        body_frame = Frame(definition.scope.child(dict(hyper)), "module", instance, definition.builtin, site)
        self.run_statements(definition.declaration.body, body_frame)
        return instance

    def bind_hyper_parameters(self, definition: ModuleDef, call: ast.Call, frame: Frame, overrides: dict) -> dict:
        """Match call arguments to `module Name(a: int = 1, ...)`; E102 for mismatches."""
        params = definition.declaration.hyper_params
        names = [param.name for param in params]
        values: dict = {}
        positional = [argument for argument in call.arguments if argument.name is None]
        if len(positional) > len(params):
            raise fail("E102", f"`{definition.name}` takes {len(params)} arguments, {len(positional)} given",
                       self.span(positional[len(params)], frame), notes=(self.module_signature(definition),))
        for param, argument in zip(params, positional):
            values[param.name] = self.evaluate(argument.value, frame)
        for argument in call.arguments:
            if argument.name is None:
                continue
            if argument.name not in names:
                guess = suggest(argument.name, names)
                raise fail("E102", f"`{definition.name}` has no hyper-parameter `{argument.name}`",
                           self.span(argument, frame), label="unknown argument",
                           notes=(self.module_signature(definition),),
                           helps=(f"did you mean `{guess}`?",) if guess else ())
            if argument.name in values:
                raise fail("E102", f"`{argument.name}` given twice", self.span(argument, frame))
            values[argument.name] = self.evaluate(argument.value, frame)
        self.apply_overrides(definition, values, overrides)
        for param in params:
            if param.name in values:
                continue
            if param.default is None:
                raise fail("E102", f"`{definition.name}` needs the hyper-parameter `{param.name}`",
                           self.span(call, frame), notes=(self.module_signature(definition),))
            values[param.name] = self.evaluate(param.default, Frame(definition.scope.child(values), "file"))
        return {param.name: values[param.name] for param in params}

    def apply_overrides(self, definition: ModuleDef, values: dict, overrides: dict) -> None:
        """`--set key=value` replaces (or supplies) a root hyper-parameter."""
        names = [param.name for param in definition.declaration.hyper_params]
        for key, value in overrides.items():
            if key not in names:
                guess = suggest(key, names)
                helps = (f"did you mean `{guess}`?",) if guess else ()
                raise DiagnosticError(Diagnostic.make(
                    "E106", f"`{definition.name}` has no hyper-parameter `{key}` to set", None,
                    notes=(self.module_signature(definition),), helps=helps))
            values[key] = value

    def module_signature(self, definition: ModuleDef) -> str:
        """`Conv1d(in_channels, out_channels, kernel_size, stride = 1, ...)` for notes."""
        parts = []
        for param in definition.declaration.hyper_params:
            parts.append(param.name + (f" = {self.source_text(param.default)}" if param.default else ""))
        return f"signature: {definition.name}({', '.join(parts)})"

    def append_module(self, target: ModuleList, call: ast.Call, frame: Frame):
        """`self.layers.append(Module(...))`."""
        if len(call.arguments) != 1 or call.arguments[0].name is not None:
            raise fail("E102", "`append` takes one module", self.span(call, frame))
        value = self.evaluate(call.arguments[0].value, frame)
        if not isinstance(value, (ModuleInstance, ModuleList, Poison)):
            raise fail("E103", f"a module list holds modules, found {kind_of(value)}", call.arguments[0].span)
        target.items.append(value)
        return None

    def register_parameters(self, root: ModuleInstance) -> None:
        """Give every parameter its state_dict key, in PyTorch's order (own params, buffers, children)."""
        for path, owner, name, spec in _walk_parameters(root, ""):
            # A built-in layer's parameter is reported where the user created the layer.
            span = owner.span if owner.definition is not None and owner.definition.builtin else spec.span
            parameter = Parameter(path, spec.type, spec.kind, spec.init, span)
            self.parameter_tensors[(id(owner), name)] = self.builder.add_parameter(parameter)

    def parameter_tensor(self, instance: ModuleInstance, name: str) -> Tensor:
        """The graph value of `self.name` for a parameter or buffer."""
        return self.parameter_tensors[(id(instance), name)]

    # ------------------------------------------------------------------ forward
    def run_root_forward(self, root: ModuleInstance, declaration: ast.ModelDecl) -> Graph | None:
        """Create graph inputs from the root forward's signature, run it, and type the outputs."""
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
        relations += [(fact, frame) for fact in decl.facts]
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
        return self.builder.add_input(param.name, type_, param.span)

    def declared_root_type(self, node: ast.TensorTypeExpr, frame: Frame) -> TensorType:
        """Evaluate a root input type; declared dims become symbols (and are recorded with spans)."""
        dims = []
        for dim in node.dims:
            if isinstance(dim, ast.EllipsisItem):
                raise fail("E105", "a model input needs every dim spelled out; `...` is for module inputs", dim.span)
            if isinstance(dim, ast.Name) and dim.id in self.program.dims and dim.id not in frame.scope:
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
        frame.dims = {**frame.dims, **bindings}
        if call is not None:
            self.check_callee_facts(decl, frame, span)
        if not frame.builtin:
            frame.usage = Usage(other_mode=self.other_mode_names(decl))
        try:
            self.run_statements(decl.body, frame)
        except _Return as returned:
            values = self.returned_values(decl, returned, span)
            self.report_unused(frame)
            return values
        raise fail("E105", f"`{instance.name}` forward ends without `return`", decl.span)

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

    def returned_values(self, decl: ast.Forward, returned: _Return, span: Span):
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

    # ------------------------------------------------------------------ statements
    def run_statements(self, statements, frame: Frame) -> None:
        """Run statements in order; a user mistake is recorded and the statement's names poisoned."""
        for statement in statements:
            try:
                self.run_statement(statement, frame)
            except DiagnosticError as error:
                self.diagnostics.append(error.diagnostic)
                self.poison_targets(statement, frame)

    def poison_targets(self, statement, frame: Frame) -> None:
        """After a failed assignment its names hold POISON, so later uses report nothing more."""
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if target.on_self and frame.instance is not None:
                    frame.instance.attributes.setdefault(target.name, POISON)
                elif not target.on_self:
                    frame.scope.define(target.name, POISON)

    def run_statement(self, statement, frame: Frame) -> None:
        """Dispatch on the statement kind."""
        handler = getattr(self, "_run_" + type(statement).__name__)
        handler(statement, frame)

    def _run_Assign(self, statement: ast.Assign, frame: Frame) -> None:
        value = self.evaluate(statement.value, frame)
        if statement.annotation is not None and isinstance(value, Tensor):
            self.check_declared(statement.annotation, value, frame, statement.value.span, "the value")
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
            self.diagnostics.append(Diagnostic.make(
                "E104", f"`self.{target.name}` is already defined", target.span,
                labels=(Label(target.span, "redefined here"),),
                helps=("give each submodule its own name; a second assignment silently replaces the first",)))
        if isinstance(value, tuple) and value and all(isinstance(item, (ModuleInstance, ModuleList)) for item in value):
            value = ModuleList(list(value), target.span)
        elif value == ():
            value = ModuleList([], target.span)
        frame.instance.attributes[target.name] = value

    def _run_ExprStatement(self, statement: ast.ExprStatement, frame: Frame) -> None:
        self.evaluate(statement.expr, frame)

    def _run_AssertType(self, statement: ast.AssertType, frame: Frame) -> None:
        value = self.evaluate(statement.expr, frame)
        if isinstance(value, Poison):
            return
        if not isinstance(value, Tensor):
            raise fail("E103", f"`assert x: type` needs a tensor, found {kind_of(value)}", statement.expr.span)
        self.check_declared(statement.type, value, frame, statement.expr.span, f"`{self.source_text(statement.expr)}`")

    def _run_AssertCondition(self, statement: ast.AssertCondition, frame: Frame) -> None:
        if not self.condition(statement.condition, frame):
            message = statement.message or f"assertion `{self.source_text(statement.condition)}` failed"
            raise fail("E105", message, self.span(statement, frame), label="this is false")

    def _run_Return(self, statement: ast.Return, frame: Frame) -> None:
        if frame.kind != "forward":
            raise fail("E105", "`return` is only allowed in `forward`", statement.span)
        raise _Return(statement, frame)

    def _run_For(self, statement: ast.For, frame: Frame) -> None:
        for item in self.iterate(statement.iterable, frame):
            frame.scope.define(statement.var, item)
            self.run_statements(statement.body, frame)

    def _run_If(self, statement: ast.If, frame: Frame) -> None:
        for condition, body in statement.branches:
            if self.condition(condition, frame):
                self.run_statements(body, frame)
                return
        if statement.otherwise is not None:
            self.run_statements(statement.otherwise, frame)

    def _run_ModeBlock(self, statement: ast.ModeBlock, frame: Frame) -> None:
        if frame.kind != "forward":
            raise fail("E105", f"`{statement.mode} {{ }}` blocks belong in `forward`; parameters are shared by "
                               f"both modes", statement.span)
        if statement.mode == self.mode:
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

    # ------------------------------------------------------------------ skeletons
    def skeleton(self, item: ast.SkeletonDecl, frame: Frame) -> Skeleton:
        """`skeleton name { joints = [...]  parents = [...]  pairs = [...] }`, validated."""
        from poseir.skeleton_check import build_skeleton

        return build_skeleton(self, item, frame)


def _count(number: int, noun: str) -> str:
    """`1 value`, `2 values`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _walk_parameters(instance: ModuleInstance, prefix: str):
    """Yield (state_dict key, owner, attribute, ParamSpec): own parameters, buffers, then children."""
    instance.path = prefix.rstrip(".")
    for kind in ("parameter", "buffer"):
        for name, value in instance.attributes.items():
            if isinstance(value, ParamSpec) and value.kind == kind:
                yield prefix + name, instance, name, value
    for name, value in instance.attributes.items():
        yield from _walk_child(value, prefix + name)


def _walk_child(value, path: str):
    """Recurse into a submodule or a module list (`layers.0`, `layers.1`, ...)."""
    if isinstance(value, ModuleInstance):
        yield from _walk_parameters(value, path + ".")
    elif isinstance(value, ModuleList):
        value.path = path
        for index, item in enumerate(value.items):
            yield from _walk_child(item, f"{path}.{index}")
