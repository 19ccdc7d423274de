"""The spanned surface tree of a `.pose` file, as produced by `poseir.syntax.parser`."""

from __future__ import annotations

from dataclasses import dataclass

from poseir.syntax.source import Span


@dataclass(frozen=True)
class Node:
    """Base of every surface node: it knows where it came from."""

    span: Span


# ------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Name(Node):
    """A reference to a name in scope."""

    id: str


@dataclass(frozen=True)
class SelfRef(Node):
    """The module instance being defined or run (`self`)."""


@dataclass(frozen=True)
class Literal(Node):
    """An int, float, string, bool or `none` literal."""

    value: object


@dataclass(frozen=True)
class ListExpr(Node):
    """`[a, b, c]`."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class TupleExpr(Node):
    """`(a, b)`."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class RangeExpr(Node):
    """`start..stop`, exclusive of stop, evaluated at compile time."""

    start: Node
    stop: Node


@dataclass(frozen=True)
class ListComp(Node):
    """`[element for name in iterable if condition]` (or `for i, x in ...`), unrolled at compile time."""

    element: Node
    names: tuple[str, ...]  # one name, or several that unpack each item
    iterable: Node
    condition: Node | None = None


@dataclass(frozen=True)
class Unary(Node):
    """`-x`, `+x` or `not x`."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    """An arithmetic, comparison or boolean operator applied to two operands."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class IfExpr(Node):
    """`then if condition else otherwise` (compile-time condition)."""

    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Attribute(Node):
    """`value.name`."""

    value: Node
    name: str
    name_span: Span


@dataclass(frozen=True)
class Argument(Node):
    """One call argument, positional (`name is None`) or keyword."""

    name: str | None
    value: Node


@dataclass(frozen=True)
class Call(Node):
    """`function(arguments...)`."""

    function: Node
    arguments: tuple[Argument, ...]


@dataclass(frozen=True)
class Slice(Node):
    """`start:stop:step` inside a subscript; missing parts are None."""

    start: Node | None
    stop: Node | None
    step: Node | None


@dataclass(frozen=True)
class EllipsisItem(Node):
    """`...` in a subscript or a tensor type."""


@dataclass(frozen=True)
class Subscript(Node):
    """`value[items...]`."""

    value: Node
    items: tuple[Node, ...]


@dataclass(frozen=True)
class TensorTypeExpr(Node):
    """`f32[B, T, 17, 2]`; dims are expressions or `EllipsisItem`."""

    dtype: str
    dims: tuple[Node, ...]


@dataclass(frozen=True)
class ParamExpr(Node):
    """`param f32[...] ~ init(...)` or `buffer f32[...] ~ init(...)`."""

    kind: str
    type: TensorTypeExpr
    init: Node | None


# ------------------------------------------------------------------ statements


@dataclass(frozen=True)
class Target(Node):
    """An assignment target: a local name or `self.name`."""

    name: str
    on_self: bool


@dataclass(frozen=True)
class Assign(Node):
    """`a, b = value` or `x: f32[...] = value`."""

    targets: tuple[Target, ...]
    annotation: TensorTypeExpr | None
    value: Node


@dataclass(frozen=True)
class AugAssign(Node):
    """`x += value` (also `-=`, `*=`, `/=`): `x = x + value`, with `op` the binary operator."""

    target: Target
    op: str
    value: Node


@dataclass(frozen=True)
class ExprStatement(Node):
    """An expression evaluated for its effect, such as `self.layers.append(...)`."""

    expr: Node


@dataclass(frozen=True)
class AssertType(Node):
    """`assert x: f32[...]`: a shape assertion checked at compile time."""

    expr: Node
    type: TensorTypeExpr


@dataclass(frozen=True)
class AssertCondition(Node):
    """`assert(condition, "message")` on compile-time values."""

    condition: Node
    message: str | None


@dataclass(frozen=True)
class Return(Node):
    """`return a, b`."""

    values: tuple[Node, ...]


@dataclass(frozen=True)
class For(Node):
    """`for name in iterable { body }` (or `for i, block in ...`), unrolled at compile time."""

    names: tuple[str, ...]  # one name, or several that unpack each item
    iterable: Node
    body: tuple[Node, ...]


@dataclass(frozen=True)
class If(Node):
    """`if c { } elif c { } else { }` on compile-time conditions."""

    branches: tuple[tuple[Node, tuple[Node, ...]], ...]
    otherwise: tuple[Node, ...] | None


@dataclass(frozen=True)
class ModeBlock(Node):
    """`train { }` or `infer { }`: statements that exist in one mode only."""

    mode: str
    body: tuple[Node, ...]


@dataclass(frozen=True)
class Relation(Node):
    """A declared fact such as `T >= 243` or `T % 3 == 0`; `mode` limits it to one flow."""

    op: str
    left: Node
    right: Node
    mode: str | None = None


@dataclass(frozen=True)
class ForwardParam(Node):
    """One forward input; `mode` limits it to train or infer."""

    name: str
    type: TensorTypeExpr | None
    mode: str | None


@dataclass(frozen=True)
class Forward(Node):
    """A forward function; `mode` None means it serves both modes."""

    mode: str | None
    params: tuple[ForwardParam, ...]
    outputs: tuple[ForwardParam, ...] | None
    facts: tuple[Relation, ...]
    body: tuple[Node, ...]


# ------------------------------------------------------------------ top level


@dataclass(frozen=True)
class Import(Node):
    """`import "other.pose"` (optionally `as name`)."""

    path: str
    alias: str | None


@dataclass(frozen=True)
class DimDecl(Node):
    """`dim B, T where T >= 1`: symbolic dims and facts about them."""

    names: tuple[tuple[str, Span], ...]
    facts: tuple[Relation, ...]


@dataclass(frozen=True)
class ConstDecl(Node):
    """`J = 17` at file level."""

    name: str
    value: Node
    doc: str | None


@dataclass(frozen=True)
class ModelDecl(Node):
    """`model name = Module(args)`: a compilable network."""

    name: str
    value: Node
    doc: str | None


@dataclass(frozen=True)
class HyperParam(Node):
    """A module hyper-parameter with an optional kind and default."""

    name: str
    kind: str | None
    default: Node | None


@dataclass(frozen=True)
class ModuleDecl(Node):
    """`module Name(hyper-params) { body }`."""

    name: str
    hyper_params: tuple[HyperParam, ...]
    body: tuple[Node, ...]
    doc: str | None


@dataclass(frozen=True)
class SkeletonDecl(Node):
    """`skeleton name { joints = [...]  parents = [...]  pairs = [...] }`."""

    name: str
    body: tuple[Node, ...]
    doc: str | None


@dataclass(frozen=True)
class File(Node):
    """A parsed `.pose` file."""

    path: str
    items: tuple[Node, ...]
