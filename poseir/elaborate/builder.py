"""Accumulates nodes while the elaborator runs, typing each one as it is added, then freezes a Graph."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from poseir.diagnostics.record import Diagnostic, Label
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts, LoggedFacts
from poseir.ir.axes import axes_of_shape, named
from poseir.ir.graph import Graph, Node, Parameter, TensorType, Value, freeze_values
from poseir.limits import Budget
from poseir.ops.registry import OpDef, ShapeContext
from poseir.passes.infer_shapes import infer_node
from poseir.syntax.source import Span
from poseir.elaborate.values import Tensor


@dataclass
class CallSite:
    """Where an op call appears: its span, argument spans and texts, extra labels."""

    span: Span
    spans: dict = field(default_factory=dict)
    texts: dict = field(default_factory=dict)
    labels: tuple[Label, ...] = ()
    scope: str = ""


# Diagnostics about the value of a symbol, where showing its binding site helps.
_BINDING_CODES = {"E205", "E212", "W300", "W301"}


class GraphBuilder:
    """The mutable workshop in which one flow of one model is assembled."""

    def __init__(self, name: str, mode: str, facts: Facts, budget: Budget | None = None):
        self.budget = budget if budget is not None else Budget()
        self.name = name
        self.mode = mode
        self.facts = facts
        self.inputs: list[Value] = []
        self.parameters: list[Parameter] = []
        self.nodes: list[Node] = []
        self.values: dict[str, Value] = {}
        self.diagnostics: list[Diagnostic] = []
        self.symbols: list[tuple[str, Span]] = []
        self.call_labels: tuple[Label, ...] = ()  # the call sites of the untyped helpers being run, outermost first
        self._memos: dict[int, tuple] = {}  # id(facts) -> (facts, shape rules' results under them)
        self.producers: dict[str, Node] = {}  # value name -> the node that made it, for fixes at the producer
        self.parameter_index: dict[str, Parameter] = {}  # state_dict key -> Parameter, for fixes of declarations
        self._counter: dict[str, int] = {}

    def fresh_name(self, stem: str) -> str:
        """A value name not used before in this graph, deterministic in emission order."""
        number = self._counter.get(stem, 0)
        self._counter[stem] = number + 1
        name = stem if number == 0 and stem not in self.values else f"{stem}_{number}"
        while name in self.values:
            number += 1
            self._counter[stem] = number + 1
            name = f"{stem}_{number}"
        return name

    def add_input(self, name: str, type_: TensorType, span: Span, axis_names: tuple = ()) -> Tensor:
        """Declare a graph input; its axes are new atoms, or the shared atom of a declared dim.

        `axis_names` are the declaration's texts (`J` for an axis written `J` that is 17), shown
        in place of the size.
        """
        type_ = type_.with_atoms(named(axes_of_shape(name, type_.shape, self.facts), axis_names))
        value = Value(name, type_, span)
        self.inputs.append(value)
        self.values[name] = value
        return Tensor(name, type_, span)

    def add_parameter(self, parameter: Parameter) -> Tensor:
        """Declare a parameter or buffer under its state_dict key; each axis is an atom of its own."""
        self.parameters.append(parameter)
        self.parameter_index[parameter.name] = parameter
        type_ = parameter.type.with_atoms(axes_of_shape(parameter.name, parameter.type.shape))
        self.values[parameter.name] = Value(parameter.name, type_, parameter.span)
        return Tensor(parameter.name, type_, parameter.span)

    def emit(self, op: OpDef, inputs: list, attrs: dict, site: CallSite) -> list[Tensor]:
        """Add one node, infer its output types, and record any diagnostics it raises."""
        types = [tensor.type if tensor is not None else None for tensor in inputs]
        self.budget.nodes(len(self.nodes) + 1, site.span)
        names = [self.fresh_name(op.name) for _ in range(op.output_count(attrs))]
        producers = tuple(self.producers.get(tensor.name) if tensor is not None else None for tensor in inputs)
        context = ShapeContext(op=op.name, facts=self.facts, span=site.span, spans=site.spans,
                               texts=site.texts, labels=site.labels, outputs=tuple(names), producers=producers,
                               parameters=self.parameter_index, values=self.values, nodes=self.producers)
        output_types, found = infer_node(op, types, attrs, context, self._memo(), logs_queries=self.logs_queries)
        self.diagnostics.extend(self.in_call_context(self.with_bindings(diagnostic)) for diagnostic in found)
        self.assume(context.assumptions)
        input_names = tuple(tensor.name if tensor is not None else "" for tensor in inputs)
        arguments = tuple((key, span, site.texts.get(key, "")) for key, span in site.spans.items())
        node = Node(op.name, input_names, tuple(names), tuple(attrs.items()), site.span, site.scope, arguments)
        self.nodes.append(node)
        self.producers.update((name, node) for name in names)
        outputs = []
        for name, type_ in zip(names, output_types):
            self.values[name] = Value(name, type_, site.span)
            outputs.append(Tensor(name, type_, site.span))
        return outputs

    @property
    def logs_queries(self) -> bool:
        """Whether shape rules log what they ask of the facts (replay across flows with different facts)."""
        return isinstance(self.facts, LoggedFacts)

    def _memo(self) -> dict:
        """The shape-rule memo of the current facts (results under other facts never apply)."""
        entry = self._memos.get(id(self.facts))
        if entry is None or entry[0] is not self.facts:
            entry = self._memos[id(self.facts)] = (self.facts, {})
        return entry[1]

    def assume(self, pairs) -> None:
        """After warning that `a == b` cannot be proved, carry on assuming it, so it warns once."""
        for assumption in pairs:
            try:
                if assumption[0] == "multiple":
                    _, dividend, divisor = assumption
                    self.facts = self.facts.with_modulus(dividend, divisor, 0)
                else:
                    self.facts = self.facts.with_relation(assumption[0], "==", assumption[1])
            except ValueError:
                continue  # contradicts the facts: keep them as they are; the warning stands

    def in_call_context(self, diagnostic: Diagnostic) -> Diagnostic:
        """A diagnostic raised inside untyped helpers, with each call site labelled (innermost first)."""
        if not self.call_labels or diagnostic.span is None:
            return diagnostic
        extra = tuple(label for label in reversed(self.call_labels) if label.span != diagnostic.span)
        return replace(diagnostic, labels=diagnostic.labels + extra)

    def with_bindings(self, diagnostic: Diagnostic) -> Diagnostic:
        """Add "`T` bound here" labels for the symbols a shape diagnostic talks about."""
        if diagnostic.code not in _BINDING_CODES:
            return diagnostic
        # The `where ...` help names exactly the symbols that matter; else those of the message.
        wheres = [text for text in diagnostic.helps if "where " in text]
        basis = " ".join(text.split("where ", 1)[1] for text in wheres) if wheres else diagnostic.message
        mentioned = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", basis))
        extra = tuple(Label(span, f"`{name}` bound here") for name, span in self.symbols
                      if name in mentioned and diagnostic.span is not None and span.line != diagnostic.span.line)
        if not extra:
            return diagnostic
        return replace(diagnostic, labels=diagnostic.labels + extra)

    def rename(self, old: str, new: str) -> None:
        """Give a node output its user-facing name (a graph output such as `pose`)."""
        if new in self.values:
            raise ValueError(f"value {new!r} already exists")
        value = self.values.pop(old)
        self.values[new] = Value(new, value.type, value.span)
        self.nodes = [_rename_in_node(node, old, new) for node in self.nodes]

    def finish(self, outputs: list[Value]) -> Graph:
        """Freeze the graph."""
        return Graph(
            name=self.name,
            mode=self.mode,
            inputs=tuple(self.inputs),
            outputs=tuple(outputs),
            parameters=tuple(self.parameters),
            nodes=tuple(self.nodes),
            values=freeze_values(self.values),
            facts=self.facts,
            symbols=tuple(self.symbols),
        )


def _rename_in_node(node: Node, old: str, new: str) -> Node:
    """The node with every mention of value `old` replaced by `new`."""
    if old not in node.inputs and old not in node.outputs:
        return node
    swap = lambda names: tuple(new if name == old else name for name in names)  # noqa: E731
    return replace(node, inputs=swap(node.inputs), outputs=swap(node.outputs))


def dim_value(value) -> Dim | int:
    """Normalize a compile-time dim: constant Dims become plain ints."""
    if isinstance(value, Dim):
        return value.value if value.is_const else value
    return value
