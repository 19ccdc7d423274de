"""Expression evaluation during elaboration: names, literals, lists, operators, conditions and loops."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

from poseir.syntax import ast
from poseir.elaborate.fixits import overshooting_index
from poseir.elaborate.builder import dim_value
from poseir.diagnostics.record import DiagnosticError, Edit, Fix, fail
from poseir.ir.dims import Dim, Tri
from poseir.ir.graph import TensorType
from poseir.elaborate.scope import Frame
from poseir.elaborate.suggestions import closest_fitting
from poseir.elaborate.values import POISON, ModuleList, ParamSpec, Poison, Tensor, kind_of

if TYPE_CHECKING:
    from poseir.elaborate.calls import CallEvaluator
    from poseir.elaborate.indexing import TensorIndexer
    from poseir.elaborate.opcalls import OpCaller
    from poseir.elaborate.state import ElaborationState

_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
               "%": operator.mod, "**": operator.pow}
_TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul",
               "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_COMPARE = {"==": "equal", "!=": "not_equal", "<": "less", "<=": "less_equal", ">": "greater",
            ">=": "greater_equal"}


def _is_numeric(value) -> bool:
    """A number, or a (nested) list of numbers, that can become a constant tensor."""
    if isinstance(value, tuple):
        return bool(value) and all(_is_numeric(item) for item in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class ExpressionEvaluator:
    """Evaluates expressions at compile time: numbers, dims, lists, names, attributes, calls, tensors.

    Interface: `evaluate` (any expression), `condition` (a compile-time truth), `iterate` (the
    items of a loop), `unpack` (loop names), `require_int`, `concrete_type` (a parameter's type),
    `unknown_name` (E100/E101 with a did-you-mean). Expressions reach the other collaborators,
    given once by `connect` (they evaluate expressions in turn, hence the connection after
    construction): operators go to the op caller, tensor subscripts to the indexer, attributes
    and calls to the call evaluator.
    """

    def __init__(self, state: ElaborationState):
        self.state = state
        self.ops: OpCaller | None = None
        self.indexer: TensorIndexer | None = None
        self.calls: CallEvaluator | None = None

    def connect(self, ops: OpCaller, indexer: TensorIndexer, calls: CallEvaluator) -> None:
        """Give the evaluator the collaborators that expressions call into."""
        self.ops = ops
        self.indexer = indexer
        self.calls = calls

    def evaluate(self, node: ast.Node, frame: Frame):
        """The value of an expression; raises DiagnosticError for user mistakes."""
        method = getattr(self, "_eval_" + type(node).__name__, None)
        if method is None:
            raise fail("E105", "this expression cannot be used here", node.span)
        return method(node, frame)

    # ------------------------------------------------------------------ leaves
    def _eval_Literal(self, node: ast.Literal, frame: Frame):
        return self.state.budget.integer(node.value, node.span)

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
            raise fail("E100", f"`{node.id}` exists only in {mode} mode", frame.span_of(node),
                       label=f"not defined in {self.state.builder.mode} mode",
                       helps=(f"use it inside a `{mode} {{ ... }}` block, or define it in both modes",))
        raise self.unknown_name(node, frame, "E100", f"cannot find `{node.id}` in this scope")

    def unknown_name(self, node: ast.Name, frame: Frame, code: str, message: str,
                     call: ast.Call | None = None) -> DiagnosticError:
        """E100/E101 with the closest spelling among locals, globals, dims and `self.` attributes.

        For a call, only a name that could take the call's arguments is suggested.
        """
        candidates = [*frame.scope.visible_names(), *frame.dims]
        attributes = list(frame.instance.attributes) if frame.instance is not None else []

        def value_of(name: str):
            return frame.scope.lookup(name) if name in frame.scope else None

        guess = closest_fitting(node.id, candidates + attributes, value_of, call)
        helps, fixes = (), ()
        if guess and not frame.builtin:
            replacement = f"self.{guess}" if guess in attributes and guess not in candidates else guess
            helps = (f"a name with a similar spelling exists: `{replacement}`",)
            fixes = (Fix(f"replace with `{replacement}`", (Edit(node.span, replacement),), safe=False),)
        return fail(code, message, frame.span_of(node), label="not found", helps=helps, fixes=fixes)

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
        self.state.budget.list_length(stop - start, frame.span_of(node))
        return tuple(range(start, stop))

    def _eval_ListComp(self, node: ast.ListComp, frame: Frame):
        items = self.iterate(node.iterable, frame)
        results = []
        for item in items:
            self.state.budget.iterate(1, frame.span_of(node))
            names = self.unpack(node.names, item, frame.span_of(node))
            inner = Frame(frame.scope.child(names), frame.kind, frame.instance, frame.builtin,
                          frame.site, frame.dims, frame.usage)
            if node.condition is None or self.condition(node.condition, inner):
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
        if isinstance(init, Poison):
            return POISON
        if not (isinstance(init, tuple) and init and isinstance(init[0], str)):
            raise fail("E103", f"expected an initializer such as `zeros()` or `uniform(-b, b)`, found {kind_of(init)}",
                       frame.span_of(node.init))
        return ParamSpec("parameter" if node.kind == "param" else "buffer", type_, init, node.span)

    # ------------------------------------------------------------------ operators
    def _eval_Unary(self, node: ast.Unary, frame: Frame):
        if node.op == "not":
            return not self.condition(node.operand, frame)
        operand = self.evaluate(node.operand, frame)
        if node.op == "+":
            return operand
        if isinstance(operand, Tensor):
            return self.ops.emit_op("neg", [operand], {}, self.ops.site_for(node, frame, [node.operand]))[0]
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
            self.state.budget.list_length(len(left) + len(right), frame.span_of(node))
            return left + right
        if node.op == "*" and isinstance(left, tuple) and isinstance(right, int):
            self.state.budget.list_length(len(left) * max(right, 0), frame.span_of(node))
            return left * right
        self.require_number(left, node.left, frame)
        self.require_number(right, node.right, frame)
        if node.op == "@":
            raise fail("E103", "`@` needs tensors", frame.span_of(node))
        if node.op == "/":
            if isinstance(left, Dim) or isinstance(right, Dim):
                raise fail("E103", "`/` on dims gives a fraction; use `//` for whole dims", frame.span_of(node),
                           fixes=(Fix("use floor division", (Edit(node.span, self._floor_division_text(node)),),
                                      safe=False),))
            if right == 0:
                raise fail("E105", "division by zero", frame.span_of(node))
            return left / right
        if node.op in ("//", "%") and not isinstance(right, Dim) and right == 0:
            raise fail("E105", "division by zero", frame.span_of(node))
        if node.op == "**":
            self.state.budget.power(left, right, frame.span_of(node))
        try:
            return self.state.budget.integer(dim_value(_ARITHMETIC[node.op](left, right)), frame.span_of(node))
        except (ValueError, ZeroDivisionError, TypeError, OverflowError) as error:
            raise fail("E105", f"cannot compute `{self.state.source_text(node)}`: {error}", frame.span_of(node))

    def _floor_division_text(self, node: ast.Binary) -> str:
        """`a // b` for the source text of `a / b`."""
        return self.state.source_text(node.left) + " // " + self.state.source_text(node.right)

    def compare(self, node: ast.Binary, left, right, frame: Frame) -> bool:
        """Compile-time comparison; symbolic dims are decided with the facts or reported."""
        if isinstance(left, Dim) or isinstance(right, Dim):
            answer = getattr(self.state.builder.facts, _COMPARE[node.op])(Dim.of(left), Dim.of(right))
            if answer is Tri.UNKNOWN:
                raise fail("E105", f"cannot decide `{self.state.source_text(node)}` at compile time",
                           frame.span_of(node), label=f"depends on the value of {left} and {right}",
                           helps=("add a `where` fact to the forward signature that settles it",))
            return answer is Tri.YES
        comparisons = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                       ">": operator.gt, ">=": operator.ge}
        try:
            return comparisons[node.op](left, right)
        except TypeError:
            raise fail("E103", f"cannot compare {kind_of(left)} with {kind_of(right)}", frame.span_of(node))

    def tensor_binary(self, node: ast.Binary, left, right, frame: Frame):
        """`x + y`, `x * 2.0`, `a @ b`: an elementwise (or matmul) node; scalars become constants."""
        if node.op not in _TENSOR_OPS:
            raise fail("E103", f"`{node.op}` is not defined on tensors", frame.span_of(node),
                       helps=("`//` and `%` compute with compile-time numbers and dims; divide tensors with `/`",))
        site = self.ops.site_for(node, frame, [node.left, node.right])
        operands = [self.as_tensor(value, other, part, frame)
                    for value, other, part in ((left, right, node.left), (right, left, node.right))]
        return self.ops.emit_op(_TENSOR_OPS[node.op], operands, {}, site)[0]

    def as_tensor(self, value, other, part: ast.Node, frame: Frame) -> Tensor:
        """A scalar operand as a rank-0 constant node of the other operand's dtype."""
        if isinstance(value, Tensor):
            return value
        dtype = other.type.dtype if isinstance(other, Tensor) and not other.type.is_error else "f32"
        if isinstance(value, Dim):
            # `x / T`: the dim becomes a scalar read off the input shapes at run time.
            site = self.ops.site_for(part, frame, [])
            return self.ops.emit_op("size", [], {"value": value, "dtype": dtype}, site)[0]
        if not _is_numeric(value) and not (isinstance(value, bool) and dtype == "bool"):
            raise fail("E103", f"cannot combine a tensor with {kind_of(value)}", frame.span_of(part),
                       helps=("numbers and lists of numbers (such as `[-1.0, 1.0]`) become constant tensors",))
        dtype = other.type.dtype if isinstance(other, Tensor) and not other.type.is_error else "f32"
        site = self.ops.site_for(part, frame, [])
        return self.ops.emit_op("constant", [], {"value": value, "dtype": dtype}, site)[0]

    # ------------------------------------------------------------------ attributes and calls
    def _eval_Attribute(self, node: ast.Attribute, frame: Frame):
        return self.calls.attribute(node, frame)

    def _eval_Call(self, node: ast.Call, frame: Frame):
        return self.calls.call(node, frame)

    # ------------------------------------------------------------------ subscripts
    def _eval_Subscript(self, node: ast.Subscript, frame: Frame):
        value = self.evaluate(node.value, frame)
        if isinstance(value, Poison):
            return POISON
        if isinstance(value, Tensor):
            return self.indexer.index(value, node, frame)
        if isinstance(value, ModuleList):
            return self.index_sequence(value.items, node, frame)
        if isinstance(value, tuple):
            return self.index_sequence(value, node, frame)
        raise fail("E103", f"{kind_of(value)} cannot be indexed", frame.span_of(node.value))

    def index_sequence(self, items, node: ast.Subscript, frame: Frame):
        """Compile-time `list[i]` or `list[a:b]`."""
        if len(node.items) != 1:
            raise fail("E209", "a list takes exactly one index", frame.span_of(node))
        (item,) = node.items
        if isinstance(item, ast.Slice):
            bounds = [self.optional_int(part, frame) for part in (item.start, item.stop, item.step)]
            return tuple(items[slice(*bounds)])
        index = self.require_int(item, frame, "list index")
        if not -len(items) <= index < len(items):
            raise fail("E105", f"index {index} is out of range for a list of length {len(items)}",
                       frame.span_of(item), candidates=overshooting_index(item, index - len(items) + 1)
                       if index >= len(items) and not frame.builtin else ())
        return items[index]

    # ------------------------------------------------------------------ helpers
    def condition(self, node: ast.Node, frame: Frame) -> bool:
        """A compile-time condition; tensors here would be data-dependent control flow."""
        value = self.evaluate(node, frame)
        if isinstance(value, Tensor):
            raise fail("E107", "a condition cannot depend on tensor values", frame.span_of(node),
                       label=f"this is a tensor {value.type}",
                       helps=("poseir graphs have no data-dependent control flow; use `maximum`, "
                              "masks or arithmetic instead",))
        if isinstance(value, Poison):
            return False
        if not isinstance(value, (bool, int, float, str, tuple)) and value is not None:
            raise fail("E103", f"expected a condition, found {kind_of(value)}", frame.span_of(node))
        return bool(value)

    def iterate(self, node: ast.Node, frame: Frame) -> tuple:
        """The items of a compile-time loop."""
        value = self.evaluate(node, frame)
        if isinstance(value, ModuleList):
            return tuple(value.items)
        if isinstance(value, int) and not isinstance(value, bool):
            self.state.budget.list_length(value, frame.span_of(node))
            return tuple(range(value))
        if not isinstance(value, tuple):
            raise fail("E103", f"cannot loop over {kind_of(value)}", frame.span_of(node),
                       helps=("loop over a range `0..n` or a list",))
        return value

    def unpack(self, names: tuple[str, ...], item, span) -> dict:
        """The loop names bound to one item: the item itself, or its parts for `for i, x in ...`."""
        if len(names) == 1:
            return {names[0]: item}
        if isinstance(item, Poison):
            return dict.fromkeys(names, POISON)
        if not isinstance(item, tuple) or len(item) != len(names):
            count = f"{len(item)} values" if isinstance(item, tuple) else kind_of(item)
            raise fail("E102", f"cannot unpack {count} into {len(names)} names", span,
                       helps=("`enumerate(items)` gives (index, item) pairs and `zip(a, b)` pairs of items",))
        return dict(zip(names, item))

    def require_int(self, node: ast.Node, frame: Frame, what: str) -> int:
        """A compile-time int, or E103/E105."""
        value = self.evaluate(node, frame)
        value = dim_value(value)
        if isinstance(value, Dim):
            raise fail("E105", f"{what} must be known at compile time, found the dim `{value}`", frame.span_of(node))
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail("E103", f"{what} must be an int, found {kind_of(value)}", frame.span_of(node))
        return value

    def optional_int(self, node, frame: Frame):
        """A compile-time int or None for a missing slice bound."""
        return None if node is None else self.require_int(node, frame, "slice bound")

    def require_number(self, value, node: ast.Node, frame: Frame) -> None:
        """Reject non-numbers in compile-time arithmetic."""
        if isinstance(value, bool) or not isinstance(value, (int, float, Dim)):
            raise fail("E103", f"expected a number or dim, found {kind_of(value)}", frame.span_of(node))

    def concrete_type(self, node: ast.TensorTypeExpr, frame: Frame) -> TensorType:
        """A parameter's type: every dim must be a compile-time int."""
        dims = []
        for dim in node.dims:
            value = self.require_int(dim, frame, "a parameter dimension")
            if value < 0:
                raise fail("E105", f"a parameter dimension cannot be negative ({value})", frame.span_of(dim))
            dims.append(Dim.of(value))
        return TensorType(node.dtype, tuple(dims))
