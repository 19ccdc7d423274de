"""The Python API: load a file, check it, and build the train or infer graph of a model."""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from poseir.elaborate import program as program_module
from poseir.diagnostics.record import Diagnostic, DiagnosticError, has_errors, sort_diagnostics
from poseir.elaborate.elaborator import MODES, elaborate
from poseir.ir.graph import Graph
from poseir.limits import DEFAULT_LIMITS, Limits, start_clock
from poseir.syntax.source import SourceMap


@dataclass
class Compilation:
    """Everything one request produced: sources (for rendering), graphs and diagnostics."""

    sources: SourceMap = field(default_factory=SourceMap)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    graphs: dict = field(default_factory=dict)  # (model, mode) -> Graph
    models: list[str] = field(default_factory=list)
    program: program_module.Program | None = None  # the parsed files, for tools (None: did not parse)
    bindings: dict = field(default_factory=dict)  # (model, mode) -> the names the user's code bound

    @property
    def ok(self) -> bool:
        """True when no error was reported."""
        return not has_errors(self.diagnostics)

    def sorted_diagnostics(self) -> list[Diagnostic]:
        """Diagnostics in a deterministic order, each reported once even if both modes found it."""
        unique = {}
        for diagnostic in self.diagnostics:
            unique.setdefault(_identity(diagnostic), diagnostic)
        return sort_diagnostics(unique.values())


def _identity(diagnostic: Diagnostic) -> tuple:
    """What makes two diagnostics the same report."""
    span = diagnostic.span
    return (diagnostic.code, diagnostic.message, span.path if span else "", span.start if span else -1,
            span.end if span else -1)


def check(path: str, text: str | None = None, *, overrides: dict | None = None,
          models: list[str] | None = None, sources: SourceMap | None = None, root: str | None = None,
          limits: Limits = DEFAULT_LIMITS, cancelled: Callable[[], bool] | None = None,
          repair: bool = True) -> Compilation:
    """Elaborate every model of a file in both modes and collect every diagnostic.

    Imports stay inside `root` (by default the project holding `path`); `limits` bound the work.
    `cancelled` is asked between elaborations; when it says yes the check stops early (an
    editor that got a newer text does not wait for the rest of a stale check). With `repair`,
    diagnostics whose rule saw several possible repairs get the one that alone makes the file
    check, found by checking the file again with each (`poseir.diagnostics.repair`).
    """
    with collector_paused():
        return _check(path, text, overrides=overrides, models=models, sources=sources, root=root, limits=limits,
                      cancelled=cancelled, repair=repair)


@contextlib.contextmanager
def collector_paused():
    """Python's cycle collector off while a check builds its graphs, as it was before afterwards.

    A check allocates an object or more per node and value and leaves no reference cycles (the
    elaborator breaks its own), so all it frees goes by reference counting; with the collector on,
    its full passes walk the growing graphs again and again (half the time of a 10k-node check).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # What the check keeps (its result, the caches) would otherwise be walked by the very next
            # young-generation collection, 5 ms for MotionBERT's result; freeze-then-unfreeze moves every
            # tracked object to the oldest generation without a walk (and zeroes the young count), so
            # only full collections, which run as rarely as before, look at them again.
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _check(path: str, text: str | None, *, overrides, models, sources, root, limits, cancelled,
           repair) -> Compilation:
    """`check` itself."""
    result = Compilation(sources=sources if sources is not None else SourceMap())
    loaded, found = program_module.load(path, text, result.sources, root=root, limits=limits)
    result.diagnostics.extend(found)
    result.program = loaded
    if loaded is None:
        if repair:
            result.diagnostics = _settle_candidates(result, path, start_clock(limits), overrides=overrides,
                                                    models=models, root=root, limits=limits, cancelled=cancelled)
        return result
    standalone = models is None and not loaded.models
    if standalone:
        # A library file: check each module that can stand alone, so its mistakes show in the editor and CI.
        loaded.models = program_module.library_models(loaded)
    result.models = list(loaded.models) if models is None else models
    deadline = start_clock(limits)
    for model in result.models:
        for mode in MODES:
            if cancelled is not None and cancelled():
                return result
            elaborated = elaborate(loaded, model, mode, overrides, mode_optional=True, limits=limits,
                                   standalone=standalone, deadline=deadline)
            result.diagnostics.extend(elaborated.diagnostics)
            result.diagnostics.extend(lint(elaborated.graph))
            result.bindings[(model, mode)] = elaborated.bindings
            if elaborated.graph is not None:
                result.graphs[(model, mode)] = elaborated.graph
    if repair and not (cancelled is not None and cancelled()):
        result.diagnostics = _settle_candidates(result, path, deadline, overrides=overrides, models=models,
                                                root=root, limits=limits, cancelled=cancelled)
    return result


def _settle_candidates(result: Compilation, path: str, deadline: float, **options) -> list[Diagnostic]:
    """The diagnostics with their candidate repairs settled by re-checking the file with each applied.

    Re-checks start only before `deadline`, the time limit of the check itself, so settling at most
    doubles the time a file may take.
    """
    from poseir.diagnostics.repair import resolve

    def recheck(text: str) -> list[Diagnostic] | None:
        if time.monotonic() > deadline:
            return None
        return check(path, text, repair=False, **options).sorted_diagnostics()

    return resolve(result.diagnostics, result.program, recheck, _identity, result.sources, str(Path(path)))


def build(path: str, *, model: str | None = None, mode: str = "infer", overrides: dict | None = None,
          text: str | None = None, root: str | None = None,
          limits: Limits = DEFAULT_LIMITS) -> tuple[Graph | None, Compilation]:
    """The graph of one model in one mode; `model=None` picks the file's only (or first) model."""
    with collector_paused():
        return _build(path, model=model, mode=mode, overrides=overrides, text=text, root=root, limits=limits)


def _build(path: str, *, model, mode, overrides, text, root, limits) -> tuple[Graph | None, Compilation]:
    """`build` itself."""
    result = Compilation()
    loaded, found = program_module.load(path, text, result.sources, root=root, limits=limits)
    result.diagnostics.extend(found)
    if loaded is None or has_errors(found):
        return None, result
    if model is None:
        if not loaded.models:
            result.diagnostics.append(Diagnostic.make(
                "E106", f"`{path}` declares no model", None,
                helps=("declare one with `model name = Module(...)`",)))
            return None, result
        model = next(iter(loaded.models))
    result.models = [model]
    elaborated = elaborate(loaded, model, mode, overrides, limits=limits)
    result.diagnostics.extend(elaborated.diagnostics)
    result.diagnostics.extend(lint(elaborated.graph))
    if elaborated.graph is not None:
        result.graphs[(model, mode)] = elaborated.graph
    graph = elaborated.graph if not has_errors(elaborated.diagnostics) else None
    return graph, result


def lint(graph: Graph | None) -> list[Diagnostic]:
    """The warnings of the lint passes, which read a finished graph (nothing for a graph that failed)."""
    from poseir.passes.axis_lints import axis_lints

    if graph is None:
        return []
    _, found, _ = axis_lints(graph)
    return found


def prepare_for_backend(graph: Graph, *, optimize: bool = True, after=None) -> Graph:
    """The graph every backend receives: the pass pipeline (`poseir.passes.pipeline`) run on it.

    `optimize=False` (`-O0`) runs only the cleanup a backend needs; `after(name, graph)` sees the
    graph after each pass (`--print-after`).
    """
    from poseir.passes.pipeline import run_pipeline

    graph, _ = run_pipeline(graph, optimize=optimize, after=after)
    return graph


def bind_weights(graph: Graph, weights: dict) -> tuple[Graph, dict]:
    """The graph with the nodes that read only weights computed (folded batch norms), and the weights with
    their results: what a backend does once when it is given weights, so every run does not redo it."""
    from poseir.passes.fold_parameters import fold_parameters

    return fold_parameters(graph, weights)


def parse_override(text: str) -> tuple[str, object]:
    """`channels=256` -> ("channels", 256); lists, floats, bools and strings too."""
    if "=" not in text:
        raise DiagnosticError(Diagnostic.make("E106", f"`--set {text}` must look like `name=value`", None))
    key, _, raw = text.partition("=")
    return key.strip(), _literal(raw.strip(), text)


def _literal(raw: str, whole: str):
    """Parse an override value with the language's literal rules."""
    import ast as python_ast

    replaced = raw.replace("true", "True").replace("false", "False").replace("none", "None")
    try:
        value = python_ast.literal_eval(replaced)
    except (ValueError, SyntaxError):
        if raw.replace("_", "").isalnum():
            return raw
        raise DiagnosticError(Diagnostic.make("E106", f"cannot read the value in `--set {whole}`", None,
                                              helps=("use an int, a float, true/false or a list like [3, 3, 3]",)))
    return tuple(value) if isinstance(value, list) else value
