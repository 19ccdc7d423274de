"""Sliding-window layers: conv1d/conv2d, conv_transpose2d, max_pool1d/max_pool2d, avg_pool1d (torch semantics)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from poseir.ir.dims import Dim, Tri
from poseir.ir.graph import TensorType
from poseir.ops.common import (kept_or_fresh, argument_label, as_dtype, check_bias, define, dtype_name, float_dtype,
                               int_attr, optional, receiver_text, require_axis_size, require_float_input,
                               require_layer_dtype, where_help)
from poseir.ops.repairs import constructed_at, layer_input_candidates, rewrite_input, set_layer_argument
from poseir.ops.registry import ATTR, OPTIONAL_TENSOR, TENSOR, Param, RunContext, ShapeContext


def _spatial_attr(ctx: ShapeContext, value, at: str, count: int, minimum: int) -> tuple[int, ...]:
    """An int or a tuple of `count` ints, each at least `minimum`."""
    values = value if isinstance(value, tuple) else (value,) * count
    if len(values) != count:
        ctx.error("E103", f"{at} must be an int or {count} ints, found `{value}`", at=at)
    return tuple(int_attr(ctx, item, at, at, minimum) for item in values)


def _per_axis(attrs: dict, names: tuple[str, ...], count: int) -> list[list[int]]:
    """Checked int-or-tuple attributes as one list of `count` ints each (for run and ONNX facets)."""
    return [list(attrs[name]) if isinstance(attrs[name], tuple) else [attrs[name]] * count for name in names]


def _conv_settings(ctx: ShapeContext, attrs: dict, count: int) -> tuple:
    """(stride, padding, dilation, groups) as per-axis tuples and an int."""
    stride = _spatial_attr(ctx, attrs["stride"], "stride", count, 1)
    padding = _spatial_attr(ctx, attrs["padding"], "padding", count, 0)
    dilation = _spatial_attr(ctx, attrs["dilation"], "dilation", count, 1)
    groups = int_attr(ctx, attrs["groups"], "groups", "groups", 1)
    return stride, padding, dilation, groups


def conv_length(length: Dim, kernel: Dim, stride: int, padding: int, dilation: int) -> Dim:
    """`(L + 2p - d(K - 1) - 1) // s + 1`, the output length of a convolution."""
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def require_long_enough(ctx: ShapeContext, x: TensorType, axis: int, reach: Dim, output: Dim) -> None:
    """E211 when axis `axis` of x is provably shorter than `reach`; W301 when unknown."""
    length = x.shape[axis]
    answer = ctx.facts.greater_equal(length, reach)
    if answer is Tri.NO:
        ctx.error("E211", f"axis {axis} of {x} is too short for this {ctx.op}: it needs at least {reach}",
                  at=0, label=f"this is {x}", notes=(f"the output length would be {ctx.normalize(output)}",),
                  helps=("use a longer input, more padding, a smaller kernel or a smaller dilation",))
    if answer is Tri.UNKNOWN:
        fact = ctx.facts.assumption_for(length, reach, ">=")
        ctx.warn("W301", f"cannot prove that axis {axis} of {x} is long enough for this {ctx.op}", at=0,
                 label=f"needs at least {reach}", helps=(where_help(fact),), candidates=ctx.fact_candidates(fact))


def _conv_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """x[B, C, *L] with weight[O, C/groups, *K] gives [B, O, *L'] (conv1d and conv2d)."""
    count = 1 if ctx.op == "conv1d" else 2
    x, weight, bias = types[0], types[1], optional(types, 2)
    if x.rank != count + 2 and weight.rank == count + 2:
        ctx.error("E201", f"{ctx.op} expects a rank-{count + 2} input, found rank {x.rank}", at=0,
                  label=f"this is {x}", candidates=_merged_input_candidates(ctx, x, count + 2, weight.shape[1]))
    ctx.require_rank(x, (count + 2,), at=0)
    ctx.require_rank(weight, (count + 2,), at=1, what="weight")
    require_layer_dtype(ctx, [x, weight, bias], ("weight", "bias"))
    stride, padding, dilation, groups = _conv_settings(ctx, attrs, count)
    _check_conv_channels(ctx, x, weight, groups)
    check_bias(ctx, bias, weight.shape[0], ctx.op)
    sizes = []
    for index in range(count):
        kernel = weight.shape[2 + index]
        reach = ctx.normalize(dilation[index] * (kernel - 1) + 1 - 2 * padding[index])
        output = conv_length(x.shape[2 + index], kernel, stride[index], padding[index], dilation[index])
        require_long_enough(ctx, x, 2 + index, reach, output)
        sizes.append(ctx.normalize(output))
    return [TensorType(x.dtype, (x.shape[0], weight.shape[0], *sizes))]


def _merged_input_candidates(ctx: ShapeContext, x: TensorType, rank: int, channels: Dim) -> list:
    """An input one axis too many (`[B, T, 17, 2]` for a Conv1d over 34 channels): merge two neighbouring axes
    into the channels and move them to axis 1 (`x.flatten(2, 3).transpose(2, 1)`), for each merge that gives
    an axis of that size."""
    if x.rank != rank + 1:
        return []
    candidates = []
    for start in range(1, x.rank - 1):
        merged = (*x.shape[:start], ctx.normalize(x.shape[start] * x.shape[start + 1]), *x.shape[start + 2:])
        if not ctx.provably_equal(merged[start], channels):
            continue
        move = f".transpose({start}, 1)" if start != 1 else ""
        candidates.append(rewrite_input(ctx, f"merge axes {start} and {start + 1} into the {channels} channels"
                                             + (" and move them to axis 1" if move else ""),
                                        lambda text, start=start, move=move:
                                        f"{receiver_text(text)}.flatten({start}, {start + 1}){move}"))
    return candidates


def _conv_atoms(channel_axis: int):
    """An atoms facet: the batch atoms, the weight's channel atom (axis `channel_axis`), spatial axes kept when
    their length is unchanged (a same-padded convolution keeps its frames) and new otherwise."""

    def atoms(ctx: ShapeContext, types: list, attrs: dict, outputs: list) -> list:
        x, weight, out = types[0], types[1], outputs[0]
        source = ctx.axes(x, 0)
        spatial = tuple(kept_or_fresh(ctx, source[axis], x.shape[axis], out.shape[axis], axis)
                        for axis in range(2, out.rank))
        channels = ctx.axes(weight, 1)[channel_axis] if out.shape[1] != 1 else ()
        return [(source[0], channels, *spatial)]

    return atoms


def _check_conv_channels(ctx: ShapeContext, x: TensorType, weight: TensorType, groups: int) -> None:
    """E207 when the input channels differ from what the weight expects; E216 for bad groups."""
    channels, wanted = x.shape[1], ctx.normalize(weight.shape[1] * groups)
    layer = "Conv1d" if ctx.op == "conv1d" else "Conv2d"
    require_axis_size(ctx, x, 1, wanted, "to axis 1",
                      message=f"{layer} expects {wanted} input channels, found {channels}",
                      label=f"this is {x}", labels=argument_label(ctx, 1, f"weight is {weight}"),
                      notes=("the channel axis of a convolution input is axis 1",),
                      repairs=lambda: layer_input_candidates(ctx, x, 1, wanted, weight, 1, 1, keeps_shape=False)
                      if groups == 1 else [])
    if weight.shape[0].exact_div(groups) is None:
        ctx.error("E216", f"{weight.shape[0]} output channels cannot be split into {groups} groups", at="groups")


COLUMNS_BUDGET = 64 * 2**20  # bytes of im2col columns built at once: larger batches go in chunks of images

# Bytes of im2col columns a task builds for a band of output rows and multiplies at once, so the GEMM
# reads them from the L2 cache (1 MB a core on the bench machine) instead of from memory. Measured for
# 4 images on one thread, 3x3 convolutions: 64 channels at 64x64, 24.4 ms with whole images' columns,
# 15.8-16.0 ms in bands of 8 or 16 rows (faster than the GEMM alone on prebuilt columns, 17.2 ms);
# 128 at 32x32, 17.1 against 14.2 ms; 256 at 16x16, 14.3 against 13.1-13.4 ms. On 2 threads, 8 images,
# the gain is smaller (memory is shared): 64 channels at 64x64 4-15 %, 128 at 32x32 6-18 %, 128 at 64x64
# with stride 2 4-6 % (six alternating runs; the same path varied by up to 15 % between runs).
COLUMN_BAND = 1 << 20

# Each band's GEMM packs the weight matrix again, so a band has at least this many positions for each
# output channel: a 1024-channel temporal convolution (VideoPose3D) keeps whole images.
BAND_POSITIONS_PER_OUTPUT = 4


def conv_nd(ctx: RunContext, x: np.ndarray, weight: np.ndarray, bias, stride, padding, dilation,
            groups: int) -> np.ndarray:
    """Convolution as GEMMs on im2col columns: weight [G, O/G, C/G * K] times columns [C/G * K, positions].

    The result comes out channels-first, so no transpose follows; a 1x1 convolution needs no
    columns. Columns of large images with a small weight matrix are built and multiplied band by
    band of output rows, in cache (`_conv_banded`); otherwise work is split over the backend's
    threads by images (each task builds its own columns, within COLUMNS_BUDGET), or by output
    channels when there are fewer images than threads.
    """
    if any(padding):
        x = np.pad(x, [(0, 0), (0, 0)] + [(pad, pad) for pad in padding])
    batch, channels, kernel = x.shape[0], x.shape[1], weight.shape[2:]
    sizes = [(x.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(len(kernel))]
    positions, taps = int(np.prod(sizes)), int(np.prod(kernel))
    out = ctx.empty((batch, weight.shape[0], positions), np.result_type(x.dtype, weight.dtype))
    settings = (kernel, stride, dilation, sizes)
    work = out.size * channels // groups * taps
    rows = _band_rows(channels, taps, sizes, weight.shape[0], x.itemsize) if groups == 1 else None
    if rows is not None and not _needs_no_columns(kernel, stride):
        _conv_banded(ctx, x, weight.reshape(weight.shape[0], -1), bias, settings, out, rows, work)
    elif groups == 1 and batch < ctx.threads:
        _conv_by_channels(ctx, x, weight.reshape(weight.shape[0], -1), bias, settings, out, work)
    else:
        per_image = channels * taps * positions * x.itemsize
        tasks = [partial(_conv_images, ctx, x, weight, bias, groups, settings, out, images)
                 for images in _image_chunks(batch, per_image, len(ctx.split(batch, work)))]
        ctx.parallel(tasks)
    return out.reshape(batch, weight.shape[0], *sizes)


def _needs_no_columns(kernel, stride) -> bool:
    """A 1x1 convolution with stride 1 multiplies the input itself."""
    return all(k == 1 for k in kernel) and all(s == 1 for s in stride)


# Each band copies every kernel tap's window with one numpy call, so a band holds at least this many
# elements per tap: ResNet's stem (3 channels, 7x7 taps) in small bands spent more on the calls than it saved.
BAND_ELEMENTS_PER_TAP = 1 << 15


def _band_rows(channels: int, taps: int, sizes, outs: int, itemsize: int) -> int | None:
    """Output rows (along the first spatial axis) per band of columns, or None when whole images pay better."""
    per_row = max(1, int(np.prod(sizes[1:])))
    band = max(1, COLUMN_BAND // (channels * taps * per_row * itemsize),
               -(-BAND_POSITIONS_PER_OUTPUT * outs // per_row), -(-BAND_ELEMENTS_PER_TAP // (channels * per_row)))
    return band if band < sizes[0] else None


def _conv_banded(ctx: RunContext, x, matrix: np.ndarray, bias, settings, out: np.ndarray, rows: int,
                 work: int) -> None:
    """Every image in bands of `rows` output rows: a band's columns, its GEMM, bias and finish, in cache."""
    kernel, stride, dilation, sizes = settings
    bands = [(image, start) for image in range(x.shape[0]) for start in range(0, sizes[0], rows)]

    def task(part: slice) -> None:
        per_row = int(np.prod(sizes[1:]))
        scratch = np.empty(matrix.shape[1] * rows * per_row, x.dtype)
        for image, start in bands[part]:
            count = min(rows, sizes[0] - start)
            first = start * stride[0]
            reach = first + (count - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1
            columns = scratch[:matrix.shape[1] * count * per_row].reshape(x.shape[1], *kernel, count, *sizes[1:])
            im2col(x[image:image + 1, :, first:reach], kernel, stride, dilation, [count, *sizes[1:]], columns)
            place = (image, slice(None), slice(start * per_row, (start + count) * per_row))
            np.matmul(matrix, columns.reshape(matrix.shape[1], -1), out=out[place])
            if bias is not None:
                out[place] += bias.reshape(-1, 1)
            ctx.finish(out, place)

    ctx.parallel([partial(task, part) for part in ctx.split(len(bands), work)])


def _conv_images(ctx: RunContext, x, weight, bias, groups: int, settings, out: np.ndarray, images: slice) -> None:
    """One task: the columns of some images, one (grouped) GEMM into their rows of `out`, the bias, finished."""
    columns = im2col(x[images], *settings)
    count, positions, outs = columns.shape[0], columns.shape[2], weight.shape[0] // groups
    np.matmul(weight.reshape(groups, outs, -1), columns.reshape(count, groups, -1, positions),
              out=out[images].reshape(count, groups, outs, positions))
    if bias is not None:
        out[images] += bias.reshape(-1, 1)
    ctx.finish(out, (images,))


def _conv_by_channels(ctx: RunContext, x, matrix: np.ndarray, bias, settings, out: np.ndarray, work: int) -> None:
    """All images' columns at once, then one GEMM per block of output channels (a task each)."""
    columns = im2col(x, *settings)

    def block(index: slice) -> None:
        np.matmul(matrix[index], columns, out=out[:, index])
        if bias is not None:
            out[:, index] += bias[index].reshape(-1, 1)
        ctx.finish(out, (slice(None), index))

    ctx.parallel([partial(block, index) for index in ctx.split(matrix.shape[0], work)])


def _image_chunks(batch: int, bytes_per_image: int, tasks: int = 1):
    """Slices of the batch, at least `tasks` of them, whose scratch buffers together stay within COLUMNS_BUDGET."""
    step = max(1, min(COLUMNS_BUDGET // max(tasks * bytes_per_image, 1), -(-batch // max(tasks, 1))))
    for start in range(0, batch, step):
        yield slice(start, min(start + step, batch))


def im2col(x: np.ndarray, kernel, stride, dilation, sizes, columns: np.ndarray | None = None) -> np.ndarray:
    """Columns [N, C * K, positions]: one strided copy per kernel tap (a reshape for 1x1, stride 1).

    `columns`, when given, is where they are written, shaped [C, *kernel, *sizes] for one image.
    """
    count, channels = x.shape[:2]
    if _needs_no_columns(kernel, stride):
        return x.reshape(count, channels, -1)
    if columns is None:
        columns = np.empty((count, channels, *kernel, *sizes), dtype=x.dtype)
    else:
        columns = columns.reshape(count, channels, *kernel, *sizes)
    for tap in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(t * d, t * d + s * (n - 1) + 1, s) for t, d, s, n in zip(tap, dilation, stride, sizes))
        columns[(slice(None), slice(None), *tap)] = x[(slice(None), slice(None), *index)]
    return columns.reshape(count, channels * int(np.prod(kernel)), -1)


def _conv_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """conv_nd with per-axis settings."""
    x, weight, bias = arrays[0], arrays[1], optional(arrays, 2)
    per_axis = _per_axis(attrs, ("stride", "padding", "dilation"), x.ndim - 2)
    return [conv_nd(ctx, x, weight, bias, *per_axis, attrs["groups"])]


def _kernel_shape(weight: TensorType) -> list[int] | None:
    """The kernel sizes for an ONNX Conv attribute (None lets ONNX read them off the weight)."""
    sizes = weight.shape[2:]
    return [dim.value for dim in sizes] if all(dim.is_const for dim in sizes) else None


def _conv_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Conv with symmetric pads (all begins, then all ends)."""
    require_float_input(ctx, "Conv")
    stride, padding, dilation = _per_axis(attrs, ("stride", "padding", "dilation"), ctx.input_types[0].rank - 2)
    inputs = [name for name in names if name]
    return [ctx.node("Conv", inputs, kernel_shape=_kernel_shape(ctx.input_types[1]), strides=stride,
                     pads=padding + padding, dilations=dilation, group=attrs["groups"])]


_CONV_SIGNATURE = (Param("x", TENSOR), Param("weight", TENSOR), Param("bias", OPTIONAL_TENSOR, None),
                   Param("stride", ATTR, 1), Param("padding", ATTR, 0), Param("dilation", ATTR, 1),
                   Param("groups", ATTR, 1))

define(
    name="conv1d",
    signature=_CONV_SIGNATURE,
    infer=_conv_infer,
    atoms=_conv_atoms(0),
    run=_conv_run,
    finishes=True,
    onnx=_conv_onnx,
    doc="1-D convolution over x[B, C, L] with weight [O, C/groups, K] (torch Conv1d semantics).",
    samples=(
        (("B, 34, T", "64, 34, 3", "64"), {}, ("T >= 3",)),
        (("B, 16, T", "16, 16, 3", None), {"dilation": 3}, ("T >= 7",)),
        (("B, 8, 27", "8, 8, 3", None), {"stride": 3}),
        (("B, 8, T", "8, 4, 3", "8"), {"padding": 1, "groups": 2}),
        (("B, 8, T", "4, 8, 1", "4"), {}),
    ),
)

define(
    name="conv2d",
    signature=_CONV_SIGNATURE,
    infer=_conv_infer,
    atoms=_conv_atoms(0),
    run=_conv_run,
    finishes=True,
    onnx=_conv_onnx,
    doc="2-D convolution over x[B, C, H, W] with weight [O, C/groups, KH, KW] (torch Conv2d semantics).",
    samples=(
        (("B, 3, 16, 16", "8, 3, 7, 7", None), {"stride": 2, "padding": 3}),
        (("B, 4, H, W", "2, 4, 1, 1", "2"), {}),
        (("B, 4, 9, 10", "4, 2, 3, 3", "4"), {"stride": (1, 2), "dilation": (2, 1), "groups": 2}),
        (("B, 6, 11, 9", "5, 6, 3, 3", "5"), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}),
    ),
)


def _conv_transpose_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """x[B, C, H, W] with weight[C, O, KH, KW] gives [B, O, (H-1)s - 2p + K + output_padding, ...]."""
    x, weight, bias = types[0], types[1], optional(types, 2)
    ctx.require_rank(x, (4,), at=0)
    ctx.require_rank(weight, (4,), at=1, what="weight")
    require_layer_dtype(ctx, [x, weight, bias], ("weight", "bias"))
    stride = _spatial_attr(ctx, attrs["stride"], "stride", 2, 1)
    padding = _spatial_attr(ctx, attrs["padding"], "padding", 2, 0)
    extra = _spatial_attr(ctx, attrs["output_padding"], "output_padding", 2, 0)
    if any(pad >= step for pad, step in zip(extra, stride)):
        ctx.error("E103", f"output_padding {attrs['output_padding']} must be smaller than the stride", at="output_padding")
    ctx.require_equal(x.shape[1], weight.shape[0], code="E207", at=0,
                      message=f"ConvTranspose2d expects {weight.shape[0]} input channels, found {x.shape[1]}",
                      label=f"this is {x}", labels=argument_label(ctx, 1, f"weight is {weight}"))
    check_bias(ctx, bias, weight.shape[1], "ConvTranspose2d")
    sizes = [ctx.normalize((x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + weight.shape[2 + i] + extra[i])
             for i in range(2)]
    for size in sizes:
        if ctx.facts.greater_equal(size, 1) is Tri.NO:
            ctx.error("E211", f"this transposed convolution of {x} has an empty output ({size})", at=0,
                      label=f"this is {x}", helps=("reduce the padding",))
    return [TensorType(x.dtype, (x.shape[0], weight.shape[1], *sizes))]


def conv_transpose_nd(ctx: RunContext, x: np.ndarray, weight: np.ndarray, bias, stride, padding,
                      extra) -> np.ndarray:
    """Transposed convolution: one GEMM per chunk of images (weight [C, O * K] transposed times x [C, positions]),
    then col2im phase by phase of the stride, one image at a time (see `_Phase`).

    Summing each phase's taps in a small buffer with unit-stride adds, then writing it once to its
    strided place with the crop and the bias, replaced one strided read-modify-write of the whole
    output per tap: integral's 256-channel 32x32 to 64x64 layer took 138-148 ms, now 123-127.
    """
    batch, channels, spatial, kernel = x.shape[0], x.shape[1], x.shape[2:], weight.shape[2:]
    outs, taps = weight.shape[1], int(np.prod(kernel))
    full = [(n - 1) * s + k + e for n, s, k, e in zip(spatial, stride, kernel, extra)]
    out = ctx.empty((batch, outs, *(size - 2 * pad for size, pad in zip(full, padding))),
                    np.result_type(x.dtype, weight.dtype))
    phases = [_Phase.of(phase, kernel, stride, spatial, full, padding)
              for phase in itertools.product(*(range(step) for step in stride))]
    matrix = weight.reshape(channels, outs * taps).T
    rows = x.reshape(batch, channels, -1)
    biased = None if bias is None else bias.reshape(-1, *([1] * len(kernel)))
    work = batch * outs * taps * rows.shape[2] * channels
    chunks = _image_chunks(batch, outs * taps * rows.shape[2] * out.itemsize, len(ctx.split(batch, work)))
    blocks = (outs, *kernel, *spatial)
    ctx.parallel([partial(_transposed_images, ctx, matrix, rows, out, images, blocks, phases, biased)
                  for images in chunks])
    return out


@dataclass(frozen=True)
class _Phase:
    """The output positions of one phase of the stride (y = phase + stride * i along each axis) and the
    kernel taps that land on them: tap t adds its block at i = t // stride + (0 .. n - 1), a unit-stride
    place in a buffer of the phase's positions, which is then cropped by the padding and copied to
    every stride-th position of the output."""

    taps: tuple  # the kernel taps of this phase
    places: tuple  # per tap, its block's place in the buffer
    shape: tuple  # the buffer's spatial shape: the phase's positions in the uncropped output
    kept: tuple  # the buffer's part inside the crop
    targets: tuple  # where that part goes in the cropped output (strided slices)

    @classmethod
    def of(cls, phase: tuple, kernel, stride, spatial, full, padding) -> "_Phase":
        """The phase `phase` (one offset per axis) of a transposed convolution's full, uncropped output."""
        taps = [tap for tap in itertools.product(*(range(k) for k in kernel))
                if all(t % step == p for t, step, p in zip(tap, stride, phase))]
        places = [tuple(slice(t // step, t // step + n) for t, step, n in zip(tap, stride, spatial)) for tap in taps]
        shape, kept, targets = [], [], []
        for p, step, size, pad in zip(phase, stride, full, padding):
            first = max(0, -(-(pad - p) // step))  # the phase's first position inside the crop
            start = p + step * first - pad  # ... and where it lands in the cropped output
            count = len(range(start, size - 2 * pad, step))
            shape.append(len(range(p, size, step)))
            kept.append(slice(first, first + count))
            targets.append(slice(start, start + step * (count - 1) + 1, step) if count else slice(0, 0))
        return cls(tuple(taps), tuple(places), tuple(shape), tuple(kept), tuple(targets))


def _transposed_images(ctx: RunContext, matrix: np.ndarray, rows: np.ndarray, out: np.ndarray, images: slice,
                       blocks: tuple, phases: list, biased) -> None:
    """One task: the GEMM of some images (columns shaped [image, O, *kernel, *input sizes] as `blocks` says),
    then each image's phases summed and written, and the image finished while it is in cache."""
    columns = np.matmul(matrix, rows[images]).reshape(-1, *blocks)
    scratch = np.empty(out.shape[1] * max(math.prod(phase.shape) for phase in phases), out.dtype)
    for offset in range(columns.shape[0]):
        image = images.start + offset
        for phase in phases:
            buffer = scratch[:out.shape[1] * math.prod(phase.shape)].reshape(out.shape[1], *phase.shape)
            buffer.fill(0)
            for tap, place in zip(phase.taps, phase.places):
                buffer[(slice(None), *place)] += columns[(offset, slice(None), *tap)]
            source = buffer[(slice(None), *phase.kept)]
            target = out[(image, slice(None), *phase.targets)]
            if biased is None:
                np.copyto(target, source)
            else:
                np.add(source, biased, out=target)
        ctx.finish(out, (slice(image, image + 1),))


def _conv_transpose_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """conv_transpose_nd with per-axis settings."""
    per_axis = _per_axis(attrs, ("stride", "padding", "output_padding"), 2)
    return [conv_transpose_nd(ctx, arrays[0], arrays[1], optional(arrays, 2), *per_axis)]


def _conv_transpose_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX ConvTranspose: same weight layout [C, O, KH, KW] and output-size rule as torch."""
    require_float_input(ctx, "ConvTranspose")
    stride, padding, extra = _per_axis(attrs, ("stride", "padding", "output_padding"), 2)
    inputs = [name for name in names if name]
    return [ctx.node("ConvTranspose", inputs, kernel_shape=_kernel_shape(ctx.input_types[1]), strides=stride,
                     pads=padding + padding, output_padding=extra)]


define(
    name="conv_transpose2d",
    signature=(Param("x", TENSOR), Param("weight", TENSOR), Param("bias", OPTIONAL_TENSOR, None),
               Param("stride", ATTR, 1), Param("padding", ATTR, 0), Param("output_padding", ATTR, 0)),
    infer=_conv_transpose_infer,
    atoms=_conv_atoms(1),
    run=_conv_transpose_run,
    finishes=True,
    onnx=_conv_transpose_onnx,
    doc="2-D transposed convolution with weight [C, O, KH, KW] (torch ConvTranspose2d semantics).",
    samples=(
        (("B, 8, H, W", "8, 4, 4, 4", None), {"stride": 2, "padding": 1}),
        (("B, 4, 5, 6", "4, 2, 3, 3", "2"), {"stride": 2, "padding": 1, "output_padding": 1}),
    ),
)


def _pool_settings(ctx: ShapeContext, attrs: dict, count: int) -> tuple:
    """(kernel, stride, padding) per axis; the stride defaults to the kernel, padding is at most half the kernel."""
    kernel = _spatial_attr(ctx, attrs["kernel_size"], "kernel_size", count, 1)
    stride = kernel if attrs["stride"] is None else _spatial_attr(ctx, attrs["stride"], "stride", count, 1)
    padding = _spatial_attr(ctx, attrs["padding"], "padding", count, 0)
    for pad, size in zip(padding, kernel):
        if 2 * pad > size:
            ctx.error("E103", f"padding {attrs['padding']} must be at most half the kernel size {attrs['kernel_size']}",
                      at="padding", label=f"this is {attrs['padding']}",
                      notes=("torch's pooling requires padding <= kernel_size / 2 on every axis",),
                      helps=(f"use padding = {size // 2} or less",),
                      candidates=_padding_candidates(ctx, attrs["padding"], size // 2))
    return kernel, stride, padding


def _padding_candidates(ctx: ShapeContext, padding, most: int) -> list:
    """Each allowed padding 0..most (the output length the program expects picks one), in the call or in the
    constructor of the layer the pooling runs in."""
    if isinstance(padding, tuple):
        return []
    if ctx.text_of("padding") is not None and "padding" in ctx.spans:
        return [ctx.fix(f"pad by {value}", str(value), at="padding", safe=False) for value in range(most + 1)]
    layer = constructed_at(ctx)
    if layer is None:
        return []
    return [set_layer_argument(layer[0], layer[1], "padding", str(value), f"build the `{layer[1]}` with `padding = "
                               f"{value}`") for value in range(most + 1)]


def _pooled_shape(ctx: ShapeContext, x: TensorType, attrs: dict, count: int) -> tuple:
    """The shape of x after pooling its last `count` axes: each (L + 2p - k) // s + 1, checked long enough."""
    kernel, stride, padding = _pool_settings(ctx, attrs, count)
    sizes = []
    for index in range(count):
        axis = x.rank - count + index
        output = conv_length(x.shape[axis], Dim.of(kernel[index]), stride[index], padding[index], 1)
        require_long_enough(ctx, x, axis, Dim.of(kernel[index] - 2 * padding[index]), output)
        sizes.append(ctx.normalize(output))
    return (*x.shape[:-count], *sizes)


def _max_pool_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Max over windows of the last axis of (N, C, L) or (C, L): length (L + 2p - k) // s + 1."""
    (x,) = types
    ctx.require_rank(x, (2, 3), at=0)
    return [TensorType(x.dtype, _pooled_shape(ctx, x, attrs, 1))]


def _lowest(dtype: np.dtype):
    """The padding value no element can lose to: -inf for floats, the smallest int, False."""
    if np.issubdtype(dtype, np.floating):
        return -np.inf
    return np.iinfo(dtype).min if np.issubdtype(dtype, np.integer) else False


def _pool_lists(attrs: dict, count: int) -> tuple[list[int], list[int], list[int]]:
    """Checked kernel, stride (defaulting to the kernel) and padding as lists, for the run and ONNX facets."""
    kernel, padding = _per_axis(attrs, ("kernel_size", "padding"), count)
    stride = kernel if attrs["stride"] is None else _per_axis(attrs, ("stride",), count)[0]
    return kernel, stride, padding


def _max_pool_nd(ctx: RunContext, x: np.ndarray, attrs: dict, count: int) -> np.ndarray:
    """Pad the last `count` axes with the lowest value, then the elementwise maximum of the strided window taps;
    split over the threads by the leading axes (each task pads its own part)."""
    kernel, stride, padding = _pool_lists(attrs, count)
    spatial = x.shape[x.ndim - count:]
    sizes = [(spatial[i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in range(count)]
    out = ctx.empty((*x.shape[:x.ndim - count], *sizes), x.dtype)
    rows, targets = x.reshape(-1, *spatial), out.reshape(-1, *sizes)
    widths = [(0, 0)] + [(pad, pad) for pad in padding]

    def part(index: slice) -> None:
        source = rows[index]
        if any(padding):
            source = np.pad(source, widths, constant_values=_lowest(x.dtype))
        target = targets[index]
        for number, tap in enumerate(itertools.product(*(range(size) for size in kernel))):
            window = source[(slice(None), *(slice(t, t + s * (n - 1) + 1, s) for t, s, n in zip(tap, stride, sizes)))]
            if number == 0:
                np.copyto(target, window)
            else:
                np.maximum(target, window, out=target)

    ctx.parallel([partial(part, index) for index in ctx.split(rows.shape[0], out.size * math.prod(kernel))])
    return out


def _max_pool_onnx_nd(ctx, names: list, attrs: dict, count: int) -> list[str]:
    """ONNX MaxPool (padding never wins the max); an input without a batch axis gets one for the pooling."""
    require_float_input(ctx, "MaxPool")
    kernel, stride, padding = _pool_lists(attrs, count)
    batched = ctx.input_types[0].rank == count + 1
    x = ctx.unsqueeze(names[0], [0]) if batched else names[0]
    pooled = ctx.node("MaxPool", [x], kernel_shape=kernel, strides=stride, pads=padding + padding)
    return [ctx.squeeze(pooled, [0]) if batched else pooled]


def _max_pool1d_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Max over windows of the last axis."""
    return [_max_pool_nd(ctx, arrays[0], attrs, 1)]


def _max_pool1d_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX MaxPool with one spatial axis."""
    return _max_pool_onnx_nd(ctx, names, attrs, 1)


define(
    name="max_pool1d",
    signature=(Param("x", TENSOR), Param("kernel_size", ATTR), Param("stride", ATTR, None), Param("padding", ATTR, 0)),
    infer=_max_pool_infer,
    run=_max_pool1d_run,
    onnx=_max_pool1d_onnx,
    doc="1-D max pooling over the last axis of (N, C, L) or (C, L); the stride defaults to the kernel size.",
    samples=(
        (("B, 64, 16",), {"kernel_size": 2}),
        (("B, C, T",), {"kernel_size": 3, "stride": 1}, ("T >= 3",)),
        (("B, 8, T",), {"kernel_size": 3, "stride": 2, "padding": 1}),
        (("C, 9",), {"kernel_size": 4, "padding": 2}),
    ),
)


def _avg_pool1d_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Mean over windows of the last axis of (N, C, L) or (C, L); a mean is real-valued, so ints give f32."""
    (x,) = types
    ctx.require_rank(x, (2, 3), at=0)
    if not isinstance(attrs["count_include_pad"], bool):
        ctx.error("E103", f"count_include_pad must be true or false, found `{attrs['count_include_pad']}`",
                  at="count_include_pad")
    return [TensorType(float_dtype(x.dtype), _pooled_shape(ctx, x, attrs, 1))]


def _avg_pool1d_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Zero padding, sums over strided windows, divided by the kernel size or by the unpadded count."""
    (kernel,), (stride,), (padding,) = _pool_lists(attrs, 1)
    x = np.asarray(arrays[0])
    dtype = float_dtype(dtype_name(x))
    x = as_dtype(x, dtype)
    widths = [(0, 0)] * (x.ndim - 1) + [(padding, padding)]
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, widths), kernel, axis=-1)[..., ::stride, :]
    if attrs["count_include_pad"]:
        return [as_dtype(windows.mean(axis=-1), dtype)]
    real = np.lib.stride_tricks.sliding_window_view(np.pad(np.ones(x.shape[-1]), (padding, padding)), kernel)
    return [as_dtype(windows.sum(axis=-1) / real[::stride].sum(axis=-1), dtype)]


def _avg_pool1d_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX AveragePool in the result's float dtype; an input without a batch axis gets one for the pooling."""
    kernel, stride, padding = _pool_lists(attrs, 1)
    x_type, result = ctx.input_types[0], ctx.output_types[0].dtype
    x = ctx.cast(names[0], x_type.dtype, result)
    batched = x_type.rank == 2
    x = ctx.unsqueeze(x, [0]) if batched else x
    pooled = ctx.node("AveragePool", [x], kernel_shape=kernel, strides=stride, pads=padding + padding,
                      count_include_pad=int(attrs["count_include_pad"]))
    return [ctx.squeeze(pooled, [0]) if batched else pooled]


define(
    name="avg_pool1d",
    signature=(Param("x", TENSOR), Param("kernel_size", ATTR), Param("stride", ATTR, None), Param("padding", ATTR, 0),
               Param("count_include_pad", ATTR, True)),
    infer=_avg_pool1d_infer,
    run=_avg_pool1d_run,
    onnx=_avg_pool1d_onnx,
    doc="1-D average pooling over the last axis of (N, C, L) or (C, L); the stride defaults to the kernel size.",
    samples=(
        (("B, 64, 16",), {"kernel_size": 2}),
        (("B, C, T",), {"kernel_size": 3, "stride": 1}, ("T >= 3",)),
        (("B, 8, T",), {"kernel_size": 3, "stride": 2, "padding": 1}),
        (("B, 8, T",), {"kernel_size": 4, "stride": 3, "padding": 2, "count_include_pad": False}),
        (("i64[C, 9]",), {"kernel_size": 4, "padding": 2}),
    ),
)


def _max_pool2d_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Max over windows of the last two axes: each length (L + 2p - k) // s + 1."""
    (x,) = types
    ctx.require_rank(x, (3, 4), at=0)
    return [TensorType(x.dtype, _pooled_shape(ctx, x, attrs, 2))]


def _max_pool2d_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Max over windows of the last two axes."""
    return [_max_pool_nd(ctx, arrays[0], attrs, 2)]


def _max_pool2d_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX MaxPool with two spatial axes."""
    return _max_pool_onnx_nd(ctx, names, attrs, 2)


define(
    name="max_pool2d",
    signature=(Param("x", TENSOR), Param("kernel_size", ATTR), Param("stride", ATTR, None), Param("padding", ATTR, 0)),
    infer=_max_pool2d_infer,
    run=_max_pool2d_run,
    onnx=_max_pool2d_onnx,
    doc="2-D max pooling over the last two axes of (N, C, H, W) or (C, H, W); the stride defaults to the kernel size.",
    samples=(
        (("B, 64, H, W",), {"kernel_size": 3, "stride": 2, "padding": 1}),
        (("B, 8, 16, 12",), {"kernel_size": 2}),
        (("B, 4, 9, 10",), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0)}),
        (("C, H, W",), {"kernel_size": 2, "stride": 1}, ("H >= 2", "W >= 2")),
    ),
)
