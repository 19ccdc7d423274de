"""Compile-time values the elaborator computes with: tensors, modules, lists, skeletons."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable

from poseir.syntax import ast
from poseir.ir.graph import TensorType
from poseir.syntax.source import Span


@dataclass(frozen=True)
class Tensor:
    """A tensor in the graph being built: the name of its IR value and its type."""

    name: str
    type: TensorType
    span: Span

    @property
    def is_error(self) -> bool:
        """True when the tensor came from a failed shape rule (errors never cascade)."""
        return self.type.is_error


@dataclass(frozen=True)
class Poison:
    """The value of an expression that already failed; using it reports nothing more."""


POISON = Poison()


@dataclass(frozen=True)
class ParamSpec:
    """A declared parameter or buffer before it gets its `state_dict` key."""

    kind: str
    type: TensorType
    init: tuple
    span: Span


@dataclass(frozen=True)
class ModuleDef:
    """A `module` declaration together with the file scope it was declared in."""

    declaration: ast.ModuleDecl
    home: weakref.ref  # the file scope, which binds this definition: a strong reference would make a cycle
    builtin: bool  # declared in the prelude: errors point at the user's call, not here

    @classmethod
    def declared(cls, declaration: ast.ModuleDecl, scope, builtin: bool) -> ModuleDef:
        """The definition of `declaration` in the file scope `scope`."""
        return cls(declaration, weakref.ref(scope), builtin)

    @property
    def name(self) -> str:
        """The module's name, such as `Conv1d`."""
        return self.declaration.name

    @property
    def scope(self):
        """The file scope the module was declared in (alive while its file's unit is)."""
        scope = self.home()
        if scope is None:
            raise RuntimeError(f"internal compiler error: module {self.name} outlived its file scope")
        return scope


@dataclass
class ModuleInstance:
    """An instantiated module: hyper-parameters, attributes in registration order, forwards."""

    definition: ModuleDef | None
    hyper: dict
    span: Span
    attributes: dict = field(default_factory=dict)
    forwards: dict = field(default_factory=dict)  # mode or None -> (ast.Forward, env)
    path: str = ""
    broken: bool = False  # an `assert` of its body failed, so its forward is not run

    @property
    def name(self) -> str:
        """The module's type name, for messages."""
        return self.definition.name if self.definition else "Sequential"


@dataclass
class ModuleList:
    """A list of submodules (PyTorch ModuleList/Sequential); keys are `name.index`."""

    items: list
    span: Span
    sequential: bool = False
    path: str = ""


@dataclass(frozen=True)
class BoundMethod:
    """`x.view` before it is called: an op with its receiver."""

    op: str
    receiver: Tensor
    receiver_span: Span


@dataclass(frozen=True)
class ListAppend:
    """`self.layers.append` before it is called."""

    target: ModuleList


@dataclass(frozen=True)
class Builtin:
    """A compile-time function such as `len`, `sqrt` or `uniform`."""

    name: str
    function: Callable
    doc: str


@dataclass(frozen=True)
class OpRef:
    """An op of the registry called as a function, e.g. `relu(x)`."""

    name: str


@dataclass(frozen=True)
class Namespace:
    """The names of a file imported with `import "file.pose" as alias`."""

    alias: str
    names: dict


@dataclass(frozen=True)
class Skeleton:
    """Joint names, parents and left/right pairs; gives `J`, indices and the flip permutation."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]

    @property
    def J(self) -> int:  # noqa: N802  (the conventional name of the joint count)
        """The number of joints."""
        return len(self.joints)

    @property
    def flip(self) -> tuple[int, ...]:
        """The left/right exchange permutation (an involution of length J)."""
        permutation = list(range(self.J))
        for left, right in self.pairs:
            permutation[left], permutation[right] = right, left
        return tuple(permutation)

    @property
    def left(self) -> tuple[int, ...]:
        """Indices of the left joints, in pair order."""
        return tuple(left for left, _ in self.pairs)

    @property
    def right(self) -> tuple[int, ...]:
        """Indices of the right joints, in pair order."""
        return tuple(right for _, right in self.pairs)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs of the kinematic tree."""
        return tuple((child, parent) for child, parent in enumerate(self.parents) if parent >= 0)

    def attribute(self, name: str):
        """`h36m.J`, `h36m.flip`, `h36m.LHip` (a joint's index) and so on."""
        if name in ("J", "flip", "left", "right", "edges"):
            return getattr(self, name)
        if name == "parents":
            return self.parents
        if name == "joints":
            return self.joints
        if name in self.joints:
            return self.joints.index(name)
        raise AttributeError(name)

    def attribute_names(self) -> list[str]:
        """Every name `attribute` accepts, for suggestions."""
        return ["J", "flip", "left", "right", "edges", "parents", "joints", *self.joints]


def kind_of(value) -> str:
    """A user-facing word for the kind of a value, for E103 messages."""
    if isinstance(value, Tensor):
        return f"a tensor {value.type}"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (tuple, list)):
        return "a list"
    if isinstance(value, ModuleInstance):
        return f"a `{value.name}` module"
    if isinstance(value, ModuleList):
        return "a module list"
    if isinstance(value, ModuleDef):
        return f"the module type `{value.name}`"
    if value is None:
        return "none"
    return type(value).__name__.lower()
