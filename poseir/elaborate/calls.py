"""Attributes and calls during elaboration: `value.name`, and `f(...)` dispatched on what `f` is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseir.diagnostics.record import Edit, Fix, fail
from poseir.elaborate.builder import dim_value
from poseir.elaborate.builtins import LIST_LENGTHS
from poseir.elaborate.scope import Frame, suggest
from poseir.elaborate.values import (
    POISON, BoundMethod, Builtin, ListAppend, ModuleDef, ModuleInstance, ModuleList, Namespace, OpRef,
    ParamSpec, Poison, Skeleton, Tensor, kind_of,
)
from poseir.ops.registry import ALIASES, REGISTRY, lookup
from poseir.syntax import ast

if TYPE_CHECKING:
    from poseir.elaborate.expressions import ExpressionEvaluator
    from poseir.elaborate.forwards import ForwardRunner
    from poseir.elaborate.modules import ModuleInstantiator
    from poseir.elaborate.opcalls import OpCaller
    from poseir.elaborate.state import ElaborationState


class CallEvaluator:
    """Attributes (`self.conv`, `x.shape`, `h36m.flip`, `layers.Block`) and calls, for the evaluator.

    Interface: `attribute` and `call`. A call goes where its callee belongs: registry ops and
    tensor methods to the op caller, `Module(...)` and `.append` to the module instantiator, a
    module instance or Sequential to the forward runner, compile-time functions are run here.
    """

    def __init__(self, state: ElaborationState, evaluator: ExpressionEvaluator, ops: OpCaller,
                 modules: ModuleInstantiator, forwards: ForwardRunner):
        self.state = state
        self.evaluator = evaluator
        self.ops = ops
        self.modules = modules
        self.forwards = forwards

    def attribute(self, node: ast.Attribute, frame: Frame):
        """`value.name`: a submodule, parameter, skeleton field, imported name or tensor method."""
        value = self.evaluator.evaluate(node.value, frame)
        if isinstance(value, Poison):
            return POISON
        if isinstance(value, ModuleInstance):
            return self.module_attribute(value, node, frame)
        if isinstance(value, Tensor):
            return self.tensor_attribute(value, node, frame)
        if isinstance(value, ModuleList) and node.name == "append":
            return ListAppend(value)
        if isinstance(value, Skeleton):
            try:
                return value.attribute(node.name)
            except AttributeError:
                guess = suggest(node.name, value.attribute_names())
                raise fail("E100", f"skeleton `{value.name}` has no joint or attribute `{node.name}`",
                           node.name_span, helps=(f"did you mean `{guess}`?",) if guess else ())
        if isinstance(value, Namespace):
            if node.name in value.names:
                return value.names[node.name]
            guess = suggest(node.name, value.names)
            raise fail("E100", f"`{value.alias}` has no `{node.name}`", node.name_span,
                       helps=(f"did you mean `{guess}`?",) if guess else ())
        raise fail("E100", f"{kind_of(value)} has no attribute `{node.name}`", node.name_span)

    def module_attribute(self, instance: ModuleInstance, node: ast.Attribute, frame: Frame):
        """`self.conv`, `self.weight`: a submodule, a list, or a parameter's tensor."""
        if node.name not in instance.attributes:
            guess = suggest(node.name, instance.attributes)
            raise fail("E100", f"`{instance.name}` has no attribute `{node.name}`", node.name_span,
                       label="unknown attribute", helps=(f"did you mean `self.{guess}`?",) if guess else (),
                       fixes=(Fix(f"replace with `{guess}`", (Edit(node.name_span, guess),), safe=False),)
                       if guess else ())
        value = instance.attributes[node.name]
        if isinstance(value, ParamSpec):
            if frame.kind != "forward":
                return value
            return self.modules.parameter_tensor(instance, node.name)
        return value

    def tensor_attribute(self, tensor: Tensor, node: ast.Attribute, frame: Frame):
        """`x.shape`, `x.ndim`, `x.dtype`, or a method such as `x.view`."""
        if node.name in ("shape", "ndim", "dtype") and tensor.is_error:
            return POISON
        if node.name == "shape":
            return tuple(dim_value(dim) for dim in tensor.type.shape)
        if node.name == "ndim":
            return tensor.type.rank
        if node.name == "dtype":
            return tensor.type.dtype
        if node.name == "contiguous":
            # Layouts are not modelled: every tensor is contiguous, so this is the tensor itself.
            return Builtin("contiguous", lambda: tensor, "x.contiguous(): x itself")
        if node.name == "size":
            return Builtin("size", lambda *axes: POISON if tensor.is_error else (
                dim_value(tensor.type.shape[axes[0]]) if axes else tuple(dim_value(d) for d in tensor.type.shape)),
                "x.size(i)")
        op = lookup(node.name)
        if op is None or not op.method:
            methods = [name for name, entry in REGISTRY.items() if entry.method]
            methods += [alias for alias, name in ALIASES.items() if REGISTRY[name].method]
            guess = suggest(node.name, methods + ["shape", "ndim", "dtype", "size", "contiguous"])
            raise fail("E101", f"tensors have no method `{node.name}`", node.name_span, label="unknown method",
                       helps=(f"did you mean `{guess}`?",) if guess else (),
                       candidates=(Fix(f"call `{guess}`", (Edit(node.name_span, guess),), safe=False),)
                       if guess and not frame.builtin else ())
        return BoundMethod(op.name, tensor, node.value.span)

    def call(self, node: ast.Call, frame: Frame):
        """`f(...)`: an op, a compile-time function, a module type, a module instance or `.append`."""
        if isinstance(node.function, ast.Name) and node.function.id not in frame.dims \
                and node.function.id not in frame.scope:
            message = f"no operation, module or function called `{node.function.id}`"
            raise self.evaluator.unknown_name(node.function, frame, "E101", message, node)
        function = self.evaluator.evaluate(node.function, frame)
        if isinstance(function, Poison):
            return POISON
        if isinstance(function, BoundMethod):
            receiver = ast.Argument(function.receiver_span, None, node.function.value)
            return self.ops.call_op(lookup(function.op), node, (receiver, *node.arguments), frame,
                                    receiver=function.receiver)
        if isinstance(function, OpRef):
            return self.ops.call_op(lookup(function.name), node, node.arguments, frame)
        if isinstance(function, Builtin):
            return self.call_builtin(function, node, frame)
        if isinstance(function, ModuleDef):
            return self.modules.instantiate(function, node, frame)
        if isinstance(function, (ModuleInstance, ModuleList)):
            return self.forwards.call_module(function, node, frame)
        if isinstance(function, ListAppend):
            return self.modules.append_module(function.target, node, frame)
        raise fail("E101", f"{kind_of(function)} cannot be called", frame.span_of(node.function))

    def call_builtin(self, function: Builtin, node: ast.Call, frame: Frame):
        """Call a compile-time function; `sqrt(x)` on a tensor becomes the op of that name."""
        arguments = [argument for argument in node.arguments if argument.name is None]
        first = self.evaluator.evaluate(arguments[0].value, frame) if arguments else None
        if isinstance(first, Tensor) and lookup(function.name) is not None:
            return self.ops.call_op(lookup(function.name), node, node.arguments, frame, receiver=first)
        rest = [self.evaluator.evaluate(argument.value, frame) for argument in arguments[1:]]
        positional = [first, *rest][:len(arguments)]
        keywords = {argument.name: self.evaluator.evaluate(argument.value, frame)
                    for argument in node.arguments if argument.name is not None}
        if any(isinstance(value, Poison) for value in [*positional, *keywords.values()]):
            return POISON
        try:
            if function.name in LIST_LENGTHS:
                length = LIST_LENGTHS[function.name](*positional, **keywords)
                self.state.budget.list_length(length, frame.span_of(node))
            return self.state.budget.integer(function.function(*positional, **keywords), frame.span_of(node))
        except (TypeError, ValueError, IndexError, ZeroDivisionError, OverflowError) as error:
            raise fail("E102" if isinstance(error, TypeError) else "E105",
                       f"bad call to `{function.name}`: {error}", frame.span_of(node),
                       notes=(f"`{function.name}`: {function.doc}",))
