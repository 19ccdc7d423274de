"""Measure the checker on the issue-7 corpus: found at the right line, silent bugs found, fixed as
intended, false positives. Prints a table (and one row per program with --verbose); asserts nothing.

    .venv/bin/python bench/corpus_stats.py [--verbose]

- cases: every tests/cases/*.pose;
- found at the right line: every expected (code, line) pair is reported (pairs computed as in
  tests/test_cases.py; extra diagnostics are counted separately as "exact" = nothing missing and
  nothing extra, which is what tests/test_cases.py asserts);
- silent found: the same, over the cases whose header has a `# silent:` line;
- fixed as intended: over the cases with a tests/intended/ program, `fix_text(case, unsafe=True)`
  checks with no diagnostic and computes the intended program's numbers at two sizes;
- errors with a fix: distinct (case, code, line) errors in tests/cases whose diagnostic offers a fix;
- false positives: clean programs (tests/clean/*.pose) with any diagnostic, error or warning.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import corpus_support as corpus  # noqa: E402


def percent(part: int, whole: int) -> str:
    """`part/whole (p%)`."""
    return f"{part}/{whole} ({100.0 * part / whole:.0f}%)" if whole else "0/0"


def measure_cases(verbose: bool) -> dict:
    """Found, exact, silent found and fixed-as-intended counts, with per-case rows."""
    counts = {"cases": 0, "found": 0, "exact": 0, "silent": 0, "silent_found": 0, "with_intended": 0,
              "fixed": 0, "fix_clean": 0}
    rows = []
    for case in corpus.cases():
        expected = corpus.expectations(case)
        reported = corpus.reported(case)
        found = expected <= reported
        exact = expected == reported
        silent = corpus.is_silent(case)
        counts["cases"] += 1
        counts["found"] += found
        counts["exact"] += exact
        counts["silent"] += silent
        counts["silent_found"] += silent and found
        fixed = "-"
        if corpus.intended_of(case):
            counts["with_intended"] += 1
            outcome = corpus.fix_case(case)
            counts["fix_clean"] += outcome.clean
            counts["fixed"] += outcome.as_intended
            fixed = "yes" if outcome.as_intended else ("differs" if outcome.clean else "not clean")
        missing = sorted(expected - reported)
        extra = sorted(reported - expected)
        rows.append((case.stem, "silent" if silent else "", "found" if found else "MISSED",
                     "" if exact else "inexact", fixed, _pairs(missing), _pairs(extra)))
    if verbose:
        print(f"{'case':52} {'kind':6} {'line':6} {'exact':7} {'fixed':9} missing / extra")
        for name, kind, found, exact, fixed, missing, extra in rows:
            detail = (f"missing {missing}" if missing else "") + ("; " if missing and extra else "") + \
                     (f"extra {extra}" if extra else "")
            print(f"{name:52} {kind:6} {found:6} {exact:7} {fixed:9} {detail}")
        print()
    return counts


def measure_clean(verbose: bool) -> tuple[int, int]:
    """(programs, programs with any diagnostic)."""
    flagged = 0
    rows = []
    programs = corpus.clean_programs()
    for program in programs:
        diagnostics = corpus.diagnostics_of(program)
        flagged += bool(diagnostics)
        rows.append((program.stem, ", ".join(f"{d.code}@{d.span.line if d.span else 0}" for d in diagnostics)))
    if verbose:
        print(f"{'clean program':52} diagnostics")
        for name, found in rows:
            print(f"{name:52} {found or 'none'}")
        print()
    return len(programs), flagged


def _pairs(pairs) -> str:
    """`E206@21, W310@25`."""
    return ", ".join(f"{code}@{line}" for code, line in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="one row per case and per clean program")
    arguments = parser.parse_args()
    start = time.perf_counter()
    counts = measure_cases(arguments.verbose)
    programs, flagged = measure_clean(arguments.verbose)
    print(f"{'cases':38} {counts['cases']}")
    print(f"{'found at the right line':38} {percent(counts['found'], counts['cases'])}")
    print(f"{'  exactly (nothing missing or extra)':38} {percent(counts['exact'], counts['cases'])}")
    print(f"{'silent cases found':38} {percent(counts['silent_found'], counts['silent'])}")
    print(f"{'fixed as intended':38} {percent(counts['fixed'], counts['with_intended'])}")
    print(f"{'  fix checks clean (numbers aside)':38} {percent(counts['fix_clean'], counts['with_intended'])}")
    errors, with_fixes = corpus.errors_with_fixes(corpus.cases())
    print(f"{'errors with a fix':38} {percent(with_fixes, errors)}")
    print(f"{'false positives (clean programs)':38} {percent(flagged, programs)}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
