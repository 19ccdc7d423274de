"""Core ops the elaborator itself needs: `identity` (a named copy for graph outputs)."""

from __future__ import annotations

from poseir.ops.registry import TENSOR, OpDef, Param, register


def _infer_identity(ctx, types, attrs):
    """The output has the input's type."""
    return [types[0]]


def _run_identity(ctx, arrays, attrs):
    """Return the input unchanged."""
    return [arrays[0]]


def _onnx_identity(ctx, inputs, attrs):
    """ONNX Identity."""
    return [ctx.node("Identity", inputs)]


IDENTITY = register(OpDef(
    name="identity",
    signature=(Param("x", TENSOR),),
    infer=_infer_identity,
    run=_run_identity,
    onnx=_onnx_identity,
    doc="Returns its input; gives a graph output its own name.",
    samples=((("B, T, 17, 3",), {}),),
))
