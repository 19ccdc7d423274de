"""Settle a diagnostic's candidate repairs by re-checking the program with each one applied.

A shape rule often sees more than one way to make its own node check (transpose the right operand
or the left one; permute before a reshape or reorder its target), and only the rest of the program
says which was meant: the other candidate makes a later line fail, or the declared output type
disagree. A candidate is kept when, applied alone, the program checks without this diagnostic and
without any diagnostic it did not have before. Exactly one kept candidate becomes the diagnostic's
fix; several become a help naming them (the repair is not unique, so none is applied).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Callable

from poseir.diagnostics.record import Diagnostic, Fix, apply_edits
from poseir.syntax.index import SourceIndex

# Each candidate costs one check of the file; a file full of ambiguous errors stops here, and the
# diagnostics past the budget keep their helps without a fix.
MAX_RECHECKS = 32


def resolve(diagnostics: list[Diagnostic], program, recheck: Callable[[str], list[Diagnostic] | None],
            identity: Callable[[Diagnostic], tuple], sources=None, entry: str | None = None) -> list[Diagnostic]:
    """`diagnostics` with every candidate settled (`recheck(text)` checks another text of the entry file, or
    gives None when there is no time left for it).

    Without a `program` (the file did not parse) the entry is found in `sources` by `entry`, and only
    candidates that are plain fixes can be tried.
    """
    if not any(diagnostic.candidates for diagnostic in diagnostics):
        return diagnostics
    sources = program.sources if program is not None else sources
    entry = program.entry.path if program is not None else entry
    source = sources.get(entry) if sources is not None and entry is not None else None
    if source is None:
        return [replace(diagnostic, candidates=()) for diagnostic in diagnostics]
    index = SourceIndex.of_program(program) if program is not None else None
    settler = _Settler(index, entry, source.text, recheck, diagnostics, identity)
    settled: dict = {}
    for diagnostic in diagnostics:
        key = identity(diagnostic)
        if diagnostic.candidates and key not in settled:
            settled[key] = settler.settle(diagnostic)
    return [settled.get(identity(diagnostic), diagnostic) for diagnostic in diagnostics]


class _Settler:
    """Materializes and tries the candidates of one compilation's diagnostics."""

    def __init__(self, index: SourceIndex, entry: str, text: str, recheck, diagnostics, identity):
        self.index = index
        self.entry = entry
        self.text = text
        self.recheck = recheck
        unique = {identity(diagnostic): diagnostic for diagnostic in diagnostics}
        self.before = Counter(_key(diagnostic) for diagnostic in unique.values())
        self.budget = MAX_RECHECKS
        self.tried: dict[tuple, bool] = {}  # (fixed text, diagnostic) -> whether the fix works

    def settle(self, diagnostic: Diagnostic) -> Diagnostic:
        """The diagnostic with its one working candidate as its first fix, or a help when several work."""
        working: list[Fix] = []
        texts: set[str] = set()
        for fix in self.materialize(diagnostic):
            fixed = apply_edits(self.text, fix.edits)
            if fixed in texts or fixed == self.text:
                continue
            texts.add(fixed)
            if self.works(diagnostic, fixed):
                working.append(fix)
        if len(working) == 1:
            return replace(diagnostic, fixes=(working[0], *diagnostic.fixes), candidates=())
        if len(working) > 1:
            named = "; or ".join(_described(fix) for fix in working)
            help_text = f"more than one repair makes this check, so none is applied: {named}"
            return replace(diagnostic, helps=(*diagnostic.helps, help_text), candidates=())
        return replace(diagnostic, candidates=())

    def materialize(self, diagnostic: Diagnostic) -> list[Fix]:
        """The candidates as fixes whose edits all lie in the entry file."""
        fixes: list[Fix] = []
        for candidate in diagnostic.candidates:
            if not isinstance(candidate, Fix) and self.index is None:
                continue  # a repair written from the syntax, and the file did not parse
            made = [candidate] if isinstance(candidate, Fix) else list(candidate(self.index) or ())
            fixes.extend(fix for fix in made if fix is not None and fix.edits and
                         all(edit.span.path == self.entry for edit in fix.edits))
        return fixes

    def works(self, diagnostic: Diagnostic, fixed: str) -> bool:
        """Whether the fixed text no longer reports `diagnostic` and reports nothing new."""
        key = _key(diagnostic)
        if (fixed, key) in self.tried:
            return self.tried[(fixed, key)]
        if self.budget <= 0:
            return False
        self.budget -= 1
        reported = self.recheck(fixed)
        if reported is None:
            self.budget = 0  # out of time: no candidate is tried after this one
            return False
        after = Counter(_key(other) for other in reported)
        result = after[key] < self.before[key] and all(count <= self.before[other] for other, count in after.items())
        self.tried[(fixed, key)] = result
        return result


def _described(fix: Fix) -> str:
    """A fix's message, with its replacement text when the message does not quote it."""
    if len(fix.edits) == 1 and fix.edits[0].replacement and f"`{fix.edits[0].replacement}`" not in fix.message:
        return f"{fix.message}: `{fix.edits[0].replacement}`"
    return fix.message


def _key(diagnostic: Diagnostic) -> tuple[str, str]:
    """What identifies a report across two texts of a file (positions move when text is edited)."""
    return diagnostic.code, diagnostic.message
