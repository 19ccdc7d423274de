"""Helpers shared by the op families: registration, dtypes, dims, attributes, layer checks, ONNX reshapes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from poseir.diagnostics.record import Label
from poseir.ir.axes import Axes, Axis, axis_text, is_named
from poseir.ir.dims import Dim, Tri, cancel_common
from poseir.ir.facts import Facts
from poseir.ir.graph import DTYPE_NAMES, FLOAT_DTYPES, NUMPY_DTYPES, TensorType
from poseir.ops.registry import OpDef, RunContext, ShapeContext, register, with_defaults

OPEN_END = 2**63 - 1  # an ONNX Slice end meaning "to the end of the axis" (clamped by the runtime)


# --------------------------------------------------------------------------- registration


def define(*aliases: str, **fields) -> OpDef:
    """Register an op (every family uses this) whose rules always see every attribute, defaults filled in."""
    op = OpDef(**fields)
    infer, run, counter, lower, mapping = op.infer, op.run, op.count_outputs, op.onnx, op.atoms

    def complete_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
        return infer(ctx, types, with_defaults(op, attrs))

    def complete_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
        return run(ctx, arrays, with_defaults(op, attrs))

    def complete_count(attrs: dict) -> int:
        return counter(with_defaults(op, attrs))

    def complete_onnx(ctx, names: list, attrs: dict) -> list[str]:
        return lower(ctx, names, with_defaults(op, attrs))

    def complete_atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list:
        return mapping(ctx, types, with_defaults(op, attrs), outputs)

    count = complete_count if counter is not None else None
    onnx = complete_onnx if lower is not None else None
    atoms = complete_atoms if mapping is not None else None
    return register(replace(op, infer=complete_infer, run=complete_run, count_outputs=count, onnx=onnx,
                            atoms=atoms), *aliases)


# --------------------------------------------------------------------------- blocking

# Elements a blocked run facet handles at once, so its passes reread the block from cache. Measured on
# the bench machine (1 MB of L2 per core): softmax and layer norm ran 1.3-1.8x faster with 2**18 than
# with 2**14, whose blocks are too small to amortize numpy's per-call overhead.
CACHE_BLOCK = 1 << 18


# Rows up to SHORT_ROW long are summed by einsum and, up to SHORT_MAXIMA, their maxima are taken column by
# column: numpy's reductions along a short last axis pay a per-row overhead (measured on 2**18 elements:
# max over rows of 8, 17, 32, 48 in 1415, 615, 466, 320 us, by columns 142, 233, 256, 232; of 64 and 81
# columns are slower; sums of 15420 rows of 17 in 332 us, with einsum 69). einsum sums each row on its own,
# so a row's sum does not depend on how the rows are split over tasks (a BLAS product's does). Longer
# rows keep numpy's pairwise sums, whose rounding does not grow with the length.
SHORT_ROW = 1024
SHORT_MAXIMA = 48


def row_sums(rows: np.ndarray) -> np.ndarray:
    """The sums of a 2-D array's rows, as a column (rows, 1)."""
    if 0 < rows.shape[1] <= SHORT_ROW:
        return np.einsum("ij->i", rows)[:, None]
    return np.sum(rows, axis=1, keepdims=True)


def row_maxima(rows: np.ndarray) -> np.ndarray:
    """The maxima of a 2-D array's rows, as a column (rows, 1)."""
    width = rows.shape[1]
    if not 0 < width <= SHORT_MAXIMA:
        return np.max(rows, axis=1, keepdims=True)
    found = rows[:, :1].copy()
    for column in range(1, width):
        np.maximum(found, rows[:, column:column + 1], out=found)
    return found


def row_blocks(rows: int, width: int, block: int = CACHE_BLOCK):
    """Slices of consecutive rows of `width` elements, each about `block` elements (at least one row)."""
    step = max(1, block // max(width, 1))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


# --------------------------------------------------------------------------- dtypes


def dtype_name(array: np.ndarray) -> str:
    """The poseir dtype name of a numpy array (KeyError for dtypes poseir does not have)."""
    return DTYPE_NAMES[np.asarray(array).dtype]


def as_dtype(array, dtype: str) -> np.ndarray:
    """`array` as an ndarray of the poseir dtype `dtype` (no copy when it already is)."""
    return np.asarray(array).astype(NUMPY_DTYPES[dtype], copy=False)


def float_dtype(dtype: str) -> str:
    """`dtype` when it is a float type, else f32 (what float-valued functions return)."""
    return dtype if dtype in FLOAT_DTYPES else "f32"


def require_same_dtype(ctx: ShapeContext, types: Sequence[TensorType | None], ats: Sequence = None,
                       scalars_exempt: bool = False) -> None:
    """E203 when tensors of different dtypes meet (poseir never converts implicitly)."""
    ats = list(ats) if ats is not None else list(range(len(types)))
    first = None
    for at, type_ in zip(ats, types):
        if type_ is None or (scalars_exempt and type_.rank == 0):
            continue
        if first is None:
            first = (at, type_)
            continue
        if type_.dtype != first[1].dtype:
            ctx.error("E203", f"`{ctx.op}` mixes {first[1].dtype} and {type_.dtype} tensors", at=at,
                      label=f"this is {type_}", labels=(Label(ctx.span_of(first[0]), f"this is {first[1]}"),),
                      helps=(f"convert one side explicitly, e.g. `.cast(\"{first[1].dtype}\")`",))


def require_layer_dtype(ctx: ShapeContext, types: Sequence[TensorType | None], names: Sequence[str]) -> None:
    """E203 when a layer's input x (input 0) and its parameters (`names` for inputs 1, 2, ...) differ in dtype.

    Parameters that disagree among themselves are blamed first; otherwise the input is: a layer's
    parameters have the dtype they were created with, so the fix is to cast the input. Inside a
    prelude layer every argument span is the user's call, so a parameter is then described in a
    note (the context's labels already show where the layer was constructed).
    """
    present = [(at, type_, name) for at, (type_, name) in enumerate(zip(types[1:], names), start=1)
               if type_ is not None]
    if not present:
        return
    first_at, first, first_name = present[0]
    for at, type_, name in present[1:]:
        if type_.dtype != first.dtype:
            ctx.error("E203", f"`{ctx.op}` has {_article(first.dtype)} {first.dtype} {first_name} but "
                      f"{_article(type_.dtype)} {type_.dtype} {name}", at=at,
                      label=f"the {name} is {type_}",
                      labels=argument_label(ctx, first_at, f"the {first_name} is {first}"),
                      helps=(f"create the {name} as {first.dtype}",))
    x = types[0]
    if x.dtype == first.dtype:
        return
    has_span = first_at in ctx.spans and ctx.span_of(first_at) != ctx.span_of(0)
    receiver = ctx.text_of(0)
    cast = f"{receiver_text(receiver)}.cast(\"{first.dtype}\")" if receiver else f".cast(\"{first.dtype}\")"
    ctx.error("E203", f"`{ctx.op}` is given {_article(x.dtype)} {x.dtype} input, but its {first_name} is "
              f"{first.dtype}", at=0, label=f"the input is {x}",
              labels=(Label(ctx.span_of(first_at), f"the {first_name} is {first}"),) if has_span else (),
              notes=() if has_span else (f"the layer's {first_name} is {first}",),
              helps=(f"cast the input to the {first_name}'s dtype: `{cast}`",))


def _article(dtype: str) -> str:
    """`an` before f32, f16, i64 (read "ef", "eye"), `a` before bool."""
    return "a" if dtype == "bool" else "an"


# --------------------------------------------------------------------------- dims


def product(dims) -> Dim:
    """The product of some dims (1 for none)."""
    total = Dim.of(1)
    for dim in dims:
        total = total * Dim.of(dim)
    return total


def shape_text(dims: Sequence) -> str:
    """`[B, T, 34]` for a sequence of dims."""
    return "[" + ", ".join(str(dim) for dim in dims) + "]"


def receiver_text(text: str | None) -> str:
    """Source text usable before `.method(...)`: parenthesized when it has a top-level operator."""
    if not text:
        return "x"
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth == 0 and char in " +-*/@%<>=!&|":
            return f"({text})"
    return text


def where_help(fact: str) -> str:
    """The help that names the fact settling an unproved shape condition."""
    return f"add `where {fact}` to the forward signature to settle it"


@dataclass(frozen=True)
class Division:
    """`dividend / divisor` (common factors cancelled) under the facts.

    `divides` answers whether the division is exact; `quotient` is the exact quotient (YES), the
    floor quotient (UNKNOWN with a constant divisor), or None (NO, or UNKNOWN with a symbolic
    divisor, whose quotient a dim cannot express).
    """

    dividend: Dim
    divisor: Dim
    divides: Tri
    quotient: Dim | None


def divide(facts: Facts, total, part) -> Division:
    """Split `total` into parts of `part` under the facts: whether it divides, and the size of the quotient."""
    total, part = facts.normalize(total), facts.normalize(part)
    exact = total.exact_div(part)
    if exact is not None:
        return Division(total, part, Tri.YES, exact)
    dividend, divisor = cancel_common(total, part)
    if not divisor.is_const or divisor.value <= 0:
        return Division(dividend, divisor, Tri.UNKNOWN, None)
    divides = facts.divisible(dividend, divisor.value)
    quotient = facts.normalize(dividend // divisor.value) if divides is not Tri.NO else None
    return Division(dividend, divisor, divides, quotient)


def warn_unproved_multiple(ctx: ShapeContext, dividend, divisor, *, at) -> None:
    """W300: `dividend` is assumed to be a multiple of the constant `divisor` from here on (so it warns once),
    with the fact that settles it; E205 when the divisor is a symbol's bound baked in as a literal."""
    baked = _bound_baked_in(ctx, dividend, divisor, at)
    if baked is not None:
        symbol, text, where = baked
        from poseir.ops.repairs import symbol_candidates  # repairs build on this module

        ctx.error("E205", f"the size `{text}` bakes in {divisor}, the largest {symbol}", at=where,
                  label=f"the -1 next to it only comes out whole when {dividend} is a multiple of {divisor}",
                  notes=(f"{symbol} can be anything up to {divisor}; shorter values regroup elements across "
                         "the batch, or fail",),
                  helps=(f"write the size with the symbol it stands for (the clip length, {symbol}), passing it in "
                         "if this module does not see it",),
                  candidates=symbol_candidates(ctx, where, symbol) if where in ctx.spans else ())
    ctx.assumptions.append(("multiple", Dim.of(dividend), int(Dim.of(divisor).value)))
    ctx.warn("W300", f"cannot prove that {dividend} is divisible by {divisor}", at=at,
             label=f"{dividend} is assumed to be a multiple of {divisor}",
             helps=(where_help(f"{dividend} % {divisor} == 0"),),
             candidates=ctx.fact_candidates(f"{dividend} % {divisor} == 0"))


def _bound_baked_in(ctx: ShapeContext, dividend, divisor, at) -> tuple[str, str, tuple] | None:
    """(symbol, literal text, where) when the divisor is written as a literal equal to a symbol's upper bound."""
    divisor = Dim.of(divisor)
    if not divisor.is_const or not isinstance(at, tuple):
        return None
    written = [(position, ctx.text_of((at[0], position))) for position in range(16)]
    literal = next(((position, text.strip()) for position, text in written
                    if text is not None and text.strip() == str(divisor.value)), None)
    if literal is None:
        return None
    for symbol in sorted(Dim.of(dividend).symbols):
        _, high = ctx.facts.bounds(symbol)
        if high == divisor.value:
            return symbol, literal[1], (at[0], literal[0])
    return None


# --------------------------------------------------------------------------- attributes


def int_attr(ctx: ShapeContext, value, at, what: str, minimum: int | None = None) -> int:
    """An attribute that must be a plain integer (E103 otherwise), at least `minimum`."""
    if isinstance(value, Dim) and value.is_const:
        value = value.value
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.error("E103", f"{what} must be an integer, found `{value}`", at=at, label="expected an integer")
    if minimum is not None and value < minimum:
        ctx.error("E103", f"{what} must be at least {minimum}, found {value}", at=at, label=f"this is {value}")
    return value


def size_attr(ctx: ShapeContext, value, at, what: str, minimum: int = 1) -> Dim:
    """A size attribute: an int of at least `minimum` or a symbolic dim (E103 otherwise)."""
    if isinstance(value, Dim) and not value.is_const:
        return value
    return Dim.of(int_attr(ctx, value, at, what, minimum))


def number_attr(ctx: ShapeContext, value, at: str, low: float, high: float) -> float:
    """A float attribute within [low, high] (E103 otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        ctx.error("E103", f"{at} must be a number between {low} and {high}, found `{value}`", at=at,
                  label="out of range")
    return float(value)


def unwrap_sizes(values) -> tuple:
    """`(B, T, 34)` given either as separate arguments or as one tuple."""
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        return tuple(values[0])
    return values


def is_minus_one(value) -> bool:
    """Whether a size attribute is the placeholder `-1`."""
    if isinstance(value, Dim):
        return value.is_const and value.value == -1
    return isinstance(value, int) and not isinstance(value, bool) and value == -1


def target_sizes(ctx: ShapeContext, values: Sequence, attr: str, what: str) -> list[Dim | None]:
    """Target sizes as dims, with None for the single `-1` (E216 for a second one)."""
    sizes: list[Dim | None] = []
    first_placeholder = None
    for position, value in enumerate(values):
        at = (attr, position)
        if is_minus_one(value):
            if first_placeholder is not None:
                ctx.error("E216", f"only one size of a {what} can be -1", at=at, label="second -1",
                          labels=(Label(ctx.span_of((attr, first_placeholder)), "first -1"),),
                          helps=("write all but one of the sizes explicitly",))
            first_placeholder = position
            sizes.append(None)
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value == 0:
            ctx.error("E103", f"a {what} size must be positive, found 0", at=at, label="zero size",
                      notes=("unlike ONNX Reshape, 0 does not mean `copy this size from the input`",))
        sizes.append(size_attr(ctx, value, at, f"a {what} size"))
    return sizes


def fill_placeholder(ctx: ShapeContext, sizes: list, total: Dim, attr: str, subject: str) -> list[Dim]:
    """Replace the `-1` in `sizes` by `total` divided by the other sizes.

    E216 when that is provably not a whole number, or when it is a quotient by a symbol that
    no fact settles (a dim cannot express it); W300 when a constant divides it under a fact
    nobody stated.
    """
    if None not in sizes:
        return sizes
    position = sizes.index(None)
    at = (attr, position)
    known = ctx.normalize(product(size for size in sizes if size is not None))
    division = divide(ctx.facts, total, known)
    details = {"at": at, "label": "this size cannot be inferred", "notes": (f"the input is {subject}",)}
    if division.divides is Tri.NO:
        ctx.error("E216", f"cannot infer the -1: {total} elements do not divide into parts of {known}",
                  helps=("check the other sizes; their product must divide the element count",),
                  candidates=_dividing_size_candidates(ctx, sizes, total, attr), **details)
    if division.quotient is None:
        ctx.error("E216", f"cannot infer the -1: poseir cannot prove that {division.dividend} is a multiple of "
                  f"{division.divisor}", helps=(unproved_division_help(division, "write this size explicitly"),),
                  **details)
    if division.divides is Tri.UNKNOWN:
        warn_unproved_multiple(ctx, division.dividend, division.divisor, at=at)
    return [division.quotient if size is None else size for size in sizes]


def _dividing_size_candidates(ctx: ShapeContext, sizes: list, total: Dim, attr: str) -> list:
    """For a literal size next to a -1 that does not divide (`view(B, T, -1, 3)` of 34 channels): the nearest
    values below and above it that do (2 and 17), as candidates the rest of the program chooses between."""
    candidates = []
    for position, size in enumerate(sizes):
        text = ctx.text_of((attr, position))
        if size is None or not size.is_const or text is None or not text.strip().isdigit():
            continue
        others = product(other for index, other in enumerate(sizes) if index != position and other is not None)
        quotient = divide(ctx.facts, total, others).quotient
        if quotient is None or not quotient.is_const or quotient.value > 1 << 40:
            continue
        divisors = [value for value in range(2, min(quotient.value, 1 << 16) + 1) if quotient.value % value == 0]
        below = [value for value in divisors if value < size.value]
        above = [value for value in divisors if value > size.value]
        for value in ([below[-1]] if below else []) + ([above[0]] if above else []):
            candidates.append(ctx.fix(f"write `{value}` instead of `{text.strip()}`, so that the -1 comes out whole",
                                      str(value), at=(attr, position), safe=False))
    return candidates


def unproved_division_help(division: Division, alternative: str) -> str:
    """How to settle a division by a symbol: `alternative`, or name the quotient with a new dim."""
    return (f"{alternative}, or declare a dim for the quotient (say `K`) and add "
            f"`where {division.dividend} == K * {division.divisor}` to the forward signature")


# --------------------------------------------------------------------------- tensors and layers


def optional(items: Sequence, index: int):
    """The optional input at `index`, or None when absent."""
    return items[index] if len(items) > index else None


def argument_label(ctx: ShapeContext, at, message: str) -> tuple[Label, ...]:
    """A secondary label on argument `at`, only when that argument has a span of its own."""
    return (Label(ctx.span_of(at), message),) if at in ctx.spans else ()


def require_axes(ctx: ShapeContext, type_: TensorType, at) -> None:
    """E201 for a rank-0 tensor where the op needs at least one axis."""
    if type_.rank == 0:
        ctx.error("E201", f"{ctx.op} needs a tensor with at least one axis, found {type_}", at=at,
                  label=f"this is {type_}")


def require_axis_size(ctx: ShapeContext, x: TensorType, axis: int, wanted: Dim, where: str, *, message: str,
                      repairs=None, **details) -> None:
    """E207 when axis `axis` of x is not `wanted`; also when unprovable but another axis has that size.

    `repairs()` gives the error's candidate repairs (computed only when there is an error).
    """
    answer = ctx.equal(x.shape[axis], wanted)
    if answer is Tri.YES:
        return  # the help below is only ever shown with an error or a warning
    helps = moved_axis_help(ctx, x, wanted, axis, where)
    # An unprovable size next to an axis that fits exactly is a layout mistake, not a missing fact.
    if answer is Tri.NO or (answer is Tri.UNKNOWN and helps):
        ctx.error("E207", message, at=0, helps=helps, candidates=repairs() if repairs else (), **details)
    ctx.require_equal(x.shape[axis], wanted, code="E207", at=0, message=message, helps=helps, **details)


def moved_axis_help(ctx: ShapeContext, x: TensorType, wanted: Dim, target: int, where: str) -> tuple[str, ...]:
    """When another axis of x has the wanted size, suggest moving it into place."""
    for axis, dim in enumerate(x.shape):
        if axis != target % x.rank and ctx.provably_equal(dim, wanted):
            return (f"axis {axis} of the input has {wanted}; move it {where} with `.transpose({axis}, {target})`",)
    return ()


def check_bias(ctx: ShapeContext, bias: TensorType | None, outputs: Dim, layer: str) -> None:
    """A bias (input 2) must be a vector with one entry per output channel (E207)."""
    if bias is None:
        return
    if bias.rank != 1:
        ctx.error("E201", f"{layer} bias must have rank 1, found {bias}", at=2, label=f"this is {bias}")
    ctx.require_equal(bias.shape[0], outputs, code="E207", at=2,
                      message=f"{layer} bias has {bias.shape[0]} entries, but the layer has {outputs} outputs",
                      label=f"this is {bias}")


# --------------------------------------------------------------------------- ONNX


def require_float_input(ctx, onnx_op: str) -> None:
    """E406 for an integer or boolean tensor where the ONNX op is defined for floats only."""
    dtype = ctx.input_types[0].dtype
    if dtype not in FLOAT_DTYPES:
        raise ctx.error(f"ONNX {onnx_op} needs a floating-point input, but `{ctx.op}` is given {dtype}",
                        helps=("cast the input first, e.g. `.cast(\"f32\")`",))


def onnx_reshape(ctx, x: str, dims: Sequence[Dim], source: Sequence[Dim] = ()) -> str:
    """Reshape `x` (of shape `source`) to `dims` without ever writing a symbolic size as a number.

    A symbolic size at the same position as in the input becomes 0 (ONNX: copy the input's size);
    the costliest remaining one becomes -1; any other is computed from the input shapes at run time.
    """
    dims = [Dim.of(dim) for dim in dims]
    if getattr(ctx, "explicit_shapes", False):
        # A profile without placeholders: every size written out, computed at run time where symbolic.
        return ctx.node("Reshape", [x, ctx.shape(dims)])
    for position, (dim, before) in enumerate(zip(dims, source)):
        if not dim.is_const and dim == before:
            dims[position] = Dim.of(0)
    symbolic = [position for position, dim in enumerate(dims) if not dim.is_const]
    if symbolic:
        chosen = max(symbolic, key=lambda position: (len(str(dims[position])), position))
        dims[chosen] = Dim.of(-1)
    return ctx.node("Reshape", [x, ctx.shape(dims)])


def reshape_to_output(ctx, names: list, attrs: dict) -> list[str]:
    """An ONNX facet: Reshape to the inferred output shape (never to example sizes)."""
    return [onnx_reshape(ctx, names[0], ctx.output_types[0].shape, ctx.input_types[0].shape)]


# --------------------------------------------------------------------------- atoms


def same_atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list[Axes]:
    """Every output keeps input 0's atoms (same shape, elementwise)."""
    return [ctx.axes(types[0])] * len(outputs)


def broadcast_atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list[Axes]:
    """Each output axis takes the atoms of the first operand that is not size 1 there (aligned from the right)."""
    operands = [(type_, ctx.axes(type_, index)) for index, type_ in enumerate(types) if type_ is not None]
    rank = outputs[0].rank
    if len(operands) == 2:
        warn_swapped_axes(ctx, operands, rank)
    return [aligned_atoms(operands, rank)]


def aligned_atoms(operands: list, rank: int) -> Axes:
    """For each axis of a broadcast result, the atoms of the first (type, atoms) operand not of size 1 there."""
    axes = []
    for position in range(rank):
        chosen: tuple = ()
        for type_, atoms in operands:
            offset = position - (rank - type_.rank)
            if offset >= 0 and atoms[offset]:
                chosen = atoms[offset]
                break
        axes.append(chosen)
    return tuple(axes)


def warn_swapped_axes(ctx: ShapeContext, operands: list, rank: int) -> None:
    """W310 when two operands hold the same two atoms of equal size in opposite orders.

    `x[B, T, J] + y[B, J, T]` with T == J == 17 broadcasts without complaint and adds frames to
    joints. Different atoms of equal size meet all the time (a bias and a feature axis); only
    the evidence of a swap — each operand holds the other's atom at the other position — makes
    it a mistake worth a warning.
    """
    (left, left_axes), (right, right_axes) = operands
    aligned = {}
    for position in range(rank):
        mine, theirs = position - (rank - left.rank), position - (rank - right.rank)
        if mine >= 0 and theirs >= 0 and left_axes[mine] and right_axes[theirs]:
            aligned[position] = (mine, theirs)
    for first, (mine_first, theirs_first) in aligned.items():
        for second, (mine_second, theirs_second) in aligned.items():
            if second <= first:
                continue
            a, b = left_axes[mine_first], left_axes[mine_second]
            if a != b and right_axes[theirs_first] == b and right_axes[theirs_second] == a and _kinds_differ(a, b):
                _swap_warning(ctx, left, right, a, b, (theirs_first, theirs_second))
                return
    _warn_regrouped_atoms(ctx, left, right, left_axes, right_axes, aligned)


def _warn_regrouped_atoms(ctx: ShapeContext, left, right, left_axes, right_axes, aligned: dict) -> None:
    """W310 when the operands hold the same atoms grouped differently across axes: `[(B·F), J, C]` + `[(B·J), F, C]`.

    That is MixSTE's temporal residual added before rearranging back: with F == J the shapes agree,
    and every token is added to another one.
    """
    # Only named atoms say what an axis is; a feature axis from a layer may differ on purpose.
    differing = [(mine, theirs) for mine, theirs in aligned.values() if left_axes[mine] != right_axes[theirs]
                 and all(is_named(atom) for atom in left_axes[mine] + right_axes[theirs])]
    if len(differing) < 2:
        return
    mine_atoms = sorted((atom for mine, _ in differing for atom in left_axes[mine]), key=lambda atom: repr(atom.key))
    their_atoms = sorted((atom for _, theirs in differing for atom in right_axes[theirs]),
                         key=lambda atom: repr(atom.key))
    moved = {atom.name for mine, theirs in differing for atom in left_axes[mine] if atom not in right_axes[theirs]}
    named = [atom for atom in mine_atoms if is_named(atom) and atom.name in moved]
    if mine_atoms != their_atoms or len({atom.name for atom in named}) < 2:
        return
    from poseir.ops.regroup_repairs import regrouped_candidates  # repairs build on this module

    ctx.warn("W310", f"`{ctx.op}` aligns axes that hold the same atoms in another arrangement", at=1,
             label=f"this is {right.describe()}", labels=argument_label(ctx, 0, f"this is {left.describe()}"),
             notes=("the sizes agree, so the shapes broadcast, but each element meets an element of another "
                    f"position: {', '.join(sorted(moved))} sit in different axes on the two sides",),
             helps=("rearrange one operand back to the other's layout before combining them",),
             candidates=regrouped_candidates(ctx, left_axes, right_axes, differing))


def _kinds_differ(first: Axis, second: Axis) -> bool:
    """Two axes of different named kinds (frames and joints); a matrix and its transpose (joints by joints,
    as in `adjacency + adjacency.T`) are added on purpose."""
    return (len(first) == len(second) == 1 and is_named(first[0]) and is_named(second[0])
            and first[0].name != second[0].name)


def _swap_warning(ctx: ShapeContext, left: TensorType, right: TensorType, first, second, axes) -> None:
    """W310 naming the two atoms, with the transpose of the right operand as the fix."""
    names = (axis_text(first, Dim.of(0)), axis_text(second, Dim.of(0)))
    text = ctx.text_of(1)
    transpose = f"{receiver_text(text)}.transpose({axes[0] - right.rank}, {axes[1] - right.rank})"
    fixes = (ctx.fix(f"transpose the right operand: `{transpose}`", transpose, at=1, safe=False),) if text else ()
    ctx.warn("W310", f"`{ctx.op}` aligns `{names[0]}` with `{names[1]}`, and `{names[1]}` with `{names[0]}`",
             at=1, label=f"this is {right.describe()}",
             labels=argument_label(ctx, 0, f"this is {left.describe()}"),
             notes=(f"both axes have size {first[0].size if len(first) == 1 else ''}".rstrip() +
                    ", so the shapes broadcast, but the operands hold them in opposite orders",),
             helps=() if fixes else (f"transpose one operand, e.g. `{transpose}`",), fixes=fixes)


def reduced_atoms(ctx: ShapeContext, axes_reduced: tuple[int, ...], keepdim: bool, x: TensorType) -> Axes:
    """`x`'s atoms without the reduced axes (kept as size-1 axes, without atoms, with keepdim)."""
    atoms = ctx.axes(x)
    if keepdim:
        return tuple(() if axis in axes_reduced else atom for axis, atom in enumerate(atoms))
    return tuple(atom for axis, atom in enumerate(atoms) if axis not in axes_reduced)


def kept_or_fresh(ctx: ShapeContext, source: Axis, before: Dim, after: Dim, axis: int, output: int = 0) -> Axis:
    """`source` when the size is unchanged (a same-length convolution keeps its frames), else a new atom."""
    if ctx.provably_equal(before, after):
        return source
    return ctx.fresh(output, axis, after)
