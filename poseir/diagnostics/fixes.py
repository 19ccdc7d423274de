"""Apply diagnostics' fix-its to `.pose` text (`poseir fix`): non-overlapping edits, to a fixed point."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from poseir.compiler import check
from poseir.diagnostics.record import Diagnostic, Edit, apply_edits

# Applying fixes can reveal new ones (a repaired reshape exposes the next line's shape); a few
# rounds reach the fixed point on anything real, and the cap stops a pathological ping-pong.
MAX_ROUNDS = 5


@dataclass
class FixResult:
    """The original and fixed text of one file, what was applied, and what is left."""

    path: str
    original: str
    fixed: str
    applied: list[str] = field(default_factory=list)  # the fix messages, in order
    remaining: list[Diagnostic] = field(default_factory=list)
    sources: object = None

    @property
    def changed(self) -> bool:
        """True when some fix applied."""
        return self.fixed != self.original

    def diff(self) -> str:
        """A unified diff from the original to the fixed text."""
        lines = difflib.unified_diff(self.original.splitlines(keepends=True), self.fixed.splitlines(keepends=True),
                                     fromfile=f"{self.path} (original)", tofile=f"{self.path} (fixed)")
        return "".join(lines)


def fix_text(path: str, text: str, *, unsafe: bool = False, **options) -> FixResult:
    """Check, apply the chosen fixes, and repeat until nothing more applies (`options` go to `check`)."""
    result = FixResult(path, text, text)
    for _ in range(MAX_ROUNDS):
        compilation = check(path, result.fixed, **options)
        diagnostics = compilation.sorted_diagnostics()
        edits, messages = choose_edits(diagnostics, path, unsafe)
        result.remaining, result.sources = diagnostics, compilation.sources
        if not edits:
            break
        result.fixed = apply_edits(result.fixed, edits)
        result.applied.extend(messages)
    else:
        compilation = check(path, result.fixed, **options)
        result.remaining, result.sources = compilation.sorted_diagnostics(), compilation.sources
    return result


def choose_edits(diagnostics: list[Diagnostic], path: str, unsafe: bool) -> tuple[list[Edit], list[str]]:
    """The first eligible fix of each diagnostic in `path`, skipping any that overlaps one already chosen."""
    chosen: list[Edit] = []
    messages: list[str] = []
    for diagnostic in diagnostics:
        fix = next((fix for fix in diagnostic.fixes if fix.safe or unsafe), None)
        if fix is None or any(edit.span.path != path for edit in fix.edits):
            continue
        if any(_overlaps(edit, other) for edit in fix.edits for other in chosen):
            continue
        chosen.extend(fix.edits)
        messages.append(f"{diagnostic.code} line {diagnostic.span.line}: {fix.message}" if diagnostic.span
                        else f"{diagnostic.code}: {fix.message}")
    return chosen, messages


def _overlaps(first: Edit, second: Edit) -> bool:
    """Two edits touch the same characters (or insert at the same point)."""
    a, b = first.span, second.span
    return a.start < b.end and b.start < a.end or a.start == b.start
