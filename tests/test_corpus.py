"""Issue 7's corpus, measured by executing: correct programs check clean, fixes give the intended program.

- every `tests/clean/*.pose` checks with no error and no warning;
- every intended program (`tests/intended/*.pose`) checks clean and runs at two sizes;
- for every case with an intended program, `fix_text(case, unsafe=True)` checks clean and computes
  the intended program's numbers (numpy backend, infer flow, same seeded weights and inputs, two sizes);
- fixing a case's fixed text again changes nothing.

`bench/corpus_stats.py` prints the same measurements as counts. The helpers live in corpus_support.py.
"""

from __future__ import annotations

import pytest

import corpus_support as corpus
from poseir.compiler import check
from poseir.diagnostics.render import render

# ------------------------------------------------------------------------------------------------
# What the checker cannot do yet. The ONE place to update as issue 7 lands: delete a name when its
# test passes (the marks are xfail(strict=False), so an early pass does not fail the run).
# "found" is read by tests/test_cases.py for the broken-program corpus.
NOT_YET: dict[str, set[str]] = {
    # clean programs on which the checker reports something (false positives)
    "clean": set(),
    # cases whose reported (code, line) pairs differ from their `# expect:` marks
    "found": set(),
    # cases whose `fix --unsafe` does not (yet) give a clean program equal to the intended one. These four
    # have no unique repair (see docs/internals.md, "Fixes that yield the intended program"): another
    # 17-joint skeleton would do as well as h36m; LayerNorm(channels) over [B, channels, frames] may be
    # rebuilt for the frames or moved over the channels; which loss a training return forgot; which value a
    # repeated index of a hand-typed adjacency mask should have been.
    "fixed": {
        "flip_tta_concat_wrong_skeleton", "mhformer_layernorm_over_channels", "poseformer_train_return_missing_loss",
        "semgcn_adjacency_hand_written",
    },
    # cases whose fixed text changes again when fixed a second time
    "idempotent": set(),
}
REASONS = {
    "clean": "false positive: a correct program must check with no error and no warning (issue 7)",
    "found": "needs axis identity or the issue-7 lints (E206 by atoms, W310-W313)",
    "fixed": "no fix yet that yields the intended program (issue 7, deliverable 5)",
    "idempotent": "fixing twice still changes the text",
}
# ------------------------------------------------------------------------------------------------


def marked(kind: str, paths) -> list:
    """Parameters named by file stem, xfail where NOT_YET lists them."""
    params = []
    for path in paths:
        marks = [pytest.mark.xfail(strict=False, reason=REASONS[kind])] if path.stem in NOT_YET[kind] else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def rendered(path, text=None) -> str:
    """Diagnostics as a human would read them, for assertion messages."""
    result = check(str(path), text)
    return render(result.sorted_diagnostics(), result.sources, "human")


def test_corpus_sizes():
    """Issue 7 asks for 30+ new broken programs (12+ silent, each explained) and 20+ clean programs."""
    assert len(corpus.cases()) >= 63 + 32
    silent = [case for case in corpus.cases() if corpus.is_silent(case)]
    assert len(silent) >= 12
    assert len(corpus.clean_programs()) >= 22
    for case in corpus.cases():
        assert corpus.expectations(case), f"{case.name} marks no diagnostic"
    for intended in corpus.INTENDED_DIR.glob("*.pose"):
        assert (corpus.CASES_DIR / intended.name).exists(), f"{intended.name} has no case"


def test_most_errors_of_the_corpus_carry_a_fix():
    """Issue 7: at least 80 % of the errors in tests/cases offer a fix (each checked against its intended program
    by test_fix_gives_the_intended_program where one is written down)."""
    errors, with_fixes = corpus.errors_with_fixes(corpus.cases())
    assert errors >= 90
    assert with_fixes >= 0.8 * errors, f"{with_fixes} of {errors} errors carry a fix"


def test_not_yet_names_exist():
    """Every name in NOT_YET is a file of the corpus (a typo would silently mark nothing)."""
    known = {path.stem for path in corpus.cases()} | {path.stem for path in corpus.clean_programs()}
    for kind, names in NOT_YET.items():
        assert names <= known, f"NOT_YET[{kind!r}] names unknown files: {sorted(names - known)}"


@pytest.mark.parametrize("path", marked("clean", corpus.clean_programs()))
def test_clean_program_reports_nothing(path):
    """No error and no warning on a correct program."""
    diagnostics = corpus.diagnostics_of(path)
    assert diagnostics == [], rendered(path)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in sorted(corpus.INTENDED_DIR.glob("*.pose"))])
def test_intended_program_checks_clean_and_runs_at_two_sizes(path):
    """The reference a fix is measured against is itself clean, and runs at two different sizes."""
    assert corpus.diagnostics_of(path) == [], rendered(path)
    references = corpus.reference_runs(path)
    assert references, f"{path.name} declares no model"
    for reference in references:
        first, second = reference.runs
        assert first.sizes != second.sizes


@pytest.mark.parametrize("case", marked("fixed", corpus.cases_with_intended()))
def test_fix_gives_the_intended_program(case):
    """fix --unsafe: the fixed text checks clean and computes the intended program's numbers."""
    outcome = corpus.fix_case(case)
    assert outcome.clean, f"applied {outcome.applied}; still reported:\n{rendered(case, outcome.fixed)}"
    assert outcome.comparison.equal, f"applied {outcome.applied}:\n" + "\n".join(outcome.comparison.reasons)


@pytest.mark.parametrize("case", marked("idempotent", corpus.cases()))
def test_fixing_twice_changes_nothing(case):
    """A second `fix --unsafe` over the fixed text is a no-op."""
    assert corpus.fix_is_idempotent(case)
