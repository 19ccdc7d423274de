"""Execution plans: a graph compiled once into steps, run many times with liveness and buffer donation.

A `Plan` resolves everything that does not depend on the input sizes when it is built (the op of
each node, its attributes with defaults filled in, which step reads each value last). Per set of
symbol values it resolves the symbolic attributes and the expected output shapes once (a
`Binding`, cached). Running releases every intermediate after its last reader and offers it to
that reader as an output buffer (`RunContext.donated`) when nothing else alive shares its memory.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from poseir.ir.dims import Dim
from poseir.ir.graph import NUMPY_DTYPES, Graph, Node
from poseir.ops.registry import RunContext, lookup, with_defaults

_BINDINGS_KEPT = 8  # symbol assignments whose resolved attributes a plan keeps


class ShapeMismatch(AssertionError):
    """An op produced an array whose shape differs from its inferred type: a compiler bug."""


@dataclass(frozen=True)
class Step:
    """One node of the plan: the op's run facet, value slots, and what to release afterwards."""

    node: Node
    types: tuple  # inferred type per output
    run: Callable
    inputs: tuple[int | None, ...]  # slot per input; None for an absent optional input
    outputs: tuple[int, ...]
    attrs: dict  # every attribute with defaults; symbolic ones are resolved by a Binding
    symbolic: tuple[str, ...]  # names of the attributes that hold dims
    last_reads: tuple[int, ...]  # input positions whose value no later step reads (donation candidates)
    releases: tuple[int, ...]  # slots dropped after this step (last read, or never read)


@dataclass(frozen=True)
class Binding:
    """A plan's sizes resolved for one assignment of its symbols."""

    attrs: tuple[dict, ...]  # per step
    shapes: tuple[tuple[tuple[int, ...], ...], ...]  # per step, per output


@dataclass
class RunStats:
    """What one run of a plan measured."""

    steps: int = 0
    seconds: float = 0.0
    peak_bytes: int = 0  # high-water mark of live intermediates (outputs included), between steps
    peak_step: str = ""  # the op and span at which the peak was reached
    final_bytes: int = 0  # what stays alive at the end (the outputs)
    donated: int = 0  # inputs offered to an op as its output buffer

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        return [f"steps: {self.steps}", f"time: {self.seconds * 1e3:.1f} ms",
                f"peak live intermediates: {_megabytes(self.peak_bytes)} (at {self.peak_step})",
                f"outputs: {_megabytes(self.final_bytes)}", f"buffers reused: {self.donated}"]


def _megabytes(count: int) -> str:
    """`12.3 MB`."""
    return f"{count / 1e6:.1f} MB"


def evaluate_attr(value, env: dict):
    """Attributes with symbolic dims become ints for numpy."""
    if isinstance(value, Dim):
        return value.evaluate(env)
    if isinstance(value, tuple):
        return tuple(evaluate_attr(item, env) for item in value)
    return value


def _has_dims(value) -> bool:
    """Whether an attribute value holds a dim (which needs the symbol values)."""
    if isinstance(value, Dim):
        return True
    return isinstance(value, tuple) and any(_has_dims(item) for item in value)


class Plan:
    """A graph compiled for repeated execution with numpy (it keeps no reference to the graph)."""

    def __init__(self, graph: Graph):
        self.mode = graph.mode
        self.inputs = tuple((value.name, NUMPY_DTYPES[value.type.dtype]) for value in graph.inputs)
        self.parameters = tuple((value.name, NUMPY_DTYPES[value.type.dtype]) for value in graph.parameters)
        self.slots: dict[str, int] = {}
        for name, _ in self.inputs + self.parameters:
            self._slot(name)
        for node in graph.nodes:
            for name in node.outputs:
                self._slot(name)
        self.outputs = tuple((value.name, self.slots[value.name]) for value in graph.outputs)
        self.steps = self._steps(graph)
        self._bindings: dict[tuple, Binding] = {}
        self.checked: set[tuple] = set()  # (symbol values, limit) whose allocations passed the caller's size check
        self.last_stats = RunStats()

    def _slot(self, name: str) -> int:
        """The slot index of a value name (new names get the next index)."""
        return self.slots.setdefault(name, len(self.slots))

    def _steps(self, graph: Graph) -> tuple[Step, ...]:
        """One step per node, with last readers computed from the node order."""
        last_reader: dict[int, int] = {}
        for index, node in enumerate(graph.nodes):
            for name in node.inputs:
                if name:
                    last_reader[self.slots[name]] = index
        kept = {slot for _, slot in self.outputs}
        steps = []
        for index, node in enumerate(graph.nodes):
            op = lookup(node.op)
            attrs = with_defaults(op, dict(node.attrs))
            inputs = tuple(self.slots[name] if name else None for name in node.inputs)
            outputs = tuple(self.slots[name] for name in node.outputs)
            released = [slot for slot in dict.fromkeys(inputs)
                        if slot is not None and last_reader.get(slot) == index and slot not in kept]
            released += [slot for slot in outputs if slot not in last_reader and slot not in kept]
            last_reads = tuple(position for position, slot in enumerate(inputs)
                               if slot in released and inputs.count(slot) == 1)
            symbolic = tuple(key for key, value in attrs.items() if _has_dims(value))
            types = tuple(graph.values[name].type for name in node.outputs)
            steps.append(Step(node, types, op.run, inputs, outputs, attrs, symbolic, last_reads, tuple(released)))
        return tuple(steps)

    def bind(self, env: dict[str, int]) -> Binding:
        """Attributes and output shapes for these symbol values (computed once per assignment)."""
        key = tuple(sorted(env.items()))
        binding = self._bindings.get(key)
        if binding is None:
            binding = self._resolve(env)
            if len(self._bindings) >= _BINDINGS_KEPT:
                self._bindings.pop(next(iter(self._bindings)))
            self._bindings[key] = binding
        return binding

    def _resolve(self, env: dict[str, int]) -> Binding:
        """Evaluate every symbolic attribute and output shape under `env`."""
        attrs, shapes = [], []
        for step in self.steps:
            resolved = step.attrs
            if step.symbolic:
                resolved = dict(step.attrs)
                for key in step.symbolic:
                    resolved[key] = evaluate_attr(resolved[key], env)
            attrs.append(resolved)
            shapes.append(tuple(tuple(dim.evaluate(env) for dim in type_.shape) for type_ in step.types))
        return Binding(tuple(attrs), tuple(shapes))

    def run(self, env: dict[str, int], inputs: dict[str, np.ndarray], weights: dict[str, np.ndarray], *,
            seed: int = 0, mode: str | None = None, trace: dict | None = None,
            stats: RunStats | None = None) -> dict[str, np.ndarray]:
        """Execute once; `trace` (when given) keeps and receives every value, so nothing is released.

        `stats` (when given) is filled in; `last_stats` always holds the latest run's.
        """
        start = time.perf_counter()
        binding = self.bind(env)
        slots: list = [None] * len(self.slots)
        memory = _LiveMemory()
        self._load(slots, memory, inputs, weights)
        context = RunContext(mode or self.mode, np.random.default_rng(seed))
        stats = stats if stats is not None else RunStats()
        stats.steps = len(self.steps)
        keep_all = trace is not None
        for step, attrs, shapes in zip(self.steps, binding.attrs, binding.shapes):
            operands = [slots[slot] if slot is not None else None for slot in step.inputs]
            context.donated = {} if keep_all else memory.donatable(step, operands)
            stats.donated += len(context.donated)
            results = step.run(context, operands, attrs)
            for slot, result, shape, type_ in zip(step.outputs, results, shapes, step.types):
                result = np.asarray(result)
                if result.shape != shape:
                    raise ShapeMismatch(f"{step.node.op} at {step.node.span} produced {result.shape}, inferred "
                                        f"{type_} = {shape}")
                slots[slot] = result
                memory.add(result)
            if memory.live > stats.peak_bytes:
                stats.peak_bytes, stats.peak_step = memory.live, f"{step.node.op} at {step.node.span}"
            if not keep_all:
                for slot in step.releases:
                    memory.remove(slots[slot])
                    slots[slot] = None
        stats.final_bytes = memory.live
        stats.seconds = time.perf_counter() - start
        self.last_stats = stats
        if trace is not None:
            trace.update({name: slots[slot] for name, slot in self.slots.items() if slots[slot] is not None})
        return {name: slots[slot] for name, slot in self.outputs}

    def _load(self, slots: list, memory: _LiveMemory, inputs: dict, weights: dict) -> None:
        """Fill the input and parameter slots, cast to their declared dtypes; the caller's arrays are external."""
        for name, dtype in self.inputs:
            slots[self.slots[name]] = memory.load(np.asarray(inputs[name]), dtype)
        for name, dtype in self.parameters:
            # Like load_state_dict, values are cast to the declared dtype (a float64 checkpoint runs as f32).
            slots[self.slots[name]] = memory.load(np.asarray(weights[name]), dtype)


def _root(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory a view looks at."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


@dataclass
class _LiveMemory:
    """Bytes of the arrays the plan holds, counted once per owning buffer, with a count of holders.

    The caller's inputs and weights are external: never counted, never donated.
    """

    live: int = 0
    holders: dict = field(default_factory=dict)  # id(root) -> [root, number of slots holding it]
    external: dict = field(default_factory=dict)  # id(root) -> root (kept so that ids stay unique)

    def load(self, given: np.ndarray, dtype) -> np.ndarray:
        """An input or weight in its declared dtype; a cast copy is the plan's own, the rest is external."""
        root = _root(given)
        self.external[id(root)] = root
        array = given.astype(dtype, copy=False)
        if array is not given:
            self.add(array)
        return array

    def add(self, array: np.ndarray) -> None:
        """One more slot holds `array`."""
        root = _root(array)
        if id(root) in self.external:
            return
        entry = self.holders.get(id(root))
        if entry is None:
            self.holders[id(root)] = [root, 1]
            self.live += root.nbytes
        else:
            entry[1] += 1

    def remove(self, array: np.ndarray | None) -> None:
        """A slot let go of `array`; its buffer is freed (by numpy) when no slot holds it."""
        if array is None:
            return
        root = _root(array)
        entry = self.holders.get(id(root))
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.holders[id(root)]
            self.live -= root.nbytes

    def donatable(self, step: Step, operands: list) -> dict:
        """The step's last-read inputs that are whole, writable, contiguous buffers nothing else holds."""
        donated = {}
        for position in step.last_reads:
            array = operands[position]
            if array is None or not array.flags.c_contiguous or not array.flags.writeable:
                continue
            root = _root(array)
            entry = self.holders.get(id(root))
            if entry is not None and entry[1] == 1 and root.nbytes == array.nbytes:
                donated[position] = array
        return donated


_PLANS: dict[int, Plan] = {}


def plan_for(graph: Graph) -> Plan:
    """The plan of a graph, built on first use and kept while the graph lives."""
    plan = _PLANS.get(id(graph))
    if plan is None:
        plan = Plan(graph)
        _PLANS[id(graph)] = plan
        weakref.finalize(graph, _PLANS.pop, id(graph), None)
    return plan
