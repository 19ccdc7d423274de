"""The op registry: one entry per op with its signature, shape rule, numpy and ONNX facets."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, NoReturn, Sequence

import numpy as np

from poseir.diagnostics.record import Diagnostic, Edit, Fix, Label
from poseir.ir.axes import Atom, Axes, axes_of_shape, born
from poseir.ir.dims import Dim, Tri
from poseir.ir.facts import Facts
from poseir.ir.graph import TensorType
from poseir.syntax.source import Span

REQUIRED = object()

# Parameter kinds of an op signature.
TENSOR = "tensor"  # one tensor
OPTIONAL_TENSOR = "tensor?"  # a tensor or none
TENSORS = "tensors"  # a list of tensors (concat, stack)
ATTR = "attr"  # one compile-time value
VARIADIC = "attrs"  # the remaining positional compile-time values, as a tuple
KEYWORDS = "keywords"  # the remaining keyword arguments, as a tuple of (name, value) pairs


@dataclass(frozen=True)
class Param:
    """One parameter of an op signature."""

    name: str
    kind: str = ATTR
    default: object = REQUIRED


@dataclass(frozen=True)
class OpDef:
    """Everything about one op, in one place (house rule 1).

    `infer(ctx, input_types, attrs) -> output types` reports user mistakes through `ctx`;
    `atoms(ctx, input_types, attrs, output_types) -> output axes` maps the inputs' atoms to the
    outputs' (see `poseir.ir.axes`; when absent, an axis keeps input 0's atoms where its size is
    unchanged and gets a new atom elsewhere; an `infer` may also return types with atoms set);
    `run(ctx, arrays, attrs) -> arrays` is the numpy reference; `onnx(ctx, names, attrs)`
    lowers to ONNX nodes (see `poseir.backends.onnx_export`); `modes` says in which graphs the
    op may appear; `behaviour` documents how train and infer differ.

    Fusion (the planned numpy backend): `epilogue(block)` applies a unary op in place to part of its
    input, and `combines(a, b, out=)` is a binary op's ufunc, applied to part of one operand with the
    matching part of the other; a producer whose `run` hands every part of its output to
    `RunContext.finish` once, right after writing it, says so with `finishes`, and the plan then
    applies the ops that follow there, while that part is still in cache (a convolution's relu, a
    linear layer's gelu, a residual add, a batch norm's scale and shift).
    """

    name: str
    signature: tuple[Param, ...]
    infer: Callable
    run: Callable
    onnx: Callable | None = None
    outputs: int = 1
    method: bool = True
    modes: tuple[str, ...] = ("train", "infer")
    behaviour: str = "same in both modes"
    doc: str = ""
    samples: tuple = ()  # registry-test cases: (input shapes, attrs[, facts]) tuples
    count_outputs: Callable | None = None  # for `outputs=0` (split, chunk): attrs -> output count
    atoms: Callable | None = None  # (ctx, input types, attrs, output types) -> each output's axes
    epilogue: Callable | None = None  # (block) -> None: this unary op in place, on part of its input
    combines: Callable | None = None  # (a, b, out=) ufunc of this binary op, on parts of its operands
    finishes: bool = False  # run passes every part of its (single) output to RunContext.finish once

    def output_count(self, attrs: dict) -> int:
        """How many outputs a node of this op has with these attributes."""
        return self.count_outputs(attrs) if self.count_outputs is not None else self.outputs

    @property
    def tensor_params(self) -> tuple[Param, ...]:
        """The tensor-valued parameters, in order."""
        return tuple(param for param in self.signature if param.kind in (TENSOR, OPTIONAL_TENSOR, TENSORS))


REGISTRY: dict[str, OpDef] = {}
ALIASES: dict[str, str] = {}


def register(op: OpDef, *aliases: str) -> OpDef:
    """Add an op (and its alias names) to the registry; a duplicate name is a bug."""
    for name in (op.name, *aliases):
        if name in REGISTRY or name in ALIASES:
            raise ValueError(f"op {name!r} registered twice")
    REGISTRY[op.name] = op
    for alias in aliases:
        ALIASES[alias] = op.name
    return op


def lookup(name: str) -> OpDef | None:
    """The op called `name` (or an alias of it), or None."""
    return REGISTRY.get(ALIASES.get(name, name))


def with_defaults(op: OpDef, attrs: dict) -> dict:
    """`attrs` completed with the default of every attribute parameter the caller left out."""
    full = dict(attrs)
    for param in op.signature:
        if param.kind in (VARIADIC, KEYWORDS):
            full.setdefault(param.name, ())
        elif param.kind == ATTR and param.default is not REQUIRED:
            full.setdefault(param.name, param.default)
    return full


def all_ops() -> list[OpDef]:
    """Every registered op, sorted by name."""
    from poseir import ops  # noqa: F401  (importing the package registers every family)

    return [REGISTRY[name] for name in sorted(REGISTRY)]


# --------------------------------------------------------------------------- shape rules


class ShapeError(Exception):
    """Raised by a shape rule through `ShapeContext.error`; carries one diagnostic."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class ShapeContext:
    """What a shape rule may use: facts, spans of its arguments, and a way to report."""

    op: str
    facts: Facts
    span: Span
    spans: dict = field(default_factory=dict)  # at -> Span; at is an input index, attr name or (name, i)
    texts: dict = field(default_factory=dict)  # at -> source text of that argument
    labels: tuple[Label, ...] = ()  # extra context, such as where a layer was constructed
    warnings: list[Diagnostic] = field(default_factory=list)
    assumptions: list = field(default_factory=list)  # (a, b) pairs assumed equal after a W300
    outputs: tuple[str, ...] = ()  # the node's output value names: new atoms are born there
    producers: tuple = ()  # per input, the graph Node that made it (None for inputs and parameters)
    parameters: dict = field(default_factory=dict)  # state_dict key -> Parameter, for repairs of declarations
    values: dict = field(default_factory=dict)  # value name -> Value of the graph so far, for repairs at producers
    nodes: dict = field(default_factory=dict)  # value name -> the Node that made it (inputs and parameters have none)

    def span_of(self, at=None) -> Span:
        """The span of argument `at`, falling back to the whole call."""
        if at is None:
            return self.span
        if at in self.spans:
            return self.spans[at]
        if isinstance(at, tuple) and at[0] in self.spans:
            return self.spans[at[0]]
        return self.span

    def text_of(self, at=None) -> str | None:
        """The source text of argument `at`, when known."""
        return self.texts.get(at)

    def producer(self, index: int):
        """The graph node that computed input `index` (None for a graph input or a parameter)."""
        return self.producers[index] if index < len(self.producers) else None

    def diagnostic(self, code: str, message: str, *, at=None, label: str = "", notes=(), helps=(),
                   fixes=(), labels=(), candidates=()) -> Diagnostic:
        """Build a diagnostic whose primary span is argument `at` of this call.

        `candidates` are repairs to verify by re-checking (see `Diagnostic.candidates`).
        """
        span = self.span_of(at)
        primary = (Label(span, label),) if label else ()
        return Diagnostic.make(code, message, span, labels=primary + tuple(labels) + self.labels,
                               notes=tuple(notes), helps=tuple(helps), fixes=tuple(fixes),
                               candidates=tuple(candidates))

    def error(self, code: str, message: str, **details) -> NoReturn:
        """Report a user mistake and abandon this node (its outputs get the error type)."""
        raise ShapeError(self.diagnostic(code, message, **details))

    def warn(self, code: str, message: str, **details) -> None:
        """Report a warning and carry on."""
        self.warnings.append(self.diagnostic(code, message, **details))

    def fact_candidates(self, fact: str) -> list:
        """The candidate repair of an unproved condition: state `fact` in the `where` clause of the forward
        holding this call (verified like every candidate, so a fact in names the forward cannot see is dropped)."""
        from poseir.ops.repairs import add_fact  # repairs builds on this module

        return [add_fact(self.span, fact)] if self.span.is_known else []

    def fix(self, message: str, replacement: str, *, at=None, safe: bool = True) -> Fix:
        """A fix-it replacing the text of argument `at` (or the whole call)."""
        return Fix(message, (Edit(self.span_of(at), replacement),), safe)

    # ------------------------------------------------------------ dim helpers
    def equal(self, left, right) -> Tri:
        """Tri-state equality of two dims under the facts."""
        return self.facts.equal(Dim.of(left), Dim.of(right))

    def provably_equal(self, left, right) -> bool:
        """Whether two dims are equal for certain under the facts."""
        return self.facts.provably_equal(Dim.of(left), Dim.of(right))

    def require_equal(self, left, right, *, code: str, message: str, at=None, **details) -> None:
        """Fail when `left == right` is false; warn (W300) when it cannot be proved."""
        answer = self.equal(left, right)
        if answer is Tri.NO:
            self.error(code, message, at=at, **details)
        if answer is Tri.UNKNOWN:
            assumption = self.facts.assumption_for(Dim.of(left), Dim.of(right))
            self.assumptions.append((Dim.of(left), Dim.of(right)))
            self.warn("W300", f"cannot prove {left} == {right}", at=at,
                      label=f"{left} and {right} are assumed equal",
                      helps=(f"add `where {assumption}` to the forward signature to settle it",),
                      candidates=self.fact_candidates(assumption))

    def normalize(self, dim) -> Dim:
        """A dim simplified under the facts."""
        return self.facts.normalize(Dim.of(dim))

    # ------------------------------------------------------------ atoms
    def axes(self, type_: TensorType, index: int = 0) -> Axes:
        """The atoms of input `index` (of type `type_`); a type built without them gets new ones."""
        if type_.atoms is not None:
            return type_.atoms
        return axes_of_shape(f"{self.owner(0)}<{index}", type_.shape, self.facts)

    def owner(self, output: int) -> str:
        """The value name atoms born at output `output` are keyed by."""
        return self.outputs[output] if output < len(self.outputs) else f"{self.op}@{self.span}#{output}"

    def fresh(self, output: int, axis: int, size: Dim, name: str | None = None) -> tuple[Atom, ...]:
        """A new atom for `axis` of output `output` (none for a size-1 axis)."""
        size = self.normalize(size)
        if self.provably_equal(size, 1):
            return ()
        return (born(self.owner(output), axis, size, name),)

    def axis(self, axis: int, rank: int, at=None) -> int:
        """Normalize a possibly negative axis, reporting E202 when out of range."""
        if not isinstance(axis, int) or isinstance(axis, bool):
            self.error("E103", f"axis must be an integer, found `{axis}`", at=at)
        if not -rank <= axis < rank:
            # One past the last axis is the last axis of a tensor that had one more (a 5-D qkv before
            # `qkv[0]`): the last axis is the repair, verified against the rest of the program.
            candidates = [self.fix("use the last axis, `-1`", "-1", at=at, safe=False)] \
                if axis == rank and at in self.spans else []
            self.error("E202", f"axis {axis} is out of range for a tensor of rank {rank}", at=at,
                       label=f"valid axes are {-rank}..{rank - 1}", candidates=candidates)
        return axis % rank

    def require_rank(self, type_: TensorType, ranks: Sequence[int], at=0, what: str = "input") -> None:
        """Fail with E201 when a tensor's rank is not one of `ranks`."""
        if type_.rank not in ranks:
            wanted = " or ".join(str(rank) for rank in ranks)
            self.error("E201", f"{self.op} expects a rank-{wanted} {what}, found rank {type_.rank}", at=at,
                       label=f"this is {type_}")

    def broadcast(self, types: Sequence[TensorType], ats: Sequence = None) -> tuple[Dim, ...]:
        """The numpy broadcast of several shapes, reporting E200 with both shapes shown."""
        ats = list(ats) if ats is not None else list(range(len(types)))
        rank = max(type_.rank for type_ in types)
        result: list[Dim] = []
        for position in range(rank):
            result.append(self._broadcast_axis(types, ats, position, rank))
        return tuple(result)

    def _broadcast_axis(self, types, ats, position, rank) -> Dim:
        """Broadcast one axis (counted from the left of the widest shape)."""
        chosen: Dim | None = None
        chosen_index = None
        for index, type_ in enumerate(types):
            offset = position - (rank - type_.rank)
            if offset < 0:
                continue
            dim = type_.shape[offset]
            if self.provably_equal(dim, 1):
                continue
            if chosen is None:
                chosen, chosen_index = dim, index
                continue
            answer = self.equal(chosen, dim)
            # Operands of different ranks that only line up by an unprovable coincidence of
            # sizes almost always miss an axis (x[B, T, 17, 3] - root[B, T, 3]): an error.
            mismatched_ranks = type_.rank != types[chosen_index].rank
            if answer is Tri.NO or (answer is Tri.UNKNOWN and mismatched_ranks):
                self._broadcast_error(types, ats, chosen_index, index, position, rank)
            if answer is Tri.UNKNOWN:
                assumption = self.facts.assumption_for(chosen, dim)
                self.assumptions.append((chosen, dim))
                self.warn("W300", f"cannot prove {chosen} == {dim} when broadcasting", at=ats[index],
                          helps=(f"add `where {assumption}` to settle it",),
                          candidates=self.fact_candidates(assumption))
        return chosen if chosen is not None else Dim.of(1)

    def _broadcast_error(self, types, ats, first, second, position, rank) -> NoReturn:
        """E200 with both operands labelled and a hint when a rank is short."""
        left, right = types[first], types[second]
        axis = position - rank
        labels = (Label(self.span_of(ats[first]), f"this is {left}"),)
        notes = [f"axis {axis} is {left.shape[axis]} on one side and {right.shape[axis]} on the other",
                 "shapes are aligned from the right, as in numpy and PyTorch"]
        helps, fixes, candidates = [], [], []
        fix = self._missing_axis_fix(types, ats, first, second) if left.rank != right.rank else None
        if fix is not None:
            fixes.append(fix)
        else:
            from poseir.ops.broadcast_repairs import broadcast_candidates  # built on this module

            candidates = broadcast_candidates(self, types, ats, first, second, position, rank)
        if left.rank != right.rank and not fixes and not candidates:
            helps.append("the operands have different ranks; insert the missing axis with "
                         "`unsqueeze` or index with `none` where it belongs")
        self.error("E200", f"shapes {left} and {right} cannot be broadcast", at=ats[second],
                   label=f"this is {right}", labels=labels, notes=notes, helps=helps, fixes=fixes,
                   candidates=candidates)

    def _missing_axis_fix(self, types, ats, first, second) -> Fix | None:
        """When exactly one place for a new unit axis makes the shorter operand broadcast, index it there.

        `x[B, T, 17, 3] - root[B, 17, 3]` has one such place (after B), so the fix writes
        `root[:, none]`; with several candidates the intent is ambiguous and no fix is offered.
        """
        short, long_ = (first, second) if types[first].rank < types[second].rank else (second, first)
        shorter, longer = types[short], types[long_]
        text = self.text_of(ats[short])
        if text is None or longer.rank - shorter.rank != 1:
            return None
        places = [place for place in range(shorter.rank + 1)
                  if self._broadcasts_exactly(shorter.shape[:place] + (Dim.of(1),) + shorter.shape[place:], longer)]
        if len(places) != 1 or places[0] == 0:
            return None  # a leading axis is implicit in broadcasting, so position 0 never fails
        from poseir.ops.common import receiver_text  # common builds on this module

        index = ", ".join([":"] * places[0] + ["none"])
        operand = receiver_text(text)
        return self.fix(f"insert the missing axis: `{operand}[{index}]`", f"{operand}[{index}]", at=ats[short])

    def _broadcasts_exactly(self, shape, longer: TensorType) -> bool:
        """Every axis provably equal to the other's or 1 (no assumptions)."""
        return all(self.provably_equal(mine, theirs) or self.provably_equal(mine, 1)
                   for mine, theirs in zip(shape, longer.shape))


PARALLEL_WORK = 1 << 20  # multiply-adds or elements below which splitting work costs more than it saves


@dataclass
class RunContext:
    """What a numpy implementation may use: the mode, a seeded random generator, and donated inputs.

    `donated` maps input indices to arrays the op may overwrite: the planned backend donates an
    intermediate that no later step reads and that shares memory with nothing else alive. An op
    that writes its result into one saves an allocation and a pass over fresh memory.
    """

    mode: str
    rng: np.random.Generator
    donated: dict = field(default_factory=dict)
    workers: object = None  # runs a list of tasks on several threads (the planned backend's pool), or None
    parallel_work: int = PARALLEL_WORK  # the least work `split` divides (the tests lower it)
    buffers: object = None  # hands out recycled output buffers (the planned backend's run memory), or None
    epilogue: Callable | None = None  # (target, index): the fused following ops, applied by `finish` (see OpDef)

    @property
    def training(self) -> bool:
        """True when running the training flow."""
        return self.mode == "train"

    @property
    def threads(self) -> int:
        """How many threads `parallel` uses (1 without a pool)."""
        return self.workers.count if self.workers is not None else 1

    def parallel(self, tasks: list[Callable[[], None]]) -> None:
        """Run independent tasks (numpy calls that release the GIL) on the backend's threads, or in order."""
        if self.workers is None or len(tasks) < 2:
            for task in tasks:
                task()
            return
        self.workers.run(tasks)

    def finish(self, target: np.ndarray, index: tuple = ()) -> None:
        """The part `target[index]` of the output is written (`target` is the output, or the view of it the run
        writes through, such as a linear layer's rows): apply the fused ops that follow to it, if any."""
        if self.epilogue is not None:
            self.epilogue(target, index)

    def product(self, a: np.ndarray, b: np.ndarray, out: np.ndarray,
                then: Callable[[slice, slice], None] | None = None) -> np.ndarray:
        """out = a @ b for matrices, split over the threads into single-threaded BLAS calls.

        `then(rows, columns)` runs in the same task after each part out[rows, columns] is written
        (a bias, `finish`), while that part is in cache.

        The split runs along b's columns when b is wider than a is tall: every task then packs all
        of a again (m * k) rather than all of b (k * n), which is what keeps each part as efficient
        as the whole product (measured: 351x1536 @ 1536x1536 at 144 GFLOP/s on 2 threads split by
        columns, 112 split by rows).
        """
        rows, columns = a.shape[0], b.shape[1]
        work = rows * columns * a.shape[1]
        whole = slice(0, rows), slice(0, columns)
        if columns > rows:
            parts = [(whole[0], part) for part in self.split(columns, work)]
        else:
            parts = [(part, whole[1]) for part in self.split(rows, work)]

        def task(part_rows: slice, part_columns: slice) -> None:
            np.matmul(a[part_rows], b[:, part_columns], out=out[part_rows, part_columns])
            if then is not None:
                then(part_rows, part_columns)

        self.parallel([partial(task, *part) for part in parts])
        return out

    def split(self, length: int, work: int) -> list[slice]:
        """Slices of range(length) to run as parallel tasks: one slice unless `work` (multiply-adds or
        elements) pays for the threads, else two per thread so that a slowed thread takes fewer."""
        count = 1 if self.threads < 2 or work < self.parallel_work else min(length, 2 * self.threads)
        bounds = [length * index // max(count, 1) for index in range(count + 1)]
        return [slice(start, stop) for start, stop in zip(bounds, bounds[1:]) if stop > start] or [slice(0, length)]

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        """An uninitialized output array, from the backend's recycled buffers when it has one of this size."""
        if self.buffers is None:
            return np.empty(shape, dtype)
        return self.buffers.empty(tuple(shape), dtype)

    def output(self, index: int, shape: tuple, dtype) -> np.ndarray:
        """Where to write a result shaped like input `index`: that input when donated, else `empty`."""
        found = self.reusable(index, shape, dtype)
        return found if found is not None else self.empty(shape, dtype)

    def reusable(self, index: int, shape: tuple, dtype) -> np.ndarray | None:
        """Input `index` when it is donated and has this shape and dtype (a ufunc's `out`), else None."""
        array = self.donated.get(index)
        if array is None or array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
            return None
        return array


def elementwise_dtype(types: Sequence[TensorType]) -> str:
    """The result dtype of mixing tensors: the first float dtype wins, else the first."""
    for type_ in types:
        if type_.dtype in ("f32", "f16", "f64"):
            return type_.dtype
    return types[0].dtype
