"""Weights against a graph's parameter table: missing, unexpected, mis-shaped and mis-typed keys."""

from __future__ import annotations

import numpy as np

from poseir.diagnostics.record import Diagnostic, Label
from poseir.ir.graph import Graph
from poseir.weights.dtypes import check_arrays


def check_weights(graph: Graph, weights: dict[str, np.ndarray], conversions: list | None = None) -> list[Diagnostic]:
    """Missing (E400), unexpected (E401), mis-shaped (E402) and mis-typed (E408, W409) keys, at the DSL line.

    Accepted dtype conversions are appended to `conversions` when it is given.
    """
    diagnostics = []
    expected = graph.parameter_table()
    for name, parameter in expected.items():
        if name not in weights:
            diagnostics.append(Diagnostic.make(
                "E400", f"the weights have no `{name}`", parameter.span,
                labels=(Label(parameter.span, f"{parameter.kind} {parameter.type} declared here"),)))
            continue
        shape = tuple(weights[name].shape)
        if shape != parameter.shape:
            diagnostics.append(Diagnostic.make(
                "E402", f"`{name}` has shape {_shape_text(shape)} in the weights, {_shape_text(parameter.shape)} here",
                parameter.span, labels=(Label(parameter.span, f"declared as {parameter.type}"),),
                helps=_shape_help(shape, parameter.shape)))
    for name in sorted(set(weights) - set(expected)):
        diagnostics.append(Diagnostic.make("E401", f"the weights have a key `{name}` the model does not use", None,
                                           notes=(f"shape {_shape_text(tuple(weights[name].shape))}",)))
    declared = {name: (parameter.type.dtype, parameter.span) for name, parameter in expected.items()}
    typed, converted = check_arrays(weights, declared, "the weight")
    if conversions is not None:
        conversions.extend(converted)
    return diagnostics + typed


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(dim) for dim in shape) + (",)" if len(shape) == 1 else ")")


def _shape_help(found, declared) -> tuple[str, ...]:
    """Advice for the common cases: a transposed weight or a changed hyper-parameter."""
    if tuple(reversed(found)) == tuple(declared) and len(found) == 2:
        return ("the weight looks transposed: TensorFlow stores (in, out), PyTorch (out, in)",)
    return ("check the hyper-parameters (channels, widths, joints) against the checkpoint's",)
