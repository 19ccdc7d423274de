"""Pose losses and metrics (train-only outputs): MPJPE, weighted MPJPE, N-MPJPE and velocity error.

The formulas follow `reference/pose-networks.md` section 2; each returns a rank-0 f32 tensor.
"""

from __future__ import annotations

import numpy as np

from poseir.diagnostics.record import Label
from poseir.ir.dims import Tri
from poseir.ir.graph import TensorType
from poseir.ops.common import OPEN_END, define, require_axes, require_same_dtype, where_help
from poseir.ops.registry import ATTR, TENSOR, Param, RunContext, ShapeContext

_SCALAR = TensorType("f32", ())
_MODES = ("train",)
_BEHAVIOUR = "train only: a loss or metric output; the inference graph drops it"


def _require_same_shape(ctx: ShapeContext, pred: TensorType, target: TensorType) -> None:
    """Prediction and target must have equal shapes (E200; W300 when unprovable)."""
    require_axes(ctx, pred, 0)
    require_same_dtype(ctx, [pred, target])
    labels = (Label(ctx.span_of(0), f"the prediction is {pred}"),)
    if pred.rank != target.rank:
        ctx.error("E200", f"{ctx.op} compares {pred} with {target}: their ranks differ", at=1,
                  label=f"the target is {target}", labels=labels,
                  helps=("prediction and target must have the same shape; no broadcasting happens here",))
    for axis, (left, right) in enumerate(zip(pred.shape, target.shape)):
        ctx.require_equal(left, right, code="E200", at=1,
                          message=f"{ctx.op} compares {pred} with {target}: axis {axis} differs",
                          label=f"the target is {target}", labels=labels)


def _position_error(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Euclidean distance over the last axis (the coordinates), per joint."""
    difference = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return np.sqrt(np.sum(difference * difference, axis=-1))


def _scalar(value) -> np.ndarray:
    """A rank-0 f32 array."""
    return np.asarray(value, dtype=np.float32)


def _onnx_errors(ctx, pred: str, target: str, rank: int, dtype: str) -> str:
    """Per-joint distances ||P - G|| over the last axis, computed in f32."""
    difference = ctx.node("Sub", [ctx.cast(pred, dtype, "f32"), ctx.cast(target, dtype, "f32")])
    squares = ctx.reduce("ReduceSum", ctx.node("Mul", [difference, difference]), [rank - 1], False)
    return ctx.node("Sqrt", [squares])


def _onnx_mean(ctx, name: str, rank: int) -> str:
    """The mean of every entry, as a rank-0 tensor."""
    return ctx.reduce("ReduceMean", name, range(rank), False)


# --------------------------------------------------------------------------- MPJPE


def _mpjpe_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Equal shapes in, a scalar out."""
    _require_same_shape(ctx, types[0], types[1])
    return [_SCALAR]


def _mpjpe_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """mean over every leading index and joint of ||P - G||."""
    return [_scalar(np.mean(_position_error(arrays[0], arrays[1])))]


def _mpjpe_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Mean of the per-joint distances."""
    pred = ctx.input_types[0]
    return [_onnx_mean(ctx, _onnx_errors(ctx, names[0], names[1], pred.rank, pred.dtype), pred.rank - 1)]


define(
    name="mpjpe",
    signature=(Param("pred", TENSOR), Param("target", TENSOR)),
    infer=_mpjpe_infer,
    run=_mpjpe_run,
    onnx=_mpjpe_onnx,
    modes=_MODES,
    behaviour=_BEHAVIOUR,
    doc="Mean per-joint position error: mean of the L2 norm over the last axis (protocol #1).",
    samples=((("B, T, 17, 3", "B, T, 17, 3"), {}), (("B, 16, 3", "B, 16, 3"), {})),
)


def _weighted_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Equal shapes; the weights broadcast over the per-joint errors (..., J) without enlarging them."""
    pred, target, weights = types
    _require_same_shape(ctx, pred, target)
    errors = TensorType(pred.dtype, pred.shape[:-1])
    shape = ctx.broadcast([errors, weights], ats=[0, 2])
    if len(shape) != errors.rank or any(not ctx.provably_equal(a, b) for a, b in zip(shape, errors.shape)):
        ctx.error("E200", f"the weights {weights} would enlarge the per-joint errors {errors}", at=2,
                  label=f"this is {weights}", notes=("the weights multiply ||P - G|| over every axis but the last",))
    return [_SCALAR]


def _weighted_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """mean of w * ||P - G||."""
    return [_scalar(np.mean(np.asarray(arrays[2], dtype=np.float64) * _position_error(arrays[0], arrays[1])))]


def _weighted_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Mean of the weighted per-joint distances (the weights never enlarge them)."""
    pred, weights = ctx.input_types[0], ctx.input_types[2]
    errors = _onnx_errors(ctx, names[0], names[1], pred.rank, pred.dtype)
    weighted = ctx.node("Mul", [ctx.cast(names[2], weights.dtype, "f32"), errors])
    return [_onnx_mean(ctx, weighted, pred.rank - 1)]


define(
    name="weighted_mpjpe",
    signature=(Param("pred", TENSOR), Param("target", TENSOR), Param("weights", TENSOR)),
    infer=_weighted_infer,
    run=_weighted_run,
    onnx=_weighted_onnx,
    modes=_MODES,
    behaviour=_BEHAVIOUR,
    doc="MPJPE with each per-joint error multiplied by a broadcast weight before the mean.",
    samples=((("B, T, 17, 3", "B, T, 17, 3", "17"), {}), (("B, T, 17, 3", "B, T, 17, 3", "B, 1, 17"), {})),
)


# --------------------------------------------------------------------------- N-MPJPE


def _n_mpjpe_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Rank-4 (B, T, J, 3) tensors of equal shape."""
    ctx.require_rank(types[0], (4,), at=0, what="prediction [B, T, J, 3]")
    _require_same_shape(ctx, types[0], types[1])
    return [_SCALAR]


def _n_mpjpe_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """Per (b, t) scale s = mean_j sum_c(G P) / mean_j sum_c(P P), then MPJPE(s P, G)."""
    pred = np.asarray(arrays[0], dtype=np.float64)
    target = np.asarray(arrays[1], dtype=np.float64)
    own = np.mean(np.sum(pred * pred, axis=3, keepdims=True), axis=2, keepdims=True)
    cross = np.mean(np.sum(target * pred, axis=3, keepdims=True), axis=2, keepdims=True)
    return [_scalar(np.mean(_position_error(cross / own * pred, target)))]


def _n_mpjpe_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Scale each frame's prediction by mean_j(G . P) / mean_j(P . P), then MPJPE."""
    dtype = ctx.input_types[0].dtype
    pred, target = ctx.cast(names[0], dtype, "f32"), ctx.cast(names[1], dtype, "f32")

    def per_frame(left: str, right: str) -> str:
        dots = ctx.reduce("ReduceSum", ctx.node("Mul", [left, right]), [3], True)
        return ctx.reduce("ReduceMean", dots, [2], True)

    scale = ctx.node("Div", [per_frame(target, pred), per_frame(pred, pred)])
    scaled = ctx.node("Mul", [scale, pred])
    return [_onnx_mean(ctx, _onnx_errors(ctx, scaled, target, 4, "f32"), 3)]


define(
    name="n_mpjpe",
    signature=(Param("pred", TENSOR), Param("target", TENSOR)),
    infer=_n_mpjpe_infer,
    run=_n_mpjpe_run,
    onnx=_n_mpjpe_onnx,
    modes=_MODES,
    behaviour=_BEHAVIOUR,
    doc="Scale-normalized MPJPE (protocol #3) on (B, T, J, 3): the prediction is rescaled per frame first.",
    samples=((("B, T, 17, 3", "B, T, 17, 3"), {}),),
)


# --------------------------------------------------------------------------- velocity error


def _velocity_infer(ctx: ShapeContext, types: list, attrs: dict) -> list[TensorType]:
    """Equal shapes with at least two entries along `axis`."""
    pred, target = types
    _require_same_shape(ctx, pred, target)
    axis = ctx.axis(attrs["axis"], pred.rank, at="axis")
    length = pred.shape[axis]
    answer = ctx.facts.greater_equal(length, 2)
    if answer is Tri.NO:
        ctx.error("E209", f"velocities along axis {axis} of {pred} need at least 2 frames, found {length}",
                  at="axis", label=f"axis {axis} has length {length}")
    if answer is Tri.UNKNOWN:
        fact = ctx.facts.assumption_for(length, 2, ">=")
        ctx.warn("W301", f"cannot prove that axis {axis} of {pred} has at least 2 frames", at="axis",
                 helps=(where_help(fact),), candidates=ctx.fact_candidates(fact))
    return [_SCALAR]


def _velocity_run(ctx: RunContext, arrays: list, attrs: dict) -> list[np.ndarray]:
    """mean ||diff(P) - diff(G)|| with differences along `axis`."""
    pred = np.diff(np.asarray(arrays[0], dtype=np.float64), axis=attrs["axis"])
    target = np.diff(np.asarray(arrays[1], dtype=np.float64), axis=attrs["axis"])
    return [_scalar(np.mean(_position_error(pred, target)))]


def _velocity_onnx(ctx, names: list, attrs: dict) -> list[str]:
    """Frame differences by two Slices (1: minus :-1, no sizes needed), then MPJPE of them."""
    pred = ctx.input_types[0]
    axis = ctx.int64s([attrs["axis"] % pred.rank])

    def differences(name: str) -> str:
        later = ctx.node("Slice", [name, ctx.int64s([1]), ctx.int64s([OPEN_END]), axis])
        earlier = ctx.node("Slice", [name, ctx.int64s([0]), ctx.int64s([-1]), axis])
        return ctx.node("Sub", [ctx.cast(later, pred.dtype, "f32"), ctx.cast(earlier, pred.dtype, "f32")])

    errors = _onnx_errors(ctx, differences(names[0]), differences(names[1]), pred.rank, "f32")
    return [_onnx_mean(ctx, errors, pred.rank - 1)]


define(
    name="mean_velocity_error",
    signature=(Param("pred", TENSOR), Param("target", TENSOR), Param("axis", ATTR, 1)),
    infer=_velocity_infer,
    run=_velocity_run,
    onnx=_velocity_onnx,
    modes=_MODES,
    behaviour=_BEHAVIOUR,
    doc="Mean per-joint velocity error: mean ||dP - dG|| with frame differences along `axis`.",
    samples=((("B, T, 17, 3", "B, T, 17, 3"), {}, ("T >= 2",)), (("N, 17, 3", "N, 17, 3"), {"axis": 0}, ("N >= 2",))),
)
