"""Shared by tests/test_corpus.py and bench/corpus_stats.py: reading the corpus and judging a fix.

The corpus has three parts:

- `tests/cases/NAME.pose`: a broken program; `# expect: CODE` marks each line that must be reported
  and a header line `# silent: ...` marks a bug PyTorch runs without complaint (and says why).
- `tests/intended/NAME.pose`: the same model with the bug repaired as its authors intended (same
  model names, inputs, outputs and parameters). `# sizes: B=2 T=9; B=3 T=12` gives the two symbol
  assignments it is run at; without it each symbol takes its smallest allowed value >= 2, then the
  next one that runs.
- `tests/clean/NAME.pose`: a correct program in an unusual style that must check with no diagnostic.

A fix is "as intended" when `fix_text(case, unsafe=True)` checks with no diagnostic and every model
of the fixed text computes the same numbers as the intended program (numpy backend, infer flow, the
same seeded weights and inputs) at both sizes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poseir.backends.numpy_interpreter import run_graph
from poseir.compiler import build, check
from poseir.diagnostics.fixes import fix_text
from poseir.ir.graph import NUMPY_DTYPES
from poseir.weights.init import initialize

TESTS = Path(__file__).resolve().parent
CASES_DIR = TESTS / "cases"
INTENDED_DIR = TESTS / "intended"
CLEAN_DIR = TESTS / "clean"

EXPECT = re.compile(r"#\s*expect:\s*([A-Z]\d{3}(?:\s*,\s*[A-Z]\d{3})*)")
SILENT = re.compile(r"^\s*#\s*silent:")
SIZES = re.compile(r"^\s*#\s*sizes:\s*(.*)$")
SEED = 0


def cases() -> list[Path]:
    """Every broken program, sorted by name."""
    return sorted(CASES_DIR.glob("*.pose"))


def clean_programs() -> list[Path]:
    """Every correct program that must check without a diagnostic."""
    return sorted(CLEAN_DIR.glob("*.pose"))


def intended_of(case: Path) -> Path | None:
    """The hand-written intended program of a case, if it has one."""
    path = INTENDED_DIR / case.name
    return path if path.exists() else None


def cases_with_intended() -> list[Path]:
    """The cases whose intended repair is unique and written down."""
    return [case for case in cases() if intended_of(case)]


def expectations(path: Path) -> set[tuple[str, int]]:
    """The (code, line) pairs a case declares, as tests/test_cases.py reads them."""
    found = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            found.update((code.strip(), number) for code in match.group(1).split(","))
    return found


def is_silent(path: Path) -> bool:
    """True when the case's header (its leading comment lines) has a `# silent:` line."""
    for line in path.read_text().splitlines():
        if not line.strip().startswith("#"):
            return False
        if SILENT.match(line):
            return True
    return False


@functools.lru_cache(maxsize=None)
def compiled(path: Path, text: str | None = None):
    """`poseir check` of a file (or of `text` at that path): diagnostics and graphs, once per session."""
    return check(str(path), text)


def reported(path: Path, text: str | None = None) -> set[tuple[str, int]]:
    """The (code, line) pairs `poseir check` reports for a file (or for `text` at that path)."""
    return {(d.code, d.span.line if d.span else 0) for d in compiled(path, text).sorted_diagnostics()}


def diagnostics_of(path: Path, text: str | None = None) -> list:
    """Every diagnostic, errors and warnings, sorted."""
    return compiled(path, text).sorted_diagnostics()


def errors_with_fixes(paths) -> tuple[int, int]:
    """(distinct errors, those carrying a fix) over files, an error being a (file, code, line) triple."""
    fixed: dict[tuple, bool] = {}
    for path in paths:
        for diagnostic in diagnostics_of(path):
            if diagnostic.code.startswith("E"):
                key = (path.name, diagnostic.code, diagnostic.span.line if diagnostic.span else 0)
                fixed[key] = fixed.get(key, False) or bool(diagnostic.fixes)
    return len(fixed), sum(fixed.values())


# ------------------------------------------------------------------------------------ running programs


def declared_sizes(path: Path) -> list[dict[str, int]]:
    """The symbol assignments of a `# sizes:` header line, or [] when there is none."""
    for line in path.read_text().splitlines():
        match = SIZES.match(line)
        if match:
            assignments = []
            for group in match.group(1).split(";"):
                pairs = re.findall(r"([A-Za-z_]\w*)\s*=\s*(\d+)", group)
                assignments.append({name: int(value) for name, value in pairs})
            return assignments
    return []


def model_names(path: Path, text: str | None = None) -> list[str]:
    """The models a file declares, in order."""
    return list(compiled(path, text).models)


@functools.lru_cache(maxsize=None)
def graph_of(path: Path, model: str, text: str | None = None):
    """(graph, behaviour) from `poseir.compiler.build`: the infer graph of a model, or, for a model
    without an infer flow, its train graph run as inference."""
    graph, _ = build(str(path), model=model, mode="infer", text=text)
    if graph is not None:
        return graph, None
    graph, result = build(str(path), model=model, mode="train", text=text)
    if graph is None:
        messages = "; ".join(f"{d.code} {d.message}" for d in result.sorted_diagnostics())
        raise AssertionError(f"{path.name}: model `{model}` does not build: {messages}")
    return graph, "infer"


def input_symbols(graph) -> list[str]:
    """The symbols the graph's input shapes are written in, in order of appearance."""
    names: list[str] = []
    for value in graph.inputs:
        for dim in value.type.shape:
            for name in sorted(dim.symbols):
                if name not in names:
                    names.append(name)
    return names


def candidate_sizes(graph, declared: list[dict[str, int]]) -> list[dict[str, int]]:
    """Symbol assignments to try: the declared ones, else smallest allowed values and a few above."""
    symbols = input_symbols(graph)
    if declared:
        return [{name: values.get(name, 2) for name in symbols} for values in declared]
    starts = {}
    for name in symbols:
        low, high = graph.facts.bounds(name)
        starts[name] = max(low, 2) if high is None else min(max(low, 2), high)
    # Sizes differ per symbol (2, 3, 4, ...) so that a swap of two symbols cannot go unnoticed.
    first = {name: starts[name] + index for index, name in enumerate(symbols)}
    return [first] + [{name: value + step for name, value in first.items()} for step in range(1, 12)]


def inputs_for(graph, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Random inputs for one symbol assignment."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for value in graph.inputs:
        shape = tuple(dim.evaluate(sizes) for dim in value.type.shape)
        dtype = NUMPY_DTYPES[value.type.dtype]
        if np.issubdtype(dtype, np.floating):
            arrays[value.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            arrays[value.name] = rng.random(shape) < 0.5
        else:
            arrays[value.name] = rng.integers(0, 4, shape).astype(dtype)
    return arrays


def run(graph, behaviour, inputs: dict[str, np.ndarray], seed: int = SEED) -> dict[str, np.ndarray]:
    """Outputs of one graph on given inputs, with seeded weights."""
    weights = initialize(graph.parameters, seed)
    return run_graph(graph, inputs, weights, seed=seed, behaviour=behaviour)


@dataclass(frozen=True)
class Run:
    """One execution of a program: the symbol sizes, the inputs and the outputs."""

    sizes: dict
    inputs: dict
    outputs: dict


def two_sizes(graph, behaviour, declared: list[dict[str, int]]) -> list[Run]:
    """Runs at the first two assignments the graph accepts (two different sizes)."""
    chosen = []
    for sizes in candidate_sizes(graph, declared):
        inputs = inputs_for(graph, sizes, SEED)
        try:
            outputs = run(graph, behaviour, inputs)
        except Exception:  # noqa: BLE001 (a size the model rejects: try the next)
            if declared:
                raise
            continue
        chosen.append(Run(sizes, inputs, outputs))
        if len(chosen) == 2:
            return chosen
    raise AssertionError(f"found {len(chosen)} size(s) the model runs at, expected two")


@dataclass
class Comparison:
    """Whether two programs compute the same numbers, and if not, why."""

    equal: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reference:
    """One model of an intended program: its parameter table and two runs at different sizes."""

    model: str
    parameters: tuple
    runs: tuple


@functools.lru_cache(maxsize=None)
def reference_runs(intended: Path) -> tuple[Reference, ...]:
    """Every model of an intended program run at its two sizes (computed once per test session)."""
    references = []
    for model in model_names(intended):
        graph, behaviour = graph_of(intended, model)
        runs = tuple(two_sizes(graph, behaviour, declared_sizes(intended)))
        references.append(Reference(model, tuple((p.name, p.shape) for p in graph.parameters), runs))
    return tuple(references)


def compare_programs(candidate: Path, candidate_text: str, intended: Path) -> Comparison:
    """Same models, same parameters, same outputs at the intended program's two sizes."""
    reasons = []
    references = reference_runs(intended)
    wanted = [reference.model for reference in references]
    got = model_names(candidate, candidate_text)
    if wanted != got:
        return Comparison(False, [f"models {got} differ from the intended {wanted}"])
    for reference in references:
        model = reference.model
        try:
            other, other_behaviour = graph_of(candidate, model, candidate_text)
        except AssertionError as error:
            return Comparison(False, [str(error)])
        table = dict(reference.parameters)
        other_table = {p.name: p.shape for p in other.parameters}
        if table != other_table:
            return Comparison(False, [f"`{model}`: parameters differ: {sorted(set(table.items()) ^ set(other_table.items()))}"])
        for reference_run in reference.runs:
            sizes, expected = reference_run.sizes, reference_run.outputs
            try:
                actual = run(other, other_behaviour, reference_run.inputs)
            except Exception as error:  # noqa: BLE001
                return Comparison(False, [f"`{model}` at {sizes}: the candidate fails to run: {error}"])
            for name, array in expected.items():
                if name not in actual:
                    reasons.append(f"`{model}` at {sizes}: no output `{name}`")
                elif np.shape(actual[name]) != np.shape(array):
                    reasons.append(f"`{model}` at {sizes}: `{name}` has shape {np.shape(actual[name])}, "
                                   f"expected {np.shape(array)}")
                elif not np.allclose(actual[name], array, rtol=1e-5, atol=1e-6):
                    worst = float(np.max(np.abs(np.asarray(actual[name], np.float64) - array)))
                    reasons.append(f"`{model}` at {sizes}: `{name}` differs by up to {worst:.3g}")
    return Comparison(not reasons, reasons)


@dataclass
class FixOutcome:
    """What `fix_text(case, unsafe=True)` made of a case, judged against its intended program."""

    fixed: str
    applied: list[str]
    remaining: list
    comparison: Comparison | None

    @property
    def clean(self) -> bool:
        """The fixed text checks with no diagnostic at all."""
        return not self.remaining

    @property
    def as_intended(self) -> bool:
        """Clean and numerically equal to the intended program."""
        return self.clean and self.comparison is not None and self.comparison.equal


@functools.lru_cache(maxsize=None)
def fixed_once(case: Path):
    """`fix_text(case, unsafe=True)`, computed once per session."""
    return fix_text(str(case), case.read_text(), unsafe=True)


def fix_case(case: Path) -> FixOutcome:
    """Apply every fix (unsafe ones too) and compare the result with the intended program."""
    result = fixed_once(case)
    intended = intended_of(case)
    comparison = None
    if intended is not None and not result.remaining:
        comparison = compare_programs(case, result.fixed, intended)
    return FixOutcome(result.fixed, list(result.applied), list(result.remaining), comparison)


def fix_is_idempotent(case: Path) -> bool:
    """Fixing the fixed text again changes nothing."""
    once = fixed_once(case)
    if not once.applied:
        return True  # nothing applied: the text is already at its fixed point
    again = fix_text(str(case), once.fixed, unsafe=True)
    return again.fixed == once.fixed
