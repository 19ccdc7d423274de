"""Expression evaluation during elaboration: compile-time arithmetic, tensor ops, indexing."""

from __future__ import annotations

import operator

from poseir import ast
from poseir.builder import CallSite, dim_value
from poseir.diagnostics import Diagnostic, DiagnosticError, Edit, Fix, Label
from poseir.dims import Dim, Tri
from poseir.ir import TensorType
from poseir.ops.registry import ATTR, KEYWORDS, OPTIONAL_TENSOR, REQUIRED, TENSOR, TENSORS, VARIADIC, OpDef, lookup
from poseir.scope import Frame, suggest
from poseir.source import Span
from poseir.values import (
    POISON, BoundMethod, Builtin, ListAppend, ModuleDef, ModuleInstance, ModuleList, Namespace, OpRef,
    ParamSpec, Poison, Skeleton, Tensor, kind_of,
)

_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
               "%": operator.mod, "**": operator.pow}
_TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul"}
_COMPARE = {"==": "equal", "!=": "not_equal", "<": "less", "<=": "less_equal", ">": "greater",
            ">=": "greater_equal"}


def _is_numeric(value) -> bool:
    """A number, or a (nested) list of numbers, that can become a constant tensor."""
    if isinstance(value, tuple):
        return bool(value) and all(_is_numeric(item) for item in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fail(code: str, message: str, span: Span, **details) -> DiagnosticError:
    """A DiagnosticError to raise for a user mistake at `span`."""
    label = details.pop("label", "")
    labels = ((Label(span, label),) if label else ()) + tuple(details.pop("labels", ()))
    return DiagnosticError(Diagnostic.make(code, message, span, labels=labels, **details))


class ExpressionEvaluator:
    """The expression half of the elaborator (statements live in `poseir.elaborate`)."""

    # Provided by the Elaborator: builder, source_text(span), call_forward(...), instantiate(...)

    def evaluate(self, node: ast.Node, frame: Frame):
        """The value of an expression; raises DiagnosticError for user mistakes."""
        method = getattr(self, "_eval_" + type(node).__name__, None)
        if method is None:
            raise fail("E105", f"this expression cannot be used here", node.span)
        return method(node, frame)

    def span(self, node: ast.Node, frame: Frame) -> Span:
        """The span a diagnostic about `node` should point at (the user's call inside prelude code)."""
        return frame.site.span if frame.builtin and frame.site else node.span

    # ------------------------------------------------------------------ atoms
    def _eval_Literal(self, node: ast.Literal, frame: Frame):
        return node.value

    def _eval_Name(self, node: ast.Name, frame: Frame):
        if node.id in frame.dims:
            return frame.dims[node.id]
        if frame.usage is not None:
            frame.usage.read.add(node.id)
        try:
            return frame.scope.lookup(node.id)
        except KeyError:
            pass
        if frame.usage is not None and node.id in frame.usage.other_mode:
            mode = frame.usage.other_mode[node.id]
            raise fail("E100", f"`{node.id}` exists only in {mode} mode", self.span(node, frame),
                       label=f"not defined in {self.builder.mode} mode",
                       helps=(f"use it inside a `{mode} {{ ... }}` block, or define it in both modes",))
        raise self.unknown_name(node, frame, "E100", f"cannot find `{node.id}` in this scope")

    def unknown_name(self, node: ast.Name, frame: Frame, code: str, message: str) -> DiagnosticError:
        """E100/E101 with the closest spelling among locals, globals, dims and `self.` attributes."""
        candidates = [*frame.scope.visible_names(), *frame.dims]
        attributes = list(frame.instance.attributes) if frame.instance is not None else []
        guess = suggest(node.id, candidates + attributes)
        helps, fixes = (), ()
        if guess and not frame.builtin:
            replacement = f"self.{guess}" if guess in attributes and guess not in candidates else guess
            helps = (f"a name with a similar spelling exists: `{replacement}`",)
            fixes = (Fix(f"replace with `{replacement}`", (Edit(node.span, replacement),), safe=False),)
        return fail(code, message, self.span(node, frame), label="not found", helps=helps, fixes=fixes)

    def _eval_SelfRef(self, node: ast.SelfRef, frame: Frame):
        if frame.instance is None:
            raise fail("E100", "`self` is only defined inside a module", node.span)
        return frame.instance

    def _eval_ListExpr(self, node: ast.ListExpr, frame: Frame):
        return tuple(self.evaluate(item, frame) for item in node.items)

    _eval_TupleExpr = _eval_ListExpr

    def _eval_RangeExpr(self, node: ast.RangeExpr, frame: Frame):
        start = self.require_int(node.start, frame, "range start")
        stop = self.require_int(node.stop, frame, "range end")
        return tuple(range(start, stop))

    def _eval_ListComp(self, node: ast.ListComp, frame: Frame):
        items = self.iterate(node.iterable, frame)
        results = []
        for item in items:
            inner = Frame(frame.scope.child({node.var: item}), frame.kind, frame.instance, frame.builtin,
                          frame.site, frame.dims, frame.usage)
            results.append(self.evaluate(node.element, inner))
        return tuple(results)

    def _eval_IfExpr(self, node: ast.IfExpr, frame: Frame):
        chosen = node.then if self.condition(node.condition, frame) else node.otherwise
        return self.evaluate(chosen, frame)

    def _eval_ParamExpr(self, node: ast.ParamExpr, frame: Frame):
        if frame.kind != "module":
            raise fail("E105", f"`{node.kind}` can only be declared in a module body", node.span)
        type_ = self.concrete_type(node.type, frame)
        init = self.evaluate(node.init, frame) if node.init is not None else ("zeros",)
        if not (isinstance(init, tuple) and init and isinstance(init[0], str)):
            raise fail("E103", f"expected an initializer such as `zeros()` or `uniform(-b, b)`, found {kind_of(init)}",
                       node.init.span)
        return ParamSpec("parameter" if node.kind == "param" else "buffer", type_, init, node.span)

    # ------------------------------------------------------------------ operators
    def _eval_Unary(self, node: ast.Unary, frame: Frame):
        if node.op == "not":
            return not self.condition(node.operand, frame)
        operand = self.evaluate(node.operand, frame)
        if node.op == "+":
            return operand
        if isinstance(operand, Tensor):
            return self.emit_op("neg", [operand], {}, self.site_for(node, frame, [node.operand]))[0]
        if isinstance(operand, Poison):
            return POISON
        self.require_number(operand, node.operand, frame)
        return dim_value(-operand)

    def _eval_Binary(self, node: ast.Binary, frame: Frame):
        if node.op in ("and", "or"):
            left = self.condition(node.left, frame)
            if (node.op == "and" and not left) or (node.op == "or" and left):
                return left
            return self.condition(node.right, frame)
        left = self.evaluate(node.left, frame)
        right = self.evaluate(node.right, frame)
        if isinstance(left, Poison) or isinstance(right, Poison):
            return POISON
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            return self.tensor_binary(node, left, right, frame)
        if node.op in _COMPARE:
            return self.compare(node, left, right, frame)
        return self.arithmetic(node, left, right, frame)

    def arithmetic(self, node: ast.Binary, left, right, frame: Frame):
        """Compile-time arithmetic on ints, floats, dims and lists."""
        if node.op == "+" and isinstance(left, tuple) and isinstance(right, tuple):
            return left + right
        if node.op == "*" and isinstance(left, tuple) and isinstance(right, int):
            return left * right
        self.require_number(left, node.left, frame)
        self.require_number(right, node.right, frame)
        if node.op == "@":
            raise fail("E103", "`@` needs tensors", self.span(node, frame))
        if node.op == "/":
            if isinstance(left, Dim) or isinstance(right, Dim):
                raise fail("E103", "`/` on dims gives a fraction; use `//` for whole dims", self.span(node, frame),
                           fixes=(Fix("use floor division", (Edit(node.span, self.source_text(node.left) + " // "
                                                                  + self.source_text(node.right)),), safe=False),))
            if right == 0:
                raise fail("E105", "division by zero", self.span(node, frame))
            return left / right
        if node.op in ("//", "%") and not isinstance(right, Dim) and right == 0:
            raise fail("E105", "division by zero", self.span(node, frame))
        try:
            return dim_value(_ARITHMETIC[node.op](left, right))
        except (ValueError, ZeroDivisionError, TypeError) as error:
            raise fail("E105", f"cannot compute `{self.source_text(node)}`: {error}", self.span(node, frame))

    def compare(self, node: ast.Binary, left, right, frame: Frame) -> bool:
        """Compile-time comparison; symbolic dims are decided with the facts or reported."""
        if isinstance(left, Dim) or isinstance(right, Dim):
            answer = getattr(self.builder.facts, _COMPARE[node.op])(Dim.of(left), Dim.of(right))
            if answer is Tri.UNKNOWN:
                raise fail("E105", f"cannot decide `{self.source_text(node)}` at compile time",
                           self.span(node, frame), label=f"depends on the value of {left} and {right}",
                           helps=("add a `where` fact to the forward signature that settles it",))
            return answer is Tri.YES
        comparisons = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                       ">": operator.gt, ">=": operator.ge}
        try:
            return comparisons[node.op](left, right)
        except TypeError:
            raise fail("E103", f"cannot compare {kind_of(left)} with {kind_of(right)}", self.span(node, frame))

    def tensor_binary(self, node: ast.Binary, left, right, frame: Frame):
        """`x + y`, `x * 2.0`, `a @ b`: an elementwise (or matmul) node; scalars become constants."""
        if node.op not in _TENSOR_OPS:
            raise fail("E107", f"`{node.op}` on a tensor would be tensor-dependent control flow",
                       self.span(node, frame), helps=("compile-time conditions may only use dims, "
                                                      "hyper-parameters and constants",))
        site = self.site_for(node, frame, [node.left, node.right])
        operands = [self.as_tensor(value, other, part, frame)
                    for value, other, part in ((left, right, node.left), (right, left, node.right))]
        return self.emit_op(_TENSOR_OPS[node.op], operands, {}, site)[0]

    def as_tensor(self, value, other, part: ast.Node, frame: Frame) -> Tensor:
        """A scalar operand as a rank-0 constant node of the other operand's dtype."""
        if isinstance(value, Tensor):
            return value
        if isinstance(value, Dim):
            raise fail("E103", f"the symbolic dim `{value}` cannot be used as a tensor value",
                       self.span(part, frame), helps=("only compile-time constants mix with tensors",))
        if not _is_numeric(value):
            raise fail("E103", f"cannot combine a tensor with {kind_of(value)}", self.span(part, frame),
                       helps=("numbers and lists of numbers (such as `[-1.0, 1.0]`) become constant tensors",))
        dtype = other.type.dtype if isinstance(other, Tensor) and not other.type.is_error else "f32"
        site = self.site_for(part, frame, [])
        return self.emit_op("constant", [], {"value": value, "dtype": dtype}, site)[0]

    # ------------------------------------------------------------------ attributes and calls
    def _eval_Attribute(self, node: ast.Attribute, frame: Frame):
        value = self.evaluate(node.value, frame)
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
                       fixes=(Fix(f"replace with `{guess}`", (Edit(node.name_span, guess),), safe=False),) if guess else ())
        value = instance.attributes[node.name]
        if isinstance(value, ParamSpec):
            if frame.kind != "forward":
                return value
            return self.parameter_tensor(instance, node.name)
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
        if node.name == "size":
            return Builtin("size", lambda *axes: POISON if tensor.is_error else (
                dim_value(tensor.type.shape[axes[0]]) if axes else tuple(dim_value(d) for d in tensor.type.shape)),
                "x.size(i)")
        op = lookup(node.name)
        if op is None or not op.method:
            from poseir.ops.registry import REGISTRY

            from poseir.ops.registry import ALIASES

            methods = [name for name, entry in REGISTRY.items() if entry.method]
            methods += [alias for alias, name in ALIASES.items() if REGISTRY[name].method]
            guess = suggest(node.name, methods + ["shape", "ndim", "dtype", "size"])
            raise fail("E101", f"tensors have no method `{node.name}`", node.name_span, label="unknown method",
                       helps=(f"did you mean `{guess}`?",) if guess else ())
        return BoundMethod(op.name, tensor, node.value.span)

    def _eval_Call(self, node: ast.Call, frame: Frame):
        if isinstance(node.function, ast.Name) and node.function.id not in frame.dims \
                and node.function.id not in frame.scope:
            raise self.unknown_name(node.function, frame, "E101",
                                    f"no operation, module or function called `{node.function.id}`")
        function = self.evaluate(node.function, frame)
        if isinstance(function, Poison):
            return POISON
        if isinstance(function, BoundMethod):
            receiver = ast.Argument(function.receiver_span, None, node.function.value)
            return self.call_op(lookup(function.op), node, (receiver, *node.arguments), frame,
                                receiver=function.receiver)
        if isinstance(function, OpRef):
            return self.call_op(lookup(function.name), node, node.arguments, frame)
        if isinstance(function, Builtin):
            return self.call_builtin(function, node, frame)
        if isinstance(function, ModuleDef):
            return self.instantiate(function, node, frame)
        if isinstance(function, (ModuleInstance, ModuleList)):
            return self.call_module(function, node, frame)
        if isinstance(function, ListAppend):
            return self.append_module(function.target, node, frame)
        raise fail("E101", f"{kind_of(function)} cannot be called", self.span(node.function, frame))

    def call_builtin(self, function: Builtin, node: ast.Call, frame: Frame):
        """Call a compile-time function; `sqrt(x)` on a tensor becomes the op of that name."""
        arguments = [argument for argument in node.arguments if argument.name is None]
        first = self.evaluate(arguments[0].value, frame) if arguments else None
        if isinstance(first, Tensor) and lookup(function.name) is not None:
            return self.call_op(lookup(function.name), node, node.arguments, frame, receiver=first)
        positional = [first, *(self.evaluate(argument.value, frame) for argument in arguments[1:])][:len(arguments)]
        keywords = {argument.name: self.evaluate(argument.value, frame)
                    for argument in node.arguments if argument.name is not None}
        if any(isinstance(value, Poison) for value in [*positional, *keywords.values()]):
            return POISON
        try:
            return function.function(*positional, **keywords)
        except (TypeError, ValueError, IndexError, ZeroDivisionError) as error:
            raise fail("E102" if isinstance(error, TypeError) else "E105",
                       f"bad call to `{function.name}`: {error}", self.span(node, frame),
                       notes=(f"`{function.name}`: {function.doc}",))

    # ------------------------------------------------------------------ op calls
    def call_op(self, op: OpDef, node: ast.Call, arguments, frame: Frame, receiver: Tensor | None = None):
        """Bind call arguments to an op signature, evaluate them, and emit the node."""
        if frame.kind != "forward":
            raise fail("E105", f"the op `{op.name}` can only be used inside `forward`", self.span(node, frame))
        if frame.kind == "forward" and self.builder.mode not in op.modes:
            raise fail("E105", f"`{op.name}` exists only in {' and '.join(op.modes)} mode",
                       self.span(node, frame), helps=(f"put it in a `{op.modes[0]} {{ ... }}` block",))
        bound = self.bind_arguments(op, node, arguments, frame)
        site = CallSite(self.span(node, frame), labels=frame.site.labels if frame.builtin and frame.site else (),
                        scope=frame.instance.path if frame.instance else "")
        tensors, attrs = [], {}
        for param in op.signature:
            entries = bound.get(param.name)
            self.collect(op, param, entries, frame, site, tensors, attrs, receiver)
        if any(isinstance(value, Poison) for value in [*tensors, *attrs.values()]):
            return POISON
        outputs = self.builder.emit(op, tensors, attrs, site)
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
                           helps=(f"did you mean `{guess}`?",) if guess else ())
            if argument.name in bound:
                raise fail("E102", f"argument `{argument.name}` given twice", argument.span)
            bound[argument.name] = argument
        for param in params:
            if param.name not in bound and param.default is REQUIRED and param.kind != VARIADIC:
                raise fail("E102", f"`{op.name}` is missing the argument `{param.name}`", self.span(node, frame),
                           notes=(self.signature_text(op),))
        return bound

    def collect(self, op, param, entries, frame, site, tensors, attrs, receiver) -> None:
        """Evaluate the arguments of one parameter into tensor inputs or attributes."""
        if param.kind in (TENSOR, OPTIONAL_TENSOR):
            if entries is None:
                tensors.append(None)
                return
            value = receiver if receiver is not None and not tensors else self.evaluate(entries.value, frame)
            if value is None and param.kind == OPTIONAL_TENSOR:
                tensors.append(None)
                return
            if not isinstance(value, (Tensor, Poison)):
                raise fail("E103", f"`{param.name}` of `{op.name}` must be a tensor, found {kind_of(value)}",
                           self.span(entries, frame))
            self.note_argument(site, len(tensors), entries, frame)
            tensors.append(value)
            return
        if param.kind == TENSORS:
            values = self.evaluate(entries.value, frame) if entries is not None else ()
            values = values if isinstance(values, tuple) else (values,)
            for value in values:
                if not isinstance(value, (Tensor, Poison)):
                    raise fail("E103", f"`{param.name}` of `{op.name}` must be a list of tensors", self.span(entries, frame))
                tensors.append(value)
            items = entries.value.items if entries is not None and isinstance(
                entries.value, (ast.ListExpr, ast.TupleExpr)) and len(entries.value.items) == len(values) else None
            for position in range(len(values)):
                site.spans[position] = self.span(items[position] if items else entries, frame)
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
        value = self.evaluate(entries.value, frame)
        self.note_argument(site, param.name, entries, frame)
        if isinstance(entries.value, (ast.ListExpr, ast.TupleExpr)) and not frame.builtin:
            for position, item in enumerate(entries.value.items):
                site.spans[(param.name, position)] = item.span
                site.texts[(param.name, position)] = self.source_text(item)
        attrs[param.name] = self.attr_value(value, entries, frame)

    def variadic_attr(self, param, entries, frame: Frame, site: CallSite) -> tuple:
        """`x.view(B, T, -1)` or `x.view((B, T, -1))`: a tuple with a span per element."""
        if len(entries) == 1 and isinstance(entries[0].value, (ast.ListExpr, ast.TupleExpr)):
            entries = [ast.Argument(item.span, None, item) for item in entries[0].value.items]
        values = []
        for position, entry in enumerate(entries):
            value = self.evaluate(entry.value, frame)
            if isinstance(value, tuple) and len(entries) == 1:
                return tuple(self.attr_value(item, entry, frame) for item in value)
            if not frame.builtin:
                site.spans[(param.name, position)] = entry.span
                site.texts[(param.name, position)] = self.source_text(entry.value)
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
            pairs.append((entry.name, self.attr_value(self.evaluate(entry.value, frame), entry, frame)))
        return tuple(pairs)

    def attr_value(self, value, entry, frame: Frame):
        """Check that an attribute is a compile-time value; normalize dims."""
        if isinstance(value, Poison):
            return POISON
        if isinstance(value, Tensor):
            raise fail("E103", "this argument must be known at compile time, found a tensor",
                       self.span(entry, frame), helps=("pass a dim, an int or a list of them",))
        if isinstance(value, tuple):
            return tuple(self.attr_value(item, entry, frame) for item in value)
        if isinstance(value, Skeleton):
            return value.name
        if isinstance(value, (ModuleInstance, ModuleList, ModuleDef)):
            raise fail("E103", f"expected a compile-time value, found {kind_of(value)}", self.span(entry, frame))
        return dim_value(value)

    def note_argument(self, site: CallSite, key, entry: ast.Argument, frame: Frame) -> None:
        """Remember an argument's span and text for diagnostics and fix-its."""
        if frame.builtin:
            return
        site.spans[key] = entry.span
        site.texts[key] = self.source_text(entry.value)

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
        return self.builder.emit(lookup(name), tensors, attrs, site)

    def site_for(self, node: ast.Node, frame: Frame, parts) -> CallSite:
        """A call site for an operator expression, with a span per operand."""
        site = CallSite(self.span(node, frame), labels=frame.site.labels if frame.builtin and frame.site else (),
                        scope=frame.instance.path if frame.instance else "")
        if not frame.builtin:
            for index, part in enumerate(parts):
                site.spans[index] = part.span
                site.texts[index] = self.source_text(part)
        return site

    # ------------------------------------------------------------------ subscripts
    def _eval_Subscript(self, node: ast.Subscript, frame: Frame):
        value = self.evaluate(node.value, frame)
        if isinstance(value, Poison):
            return POISON
        if isinstance(value, Tensor):
            from poseir.indexing import index_tensor

            return index_tensor(self, value, node, frame)
        if isinstance(value, ModuleList):
            return self.index_sequence(value.items, node, frame)
        if isinstance(value, tuple):
            return self.index_sequence(value, node, frame)
        raise fail("E103", f"{kind_of(value)} cannot be indexed", self.span(node.value, frame))

    def index_sequence(self, items, node: ast.Subscript, frame: Frame):
        """Compile-time `list[i]` or `list[a:b]`."""
        if len(node.items) != 1:
            raise fail("E209", "a list takes exactly one index", self.span(node, frame))
        (item,) = node.items
        if isinstance(item, ast.Slice):
            bounds = [self.optional_int(part, frame) for part in (item.start, item.stop, item.step)]
            return tuple(items[slice(*bounds)])
        index = self.require_int(item, frame, "list index")
        if not -len(items) <= index < len(items):
            raise fail("E105", f"index {index} is out of range for a list of length {len(items)}",
                       self.span(item, frame))
        return items[index]

    # ------------------------------------------------------------------ helpers
    def condition(self, node: ast.Node, frame: Frame) -> bool:
        """A compile-time condition; tensors here would be data-dependent control flow."""
        value = self.evaluate(node, frame)
        if isinstance(value, Tensor):
            raise fail("E107", "a condition cannot depend on tensor values", self.span(node, frame),
                       label=f"this is a tensor {value.type}",
                       helps=("poseir graphs have no data-dependent control flow; use `maximum`, "
                              "masks or arithmetic instead",))
        if isinstance(value, Poison):
            return False
        if not isinstance(value, (bool, int, float, str, tuple)) and value is not None:
            raise fail("E103", f"expected a condition, found {kind_of(value)}", self.span(node, frame))
        return bool(value)

    def iterate(self, node: ast.Node, frame: Frame) -> tuple:
        """The items of a compile-time loop."""
        value = self.evaluate(node, frame)
        if isinstance(value, ModuleList):
            return tuple(value.items)
        if isinstance(value, int) and not isinstance(value, bool):
            return tuple(range(value))
        if not isinstance(value, tuple):
            raise fail("E103", f"cannot loop over {kind_of(value)}", self.span(node, frame),
                       helps=("loop over a range `0..n` or a list",))
        return value

    def require_int(self, node: ast.Node, frame: Frame, what: str) -> int:
        """A compile-time int, or E103/E105."""
        value = self.evaluate(node, frame)
        value = dim_value(value)
        if isinstance(value, Dim):
            raise fail("E105", f"{what} must be known at compile time, found the dim `{value}`", self.span(node, frame))
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail("E103", f"{what} must be an int, found {kind_of(value)}", self.span(node, frame))
        return value

    def optional_int(self, node, frame: Frame):
        """A compile-time int or None for a missing slice bound."""
        return None if node is None else self.require_int(node, frame, "slice bound")

    def require_number(self, value, node: ast.Node, frame: Frame) -> None:
        """Reject non-numbers in compile-time arithmetic."""
        if isinstance(value, bool) or not isinstance(value, (int, float, Dim)):
            raise fail("E103", f"expected a number or dim, found {kind_of(value)}", self.span(node, frame))

    def concrete_type(self, node: ast.TensorTypeExpr, frame: Frame) -> TensorType:
        """A parameter's type: every dim must be a compile-time int."""
        dims = []
        for dim in node.dims:
            value = self.require_int(dim, frame, "a parameter dimension")
            if value < 0:
                raise fail("E105", f"a parameter dimension cannot be negative ({value})", self.span(dim, frame))
            dims.append(Dim.of(value))
        return TensorType(node.dtype, tuple(dims))
