"""The lowering context each op's `onnx` facet receives: node, constant and runtime-dim builders.

A facet never sees example sizes. Every symbolic size it needs is computed inside the ONNX graph
from the runtime shapes of the graph inputs (`Shape` + `Gather`, then int64 arithmetic), so the
exported file runs at any batch size and clip length the `.pose` file allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.ir.dims import Dim, FloorDiv
from poseir.ir.graph import Graph, Node, TensorType
from poseir.syntax.source import Span
from poseir.ir.graph import NUMPY_DTYPES

ONNX_DTYPES = {
    "f32": TensorProto.FLOAT,
    "f16": TensorProto.FLOAT16,
    "f64": TensorProto.DOUBLE,
    "i64": TensorProto.INT64,
    "i32": TensorProto.INT32,
    "bool": TensorProto.BOOL,
}


def export_error(message: str, span: Span | None, *, helps=(), notes=()) -> DiagnosticError:
    """E406: the graph is valid poseir but cannot be written as ONNX."""
    return DiagnosticError(Diagnostic.make("E406", message, span, helps=helps, notes=notes))


@dataclass
class Emitted:
    """The ONNX pieces built so far, in creation order (which is a valid topological order)."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    constants: list[onnx.TensorProto] = field(default_factory=list)
    helper_types: dict[str, TensorType] = field(default_factory=dict)  # typed helper values (dims)


class LoweringContext:
    """Builds ONNX nodes for one poseir graph; facets see the node being lowered through it."""

    def __init__(self, graph: Graph, opset: int, mode: str, explicit_shapes: bool = False):
        """Start lowering `graph` for `opset` in `mode` ("infer" or "train"); `explicit_shapes` writes every
        Reshape target out (no -1 or 0 placeholders), as a profile may require."""
        self.graph = graph
        self.explicit_shapes = explicit_shapes
        self.opset = opset
        self.mode = mode
        self.facts = graph.facts
        self.emitted = Emitted()
        self.input_types: list[TensorType | None] = []
        self.output_types: list[TensorType] = []
        self._node: Node | None = None
        self._fresh = 0
        self._node_counts: dict[str, int] = {}
        self._constants: dict[tuple, str] = {}
        self._cached: dict[object, str] = {}
        self._scope = graph.name

    # ------------------------------------------------------------------ the node being lowered

    def begin(self, node: Node) -> None:
        """Make `node` the current poseir node (types, span and names of what follows)."""
        self._node = node
        self._fresh = 0
        self._scope = node.scope or self.graph.name
        values = self.graph.values
        self.input_types = [values[name].type if name else None for name in node.inputs]
        self.output_types = [values[name].type for name in node.outputs]

    @property
    def training(self) -> bool:
        """True when lowering the training flow."""
        return self.mode == "train"

    @property
    def op(self) -> str:
        """The poseir op of the node being lowered."""
        return self._node.op if self._node is not None else ""

    @property
    def span(self) -> Span | None:
        """The DSL span of the node being lowered."""
        return self._node.span if self._node is not None else None

    def error(self, message: str, *, helps=()) -> DiagnosticError:
        """An E406 at the current node, for a facet to raise."""
        return export_error(message, self.span, helps=helps)

    # ------------------------------------------------------------------ nodes

    def node(self, op_type: str, inputs, outputs: int = 1, **attributes):
        """Add one ONNX node; returns its output name, or a list of names when `outputs` != 1."""
        names = [self._fresh_name() for _ in range(outputs)]
        self._append(op_type, inputs, names, attributes, self._scope, self._doc())
        return names[0] if outputs == 1 else names

    def _append(self, op_type: str, inputs, outputs, attributes: dict, scope: str, doc: str) -> None:
        """Create the NodeProto with a stable name `{scope}/{op_type}_{n}`."""
        base = f"{scope}/{op_type}"
        count = self._node_counts.get(base, 0)
        self._node_counts[base] = count + 1
        attributes = {key: value for key, value in attributes.items() if value is not None}
        proto = helper.make_node(op_type, list(inputs), list(outputs), name=f"{base}_{count}", doc_string=doc,
                                 **attributes)
        self.emitted.nodes.append(proto)

    def _fresh_name(self) -> str:
        """`{first output}:{n}`: `:` appears in no poseir name (identifiers, state_dict keys) or helper name."""
        owner = self._node.outputs[0] if self._node is not None and self._node.outputs else "value"
        self._fresh += 1
        return f"{owner}:{self._fresh}"

    def _doc(self) -> str:
        """The doc_string every node carries: the poseir op and its DSL span."""
        if self._node is None:
            return "poseir"
        span = self._node.span
        return f"poseir {self._node.op} at {span}-{span.end_line}:{span.end_column}"

    # ------------------------------------------------------------------ constants

    def constant(self, value, dtype: str | None = None) -> str:
        """A constant initializer (deduplicated), `dtype` a poseir dtype or the array's own."""
        array = np.asarray(value, dtype=NUMPY_DTYPES[dtype] if dtype else None)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            name = f"const/{len(self._constants)}"
            self._constants[key] = name
            self.emitted.constants.append(numpy_helper.from_array(array, name))
        return self._constants[key]

    def scalar(self, value, dtype: str) -> str:
        """A rank-0 constant of a poseir dtype."""
        return self.constant(np.asarray(value, dtype=NUMPY_DTYPES[dtype]))

    def int64s(self, values) -> str:
        """A 1-D int64 constant (axes, sizes, steps)."""
        return self.constant(np.asarray(list(values), dtype=np.int64).reshape(-1))

    def cast(self, name: str, source: str, target: str) -> str:
        """`name` converted from poseir dtype `source` to `target` (unchanged when equal)."""
        if source == target:
            return name
        return self.node("Cast", [name], to=ONNX_DTYPES[target])

    def onnx_dtype(self, dtype: str) -> int:
        """The TensorProto element type of a poseir dtype."""
        return ONNX_DTYPES[dtype]

    # ------------------------------------------------------------------ opset-dependent encodings

    def reduce(self, op_type: str, name: str, axes, keepdims: bool) -> str:
        """A Reduce* node over `axes`; axes are an input from opset 18 (ReduceSum: 13), else an attribute."""
        axes = list(axes)
        as_input = op_type == "ReduceSum" or self.opset >= 18
        if as_input:
            inputs = [name, self.int64s(axes)] if axes else [name]
            return self.node(op_type, inputs, keepdims=int(keepdims))
        return self.node(op_type, [name], keepdims=int(keepdims), axes=axes or None)

    def squeeze(self, name: str, axes) -> str:
        """Squeeze with axes as an input (opset 13 and later)."""
        return self.node("Squeeze", [name, self.int64s(axes)])

    def unsqueeze(self, name: str, axes) -> str:
        """Unsqueeze with axes as an input (opset 13 and later)."""
        return self.node("Unsqueeze", [name, self.int64s(axes)])

    # ------------------------------------------------------------------ runtime sizes

    def shape_of(self, name: str) -> str:
        """The runtime shape of a value, as a 1-D int64 tensor (one Shape node per value)."""
        key = ("shape_of", name)
        if key not in self._cached:
            self._cached[key] = self._helper("Shape", [name], f"shape/{name}", None)
        return self._cached[key]

    def dim(self, value) -> str:
        """A 1-D int64 tensor of one element holding `value`, computed from the input shapes at run time."""
        dim = Dim.of(value)
        if dim.is_const:
            return self.int64s([dim.value])
        key = ("dim", dim)
        if key not in self._cached:
            self._cached[key] = self._polynomial(dim)
        return self._cached[key]

    def shape(self, dims) -> str:
        """A 1-D int64 tensor of sizes: a constant when every size is, else a Concat of runtime pieces."""
        dims = [Dim.of(dim) for dim in dims]
        if all(dim.is_const for dim in dims):
            return self.int64s([dim.value for dim in dims])
        key = ("shape", tuple(dims))
        if key not in self._cached:
            pieces, run = [], []
            for dim in dims:
                if dim.is_const:
                    run.append(dim.value)
                    continue
                if run:
                    pieces.append(self.int64s(run))
                    run = []
                pieces.append(self.dim(dim))
            if run:
                pieces.append(self.int64s(run))
            if len(pieces) == 1:
                return pieces[0]
            text = ",".join(dim.to_dim_param() for dim in dims)
            self._cached[key] = self._helper("Concat", pieces, f"shape/[{text}]", len(dims), axis=0)
        return self._cached[key]

    def is_helper(self, name: str) -> bool:
        """Whether `name` is a shared helper value (`const/`, `dim/`, `shape/`) that must not be renamed."""
        return "/" in name and ":" not in name and name.split("/", 1)[0] in ("const", "dim", "shape")

    def _helper(self, op_type: str, inputs, name: str, length: int | None, **attributes) -> str:
        """A shared int64 helper value in the `dims` scope, typed as int64[length]."""
        doc = f"size computation for {self._doc()}"
        self._append(op_type, inputs, [name], attributes, "dims", doc)
        if length is not None:
            self.emitted.helper_types[name] = TensorType("i64", (Dim.of(length),))
        return name

    def _polynomial(self, dim: Dim) -> str:
        """Sum of the terms of `dim`, each partial sum cached as a dim of its own."""
        total, name = Dim(), None
        for monomial, coefficient in dim.terms:
            term = Dim(((monomial, coefficient),))
            partial = total + term
            if name is None:
                name = self._term(monomial, coefficient)
            elif not monomial:
                name = self._arithmetic("Add" if coefficient > 0 else "Sub", name, self.int64s([abs(coefficient)]),
                                        partial)
            else:
                scaled = self._term(monomial, abs(coefficient))
                name = self._arithmetic("Add" if coefficient > 0 else "Sub", name, scaled, partial)
            total = partial
        return name

    def _term(self, monomial, coefficient: int) -> str:
        """`coefficient * product of variables`, cached as a dim."""
        if not monomial:
            return self.int64s([coefficient])
        product = Dim(((monomial, 1),))  # the monomial alone, as a dim (terms are (monomial, coefficient))
        name = self._cached.get(("dim", product))
        if name is None:
            partial = Dim.of(1)
            for variable, power in monomial:
                for _ in range(power):
                    partial = partial * Dim._of_variable(variable)
                    factor = self._variable(variable)
                    name = factor if name is None else self._arithmetic("Mul", name, factor, partial)
            self._cached[("dim", product)] = name
        if coefficient == 1:
            return name
        return self._arithmetic("Mul", name, self.int64s([coefficient]), product * coefficient)

    def _arithmetic(self, op_type: str, left: str, right: str, result: Dim) -> str:
        """One int64 operation whose result is the dim `result` (cached under it)."""
        key = ("dim", result)
        if key not in self._cached:
            self._cached[key] = self._helper(op_type, [left, right], f"dim/{result.to_dim_param()}", 1)
        return self._cached[key]

    def _variable(self, variable) -> str:
        """A symbol read off an input shape, or a floor division of a sub-dim."""
        key = ("dim", Dim._of_variable(variable))
        if key in self._cached:
            return self._cached[key]
        if isinstance(variable, FloorDiv):
            name = self._floor(variable)
        else:
            name = self._symbol(variable)
        self._cached[key] = name
        return name

    def _floor(self, variable: FloorDiv) -> str:
        """`numerator // divisor`; ONNX Div truncates, so a possibly negative numerator goes through Mod."""
        numerator = self.dim(variable.numerator)
        divisor = self.int64s([variable.divisor])
        text = f"dim/{Dim._of_variable(variable).to_dim_param()}"
        low, _ = self.facts.interval(variable.numerator)
        if low is None or low < 0:
            remainder = self._helper("Mod", [numerator, divisor], text + "/mod", 1, fmod=0)
            numerator = self._helper("Sub", [numerator, remainder], text + "/floor", 1)
        return self._helper("Div", [numerator, divisor], text, 1)

    def _symbol(self, symbol: str) -> str:
        """Read a symbol off the first input axis that is exactly it, or that is `a*symbol + b`."""
        for value in self.graph.inputs:
            for axis, dim in enumerate(value.type.shape):
                if dim == Dim.symbol(symbol):
                    return self._axis(value.name, axis, f"dim/{symbol}")
        for value in self.graph.inputs:
            for axis, dim in enumerate(value.type.shape):
                linear = dim.is_linear_in_one_symbol()
                if linear is not None and linear[0] == symbol:
                    return self._solve(value.name, axis, symbol, *linear[1:])
        raise export_error(f"the size `{symbol}` cannot be computed from the shapes of the model's inputs",
                           self.span, helps=(f"give an input an axis of size `{symbol}`",))

    def _axis(self, input_name: str, axis: int, name: str) -> str:
        """Gather one axis of an input's runtime shape."""
        return self._helper("Gather", [self.shape_of(input_name), self.int64s([axis])], name, 1, axis=0)

    def _solve(self, input_name: str, axis: int, symbol: str, scale: int, offset: int) -> str:
        """`symbol = (size - offset) / scale` for an axis of size `scale*symbol + offset` (exact)."""
        size = self._axis(input_name, axis, f"dim/{input_name}.{axis}")
        if offset:
            size = self._helper("Sub", [size, self.int64s([offset])], f"dim/{input_name}.{axis}-{offset}", 1)
        if scale != 1:
            size = self._helper("Div", [size, self.int64s([scale])], f"dim/{symbol}", 1)
        return size
