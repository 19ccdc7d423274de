"""Arrays from files (weights, inputs) against declared dtypes: exact conversions only, NaN and Inf reported.

PyTorch's `load_state_dict` casts whatever it gets; poseir does not: an int64 tensor loaded
into a float layer, or float64 values beyond float32's range, usually mean the wrong file or
the wrong key. Conversions that keep every value (f16 -> f32, f64 -> f32 within range) are
accepted and listed, so `--verbose` can show them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poseir.diagnostics.record import Diagnostic, Label
from poseir.ir.graph import FLOAT_DTYPES, NUMPY_DTYPES
from poseir.syntax.source import Span


@dataclass(frozen=True)
class Conversion:
    """An accepted conversion of one named array, for `--verbose`."""

    name: str
    found: str
    declared: str

    def __str__(self) -> str:
        return f"`{self.name}`: {self.found} converted to {self.declared} exactly (every value fits)"


def check_array(name: str, array: np.ndarray, declared: str, span: Span | None,
                what: str) -> tuple[list[Diagnostic], Conversion | None]:
    """E408 when `array` cannot become `declared` exactly, W409 for NaN or Inf; else the conversion made."""
    found = np.asarray(array).dtype
    wanted = np.dtype(NUMPY_DTYPES[declared])
    where = (Label(span, f"declared {declared} here"),) if span is not None else ()
    reason = _unrepresentable(array, found, wanted, declared)
    if reason is not None:
        return [Diagnostic.make("E408", f"{what} `{name}` is {found}, which {reason}", span, labels=where,
                                helps=(f"convert it when writing the file, e.g. `.astype(np.{wanted})`, "
                                       "or check that it is the right array",))], None
    diagnostics = _non_finite(name, array, found, span, what)
    conversion = Conversion(name, str(found), declared) if found != wanted else None
    return diagnostics, conversion


def _unrepresentable(array: np.ndarray, found: np.dtype, wanted: np.dtype, declared: str) -> str | None:
    """Why `array` cannot be converted exactly, or None when it can."""
    if found == wanted:
        return None
    if found.kind == "c":
        return f"a complex type: {declared} cannot hold the imaginary parts"
    if declared in FLOAT_DTYPES:
        if found.kind != "f":
            return f"not a floating-point type; the model declares {declared}"
        return _float_range(array, wanted, declared)
    if declared == "bool":
        return "not bool"
    if found.kind not in "iu":
        return f"not an integer type; the model declares {declared}"
    limits = np.iinfo(wanted)
    if np.asarray(array).size and (np.min(array) < limits.min or np.max(array) > limits.max):
        return f"has values outside the range of {declared}"
    return None


def _float_range(array: np.ndarray, wanted: np.dtype, declared: str) -> str | None:
    """None when every finite value fits the narrower float type (NaN and Inf are reported separately)."""
    if np.finfo(wanted).bits >= np.finfo(array.dtype).bits:
        return None
    finite = np.asarray(array)[np.isfinite(array)]
    if finite.size and np.max(np.abs(finite)) > np.finfo(wanted).max:
        return f"has values beyond the range of {declared} (largest {np.max(np.abs(finite)):.3g})"
    return None


def _non_finite(name: str, array: np.ndarray, found: np.dtype, span: Span | None, what: str) -> list[Diagnostic]:
    """W409 naming the array when it holds NaN or infinite values."""
    if found.kind not in "fc":
        return []
    nans = int(np.count_nonzero(np.isnan(array)))
    infinities = int(np.count_nonzero(np.isinf(array)))
    if not nans and not infinities:
        return []
    counts = " and ".join(part for part in (f"{nans:,} NaN" if nans else "", f"{infinities:,} infinite" if infinities
                                            else "") if part)
    return [Diagnostic.make("W409", f"{what} `{name}` holds {counts} value(s) of {np.asarray(array).size:,}", span,
                            labels=(Label(span, "read here"),) if span is not None else ())]


def check_arrays(arrays: dict[str, np.ndarray], declared: dict[str, tuple[str, Span | None]],
                 what: str) -> tuple[list[Diagnostic], list[Conversion]]:
    """Every array that has a declaration, checked; the diagnostics and the accepted conversions."""
    diagnostics: list[Diagnostic] = []
    conversions: list[Conversion] = []
    for name in sorted(set(arrays) & set(declared)):
        dtype, span = declared[name]
        found, conversion = check_array(name, arrays[name], dtype, span, what)
        diagnostics.extend(found)
        if conversion is not None:
            conversions.append(conversion)
    return diagnostics, conversions
