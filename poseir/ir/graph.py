"""The immutable, spanned IR: tensor types, values, nodes, parameters and graphs."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from poseir.ir.axes import Axes, describe
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts
from poseir.syntax.source import Span

DTYPES = ("f32", "f16", "f64", "i64", "i32", "bool")
FLOAT_DTYPES = ("f32", "f16", "f64")
NUMPY_DTYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64, "i32": np.int32,
                "bool": np.bool_}
DTYPE_NAMES = {np.dtype(numpy_type): name for name, numpy_type in NUMPY_DTYPES.items()}  # numpy -> poseir


@dataclass(frozen=True)
class TensorType:
    """A dtype, a shape of symbolic dims, and each axis's atoms; `dtype == "error"` marks a failed inference.

    `atoms` (see `poseir.ir.axes`) is the identity of the axes: which input, parameter or op
    each axis (or each factor of a merged axis) comes from. Two types are equal when their
    dtypes and sizes are; identity is compared where it matters, by the analyses that read it.
    """

    dtype: str
    shape: tuple[Dim, ...]
    atoms: Axes | None = field(default=None, compare=False, repr=False)

    @property
    def rank(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def is_error(self) -> bool:
        """True for the type given to outputs of a node whose shape rule failed."""
        return self.dtype == "error"

    def __str__(self) -> str:
        if self.is_error:
            return "<error>"
        return f"{self.dtype}[{', '.join(str(dim) for dim in self.shape)}]"

    def describe(self) -> str:
        """The type with its axes shown by their atoms: `f32[(B·F), J, C]`."""
        return "<error>" if self.is_error else describe(self.dtype, self.shape, self.atoms)

    def with_atoms(self, atoms: Axes | None) -> TensorType:
        """The same type with these atoms."""
        return TensorType(self.dtype, self.shape, atoms)


ERROR_TYPE = TensorType("error", ())


def tensor_type(dtype: str, shape) -> TensorType:
    """Build a TensorType from ints and Dims."""
    return TensorType(dtype, tuple(Dim.of(dim) for dim in shape))


@dataclass(frozen=True)
class Value:
    """A named SSA value: a graph input, a parameter or a node output."""

    name: str
    type: TensorType
    span: Span


@dataclass(frozen=True)
class Node:
    """One op application; inputs and outputs are value names, attrs are sorted pairs."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: tuple[tuple[str, object], ...]
    span: Span
    scope: str = ""
    arguments: tuple[tuple[object, Span, str], ...] = ()  # (argument key, span, source text) in the user's file

    def argument(self, key) -> tuple[Span, str] | None:
        """The span and source text of argument `key` (an input index or attribute name), when written by the user."""
        for name, span, text in self.arguments:
            if name == key:
                return span, text
        return None

    def attr(self, name: str, default=None):
        """The value of attribute `name`, or `default`."""
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    @property
    def attributes(self) -> dict:
        """The attributes as a fresh dict."""
        return dict(self.attrs)


@dataclass(frozen=True)
class Parameter:
    """A trainable parameter or buffer, named by its PyTorch `state_dict` key."""

    name: str
    type: TensorType
    kind: str  # "parameter" or "buffer"
    init: tuple  # ("zeros",) | ("ones",) | ("uniform", low, high) | ("normal", mean, std) | ...
    span: Span

    @property
    def shape(self) -> tuple[int, ...]:
        """The concrete shape (parameters never have symbolic dims)."""
        return tuple(dim.value for dim in self.type.shape)


@dataclass(frozen=True)
class Graph:
    """One flow (train or infer) of one model, fully elaborated and typed."""

    name: str
    mode: str
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    parameters: tuple[Parameter, ...]
    nodes: tuple[Node, ...]
    values: Mapping[str, Value]
    facts: Facts
    symbols: tuple[tuple[str, Span], ...] = field(default=())

    def value(self, name: str) -> Value:
        """The value called `name` (input, parameter or node output)."""
        return self.values[name]

    def parameter_table(self) -> dict[str, Parameter]:
        """State-dict key to parameter, in declaration order."""
        return {parameter.name: parameter for parameter in self.parameters}


def freeze_values(values: dict[str, Value]) -> Mapping[str, Value]:
    """A read-only view of a value table, so a finished graph cannot change."""
    return MappingProxyType(dict(values))


def format_graph(graph: Graph) -> str:
    """The IR as deterministic text, one node per line."""
    lines = [f"graph {graph.name} ({graph.mode})"]
    for fact in graph.facts.describe():
        lines.append(f"  where {fact}")
    for value in graph.inputs:
        lines.append(f"  input %{value.name}: {value.type}")
    for parameter in graph.parameters:
        lines.append(f"  {parameter.kind} %{parameter.name}: {parameter.type}")
    for node in graph.nodes:
        outputs = ", ".join(f"%{name}: {graph.values[name].type}" for name in node.outputs)
        arguments = [f"%{name}" for name in node.inputs] + [f"{key}={_format_attr(value)}" for key, value in node.attrs]
        lines.append(f"  {outputs} = {node.op}({', '.join(arguments)})  # {node.span}")
    lines.append("  return " + ", ".join(f"%{value.name}" for value in graph.outputs))
    return "\n".join(lines) + "\n"


def _format_attr(value) -> str:
    """Render an attribute value compactly and deterministically."""
    if isinstance(value, tuple):
        return "[" + ", ".join(_format_attr(item) for item in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)
