"""The documented bounds on untrusted input: file sizes, nesting, compile-time work and run-time arrays.

A `.pose` file is a program poseir runs at compile time, and it may come from anyone (a pull
request, a file opened in an editor). Every kind of unbounded work has a limit here, each a
clear diagnostic at the offending line naming the limit and the `--limit NAME=VALUE` that
raises it. `docs/security.md` lists them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace

from poseir.diagnostics.record import Diagnostic, DiagnosticError, fail
from poseir.syntax.source import Span


@dataclass(frozen=True)
class Limits:
    """The bounds of one compilation; every field can be set with `--limit NAME=VALUE`."""

    file_bytes: int = 1 << 20  # size of one `.pose` file
    nesting: int = 100  # depth of nested expressions, brackets and blocks
    loop_iterations: int = 100_000  # compile-time loop iterations and comprehension items, per flow
    list_length: int = 100_000  # length of one compile-time list or range
    integer_bits: int = 64  # magnitude of compile-time integers (|n| < 2**63 by default)
    graph_nodes: int = 200_000  # IR nodes of one flow
    module_depth: int = 64  # modules nested inside modules
    seconds: float = 30.0  # wall-clock time of elaborating every flow of one file
    array_bytes: int = 4 << 30  # one array the numpy backend allocates

    @staticmethod
    def names() -> list[str]:
        """Every limit's name, in declaration order."""
        return [field.name for field in fields(Limits)]

    def with_setting(self, text: str) -> Limits:
        """`loop_iterations=1000000` applied; E106 for an unknown name or a bad value."""
        name, _, raw = text.partition("=")
        name = name.strip().replace("-", "_")
        if name not in self.names():
            raise DiagnosticError(Diagnostic.make(
                "E106", f"`--limit {text}`: there is no limit called `{name}`", None,
                helps=("limits: " + ", ".join(self.names()),)))
        value = _number(raw.strip())
        if value is None or value <= 0:
            raise DiagnosticError(Diagnostic.make(
                "E106", f"`--limit {text}` needs a positive number, such as `{name}={getattr(self, name)}`", None))
        kind = type(getattr(self, name))
        return replace(self, **{name: kind(value)})


DEFAULT_LIMITS = Limits()

_SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def _number(text: str) -> float | None:
    """`100000`, `1_000_000`, `2.5`, `4GiB`, `10M`; None when it is not a number."""
    scale = 1
    for suffix, factor in sorted(_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    try:
        return float(text.replace("_", "")) * scale
    except ValueError:
        return None


def parse_limits(settings: list[str]) -> Limits:
    """The limits after every `--limit NAME=VALUE`, in order."""
    limits = DEFAULT_LIMITS
    for text in settings:
        limits = limits.with_setting(text)
    return limits


class LimitExceeded(Exception):
    """Ends a whole elaboration (not one statement): past a limit, more work only repeats the report."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def limit_error(name: str, message: str, span: Span | None, value=None) -> LimitExceeded:
    """E109 at `span`: the limit, its value, and how to raise it."""
    current = getattr(DEFAULT_LIMITS, name) if value is None else value
    diagnostic = fail("E109", message, span, label=f"exceeds the `{name}` limit ({_show(current)})",
                      helps=(f"if this is intended, raise the limit with `--limit {name}=...`",)).diagnostic
    return LimitExceeded(diagnostic)


def _show(value) -> str:
    """Limits in a readable form (`1,048,576`, `60 s`)."""
    return f"{value:g} s" if isinstance(value, float) else f"{value:,}"


def start_clock(limits: Limits) -> float:
    """The deadline (on `time.monotonic`) of work starting now."""
    return time.monotonic() + limits.seconds


class Budget:
    """What one flow's elaboration has spent of its limits; raises E109 when a limit is passed."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, deadline: float | None = None):
        self.limits = limits
        self.iterations = 0
        self.deadline = deadline if deadline is not None else start_clock(limits)

    def iterate(self, count: int, span: Span) -> None:
        """Spend `count` loop iterations (or comprehension items) at `span`."""
        self.iterations += count
        if self.iterations > self.limits.loop_iterations:
            raise limit_error("loop_iterations", f"compile-time loops ran more than "
                              f"{self.limits.loop_iterations:,} iterations", span, self.limits.loop_iterations)
        self.check_time(span)

    def list_length(self, length: int, span: Span) -> None:
        """A list or range about to be built with `length` items."""
        if length > self.limits.list_length:
            raise limit_error("list_length", f"this list would have {length:,} items", span,
                              self.limits.list_length)

    def integer(self, value, span: Span):
        """`value` when it is an int within the magnitude limit (other values pass through)."""
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() >= self.limits.integer_bits:
            raise limit_error("integer_bits", "this integer is too large", span, self.limits.integer_bits)
        return value

    def power(self, base, exponent, span: Span) -> None:
        """Refuse `base ** exponent` before computing it when the result would be too large."""
        if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0 or abs(base) <= 1:
            return
        if (abs(base).bit_length() - 1) * exponent >= self.limits.integer_bits:
            raise limit_error("integer_bits", "this power is too large", span, self.limits.integer_bits)

    def nodes(self, count: int, span: Span) -> None:
        """The graph now has `count` nodes."""
        if count > self.limits.graph_nodes:
            raise limit_error("graph_nodes", f"the graph has more than {self.limits.graph_nodes:,} nodes", span,
                              self.limits.graph_nodes)
        if count % 256 == 0:
            self.check_time(span)

    def module_depth(self, depth: int, span: Span) -> None:
        """A module is being instantiated `depth` levels deep."""
        if depth > self.limits.module_depth:
            raise limit_error("module_depth", f"modules are nested more than {self.limits.module_depth} deep "
                              "(does a module create itself?)", span, self.limits.module_depth)

    def check_time(self, span: Span | None) -> None:
        """E109 once the flow has taken longer than the `seconds` limit."""
        if time.monotonic() > self.deadline:
            raise limit_error("seconds", f"elaboration took longer than {self.limits.seconds:g} s in all", span,
                              self.limits.seconds)
