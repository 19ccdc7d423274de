"""Layer ops: matmul, linear, convolutions, pooling, normalization, dropout and drop-path."""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from poseir.diagnostics import Label
from poseir.dims import Dim, Tri
from poseir.ir import FLOAT_DTYPES, TensorType
from poseir.ops.elementwise import NUMPY_DTYPES, define, require_same_dtype
from poseir.ops.registry import ATTR, OPTIONAL_TENSOR, TENSOR, Param, RunContext, ShapeContext
from poseir.ops.shape import int_attr, shape_text


def _label(ctx: ShapeContext, at, message: str) -> tuple[Label, ...]:
    """A secondary label on argument `at`, only when that argument has a span of its own."""
    return (Label(ctx.span_of(at), message),) if at in ctx.spans else ()


def _optional(items: Sequence, index: int):
    """The optional input at `index`, or None when absent."""
    return items[index] if len(items) > index else None


def require_axes(ctx: ShapeContext, type_: TensorType, at) -> None:
    """E201 for a rank-0 tensor where the op needs at least one axis."""
    if type_.rank == 0:
        ctx.error("E201", f"{ctx.op} needs a tensor with at least one axis, found {type_}", at=at,
                  label=f"this is {type_}")


def _number_attr(ctx: ShapeContext, value, at: str, low: float, high: float) -> float:
    """A float attribute within [low, high] (E103 otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        ctx.error("E103", f"{at} must be a number between {low} and {high}, found `{value}`", at=at,
                  label="out of range")
    return float(value)


# --------------------------------------------------------------------------- matmul and linear


def _matmul_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """numpy matmul: (..., m, k) @ (..., k, n), 1-D operands as vectors, batch axes broadcast."""
    a, b = types
    for at, type_ in enumerate(types):
        require_axes(ctx, type_, at)
    require_same_dtype(ctx, types)
    inner_a, inner_b = a.shape[-1], b.shape[0] if b.rank == 1 else b.shape[-2]
    ctx.require_equal(inner_a, inner_b, code="E207", at=1,
                      message=f"matmul contracts {inner_a} with {inner_b}: the inner dimensions differ",
                      label=f"this is {b}", labels=(Label(ctx.span_of(0), f"this is {a}"),),
                      notes=("`a @ b` needs the last axis of `a` to equal the second to last axis of `b`",),
                      helps=_matmul_helps(ctx, a, b, inner_a))
    rows = a.shape[-2:-1] if a.rank >= 2 else ()
    columns = b.shape[-1:] if b.rank >= 2 else ()
    batch = ()
    if a.rank > 2 or b.rank > 2:
        batch = ctx.broadcast([TensorType(a.dtype, a.shape[:-2]), TensorType(b.dtype, b.shape[:-2])])
    shape = tuple(ctx.normalize(dim) for dim in (*batch, *rows, *columns))
    return [TensorType(a.dtype, shape)]


def _matmul_helps(ctx: ShapeContext, a: TensorType, b: TensorType, inner_a: Dim) -> tuple[str, ...]:
    """Suggest transposing `b` when its last axis is the one that matches."""
    if b.rank >= 2 and ctx.equal(b.shape[-1], inner_a) is Tri.YES:
        return ("the last axis of the right operand matches; transpose it with `.transpose(-2, -1)`",)
    return ()


def _matmul_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """numpy matmul."""
    return [np.matmul(arrays[0], arrays[1])]


def _matmul_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX MatMul has numpy semantics, 1-D operands and broadcasting included."""
    return [ctx.node("MatMul", names)]


define(
    name="matmul",
    signature=(Param("a", TENSOR), Param("b", TENSOR)),
    infer=_matmul_infer,
    run=_matmul_run,
    onnx=_matmul_onnx,
    doc="Matrix product with numpy semantics (`a @ b`): batched, broadcasting, 1-D operands as vectors.",
    behaviour="same in both modes",
    samples=(
        (("B, H, N, D", "B, H, D, N"), {}),
        (("B, N, C", "C, K"), {}),
        (("1, 16, 16", "B, 16, C"), {}),
        (("C", "C, K"), {}),
        (("B, N, C", "C"), {}),
        (("C", "C"), {}),
    ),
)


def _linear_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """x[..., in] with weight[out, in] (and bias[out]) gives [..., out]."""
    x, weight, bias = types[0], types[1], _optional(types, 2)
    require_axes(ctx, x, 0)
    ctx.require_rank(weight, (2,), at=1, what="weight")
    require_same_dtype(ctx, [x, weight, bias])
    features, wanted = x.shape[-1], weight.shape[1]
    require_axis_size(ctx, x, -1, wanted, "last",
                      message=f"Linear expects {wanted} input features, found {features}",
                      label=f"this is {x}", labels=_label(ctx, 1, f"weight is {weight}"))
    _check_bias(ctx, bias, weight.shape[0], "Linear")
    return [TensorType(x.dtype, (*x.shape[:-1], weight.shape[0]))]


def require_axis_size(ctx: ShapeContext, x: TensorType, axis: int, wanted: Dim, where: str, *, message: str,
                      **details) -> None:
    """E207 when axis `axis` of x is not `wanted`; also when unprovable but another axis has that size."""
    helps = _moved_axis_help(ctx, x, wanted, axis, where)
    # An unprovable size next to an axis that fits exactly is a layout mistake, not a missing fact.
    if ctx.equal(x.shape[axis], wanted) is Tri.UNKNOWN and helps:
        ctx.error("E207", message, at=0, helps=helps, **details)
    ctx.require_equal(x.shape[axis], wanted, code="E207", at=0, message=message, helps=helps, **details)


def _moved_axis_help(ctx: ShapeContext, x: TensorType, wanted: Dim, target: int, where: str) -> tuple[str, ...]:
    """When another axis of x has the wanted size, suggest moving it into place."""
    for axis, dim in enumerate(x.shape):
        if axis != target % x.rank and ctx.equal(dim, wanted) is Tri.YES:
            return (f"axis {axis} of the input has {wanted}; move it {where} with `.transpose({axis}, {target})`",)
    return ()


def _check_bias(ctx: ShapeContext, bias: TensorType | None, outputs: Dim, layer: str) -> None:
    """A bias must be a vector with one entry per output channel (E207)."""
    if bias is None:
        return
    if bias.rank != 1:
        ctx.error("E201", f"{layer} bias must have rank 1, found {bias}", at=2, label=f"this is {bias}")
    ctx.require_equal(bias.shape[0], outputs, code="E207", at=2,
                      message=f"{layer} bias has {bias.shape[0]} entries, but the layer has {outputs} outputs",
                      label=f"this is {bias}")


def _linear_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """x @ weight.T + bias."""
    x, weight, bias = arrays[0], arrays[1], _optional(arrays, 2)
    result = np.matmul(x, weight.T)
    return [result + bias if bias is not None else result]


def _linear_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Gemm (transB) for a rank-2 input; otherwise MatMul with the transposed weight, then Add."""
    x, weight, bias = names[0], names[1], _optional(names, 2) or ""
    if ctx.input_types[0].rank == 2:
        return [ctx.node("Gemm", [x, weight, bias] if bias else [x, weight], transB=1)]
    result = ctx.node("MatMul", [x, ctx.node("Transpose", [weight], perm=[1, 0])])
    return [ctx.node("Add", [result, bias]) if bias else result]


define(
    name="linear",
    signature=(Param("x", TENSOR), Param("weight", TENSOR), Param("bias", OPTIONAL_TENSOR, None)),
    infer=_linear_infer,
    run=_linear_run,
    onnx=_linear_onnx,
    doc="Affine map of the last axis: x @ weight.T + bias, weight [out, in] as in torch.",
    behaviour="same in both modes",
    samples=((("B, T, 34", "1024, 34", "1024"), {}), (("N, 32", "16, 32", None), {})),
)


# --------------------------------------------------------------------------- convolutions


def _spatial_attr(ctx: ShapeContext, value, at: str, count: int, minimum: int) -> tuple[int, ...]:
    """An int or a tuple of `count` ints, each at least `minimum`."""
    values = value if isinstance(value, tuple) else (value,) * count
    if len(values) != count:
        ctx.error("E103", f"{at} must be an int or {count} ints, found `{value}`", at=at)
    return tuple(int_attr(ctx, item, at, at, minimum) for item in values)


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
                 label=f"needs at least {reach}", helps=(f"add `where {fact}` to the forward signature to settle it",))


def _conv_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """x[B, C, *L] with weight[O, C/groups, *K] gives [B, O, *L'] (conv1d and conv2d)."""
    count = 1 if ctx.op == "conv1d" else 2
    x, weight, bias = types[0], types[1], _optional(types, 2)
    ctx.require_rank(x, (count + 2,), at=0)
    ctx.require_rank(weight, (count + 2,), at=1, what="weight")
    require_same_dtype(ctx, [x, weight, bias])
    stride, padding, dilation, groups = _conv_settings(ctx, attrs, count)
    _check_conv_channels(ctx, x, weight, groups)
    _check_bias(ctx, bias, weight.shape[0], ctx.op)
    sizes = []
    for index in range(count):
        kernel = weight.shape[2 + index]
        reach = ctx.normalize(dilation[index] * (kernel - 1) + 1 - 2 * padding[index])
        output = conv_length(x.shape[2 + index], kernel, stride[index], padding[index], dilation[index])
        require_long_enough(ctx, x, 2 + index, reach, output)
        sizes.append(ctx.normalize(output))
    return [TensorType(x.dtype, (x.shape[0], weight.shape[0], *sizes))]


def _check_conv_channels(ctx: ShapeContext, x: TensorType, weight: TensorType, groups: int) -> None:
    """E207 when the input channels differ from what the weight expects; E216 for bad groups."""
    channels, wanted = x.shape[1], ctx.normalize(weight.shape[1] * groups)
    layer = "Conv1d" if ctx.op == "conv1d" else "Conv2d"
    require_axis_size(ctx, x, 1, wanted, "to axis 1",
                      message=f"{layer} expects {wanted} input channels, found {channels}",
                      label=f"this is {x}", labels=_label(ctx, 1, f"weight is {weight}"),
                      notes=("the channel axis of a convolution input is axis 1",))
    if weight.shape[0].exact_div(groups) is None:
        ctx.error("E216", f"{weight.shape[0]} output channels cannot be split into {groups} groups", at="groups")


def conv_nd(x: np.ndarray, weight: np.ndarray, bias, stride, padding, dilation, groups: int) -> np.ndarray:
    """Direct convolution: one matrix product per kernel tap, channels last, no loop over positions."""
    if any(padding):
        x = np.pad(x, [(0, 0), (0, 0)] + [(pad, pad) for pad in padding])
    kernel = weight.shape[2:]
    sizes = [(x.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(len(kernel))]
    channels_last = np.moveaxis(x, 1, -1)
    rows = x.shape[0] * int(np.prod(sizes))
    per_group, outs = weight.shape[1], weight.shape[0] // groups
    out = np.zeros((rows, weight.shape[0]), dtype=np.result_type(x.dtype, weight.dtype))
    for tap in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(t * d, t * d + s * (n - 1) + 1, s) for t, d, s, n in zip(tap, dilation, stride, sizes))
        window = channels_last[(slice(None), *index)].reshape(rows, -1)
        taps = weight[(slice(None), slice(None), *tap)]
        for group in range(groups):
            out[:, group * outs:(group + 1) * outs] += (window[:, group * per_group:(group + 1) * per_group]
                                                        @ taps[group * outs:(group + 1) * outs].T)
    if bias is not None:
        out += bias
    return np.ascontiguousarray(np.moveaxis(out.reshape(x.shape[0], *sizes, -1), -1, 1))


def _conv_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """conv_nd with per-axis settings."""
    x, weight, bias = arrays[0], arrays[1], _optional(arrays, 2)
    count = x.ndim - 2
    per_axis = [attrs[name] if isinstance(attrs[name], tuple) else (attrs[name],) * count
                for name in ("stride", "padding", "dilation")]
    return [conv_nd(x, weight, bias, *per_axis, attrs["groups"])]


def require_float_input(ctx, onnx_op: str) -> None:
    """E406 for an integer or boolean tensor where the ONNX op is defined for floats only."""
    dtype = ctx.input_types[0].dtype
    if dtype not in FLOAT_DTYPES:
        raise ctx.error(f"ONNX {onnx_op} needs a floating-point input, but `{ctx.op}` is given {dtype}",
                        helps=("cast the input first, e.g. `.cast(\"f32\")`",))


def _kernel_shape(weight: TensorType) -> list[int] | None:
    """The kernel sizes for an ONNX Conv attribute (None lets ONNX read them off the weight)."""
    sizes = weight.shape[2:]
    return [dim.value for dim in sizes] if all(dim.is_const for dim in sizes) else None


def _conv_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX Conv with symmetric pads (all begins, then all ends)."""
    require_float_input(ctx, "Conv")
    count = ctx.input_types[0].rank - 2
    stride, padding, dilation = (list(attrs[name]) if isinstance(attrs[name], tuple) else [attrs[name]] * count
                                 for name in ("stride", "padding", "dilation"))
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
    run=_conv_run,
    onnx=_conv_onnx,
    doc="1-D convolution over x[B, C, L] with weight [O, C/groups, K] (torch Conv1d semantics).",
    behaviour="same in both modes",
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
    run=_conv_run,
    onnx=_conv_onnx,
    doc="2-D convolution over x[B, C, H, W] with weight [O, C/groups, KH, KW] (torch Conv2d semantics).",
    behaviour="same in both modes",
    samples=(
        (("B, 3, 16, 16", "8, 3, 7, 7", None), {"stride": 2, "padding": 3}),
        (("B, 4, H, W", "2, 4, 1, 1", "2"), {}),
        (("B, 4, 9, 10", "4, 2, 3, 3", "4"), {"stride": (1, 2), "dilation": (2, 1), "groups": 2}),
    ),
)


def _conv_transpose_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """x[B, C, H, W] with weight[C, O, KH, KW] gives [B, O, (H-1)s - 2p + K + output_padding, ...]."""
    x, weight, bias = types[0], types[1], _optional(types, 2)
    ctx.require_rank(x, (4,), at=0)
    ctx.require_rank(weight, (4,), at=1, what="weight")
    require_same_dtype(ctx, [x, weight, bias])
    stride = _spatial_attr(ctx, attrs["stride"], "stride", 2, 1)
    padding = _spatial_attr(ctx, attrs["padding"], "padding", 2, 0)
    extra = _spatial_attr(ctx, attrs["output_padding"], "output_padding", 2, 0)
    if any(pad >= step for pad, step in zip(extra, stride)):
        ctx.error("E103", f"output_padding {attrs['output_padding']} must be smaller than the stride", at="output_padding")
    ctx.require_equal(x.shape[1], weight.shape[0], code="E207", at=0,
                      message=f"ConvTranspose2d expects {weight.shape[0]} input channels, found {x.shape[1]}",
                      label=f"this is {x}", labels=_label(ctx, 1, f"weight is {weight}"))
    _check_bias(ctx, bias, weight.shape[1], "ConvTranspose2d")
    sizes = [ctx.normalize((x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + weight.shape[2 + i] + extra[i])
             for i in range(2)]
    for size in sizes:
        if ctx.facts.greater_equal(size, 1) is Tri.NO:
            ctx.error("E211", f"this transposed convolution of {x} has an empty output ({size})", at=0,
                      label=f"this is {x}", helps=("reduce the padding",))
    return [TensorType(x.dtype, (x.shape[0], weight.shape[1], *sizes))]


def conv_transpose_nd(x: np.ndarray, weight: np.ndarray, bias, stride, padding, extra) -> np.ndarray:
    """Transposed convolution: scatter one matrix product per kernel tap, then crop the padding."""
    spatial, kernel = x.shape[2:], weight.shape[2:]
    full = [(n - 1) * s + k + e for n, s, k, e in zip(spatial, stride, kernel, extra)]
    rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    out = np.zeros((x.shape[0], *full, weight.shape[1]), dtype=np.result_type(x.dtype, weight.dtype))
    for tap in itertools.product(*(range(k) for k in kernel)):
        contribution = rows @ weight[(slice(None), slice(None), *tap)]
        index = tuple(slice(t, t + s * (n - 1) + 1, s) for t, s, n in zip(tap, stride, spatial))
        out[(slice(None), *index)] += contribution.reshape(x.shape[0], *spatial, -1)
    out = out[(slice(None), *(slice(pad, size - pad) for pad, size in zip(padding, full)))]
    if bias is not None:
        out = out + bias
    return np.ascontiguousarray(np.moveaxis(out, -1, 1))


def _conv_transpose_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """conv_transpose_nd with per-axis settings."""
    per_axis = [attrs[name] if isinstance(attrs[name], tuple) else (attrs[name],) * 2
                for name in ("stride", "padding", "output_padding")]
    return [conv_transpose_nd(arrays[0], arrays[1], _optional(arrays, 2), *per_axis)]


def _conv_transpose_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX ConvTranspose: same weight layout [C, O, KH, KW] and output-size rule as torch."""
    require_float_input(ctx, "ConvTranspose")
    stride, padding, extra = (list(attrs[name]) if isinstance(attrs[name], tuple) else [attrs[name]] * 2
                              for name in ("stride", "padding", "output_padding"))
    inputs = [name for name in names if name]
    return [ctx.node("ConvTranspose", inputs, kernel_shape=_kernel_shape(ctx.input_types[1]), strides=stride,
                     pads=padding + padding, output_padding=extra)]


define(
    name="conv_transpose2d",
    signature=(Param("x", TENSOR), Param("weight", TENSOR), Param("bias", OPTIONAL_TENSOR, None),
               Param("stride", ATTR, 1), Param("padding", ATTR, 0), Param("output_padding", ATTR, 0)),
    infer=_conv_transpose_infer,
    run=_conv_transpose_run,
    onnx=_conv_transpose_onnx,
    doc="2-D transposed convolution with weight [C, O, KH, KW] (torch ConvTranspose2d semantics).",
    behaviour="same in both modes",
    samples=(
        (("B, 8, H, W", "8, 4, 4, 4", None), {"stride": 2, "padding": 1}),
        (("B, 4, 5, 6", "4, 2, 3, 3", "2"), {"stride": 2, "padding": 1, "output_padding": 1}),
    ),
)


def _max_pool_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Max over windows of the last axis: length (L - k) // s + 1."""
    (x,) = types
    ctx.require_rank(x, (2, 3), at=0)
    kernel = int_attr(ctx, attrs["kernel_size"], "kernel_size", "kernel_size", 1)
    stride = kernel if attrs["stride"] is None else int_attr(ctx, attrs["stride"], "stride", "stride", 1)
    output = conv_length(x.shape[-1], Dim.of(kernel), stride, 0, 1)
    require_long_enough(ctx, x, x.rank - 1, Dim.of(kernel), output)
    return [TensorType(x.dtype, (*x.shape[:-1], ctx.normalize(output)))]


def _max_pool_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Max over strided sliding windows."""
    kernel = attrs["kernel_size"]
    stride = kernel if attrs["stride"] is None else attrs["stride"]
    windows = np.lib.stride_tricks.sliding_window_view(arrays[0], kernel, axis=-1)[..., ::stride, :]
    return [windows.max(axis=-1)]


def _max_pool_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """ONNX MaxPool over the last axis; a rank-2 input gets a batch axis for the pooling."""
    require_float_input(ctx, "MaxPool")
    kernel = attrs["kernel_size"]
    stride = kernel if attrs["stride"] is None else attrs["stride"]
    batched = ctx.input_types[0].rank == 2
    x = ctx.unsqueeze(names[0], [0]) if batched else names[0]
    pooled = ctx.node("MaxPool", [x], kernel_shape=[kernel], strides=[stride])
    return [ctx.squeeze(pooled, [0]) if batched else pooled]


define(
    name="max_pool1d",
    signature=(Param("x", TENSOR), Param("kernel_size", ATTR), Param("stride", ATTR, None)),
    infer=_max_pool_infer,
    run=_max_pool_run,
    onnx=_max_pool_onnx,
    doc="1-D max pooling over the last axis; the stride defaults to the kernel size.",
    behaviour="same in both modes",
    samples=((("B, 64, 16",), {"kernel_size": 2}), (("B, C, T",), {"kernel_size": 3, "stride": 1}, ("T >= 3",))),
)


# --------------------------------------------------------------------------- normalization


def _check_channel_vector(ctx: ShapeContext, types: list, channels: Dim, layer: str) -> None:
    """Each per-channel input (weight, bias, running stats) must be a vector of `channels` (E207)."""
    for at, type_ in enumerate(types[1:], start=1):
        if type_ is None:
            continue
        if type_.rank != 1:
            ctx.error("E201", f"{layer} parameters must have rank 1, found {type_}", at=at, label=f"this is {type_}")
        require_axis_size(ctx, types[0], 1, type_.shape[0], "to axis 1",
                          message=f"{layer} expects {type_.shape[0]} channels, found {channels}",
                          label=f"this is {types[0]}", labels=_label(ctx, at, f"this is {type_}"),
                          notes=("the channel axis of a batch-norm input is axis 1",))


def _batch_norm_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same type as x[B, C, ...]; every parameter is a vector of C."""
    x = types[0]
    ctx.require_rank(x, (2, 3, 4), at=0)
    require_same_dtype(ctx, types)
    _number_attr(ctx, attrs["momentum"], "momentum", 0.0, 1.0)
    _number_attr(ctx, attrs["eps"], "eps", 0.0, 1.0)
    _check_channel_vector(ctx, types, x.shape[1], "BatchNorm")
    return [x]


def _batch_norm_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Batch statistics (biased variance) in training, running statistics in inference."""
    x, weight, bias, running_mean, running_var = (_optional(arrays, index) for index in range(5))
    axes = (0, *range(2, x.ndim))
    if ctx.training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = running_mean, running_var
    scale = 1.0 / np.sqrt(var + np.asarray(attrs["eps"], dtype=x.dtype))
    scale = scale * weight if weight is not None else scale
    shift = -mean * scale + (bias if bias is not None else 0)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return [(x * scale.reshape(shape) + shift.reshape(shape)).astype(x.dtype, copy=False)]


def _channel_vector(ctx, value: float, like: str, like_type: TensorType, dtype: str) -> str:
    """A per-channel vector filled with `value`, as long as `like` (a missing scale or shift)."""
    channels = like_type.shape[0]
    if channels.is_const:
        return ctx.constant(np.full(channels.value, value), dtype)
    return ctx.node("Expand", [ctx.scalar(value, dtype), ctx.shape_of(like)])


def _batch_norm_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """BatchNormalization; in the training flow with batch statistics (training_mode=1 from opset 14)."""
    require_float_input(ctx, "BatchNormalization")
    x_type, dtype = ctx.input_types[0], ctx.input_types[0].dtype
    x, mean, var = names[0], names[3], names[4]
    scale = names[1] or _channel_vector(ctx, 1.0, var, ctx.input_types[4], dtype)
    shift = names[2] or _channel_vector(ctx, 0.0, var, ctx.input_types[4], dtype)
    if not ctx.training:
        return [ctx.node("BatchNormalization", [x, scale, shift, mean, var], epsilon=float(attrs["eps"]))]
    if ctx.opset < 14:
        return [_batch_norm_decomposed(ctx, x, x_type, scale, shift, attrs["eps"])]
    # momentum=1 keeps the running statistics unchanged, as in the reference interpreter; it also
    # avoids onnxruntime's CPU kernel, whose training-mode Y wrongly depends on momentum otherwise.
    outputs = ctx.node("BatchNormalization", [x, scale, shift, mean, var], outputs=3, training_mode=1,
                       momentum=1.0, epsilon=float(attrs["eps"]))
    return [outputs[0]]


def _batch_norm_decomposed(ctx, x: str, x_type: TensorType, scale: str, shift: str, eps: float) -> str:
    """Batch statistics spelled out (opset 13 has no training_mode attribute)."""
    axes = [0, *range(2, x_type.rank)]
    centred = ctx.node("Sub", [x, ctx.reduce("ReduceMean", x, axes, True)])
    var = ctx.reduce("ReduceMean", ctx.node("Mul", [centred, centred]), axes, True)
    normalized = ctx.node("Div", [centred, ctx.node("Sqrt", [ctx.node("Add", [var, ctx.scalar(eps, x_type.dtype)])])])
    channel_axes = list(range(1, x_type.rank - 1))
    if channel_axes:
        scale, shift = ctx.unsqueeze(scale, channel_axes), ctx.unsqueeze(shift, channel_axes)
    return ctx.node("Add", [ctx.node("Mul", [normalized, scale]), shift])


define(
    name="batch_norm",
    signature=(Param("x", TENSOR), Param("weight", OPTIONAL_TENSOR), Param("bias", OPTIONAL_TENSOR),
               Param("running_mean", TENSOR), Param("running_var", TENSOR), Param("momentum", ATTR, 0.1),
               Param("eps", ATTR, 1e-5)),
    infer=_batch_norm_infer,
    run=_batch_norm_run,
    onnx=_batch_norm_onnx,
    doc="Batch normalization over channel axis 1 of x[B, C], x[B, C, L] or x[B, C, H, W].",
    behaviour=("train: normalizes with the batch mean and biased variance over every axis but 1 (the reference "
               "interpreter does not update the running statistics); infer: uses running_mean and running_var, "
               "so it folds into a per-channel scale and shift"),
    samples=(
        (("B, 64, T", "64", "64", "64", "64"), {}),
        (("B, 32", "32", "32", "32", "32"), {"momentum": 0.01}),
        (("B, 8, H, W", "8", "8", "8", "8"), {"eps": 1e-3}),
        (("B, 8, T", None, None, "8", "8"), {}),
    ),
)


def _layer_norm_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same type as x; the last weight.rank axes of x must equal weight's shape."""
    x, weight, bias = types[0], types[1], _optional(types, 2)
    require_same_dtype(ctx, [x, weight, bias])
    _number_attr(ctx, attrs["eps"], "eps", 0.0, 1.0)
    if weight.rank == 0 or weight.rank > x.rank:
        ctx.error("E201", f"LayerNorm over {weight} does not fit the input {x}", at=0, label=f"this is {x}")
    normalized = x.shape[x.rank - weight.rank:]
    for ours, theirs in zip(normalized, weight.shape):
        ctx.require_equal(ours, theirs, code="E207", at=0,
                          message=f"LayerNorm normalizes over {shape_text(weight.shape)}, but the input ends in "
                                  f"{shape_text(normalized)}",
                          label=f"this is {x}", labels=_label(ctx, 1, f"weight is {weight}"),
                          helps=_moved_axis_help(ctx, x, weight.shape[-1], -1, "last"))
    if bias is not None and bias.shape != weight.shape:
        ctx.error("E207", f"LayerNorm bias {bias} differs from its weight {weight}", at=2, label=f"this is {bias}")
    return [x]


def _layer_norm_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing axes (biased variance)."""
    x, weight, bias = arrays[0], arrays[1], _optional(arrays, 2)
    axes = tuple(range(x.ndim - weight.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    result = centred / np.sqrt(var + np.asarray(attrs["eps"], dtype=x.dtype)) * weight
    return [(result + bias if bias is not None else result).astype(x.dtype, copy=False)]


def _layer_norm_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """LayerNormalization from opset 17; before it, mean and biased variance over the trailing axes."""
    require_float_input(ctx, "LayerNormalization")
    x_type = ctx.input_types[0]
    first = x_type.rank - ctx.input_types[1].rank
    x, weight, bias = names[0], names[1], _optional(names, 2) or ""
    if ctx.opset >= 17:
        inputs = [x, weight, bias] if bias else [x, weight]
        return [ctx.node("LayerNormalization", inputs, axis=first, epsilon=float(attrs["eps"]))]
    axes = list(range(first, x_type.rank))
    centred = ctx.node("Sub", [x, ctx.reduce("ReduceMean", x, axes, True)])
    var = ctx.reduce("ReduceMean", ctx.node("Mul", [centred, centred]), axes, True)
    deviation = ctx.node("Sqrt", [ctx.node("Add", [var, ctx.scalar(attrs["eps"], x_type.dtype)])])
    result = ctx.node("Mul", [ctx.node("Div", [centred, deviation]), weight])
    return [ctx.node("Add", [result, bias]) if bias else result]


define(
    name="layer_norm",
    signature=(Param("x", TENSOR), Param("weight", TENSOR), Param("bias", OPTIONAL_TENSOR, None),
               Param("eps", ATTR, 1e-5)),
    infer=_layer_norm_infer,
    run=_layer_norm_run,
    onnx=_layer_norm_onnx,
    doc="Layer normalization over the trailing axes that match the weight's shape.",
    behaviour="same in both modes",
    samples=(
        (("B, T, 512", "512", "512"), {}),
        (("B, 34, F", "F", "F"), {"eps": 1e-6}),
        (("B, T, 17, 3", "17, 3", None), {}),
    ),
)


# --------------------------------------------------------------------------- dropout and drop-path


def _dropout_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same type as x; p must be a probability."""
    _number_attr(ctx, attrs["p"], "p", 0.0, 1.0)
    if ctx.op == "drop_path":
        require_axes(ctx, types[0], 0)
    return [types[0]]


def _scaled_mask(ctx: RunContext, x: np.ndarray, shape: tuple, p: float) -> np.ndarray:
    """x times a keep-mask of `shape` (broadcast), scaled by 1 / (1 - p) so the mean is unchanged."""
    if p >= 1.0:
        return np.zeros_like(x)
    keep = ctx.rng.random(shape) >= p
    return (x * (keep / (1.0 - p)).astype(x.dtype)).astype(x.dtype, copy=False)


def _dropout_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Inverted dropout of single elements in training; identity in inference."""
    x = np.asarray(arrays[0])
    if not ctx.training or attrs["p"] == 0:
        return [x]
    return [_scaled_mask(ctx, x, x.shape, attrs["p"])]


def _drop_path_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Stochastic depth: drop whole samples (axis 0) in training; identity in inference."""
    x = np.asarray(arrays[0])
    if not ctx.training or attrs["p"] == 0:
        return [x]
    return [_scaled_mask(ctx, x, (x.shape[0],) + (1,) * (x.ndim - 1), attrs["p"])]


def _dropout_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Identity in inference; in training an ONNX Dropout with training_mode=true."""
    if not ctx.training:
        return [ctx.node("Identity", names)]
    require_float_input(ctx, "Dropout")
    ratio = ctx.scalar(attrs["p"], ctx.input_types[0].dtype)
    return [ctx.node("Dropout", [names[0], ratio, ctx.scalar(True, "bool")])]


def _drop_path_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Identity in inference (and for p = 0); in training a per-sample mask from RandomUniformLike."""
    x_type = ctx.input_types[0]
    if not ctx.training or attrs["p"] == 0:
        return [ctx.node("Identity", names)]
    require_float_input(ctx, "RandomUniformLike")
    p, dtype = float(attrs["p"]), x_type.dtype
    if p >= 1.0:
        return [ctx.node("Mul", [names[0], ctx.scalar(0.0, dtype)])]
    from onnx import numpy_helper

    zero = numpy_helper.from_array(np.zeros(1, dtype=NUMPY_DTYPES[dtype]))
    samples = ctx.shape([x_type.shape[0]] + [1] * (x_type.rank - 1))
    uniform = ctx.node("RandomUniformLike", [ctx.node("ConstantOfShape", [samples], value=zero)])
    keep = ctx.node("Cast", [ctx.node("GreaterOrEqual", [uniform, ctx.scalar(p, dtype)])], to=ctx.onnx_dtype(dtype))
    return [ctx.node("Mul", [names[0], ctx.node("Mul", [keep, ctx.scalar(1.0 / (1.0 - p), dtype)])])]


define(
    name="dropout",
    signature=(Param("x", TENSOR), Param("p", ATTR, 0.5)),
    infer=_dropout_infer,
    run=_dropout_run,
    onnx=_dropout_onnx,
    doc="Dropout: zero elements with probability p (inverted: survivors scaled by 1 / (1 - p)).",
    behaviour="train: zeroes each element with probability p and scales the rest by 1 / (1 - p); infer: identity",
    samples=((("B, 1024, T",), {"p": 0.25}), (("B, C",), {})),
)

define(
    name="drop_path",
    signature=(Param("x", TENSOR), Param("p", ATTR, 0.0)),
    infer=_dropout_infer,
    run=_drop_path_run,
    onnx=_drop_path_onnx,
    doc="Stochastic depth: zero whole samples (axis 0) with probability p, survivors scaled by 1 / (1 - p).",
    behaviour="train: zeroes each sample along axis 0 with probability p and scales the rest by 1 / (1 - p); "
              "infer: identity",
    samples=((("B, N, C",), {"p": 0.1}), (("B, T, 17, 3",), {})),
)
