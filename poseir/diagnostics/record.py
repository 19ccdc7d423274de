"""The diagnostic record every pass produces and every renderer consumes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from poseir.diagnostics.codes import Code, Severity, lookup
from poseir.syntax.source import Span


@dataclass(frozen=True)
class Label:
    """A span in the source with an optional message drawn next to it."""

    span: Span
    message: str = ""


@dataclass(frozen=True)
class Edit:
    """Replace the text covered by span with replacement."""

    span: Span
    replacement: str


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Replace each edit's span, from the end of the text backwards so offsets stay valid."""
    for edit in sorted(edits, key=lambda edit: (edit.span.start, edit.span.end), reverse=True):
        text = text[:edit.span.start] + edit.replacement + text[edit.span.end:]
    return text


@dataclass(frozen=True)
class Fix:
    """A suggested change to the source; safe fixes keep the program's meaning."""

    message: str
    edits: tuple[Edit, ...]
    safe: bool = True


@dataclass(frozen=True)
class Diagnostic:
    """One message for the user: a code, a primary span and supporting detail."""

    code: str
    message: str
    span: Span | None
    labels: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    helps: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = ()
    # Repairs the rule cannot choose between alone: each a Fix, or a function of a
    # `poseir.syntax.index.SourceIndex` giving Fixes (for edits away from the diagnostic, such as a
    # layer's constructor). `poseir.diagnostics.repair` keeps the one that alone makes the program
    # check without this diagnostic and without any new one, and drops the rest.
    candidates: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def make(
        cls,
        code: str,
        message: str,
        span: Span | None,
        *,
        labels: Iterable[Label] = (),
        notes: Iterable[str] = (),
        helps: Iterable[str] = (),
        fixes: Iterable[Fix] = (),
        candidates: Iterable = (),
    ) -> Diagnostic:
        """Build a diagnostic, raising KeyError if code is not in the code table."""
        lookup(code)
        return cls(code, message, span, tuple(labels), tuple(notes), tuple(helps), tuple(fixes), tuple(candidates))

    @property
    def severity(self) -> Severity:
        """The severity the code table assigns to this diagnostic's code."""
        return lookup(self.code).severity

    @property
    def title(self) -> str:
        """The short title of this diagnostic's code."""
        return lookup(self.code).title

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Ordering key: file, position, code, message."""
        if self.span is None:
            return ("", -1, -1, self.code, self.message)
        return (self.span.path, self.span.start, self.span.end, self.code, self.message)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in a fixed order that does not depend on the order they were found."""
    # repr breaks ties between diagnostics that differ only in labels or notes.
    return sorted(diagnostics, key=lambda diagnostic: (diagnostic.sort_key(), repr(diagnostic)))


def count(diagnostics: Iterable[Diagnostic]) -> tuple[int, int]:
    """The number of (errors, warnings)."""
    errors = warnings = 0
    for diagnostic in diagnostics:
        severity = diagnostic.severity
        errors += severity is Severity.ERROR
        warnings += severity is Severity.WARNING
    return errors, warnings


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """Whether any diagnostic is an error."""
    return any(diagnostic.severity is Severity.ERROR for diagnostic in diagnostics)


class DiagnosticError(Exception):
    """Aborts one elaboration step with a user-facing diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(f"{diagnostic.code}: {diagnostic.message}")
        self.diagnostic = diagnostic


def fail(code: str, message: str, span: Span | None, **details) -> DiagnosticError:
    """A DiagnosticError for a user mistake at `span`; `label=` labels the primary span."""
    label = details.pop("label", "")
    labels = ((Label(span, label),) if label and span is not None else ()) + tuple(details.pop("labels", ()))
    return DiagnosticError(Diagnostic.make(code, message, span, labels=labels, **details))
