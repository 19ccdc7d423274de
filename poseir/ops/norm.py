"""Normalization layers: batch_norm (mode-dependent statistics) and layer_norm."""

from __future__ import annotations

from functools import partial

import numpy as np

from poseir.ir.dims import Dim, Tri
from poseir.ir.graph import TensorType
from poseir.ops.common import (argument_label, define, moved_axis_help, number_attr, optional, require_axis_size,
                               require_float_input, require_layer_dtype, row_blocks, row_sums, shape_text)
from poseir.ops.repairs import constructed_at, layer_input_candidates, renamed_layer
from poseir.ops.registry import ATTR, OPTIONAL_TENSOR, TENSOR, Param, RunContext, ShapeContext


def _check_channel_vector(ctx: ShapeContext, types: list, channels: Dim, layer: str) -> None:
    """Each per-channel input (weight, bias, running stats) must be a vector of `channels` (E207)."""
    for at, type_ in enumerate(types[1:], start=1):
        if type_ is None:
            continue
        if type_.rank != 1:
            ctx.error("E201", f"{layer} parameters must have rank 1, found {type_}", at=at, label=f"this is {type_}")
        require_axis_size(ctx, types[0], 1, type_.shape[0], "to axis 1",
                          message=f"{layer} expects {type_.shape[0]} channels, found {channels}",
                          label=f"this is {types[0]}", labels=argument_label(ctx, at, f"this is {type_}"),
                          notes=("the channel axis of a batch-norm input is axis 1",),
                          repairs=lambda: layer_input_candidates(ctx, types[0], 1, type_.shape[0], type_, at, 0,
                                                                 keeps_shape=True))


_BATCH_NORM_PARAMETERS = ("weight", "bias", "running_mean", "running_var")


def _batch_norm_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same type as x[B, C, ...] of an accepted rank; every parameter is a vector of C."""
    x = types[0]
    _check_batch_norm_rank(ctx, x, _ranks_attr(ctx, attrs["ranks"]))
    require_layer_dtype(ctx, types, _BATCH_NORM_PARAMETERS)
    number_attr(ctx, attrs["momentum"], "momentum", 0.0, 1.0)
    number_attr(ctx, attrs["eps"], "eps", 0.0, 1.0)
    _check_channel_vector(ctx, types, x.shape[1], "BatchNorm")
    return [x]


def _ranks_attr(ctx: ShapeContext, ranks) -> tuple[int, ...] | None:
    """The accepted input ranks: none (any rank from 2) or a non-empty list of ints, each at least 2."""
    if ranks is None:
        return None
    values = ranks if isinstance(ranks, tuple) else (ranks,)
    if not values or any(isinstance(rank, bool) or not isinstance(rank, int) or rank < 2 for rank in values):
        ctx.error("E103", f"ranks must be a list of ranks of at least 2, such as [2, 3], found `{ranks}`", at="ranks",
                  label="expected ranks [B, C, ...]")
    return values


def _check_batch_norm_rank(ctx: ShapeContext, x: TensorType, ranks: tuple[int, ...] | None) -> None:
    """E201 when x has no channel axis, or a rank the layer does not accept (BatchNorm1d on [B, C, H, W])."""
    if (ranks is None and x.rank >= 2) or (ranks is not None and x.rank in ranks):
        return
    wanted = "2 or more" if ranks is None else " or ".join(str(rank) for rank in ranks)
    ctx.error("E201", f"{ctx.op} expects a rank-{wanted} input, found rank {x.rank}", at=0, label=f"this is {x}",
              notes=("BatchNorm1d takes [B, C] or [B, C, L] and BatchNorm2d [B, C, H, W]; axis 1 is the channel axis",),
              candidates=_other_dimension(ctx, x.rank))


def _other_dimension(ctx: ShapeContext, rank: int) -> list:
    """A BatchNorm1d given [B, C, H, W] is a BatchNorm2d (and the reverse): the same per-channel statistics
    over every other axis, the same parameters; the layer's constructor names the other one."""
    layer = constructed_at(ctx)
    wanted = {4: "BatchNorm2d", 2: "BatchNorm1d", 3: "BatchNorm1d"}.get(rank)
    if layer is None or wanted is None or layer[1] not in ("BatchNorm1d", "BatchNorm2d") or layer[1] == wanted:
        return []
    return [renamed_layer(layer[0], wanted, f"build a `{wanted}`, which normalizes a rank-{rank} input")]


def _batch_norm_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Batch statistics (biased variance) in training, running statistics in inference."""
    x, weight, bias, running_mean, running_var = (optional(arrays, index) for index in range(5))
    axes = (0, *range(2, x.ndim))
    if ctx.training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = running_mean, running_var
    scale = 1.0 / np.sqrt(var + np.asarray(attrs["eps"], dtype=x.dtype))
    scale = scale * weight if weight is not None else scale
    shift = -mean * scale + (bias if bias is not None else 0)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale, shift = scale.reshape(shape).astype(x.dtype, copy=False), shift.reshape(shape).astype(x.dtype, copy=False)
    out = np.multiply(x, scale, out=ctx.output(0, x.shape, x.dtype))
    out += shift
    return [out]


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
               Param("eps", ATTR, 1e-5), Param("ranks", ATTR, None)),
    infer=_batch_norm_infer,
    run=_batch_norm_run,
    onnx=_batch_norm_onnx,
    doc="Batch normalization over channel axis 1 of x[B, C, ...]; `ranks` lists the input ranks a layer accepts.",
    behaviour=("train: normalizes with the batch mean and biased variance over every axis but 1 (the reference "
               "interpreter does not update the running statistics); infer: uses running_mean and running_var, "
               "so it folds into a per-channel scale and shift"),
    samples=(
        (("B, 64, T", "64", "64", "64", "64"), {}),
        (("B, 32", "32", "32", "32", "32"), {"momentum": 0.01}),
        (("B, 8, H, W", "8", "8", "8", "8"), {"eps": 1e-3}),
        (("B, 8, T", None, None, "8", "8"), {}),
        (("B, 16, T", "16", "16", "16", "16"), {"ranks": (2, 3)}),
        (("B, 4, D, H, W", "4", "4", "4", "4"), {}),
    ),
)


def _layer_norm_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Same type as x; the last weight.rank axes of x must equal weight's shape."""
    x, weight, bias = types[0], types[1], optional(types, 2)
    require_layer_dtype(ctx, [x, weight, bias], ("weight", "bias"))
    number_attr(ctx, attrs["eps"], "eps", 0.0, 1.0)
    if weight.rank == 0 or weight.rank > x.rank:
        ctx.error("E201", f"LayerNorm over {weight} does not fit the input {x}", at=0, label=f"this is {x}")
    normalized = x.shape[x.rank - weight.rank:]
    for ours, theirs in zip(normalized, weight.shape):
        details = dict(label=f"this is {x}", labels=argument_label(ctx, 1, f"weight is {weight}"),
                       helps=moved_axis_help(ctx, x, weight.shape[-1], -1, "last"))
        message = (f"LayerNorm normalizes over {shape_text(weight.shape)}, but the input ends in "
                   f"{shape_text(normalized)}")
        if weight.rank == 1 and ctx.equal(ours, theirs) is Tri.NO:
            ctx.error("E207", message, at=0, candidates=layer_input_candidates(ctx, x, -1, theirs, weight, 1, 0,
                                                                               keeps_shape=True), **details)
        ctx.require_equal(ours, theirs, code="E207", at=0, message=message, **details)
    if bias is not None and bias.shape != weight.shape:
        ctx.error("E207", f"LayerNorm bias {bias} differs from its weight {weight}", at=2, label=f"this is {bias}")
    return [x]


def _layer_norm_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing axes (biased variance), block by block.

    The input is viewed as rows of the normalized size; blocks of rows are normalized with their
    temporaries in cache, so the array is read once and written once.
    """
    x, weight, bias = np.asarray(arrays[0]), arrays[1], optional(arrays, 2)
    width = weight.size
    source = x.reshape(-1, width) if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(-1, width)
    result = ctx.output(0, x.shape, x.dtype)
    target, eps = result.reshape(-1, width), np.asarray(attrs["eps"], dtype=x.dtype)
    weight, bias = weight.reshape(-1), None if bias is None else bias.reshape(-1)

    def part(index: slice) -> None:
        for rows in row_blocks(index.stop - index.start, width):
            rows = slice(index.start + rows.start, index.start + rows.stop)
            _normalize_rows(source[rows], target[rows], weight, bias, eps)

    ctx.parallel([partial(part, index) for index in ctx.split(source.shape[0], source.size)])
    return [result]


def _normalize_rows(x: np.ndarray, out: np.ndarray, weight: np.ndarray, bias, eps: np.ndarray) -> None:
    """Layer-normalize the rows of x into out (which may be x itself)."""
    width = x.dtype.type(x.shape[1])
    mean = row_sums(x) / width
    centred = np.subtract(x, mean, out=out)
    var = row_sums(np.square(centred)) / width
    var += eps
    np.sqrt(var, out=var)
    centred /= var
    centred *= weight
    if bias is not None:
        centred += bias


def _layer_norm_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """LayerNormalization from opset 17; before it, mean and biased variance over the trailing axes."""
    require_float_input(ctx, "LayerNormalization")
    x_type = ctx.input_types[0]
    first = x_type.rank - ctx.input_types[1].rank
    x, weight, bias = names[0], names[1], optional(names, 2) or ""
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
    samples=(
        (("B, T, 512", "512", "512"), {}),
        (("B, 34, F", "F", "F"), {"eps": 1e-6}),
        (("B, T, 17, 3", "17, 3", None), {}),
    ),
)
