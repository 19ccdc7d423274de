"""How the editor shows compile-time values and tensor types: one place, so axis identity can join it."""

from __future__ import annotations

from poseir.elaborate.values import ModuleInstance, ModuleList, ParamSpec, Tensor, kind_of
from poseir.ir.dims import Dim
from poseir.ir.graph import TensorType


def render_type(type_: TensorType) -> str:
    """A tensor type as hints and hovers show it, each axis by its atoms: `f32[(B·F), J, 32]`."""
    return type_.describe()


def describe(value) -> str | None:
    """A short text for a value a name was bound to: a type, a dim, a number; None for the rest."""
    if isinstance(value, Tensor):
        return render_type(value.type)
    if isinstance(value, ParamSpec):
        return f"{value.kind} {render_type(value.type)}"
    if isinstance(value, Dim):
        return str(value)
    if isinstance(value, (bool, int, float, str)):
        return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, ModuleInstance):
        return f"{value.name}(...)"
    if isinstance(value, ModuleList):
        return f"module list of {len(value.items)}"
    if isinstance(value, tuple) and len(value) <= 8 and all(describe(item) for item in value):
        return "[" + ", ".join(describe(item) for item in value) + "]"
    return kind_of(value) if value is not None else "none"


def is_shape_value(value) -> bool:
    """Whether an inlay hint is worth showing for the value (tensors and symbolic sizes)."""
    return isinstance(value, Tensor) and not value.is_error or (isinstance(value, Dim) and not value.is_const)


def summarize(texts: list[str], limit: int = 2) -> str:
    """Distinct texts joined with `|`, the first `limit` of them and a count of the rest."""
    distinct = list(dict.fromkeys(texts))
    shown = " | ".join(distinct[:limit])
    return shown + (f" | … ({len(distinct) - limit} more)" if len(distinct) > limit else "")
