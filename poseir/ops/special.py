"""Special functions for the run facets: erf and GELU, exact in float64 and fast blockwise in float32."""

from __future__ import annotations

import math
from functools import partial

import numpy as np

_TAYLOR_LIMIT = 2.5  # below this the Taylor series is cheap and loses < 1e-14 to cancellation
_TAYLOR_COEFFICIENTS = tuple((-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(42))
_FRACTION_DEPTH = 30  # continued-fraction depth; converges to ~1e-15 for |x| >= 2.5
_SATURATION = 6.0  # erf(6) == 1 - 2e-17: exactly 1 in float64


def erf(values) -> np.ndarray:
    """The error function in float64, accurate to ~1e-14 (Taylor series and erfc continued fraction)."""
    x = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(x)
    result = np.ones_like(magnitude)
    small = magnitude < _TAYLOR_LIMIT
    middle = ~small & (magnitude < _SATURATION)
    result[small] = _erf_taylor(magnitude[small])
    result[middle] = 1.0 - _erfc_fraction(magnitude[middle])
    result[np.isnan(magnitude)] = np.nan
    return np.copysign(result, x)


def _erf_taylor(x: np.ndarray) -> np.ndarray:
    """erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)), by Horner in x^2."""
    square = x * x
    total = np.full_like(x, _TAYLOR_COEFFICIENTS[-1])
    for coefficient in _TAYLOR_COEFFICIENTS[-2::-1]:
        total *= square
        total += coefficient
    return x * total * (2.0 / math.sqrt(math.pi))


def _erfc_fraction(x: np.ndarray) -> np.ndarray:
    """erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), for x >= 2.5."""
    denominator = x.copy()
    for k in range(_FRACTION_DEPTH, 0, -1):
        denominator = x + (k / 2.0) / denominator
    return np.exp(-x * x) / (math.sqrt(math.pi) * denominator)


def gelu(values, out: np.ndarray | None = None, ctx=None) -> np.ndarray:
    """Exact (erf) GELU: blockwise in float32 for float32 input, else in float64 as 0.5 x (1 + erf(x / sqrt 2)).

    `ctx` (a RunContext) lets the float32 path split the blocks over the backend's threads.
    """
    x = np.asarray(values)
    if x.dtype == np.float32:
        return gelu_float32(x, out, ctx)
    x = x.astype(np.float64, copy=False)
    result = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if out is None:
        return result
    np.copyto(out, result, casting="same_kind")
    return out


# Numerical Recipes' erfcc: erfc(a) = t exp(-a^2 + P(t)), t = 1 / (1 + a/2), a Chebyshev fit whose
# fractional error is below 1.2e-7 for every a >= 0, so even the far negative tail of GELU keeps
# its relative accuracy (1 + erf(x) would cancel there).
_ERFC_COEFFICIENTS = tuple(np.float32(value) for value in (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
    -0.82215223, 0.17087277))
_BLOCK = 65536  # elements per block: its float32 temporaries stay in the L2 cache (1.3x faster than 16384)
_HALF, _ONE = np.float32(0.5), np.float32(1.0)
_INVERSE_SQRT2 = np.float32(1.0 / math.sqrt(2.0))


def gelu_float32(x: np.ndarray, out: np.ndarray | None = None, ctx=None) -> np.ndarray:
    """GELU of a float32 array in float32, as relu(x) - |x| Phi(-|x|) (no branch, no cancellation).

    Works through the array in cache-sized blocks with preallocated temporaries, so the ~30
    ufunc passes run from cache instead of memory. Absolute error below 2.5e-7, relative error
    below 5e-6 down to x = -6 (float32 rounding of x^2 in the exponent); the tests check both.
    """
    x = x if x.flags.c_contiguous else x.copy()  # (ascontiguousarray would make a scalar 1-d)
    result = out if out is not None else np.empty_like(x)
    source, target = x.reshape(-1), result.reshape(-1)
    blocks = -(-source.size // _BLOCK)
    parts = ctx.split(blocks, source.size) if ctx is not None else [slice(0, blocks)]
    tasks = [partial(_gelu_range, source, target, part.start * _BLOCK, part.stop * _BLOCK) for part in parts]
    if ctx is not None:
        ctx.parallel(tasks)
    else:
        for task in tasks:
            task()
    return result


def _gelu_range(source: np.ndarray, target: np.ndarray, start: int, stop: int) -> None:
    """gelu_float32 of source[start:stop] into target, block by block, with this task's own scratch space."""
    size = min(_BLOCK, source.size)
    buffers = [np.empty(size, np.float32) for _ in range(3)]
    zeros = np.zeros(size, np.float32)  # np.maximum against an array is several times faster than against 0
    # Huge |x| saturate without warnings (errstate is per thread, so each task sets it).
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for begin in range(start, min(stop, source.size), _BLOCK):
            block = source[begin:begin + _BLOCK]
            count = block.size
            _gelu_block(block, target[begin:begin + count], zeros[:count], *(buffer[:count] for buffer in buffers))


def _gelu_block(x, out, zeros, magnitude, t, value) -> None:
    """One block of gelu_float32; `magnitude`, `t` and `value` are scratch space."""
    np.abs(x, out=magnitude)
    magnitude *= _INVERSE_SQRT2  # a = |x| / sqrt 2
    np.multiply(magnitude, _HALF, out=t)
    t += _ONE
    np.divide(_ONE, t, out=t)  # t = 1 / (1 + a/2)
    coefficients = _ERFC_COEFFICIENTS
    np.multiply(t, coefficients[-1], out=value)
    for coefficient in coefficients[-2:0:-1]:
        value += coefficient
        value *= t
    value += coefficients[0]
    np.multiply(magnitude, magnitude, out=magnitude)
    value -= magnitude
    np.exp(value, out=value)
    value *= t  # erfc(a) = 2 Phi(-|x|)
    np.abs(x, out=magnitude)
    value *= magnitude
    value *= _HALF  # |x| Phi(-|x|)
    np.maximum(x, zeros, out=out)
    out -= value
    if not np.isfinite(np.add.reduce(out)):  # one cheap sum finds an inf: gelu(+inf) is inf, not inf - inf * 0
        out[np.isposinf(x)] = np.inf


