"""The pass pipeline, declared as data: which passes run, in which order, for which flows.

Every backend receives the graph this pipeline returns (`poseir.compiler.prepare_for_backend`),
so `poseir run` and `poseir compile` see the same graph. Optimizations run for the inference
flow unless `-O0` turns them off; the cleanup a backend needs always runs. With `check=True`
(the test suite) the verifier runs after each pass and a failure names the pass and the ones
before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from poseir.diagnostics.record import Diagnostic
from poseir.ir.graph import Graph
from poseir.passes.common_subexpressions import eliminate_common_subexpressions
from poseir.passes.dead_code import eliminate_dead_code
from poseir.passes.fold_batch_norm import fold_batch_norm
from poseir.passes.fold_constants import fold_constants
from poseir.passes.identities import eliminate_identities
from poseir.passes.inference_cleanup import inference_cleanup
from poseir.passes.infer_shapes import verify
from poseir.passes.simplify_layout import simplify_layout

PassFunction = Callable[[Graph], tuple[Graph, list[Diagnostic], bool]]


@dataclass(frozen=True)
class Pass:
    """One pass: its name (for `--print-after`), function, what it does, and when it runs."""

    name: str
    function: PassFunction
    summary: str
    optimization: bool = True  # skipped at -O0
    modes: tuple[str, ...] = ("infer",)


PIPELINE: tuple[Pass, ...] = (
    Pass("inference-cleanup", inference_cleanup,
         "drop dropout and drop-path, which are the identity at inference, and what only they fed",
         optimization=False),
    Pass("fold-batch-norm", fold_batch_norm,
         "fold each inference batch norm into the convolution or linear layer before it (else a multiply-add)"),
    Pass("fold-constants", fold_constants, "compute nodes whose inputs are all compile-time constants"),
    Pass("simplify-layout", simplify_layout, "merge chains of reshapes, and chains of permutes, into one"),
    Pass("eliminate-identities", eliminate_identities,
         "remove identity ops, reshapes and permutes that keep every axis, casts to the same dtype"),
    Pass("eliminate-common-subexpressions", eliminate_common_subexpressions,
         "compute each repeated op on the same inputs once"),
    Pass("eliminate-dead-code", eliminate_dead_code, "remove nodes and parameters no output depends on"),
)


class PassFailure(AssertionError):
    """A pass produced a malformed graph: a compiler bug, named with the passes that ran before it."""


def run_pipeline(graph: Graph, *, optimize: bool = True, passes: tuple[Pass, ...] = PIPELINE,
                 check: bool = False, after: Callable[[str, Graph], None] | None = None
                 ) -> tuple[Graph, list[Diagnostic]]:
    """Run the passes that apply to the graph's flow; `after(name, graph)` sees each result."""
    diagnostics: list[Diagnostic] = []
    ran: list[str] = []
    for compiler_pass in passes:
        if graph.mode not in compiler_pass.modes or (compiler_pass.optimization and not optimize):
            continue
        graph, found, _ = compiler_pass.function(graph)
        ran.append(compiler_pass.name)
        diagnostics.extend(found)
        if check:
            _verify(graph, ran)
        if after is not None:
            after(compiler_pass.name, graph)
    return graph, diagnostics


def _verify(graph: Graph, ran: list[str]) -> None:
    """The verifier, with the pass that broke the graph named."""
    try:
        verify(graph)
    except AssertionError as error:
        raise PassFailure(f"after pass `{ran[-1]}` (ran: {', '.join(ran)}): {error}") from error


def pass_names() -> list[str]:
    """Every pass of the pipeline, in order."""
    return [compiler_pass.name for compiler_pass in PIPELINE]


def describe() -> str:
    """The pipeline as a table for `poseir compile --passes`."""
    width = max(len(compiler_pass.name) for compiler_pass in PIPELINE)
    lines = []
    for compiler_pass in PIPELINE:
        level = "-O1" if compiler_pass.optimization else "always"
        lines.append(f"{compiler_pass.name:<{width}}  {level:<6}  {'/'.join(compiler_pass.modes):<11}  "
                     f"{compiler_pass.summary}")
    return "\n".join(lines) + "\n"
