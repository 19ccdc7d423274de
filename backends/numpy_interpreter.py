"""The reference interpreter: bind the symbols from the inputs, then run the graph's plan (numpy_plan.py)."""

from __future__ import annotations

import difflib

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.ir.dims import Dim
from poseir.backends.numpy_plan import RunStats, ShapeMismatch, evaluate_attr, plan_for
from poseir.ir.graph import DTYPE_NAMES, NUMPY_DTYPES, Graph, TensorType
from poseir.limits import DEFAULT_LIMITS

__all__ = ["RunStats", "ShapeMismatch", "bind_symbols", "concrete_shape", "evaluate_attr", "run_graph"]


def bind_symbols(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, int]:
    """Symbol values read off the input arrays; E404 for a missing input or a shape that cannot fit."""
    env: dict[str, int] = {}
    for value in graph.inputs:
        if value.name not in inputs:
            raise DiagnosticError(_missing_input(graph, value, inputs))
        _bind_one(value, np.asarray(inputs[value.name]), env)
    for value in graph.inputs:
        _check_input(value, np.asarray(inputs[value.name]), env, graph)
    return env


def _missing_input(graph: Graph, value, inputs: dict) -> Diagnostic:
    """E404 for an input the arrays do not name: what they hold, and which of them it probably is."""
    held = ", ".join(f"`{name}` {_described(array)}" for name, array in sorted(inputs.items())[:_LISTED])
    more = f" and {len(inputs) - _LISTED} more" if len(inputs) > _LISTED else ""
    note = f"the inputs hold {held}{more}" if inputs else "the inputs hold no arrays"
    claimed = {each.name for each in graph.inputs}
    unclaimed = [name for name in inputs if name not in claimed]
    close = difflib.get_close_matches(value.name, unclaimed[:_COMPARED], n=1, cutoff=0.6)
    fitting = [name for name in unclaimed if np.ndim(inputs[name]) == value.type.rank]
    candidate = close[0] if close else fitting[0] if len(fitting) == 1 else None
    helps = [f"expected {value.type}"]
    if candidate is not None:
        helps.append(f"if `{candidate}` is meant, save it under the forward's name: "
                     f"`np.savez(path, {value.name}=...)`")
    return Diagnostic.make("E404", f"the inputs have no array `{value.name}`", value.span, notes=(note,),
                           helps=tuple(helps))


_LISTED = 8  # arrays named in E404's note before the rest are counted
_COMPARED = 1000  # unclaimed names compared with the missing one (an archive may hold very many)


def _described(array) -> str:
    """An input array's dtype and shape, as poseir writes types (`f32[2, 3]`)."""
    array = np.asarray(array)
    dtype = DTYPE_NAMES.get(array.dtype, str(array.dtype))
    return f"{dtype}[{', '.join(map(str, array.shape))}]"


def _bind_one(value, array: np.ndarray, env: dict) -> None:
    """Bind bare symbols (`T`) first; compound dims are checked afterwards."""
    if array.ndim != value.type.rank:
        raise DiagnosticError(Diagnostic.make(
            "E404", f"input `{value.name}` has shape {array.shape}, expected rank {value.type.rank} ({value.type})",
            value.span))
    for dim, size in zip(value.type.shape, array.shape):
        symbols = dim.symbols
        if len(symbols) == 1 and dim == Dim.symbol(next(iter(symbols))):
            name = next(iter(symbols))
            if env.setdefault(name, int(size)) != int(size):
                raise DiagnosticError(Diagnostic.make(
                    "E404", f"input `{value.name}` gives {name} = {size}, but another input gave {env[name]}",
                    value.span))


def _check_input(value, array: np.ndarray, env: dict, graph: Graph) -> None:
    """Every dim must evaluate to the array's size, and the facts must hold."""
    for axis, (dim, size) in enumerate(zip(value.type.shape, array.shape)):
        try:
            expected = dim.evaluate(env)
        except KeyError as missing:
            raise DiagnosticError(Diagnostic.make(
                "E404", f"cannot determine {missing} from the inputs", value.span))
        if expected != size:
            raise DiagnosticError(Diagnostic.make(
                "E404", f"input `{value.name}` axis {axis} is {size}, expected {dim} = {expected}", value.span,
                notes=(f"expected {value.type} with " + ", ".join(f"{k} = {v}" for k, v in sorted(env.items())),)))
    for name, size in sorted(env.items()):
        low, high = graph.facts.bounds(name)
        if size < low or (high is not None and size > high):
            bound = f"{name} >= {low}" if size < low else f"{name} <= {high}"
            raise DiagnosticError(Diagnostic.make(
                "E404", f"the inputs give {name} = {size}, but the model assumes {bound}", value.span))


def concrete_shape(type_: TensorType, env: dict) -> tuple[int, ...]:
    """The shape a type has for given symbol values."""
    return tuple(dim.evaluate(env) for dim in type_.shape)


def check_allocations(graph: Graph, env: dict[str, int] | None, limit: int) -> None:
    """E410 at the line of the first parameter or node output larger than `limit` bytes.

    Without `env` only parameters (whose sizes never depend on the inputs) are checked, before
    any weights are drawn; with it, every value the run would allocate.
    """
    for parameter in graph.parameters:
        _check_size(parameter.type, {}, parameter.span, f"the {parameter.kind} `{parameter.name}`", limit)
    if env is None:
        return
    for node in graph.nodes:
        for name in node.outputs:
            _check_size(graph.values[name].type, env, node.span, f"`{node.op}`", limit)


def _check_size(type_: TensorType, env: dict, span, what: str, limit: int) -> None:
    """Raise E410 when one array of `type_` would take more than `limit` bytes."""
    count = 1
    for size in concrete_shape(type_, env):
        count *= size
    size = count * np.dtype(NUMPY_DTYPES[type_.dtype]).itemsize
    if size > limit:
        raise DiagnosticError(Diagnostic.make(
            "E410", f"{what} would allocate {_bytes(size)} for {type_}", span,
            notes=(f"the `array_bytes` limit is {_bytes(limit)}",),
            helps=("run on smaller inputs, or raise the limit with `--limit array_bytes=...` if the machine "
                   "has the memory",)))


def _bytes(count: int) -> str:
    """`4.0 GiB`, `12.5 MiB`, `512 B`."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def run_graph(graph: Graph, inputs: dict[str, np.ndarray], weights: dict[str, np.ndarray], *, seed: int = 0,
              trace: dict | None = None, behaviour: str | None = None,
              array_bytes: int = DEFAULT_LIMITS.array_bytes,
              stats: RunStats | None = None) -> dict[str, np.ndarray]:
    """Execute the graph through its cached plan; every node's output shape is checked against its inferred type.

    `trace`, when given, receives every intermediate array by value name (nothing is released
    early then). `behaviour` runs the graph's ops as in another mode (the training flow with
    dropout off and running statistics). No array larger than `array_bytes` is allocated (E410 at
    the op's line instead). `stats`, when given, receives the run's peak memory and time.
    """
    env = bind_symbols(graph, inputs)
    plan = plan_for(graph)
    checked = (tuple(sorted(env.items())), array_bytes)
    if checked not in plan.checked:  # the sizes depend only on the symbol values: check once per assignment
        check_allocations(graph, env, array_bytes)
        plan.checked.add(checked)
    return plan.run(env, inputs, weights, seed=seed, mode=behaviour, trace=trace, stats=stats)
