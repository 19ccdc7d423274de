"""Modules at compile time: bind hyper-parameters, run bodies, and name parameters like PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.diagnostics.record import Diagnostic, DiagnosticError, Label
from poseir.ir.dims import Dim
from poseir.diagnostics.record import fail
from poseir.ir.graph import Parameter
from poseir.elaborate.scope import Frame, suggest
from poseir.elaborate import replay
from poseir.ir.facts import logged
from poseir.elaborate.builder import CallSite
from poseir.elaborate.fixits import converted, respelled_keyword
from poseir.elaborate.values import ModuleDef, ModuleInstance, ModuleList, ParamSpec, Poison, Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.state import ElaborationState
    from poseir.elaborate.statements import StatementRunner


class ModuleInstantiator:
    """Creates module instances and names their parameters like PyTorch's `state_dict`.

    Interface: `instantiate_root` (the model), `instantiate` (`Conv1d(...)` in a module body),
    `append_module` (`self.layers.append(...)`), `register_parameters` (once the tree is built)
    and `parameter_tensor` (the graph value of `self.weight` in a forward). Arguments are
    evaluated by the evaluator; module bodies are run by the statement runner.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator, statements: StatementRunner):
        self.state = state
        self.evaluator = evaluator
        self.statements = statements
        self.module_depth = 0  # modules being instantiated inside each other, bounded by the limits
        self.deepest = 0  # the deepest level reached, for the depth a module template needs
        self.memo = replay.memo_of(state.program)
        self.parameter_tensors: dict[tuple[int, str], Tensor] = {}

    def instantiate_root(self, declaration: ast.ModelDecl, frame: Frame, overrides: dict) -> ModuleInstance:
        """Evaluate `model name = Module(...)`, applying `--set` overrides to its hyper-parameters."""
        call = declaration.value
        if not isinstance(call, ast.Call):
            raise fail("E103", "a model must be a module instantiation such as `TemporalModel()`", call.span)
        definition = self.evaluator.evaluate(call.function, frame)
        if not isinstance(definition, ModuleDef):
            raise fail("E103", f"a model must instantiate a module, found {kind_of(definition)}", call.function.span)
        return self.instantiate(definition, call, frame, overrides=overrides)

    def instantiate(self, definition: ModuleDef, call: ast.Call, frame: Frame, overrides: dict | None = None):
        """Bind hyper-parameters and run the module body, collecting attributes and forwards."""
        if frame.kind == "forward":
            raise fail("E105", f"`{definition.name}(...)` creates a module; do that in a module body and call it "
                               f"from `forward`", frame.span_of(call),
                       helps=(f"add `self.name = {definition.name}(...)` to the module body",))
        hyper = self.bind_hyper_parameters(definition, call, frame, overrides or {})
        span = frame.span_of(call)
        key = replay.module_key(definition, hyper, span) if replay.ENABLED else None
        template = self.memo.find_module(key, self.state.builder.facts) if key is not None else None
        if template is not None and self.module_depth + template.depth <= self.state.budget.limits.module_depth:
            return template.replay(self.state, span)
        mark, entered = self.memo.mark(self.state), self.deepest
        self.deepest = self.module_depth
        instance, queries = logged(key is not None and self.memo.logs_queries,
                                   lambda: self.run_body(definition, hyper, span))
        if key is not None and not instance.broken and self.memo.clean_since(self.state, mark):
            recorded = replay.ModuleTemplate.record(instance, self.state.bindings[mark.bindings:],
                                                    self.state.budget.iterations - mark.iterations,
                                                    self.deepest - self.module_depth)
            if recorded is not None:
                self.memo.keep_module(key, recorded, queries, self.state.builder.facts)
        self.deepest = max(entered, self.deepest)
        return instance

    def run_body(self, definition: ModuleDef, hyper: dict, span) -> ModuleInstance:
        """A new instance of `definition` with its body run on the bound hyper-parameters."""
        instance = ModuleInstance(definition, hyper, span)
        site = CallSite(instance.span) if definition.builtin else None
        body_frame = Frame(definition.scope.child(dict(hyper)), "module", instance, definition.builtin, site)
        self.module_depth += 1
        self.deepest = max(self.deepest, self.module_depth)
        try:
            self.state.budget.module_depth(self.module_depth, span)
            self.statements.run_statements(definition.declaration.body, body_frame)
        finally:
            self.module_depth -= 1
        return instance

    def bind_hyper_parameters(self, definition: ModuleDef, call: ast.Call, frame: Frame, overrides: dict) -> dict:
        """Match call arguments to `module Name(a: int = 1, ...)`; E102 for mismatches."""
        params = definition.declaration.hyper_params
        names = [param.name for param in params]
        values: dict = {}
        positional = [argument for argument in call.arguments if argument.name is None]
        if len(positional) > len(params):
            raise fail("E102", f"`{definition.name}` takes {len(params)} arguments, {len(positional)} given",
                       frame.span_of(positional[len(params)]), notes=(self.module_signature(definition),))
        for param, argument in zip(params, positional):
            values[param.name] = self.evaluator.evaluate(argument.value, frame)
        for argument in call.arguments:
            if argument.name is None:
                continue
            if argument.name not in names:
                guess = suggest(argument.name, names)
                raise fail("E102", f"`{definition.name}` has no hyper-parameter `{argument.name}`",
                           frame.span_of(argument), label="unknown argument",
                           notes=(self.module_signature(definition),),
                           helps=(f"did you mean `{guess}`?",) if guess else (),
                           candidates=(respelled_keyword(argument, guess),) if guess and not frame.builtin else ())
            if argument.name in values:
                raise fail("E102", f"`{argument.name}` given twice", frame.span_of(argument))
            values[argument.name] = self.evaluator.evaluate(argument.value, frame)
        given = {param.name: argument.value for param, argument in zip(params, positional)}
        given.update((argument.name, argument.value) for argument in call.arguments if argument.name is not None)
        for param in params:
            if param.name in values:
                self.check_kind(definition, param, values[param.name], frame.span_of(call),
                                argument=given.get(param.name) if not frame.builtin else None)
        self.apply_overrides(definition, values, overrides)
        for param in params:
            if param.name in values:
                continue
            if param.default is None:
                raise fail("E102", f"`{definition.name}` needs the hyper-parameter `{param.name}`",
                           frame.span_of(call), notes=(self.module_signature(definition),))
            default_frame = Frame(definition.scope.child(values), "file")
            values[param.name] = self.evaluator.evaluate(param.default, default_frame)
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
            param = next(param for param in definition.declaration.hyper_params if param.name == key)
            value = _compile_time(value)
            self.check_kind(definition, param, value, None, code="E106")
            self.state.budget.integer(value, None)
            values[key] = value

    def check_kind(self, definition: ModuleDef, param: ast.HyperParam, value, span, *, code: str = "E103",
                   argument: ast.Node | None = None) -> None:
        """A hyper-parameter declared `int`, `float`, `bool`, `list` or `str` must get such a value.

        A float given for an int is converted with `int(...)` when `argument` (its expression) is known.
        """
        accepted = _KINDS.get(param.kind)
        if accepted is None or isinstance(value, Poison) or accepted(value):
            return
        to_int = param.kind == "int" and isinstance(value, float)
        raise fail(code, f"`{param.name}` of `{definition.name}` is declared `{param.kind}`, found {kind_of(value)}",
                   span, labels=(Label(param.span, "declared here"),) if not definition.builtin else (),
                   notes=(self.module_signature(definition),),
                   helps=("convert it with `int(...)`",) if to_int else (),
                   candidates=(converted(argument, self.state.source_text(argument), "int"),)
                   if to_int and argument is not None else ())

    def module_signature(self, definition: ModuleDef) -> str:
        """`Conv1d(in_channels, out_channels, kernel_size, stride = 1, ...)` for notes."""
        parts = []
        for param in definition.declaration.hyper_params:
            parts.append(param.name + (f" = {self.state.source_text(param.default)}" if param.default else ""))
        return f"signature: {definition.name}({', '.join(parts)})"

    def append_module(self, target: ModuleList, call: ast.Call, frame: Frame):
        """`self.layers.append(Module(...))`."""
        if len(call.arguments) != 1 or call.arguments[0].name is not None:
            raise fail("E102", "`append` takes one module", frame.span_of(call))
        value = self.evaluator.evaluate(call.arguments[0].value, frame)
        if not isinstance(value, (ModuleInstance, ModuleList, Poison)):
            raise fail("E103", f"a module list holds modules, found {kind_of(value)}", call.arguments[0].span)
        target.items.append(value)
        self.memo.mutations += 1  # a configuration changed after its fingerprint may have been taken
        return None

    def register_parameters(self, root: ModuleInstance) -> None:
        """Give every parameter its state_dict key, in PyTorch's order (own params, buffers, children)."""
        for path, owner, name, spec in walk_parameters(root, ""):
            # A built-in layer's parameter is reported where the user created the layer.
            span = owner.span if owner.definition is not None and owner.definition.builtin else spec.span
            parameter = Parameter(path, spec.type, spec.kind, spec.init, span)
            self.parameter_tensors[(id(owner), name)] = self.state.builder.add_parameter(parameter)

    def parameter_tensor(self, instance: ModuleInstance, name: str) -> Tensor:
        """The graph value of `self.name` for a parameter or buffer."""
        return self.parameter_tensors[(id(instance), name)]


def walk_parameters(instance: ModuleInstance, prefix: str):
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
        yield from walk_parameters(value, path + ".")
    elif isinstance(value, ModuleList):
        value.path = path
        for index, item in enumerate(value.items):
            yield from _walk_child(item, f"{path}.{index}")


def _compile_time(value):
    """An override from Python as the language's value: lists are tuples there."""
    if isinstance(value, list):
        return tuple(_compile_time(item) for item in value)
    return value


def _is_int(value) -> bool:
    """An int or a dim (symbolic sizes are ints whose value is known later)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, Dim)


# What each declared hyper-parameter kind accepts.
_KINDS = {
    "int": _is_int,
    "float": lambda value: _is_int(value) or isinstance(value, float),
    "bool": lambda value: isinstance(value, bool),
    "list": lambda value: isinstance(value, tuple),
    "str": lambda value: isinstance(value, str),
}
