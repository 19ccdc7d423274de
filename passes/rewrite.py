"""A workshop for passes: build a new graph from an old one without touching it.

Passes keep, drop or replace nodes and redirect the readers of a value to another value; the
rewriter types every new node through its op's shape rule (so atoms and dtypes stay right),
gives it a fresh deterministic name and the span of what it replaces, and freezes the result.
"""

from __future__ import annotations

from dataclasses import replace

from poseir.ir.graph import Graph, Node, Parameter, TensorType, Value, freeze_values
from poseir.ops.registry import ShapeContext, lookup
from poseir.passes.infer_shapes import infer_node
from poseir.syntax.source import Span


class RewriteError(AssertionError):
    """A pass built a node whose shape rule fails: a compiler bug, reported with the pass's name."""


class Rewriter:
    """Accumulates the nodes of the new graph; reads of redirected values follow their new source."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list[Node] = []
        self.values: dict[str, Value] = dict(graph.values)
        self.parameters: list[Parameter] = list(graph.parameters)
        self.inputs: list[Value] = list(graph.inputs)
        self.redirects: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def source(self, name: str) -> str:
        """The value a read of `name` now reads."""
        while name in self.redirects:
            name = self.redirects[name]
        return name

    def redirect(self, old: str, new: str) -> None:
        """Every later read of `old` reads `new` instead (graph outputs are handled by `finish`)."""
        if self.source(new) != old:
            self.redirects[old] = new

    def keep(self, node: Node) -> Node:
        """Append `node` with its inputs following the redirects."""
        kept = replace(node, inputs=tuple(self.source(name) if name else "" for name in node.inputs))
        self.nodes.append(kept)
        return kept

    def type_of(self, name: str) -> TensorType:
        """The type of a value of the new graph."""
        return self.values[self.source(name)].type

    def add(self, op: str, inputs: list[str], attrs: dict, span: Span, scope: str = "",
            outputs: tuple[str, ...] | None = None) -> list[str]:
        """A new node of `op`, typed by its shape rule; returns its output names."""
        definition = lookup(op)
        inputs = [self.source(name) if name else "" for name in inputs]
        names = outputs or tuple(self.fresh(op) for _ in range(definition.output_count(attrs)))
        types = [self.values[name].type if name else None for name in inputs]
        context = ShapeContext(op=op, facts=self.graph.facts, span=span, outputs=names)
        output_types, found = infer_node(definition, types, attrs, context)
        errors = [diagnostic for diagnostic in found if diagnostic.code.startswith("E")]
        if errors or any(type_.is_error for type_ in output_types):
            raise RewriteError(f"a rewritten `{op}` at {span} does not type: {errors[0].message if errors else ''}")
        for name, type_ in zip(names, output_types):
            self.values[name] = Value(name, type_, span)
        self.nodes.append(Node(op, tuple(inputs), names, tuple(sorted(attrs.items())), span, scope))
        return list(names)

    def fresh(self, stem: str) -> str:
        """A value name not used in the old or the new graph, deterministic in the order of requests."""
        while True:
            number = self._counts.get(stem, 0)
            self._counts[stem] = number + 1
            name = f"{stem}.{number}"
            if name not in self.values:
                return name

    def add_parameter(self, parameter: Parameter, type_: TensorType) -> None:
        """A new parameter (a folded weight) with its typed value."""
        self.parameters.append(parameter)
        self.values[parameter.name] = Value(parameter.name, type_, parameter.span)

    def finish(self) -> Graph:
        """The new graph: outputs keep their names (through a copy when their value was redirected)."""
        outputs = []
        for value in self.graph.outputs:
            source = self.source(value.name)
            if source != value.name:
                span = self.values[source].span
                self.nodes.append(Node("identity", (source,), (value.name,), (), span))
                self.values[value.name] = Value(value.name, self.values[source].type, value.span)
            outputs.append(self.values[value.name])
        used = {name for node in self.nodes for name in node.inputs} | {value.name for value in outputs}
        parameters = tuple(parameter for parameter in self.parameters if parameter.name in used)
        defined = {value.name for value in self.inputs} | {parameter.name for parameter in parameters}
        defined |= {name for node in self.nodes for name in node.outputs}
        values = {name: value for name, value in self.values.items() if name in defined}
        return replace(self.graph, nodes=tuple(self.nodes), values=freeze_values(values), outputs=tuple(outputs),
                       parameters=parameters, inputs=tuple(self.inputs))

    def replace_input(self, value: Value) -> None:
        """Give a graph input another type (same name): the caller feeds it in that form."""
        self.inputs = [value if old.name == value.name else old for old in self.inputs]
        self.values[value.name] = value


def consumers(graph: Graph) -> dict[str, list[int]]:
    """For each value, the indices of the nodes that read it."""
    readers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name:
                readers.setdefault(name, []).append(index)
    return readers


def producers(graph: Graph) -> dict[str, Node]:
    """For each node output, its node."""
    return {name: node for node in graph.nodes for name in node.outputs}


def output_names(graph: Graph) -> set[str]:
    """The names of the graph's outputs."""
    return {value.name for value in graph.outputs}


def concrete_attributes(node: Node) -> dict:
    """A node's attributes with every dim as an int, for running its op at compile time (all dims constant)."""
    return {key: _concrete(value) for key, value in node.attrs}


def _concrete(value):
    """Constant dims to ints, inside tuples too."""
    from poseir.ir.dims import Dim

    if isinstance(value, Dim):
        return value.value
    if isinstance(value, tuple):
        return tuple(_concrete(item) for item in value)
    return value


def has_symbolic_attribute(node: Node) -> bool:
    """Whether an attribute holds a dim that is not a number (`x[:, :T]`): known only when inputs arrive."""
    return any(_symbolic(value) for _, value in node.attrs)


def _symbolic(value) -> bool:
    """Whether a value holds a dim that is not a number."""
    from poseir.ir.dims import Dim

    if isinstance(value, Dim):
        return not value.is_const
    if isinstance(value, tuple):
        return any(_symbolic(item) for item in value)
    return False


def permutation(node: Node, rank: int) -> list[int]:
    """The permutation a permute or transpose node applies, as non-negative axes."""
    if node.op == "transpose":
        order = list(range(rank))
        first, second = node.attr("dim0") % rank, node.attr("dim1") % rank
        order[first], order[second] = order[second], order[first]
        return order
    dims = node.attr("dims")
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], tuple) else dims
    return [axis % rank for axis in dims]


def until_stable(sweep, graph: Graph) -> tuple[Graph, list, bool]:
    """Apply `sweep(graph) -> (graph, changed)` until it changes nothing; the pass-shaped result."""
    changed = False
    while True:
        graph, step = sweep(graph)
        if not step:
            return graph, [], changed
        changed = True
