"""Execution plans: a graph compiled once into steps, run many times with liveness and buffer donation.

A `Plan` resolves everything that does not depend on the input sizes when it is built (the op of
each node, its attributes with defaults filled in, which step reads each value last). Per set of
symbol values it resolves the symbolic attributes and the expected output shapes once (a
`Binding`, cached). Running releases every intermediate after its last reader and offers it to
that reader as an output buffer (`RunContext.donated`) when nothing else alive shares its memory;
released buffers are recycled for later outputs of the same size (numpy_memory.py), and work is
split over a few threads (numpy_threads.py).
"""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from poseir.backends.numpy_fusion import Epilogue, chains
from poseir.backends.numpy_memory import LiveMemory
from poseir.backends.numpy_threads import single_threaded_blas, workers
from poseir.ir.dims import Dim
from poseir.ir.graph import NUMPY_DTYPES, Graph, Node
from poseir.ops.registry import RunContext, lookup, with_defaults

_BINDINGS_KEPT = 8  # symbol assignments whose resolved attributes a plan keeps
FINISH_IN_PARTS_FROM = 1 << 16  # output elements from which fused ops run on each part the producer writes


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
    constant: bool  # no tensor inputs and not a graph output: computed once per binding, then reused
    links: tuple = ()  # the ops fused after this one, applied to each part of its output (numpy_fusion.Link)
    extras: tuple[int, ...] = ()  # slots of the fused binary ops' other operands, as Link.operand counts them
    label: str = ""  # the op name, `conv2d+relu` for a fused chain (the stats' key)


@dataclass(frozen=True)
class Binding:
    """A plan's sizes resolved for one assignment of its symbols."""

    attrs: tuple[dict, ...]  # per step
    shapes: tuple[tuple[tuple[int, ...], ...], ...]  # per step, per output
    constants: dict = field(default_factory=dict)  # step index -> results of a constant step, once computed


@dataclass
class RunStats:
    """What one run of a plan measured."""

    steps: int = 0
    threads: int = 1  # threads the run facets could split work over
    seconds: float = 0.0
    peak_bytes: int = 0  # high-water mark of live intermediates and recycled buffers (outputs included), between steps
    peak_step: str = ""  # the op and span at which the peak was reached
    final_bytes: int = 0  # what stays alive at the end (the outputs)
    donated: int = 0  # inputs offered to an op as its output buffer
    op_seconds: dict = field(default_factory=dict)  # time per op name, summed over its steps

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        return [f"steps: {self.steps}", f"threads: {self.threads}", f"time: {self.seconds * 1e3:.1f} ms",
                f"peak memory held (intermediates and buffers for reuse): {_megabytes(self.peak_bytes)} "
                f"(at {self.peak_step})",
                f"outputs: {_megabytes(self.final_bytes)}", f"buffers reused: {self.donated}",
                "time by op: " + ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in
                                           sorted(self.op_seconds.items(), key=lambda item: -item[1]))]


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
        self.steps = self._steps(graph, chains(graph))
        self.traced_steps = self._steps(graph, [(node, (), ()) for node in graph.nodes])  # every value kept
        self._bindings: dict[tuple, Binding] = {}
        self.checked: set[tuple] = set()  # (symbol values, limit) whose allocations passed the caller's size check
        self._recycled: dict = {}  # released buffers kept from the last run (an arena, as onnxruntime keeps)
        self.last_stats = RunStats()

    def _slot(self, name: str) -> int:
        """The slot index of a value name (new names get the next index)."""
        return self.slots.setdefault(name, len(self.slots))

    def _steps(self, graph: Graph, order: list) -> tuple[Step, ...]:
        """One step per (node, links fused into it, their operands), with last readers computed from the order."""
        last_reader: dict[int, int] = {}
        for index, (node, _, operands) in enumerate(order):
            for name in (*node.inputs, *operands):
                if name:
                    last_reader[self.slots[name]] = index
        kept = {slot for _, slot in self.outputs}
        steps = []
        for index, (node, chain_links, operands) in enumerate(order):
            op = lookup(node.op)
            attrs = with_defaults(op, dict(node.attrs))
            inputs = tuple(self.slots[name] if name else None for name in node.inputs)
            extras = tuple(self.slots[name] for name in operands)
            outputs = tuple(self.slots[name] for name in node.outputs)
            released = [slot for slot in dict.fromkeys((*inputs, *extras))
                        if slot is not None and last_reader.get(slot) == index and slot not in kept]
            released += [slot for slot in outputs if slot not in last_reader and slot not in kept]
            # A fused op's operand is read after the producer has written its output: never its buffer.
            last_reads = tuple(position for position, slot in enumerate(inputs)
                               if slot in released and inputs.count(slot) == 1 and slot not in extras)
            symbolic = tuple(key for key, value in attrs.items() if _has_dims(value))
            types = tuple(graph.values[name].type for name in node.outputs)
            constant = all(slot is None for slot in inputs) and not kept.intersection(outputs) and not extras
            label = "+".join((node.op, *(link.op for link in chain_links)))
            steps.append(Step(node, types, op.run, inputs, outputs, attrs, symbolic, last_reads, tuple(released),
                              constant, chain_links, extras, label))
        return tuple(steps)

    def bind(self, env: dict[str, int], traced: bool = False) -> Binding:
        """Attributes and output shapes of the steps (or the traced steps) for these symbol values, computed once
        per assignment."""
        key = (traced, *sorted(env.items()))
        binding = self._bindings.get(key)
        if binding is None:
            binding = self._resolve(env, self.traced_steps if traced else self.steps)
            if len(self._bindings) >= _BINDINGS_KEPT:
                self._bindings.pop(next(iter(self._bindings)))
            self._bindings[key] = binding
        return binding

    def _resolve(self, env: dict[str, int], steps: tuple) -> Binding:
        """Evaluate every symbolic attribute and output shape of `steps` under `env`."""
        attrs, shapes = [], []
        for step in steps:
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
        """Execute once; `trace` (when given) keeps and receives every value, so nothing is released and
        nothing is fused.

        `stats` (when given) is filled in; `last_stats` always holds the latest run's.
        """
        start = time.perf_counter()
        binding = self.bind(env, traced=trace is not None)
        slots: list = [None] * len(self.slots)
        # Taken, not shared: a concurrent run of the same plan starts with no recycled buffers.
        recycled, self._recycled = self._recycled, {}
        memory = LiveMemory(free=recycled, recycled=sum(root.nbytes for roots in recycled.values() for root in roots))
        self._load(slots, memory, inputs, weights)
        pool = workers()
        context = RunContext(mode or self.mode, np.random.default_rng(seed), workers=pool,
                             buffers=None if trace is not None else memory)
        stats = stats if stats is not None else RunStats()
        stats.steps, stats.threads = len(self.traced_steps if trace is not None else self.steps), context.threads
        with single_threaded_blas() if pool is not None else contextlib.nullcontext():
            self._execute(self.traced_steps if trace is not None else self.steps, binding, slots, memory, context,
                          stats, keep_all=trace is not None)
        stats.final_bytes = memory.live
        self._recycled = memory.free if trace is None else recycled
        stats.seconds = time.perf_counter() - start
        self.last_stats = stats
        if trace is not None:
            trace.update({name: slots[slot] for name, slot in self.slots.items() if slots[slot] is not None})
        return {name: slots[slot] for name, slot in self.outputs}

    def _execute(self, steps: tuple, binding: Binding, slots: list, memory: LiveMemory, context: RunContext,
                 stats: RunStats, *, keep_all: bool) -> None:
        """Run every step in order, checking output shapes and releasing values after their last reader."""
        for index, (step, attrs, shapes) in enumerate(zip(steps, binding.attrs, binding.shapes)):
            operands = [slots[slot] if slot is not None else None for slot in step.inputs]
            context.donated = {} if keep_all else memory.donatable(step, operands)
            epilogue = Epilogue(step.links, [slots[slot] for slot in step.extras], shapes[0]) if step.links else None
            # A small output is finished whole, after its producer: applying the fused ops to each of its
            # parts would cost more in calls than it saves in cache misses.
            whole = epilogue is not None and math.prod(shapes[0]) < FINISH_IN_PARTS_FROM
            context.epilogue = None if whole else epilogue
            stats.donated += len(context.donated)
            began = time.perf_counter()
            results = binding.constants.get(index) if step.constant else None
            if results is None:
                results = step.run(context, operands, attrs)
                if whole:
                    results = [_finished(epilogue, results[0]), *results[1:]]
                if step.constant:
                    binding.constants[index] = results = [np.asarray(result) for result in results]
            if step.constant:
                for result in results:
                    memory.keep(result)
            spent = time.perf_counter() - began
            stats.op_seconds[step.label] = stats.op_seconds.get(step.label, 0.0) + spent
            for slot, result, shape, type_ in zip(step.outputs, results, shapes, step.types):
                result = np.asarray(result)
                if result.shape != shape:
                    raise ShapeMismatch(f"{step.label} at {step.node.span} produced {result.shape}, inferred "
                                        f"{type_} = {shape}")
                slots[slot] = result
                memory.add(result)
            if memory.held > stats.peak_bytes:
                stats.peak_bytes, stats.peak_step = memory.held, f"{step.node.op} at {step.node.span}"
            # A released buffer is recycled only when nothing else refers to it (the epilogue holds its operands).
            del operands, results, result, epilogue
            context.donated, context.epilogue = {}, None
            if not keep_all:
                for slot in step.releases:
                    memory.release(slots, slot)

    def _load(self, slots: list, memory: LiveMemory, inputs: dict, weights: dict) -> None:
        """Fill the input and parameter slots, cast to their declared dtypes; the caller's arrays are external."""
        for name, dtype in self.inputs:
            slots[self.slots[name]] = memory.load(np.asarray(inputs[name]), dtype)
        for name, dtype in self.parameters:
            # Like load_state_dict, values are cast to the declared dtype (a float64 checkpoint runs as f32).
            slots[self.slots[name]] = memory.load(np.asarray(weights[name]), dtype)


def _finished(epilogue: Epilogue, result) -> np.ndarray:
    """A producer's whole output with the fused ops applied (in place when it can be written)."""
    result = np.asarray(result)
    if result.ndim == 0 or not result.flags.writeable:
        result = np.array(result)
    epilogue(result, ())
    return result


_PLANS: dict[int, Plan] = {}


def plan_for(graph: Graph) -> Plan:
    """The plan of a graph, built on first use and kept while the graph lives."""
    plan = _PLANS.get(id(graph))
    if plan is None:
        plan = Plan(graph)
        _PLANS[id(graph)] = plan
        weakref.finalize(graph, _PLANS.pop, id(graph), None)
    return plan
