"""The `poseir` command line: a thin face over `poseir.compiler`; no compiler logic lives here."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from poseir import installed_version
from poseir.diagnostics.record import Diagnostic, DiagnosticError, has_errors, sort_diagnostics

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
# Codes that mean the command line itself was wrong (no such model or file, a bad --set).
USAGE_CODES = ("E106", "E405")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    if not hasattr(arguments, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return arguments.handler(arguments)
    except KeyboardInterrupt:
        return EXIT_USAGE
    except BrokenPipeError:
        # `poseir explain E204 | head`: the reader left; that is not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:
        # A file the user named cannot be written or read (a missing directory, no permission).
        where = f" `{error.filename}`" if error.filename else ""
        print(f"error: cannot access{where}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # noqa: BLE001  (a bug: say so plainly, with the detail behind a flag)
        print("error: internal compiler error in poseir; please report it with the input file", file=sys.stderr)
        if arguments.debug:
            traceback.print_exc()
        else:
            print("note: run with --debug to see the Python traceback", file=sys.stderr)
        return EXIT_USAGE


class _Version(argparse.Action):
    """`--version`: reads the package metadata only when asked (importlib.metadata costs ~20 ms at startup)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"poseir {installed_version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per face."""
    parser = argparse.ArgumentParser(prog="poseir", description="Shape-checking compiler for 3D pose networks.")
    debug_help = "show Python tracebacks for internal errors"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    parser.add_argument("--version", action=_Version, nargs=0, help="show program's version number and exit")
    commands = parser.add_subparsers(metavar="COMMAND")

    check = commands.add_parser("check", help="shape-lint .pose files")
    check.add_argument("paths", nargs="+", metavar="PATH")
    _add_format(check, ("human", "json", "gcc", "sarif"))
    _add_model_options(check)
    check.set_defaults(handler=_check)

    run = commands.add_parser("run", help="execute a model with the numpy backend")
    run.add_argument("path", metavar="PATH")
    run.add_argument("--inputs", required=True, help=".npz keyed by the model's input names")
    run.add_argument("--mode", choices=("infer", "train"), default="infer")
    _add_weight_options(run, "seed for initialization and dropout")
    run.add_argument("-o", "--output", required=True, help="output .npz keyed by the model's output names")
    _add_optimization(run)
    run.add_argument("--stats", action="store_true",
                     help="print the run's time, threads, peak memory held and time by op to stderr")
    _add_model_options(run)
    run.set_defaults(handler=_run)

    params = commands.add_parser("params", help="the parameter table (and a weights-file check)")
    params.add_argument("path", metavar="PATH")
    params.add_argument("--weights", help="check this weights file against the model")
    params.add_argument("--weights-key", metavar="KEY", help=WEIGHTS_KEY_HELP)
    _add_format(params, ("human", "json"))
    _add_model_options(params)
    params.set_defaults(handler=_params)

    compile_ = commands.add_parser("compile", help="lower one model to ONNX or to IR text")
    compile_.add_argument("path", metavar="PATH", nargs="?")
    compile_.add_argument("--target", choices=("onnx", "ir"), default="onnx")
    compile_.add_argument("--mode", choices=("infer", "train"), default="infer")
    compile_.add_argument("--opset", type=int, default=None, help="ONNX opset, 13 to 23 (default 17)")
    _add_weight_options(compile_, "seed for the default initialization")
    compile_.add_argument("-o", "--output", help="the file to write (.onnx or .txt)")
    _add_optimization(compile_)
    compile_.add_argument("--print-after", metavar="PASS", action="append", default=[],
                          help="print the IR after this pass (repeatable; `all` for every pass) on stdout")
    compile_.add_argument("--passes", action="store_true", help="list the passes of the pipeline and exit")
    compile_.add_argument("--profile", metavar="NAME",
                          help="legalize for a constrained runtime: static, rank4, edgetpu, or a profile .toml file")
    compile_.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                          help="fix a symbolic dim to a number, e.g. --dim B=1 --dim T=243 (static profiles need all)")
    _add_model_options(compile_)
    compile_.set_defaults(handler=_compile)

    convert = commands.add_parser("convert-weights", help="a PyTorch checkpoint to safetensors, without torch")
    convert.add_argument("checkpoint", metavar="CKPT", help="a .pth/.pt/.bin/.pth.tar/.ckpt file (or weights)")
    convert.add_argument("-o", "--output", required=True, help="the file to write (.safetensors or .npz)")
    convert.add_argument("--weights-key", metavar="KEY", help=WEIGHTS_KEY_HELP)
    convert.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                         help="raise or lower a limit, e.g. --limit array_bytes=8GiB (see docs/security.md)")
    convert.set_defaults(handler=_convert_weights, format="human", color="auto")

    synth = commands.add_parser("synth", help="write a synthetic Human3.6M in VideoPose3D's file layout")
    synth.add_argument("-o", "--output", required=True, metavar="DIR", help="the directory to write the two .npz to")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--frames", type=int, default=200, help="frames per sequence, plus up to half as many more")
    synth.add_argument("--subjects", default=",".join(SUBJECTS), help="comma-separated (default: all seven)")
    synth.add_argument("--actions", default=None, help="comma-separated (default: all fifteen)")
    synth.set_defaults(handler=_synth)

    evaluate = commands.add_parser("eval", help="evaluate a model with VideoPose3D's protocol and the papers' metrics")
    evaluate.add_argument("path", metavar="PATH")
    evaluate.add_argument("--data-3d", required=True, metavar="F", help="data_3d_h36m.npz (positions_3d)")
    evaluate.add_argument("--data-2d", required=True, metavar="F", help="data_2d_h36m_<keypoints>.npz")
    evaluate.add_argument("--runtime", choices=("numpy", "onnxruntime"), default="numpy")
    evaluate.add_argument("--subjects", default="S9,S11", help="test subjects, comma-separated (default: S9,S11)")
    evaluate.add_argument("--no-flip", dest="flip", action="store_false",
                          help="no flip test-time augmentation (VideoPose3D's -no-tta)")
    _add_weight_options(evaluate, "seed for the default initialization")
    _add_format(evaluate, ("human", "json"))
    _add_model_options(evaluate)
    evaluate.set_defaults(handler=_eval)

    explain_node = commands.add_parser("explain-node", help="the .pose line an ONNX node came from")
    explain_node.add_argument("model", metavar="MODEL.onnx")
    explain_node.add_argument("node", metavar="NODE", help="a node name (as onnxruntime reports it) or a value name")
    explain_node.set_defaults(handler=_explain_node)

    graph = commands.add_parser("graph", help="draw the model as Graphviz DOT (or SVG with Graphviz)")
    graph.add_argument("path", metavar="PATH")
    graph.add_argument("-o", "--output", required=True, help="model.dot, or model.svg (needs Graphviz's `dot`)")
    graph.add_argument("--mode", choices=("both", "infer", "train"), default="both",
                       help="the flow to draw (default: both in one picture, mode-only parts dashed)")
    graph.add_argument("--depth", type=_positive, metavar="N",
                       help="draw each module call at nesting depth N (1: the model's own submodules) as one box "
                            "labelled with its input and output types")
    _add_model_options(graph)
    graph.set_defaults(handler=_graph, format="human", color="auto")

    fix = commands.add_parser("fix", help="show (or apply) the fix-its of a file as a diff")
    fix.add_argument("path", metavar="PATH")
    fix.add_argument("--write", action="store_true", help="rewrite the file instead of printing the diff")
    fix.add_argument("--unsafe", action="store_true", help="also apply fixes that may change meaning")
    _add_input_options(fix)
    fix.set_defaults(handler=_fix, format="human", color="auto")

    split = commands.add_parser("split", help="how the training and inference flows of a model differ, checked")
    split.add_argument("path", metavar="PATH")
    _add_format(split, ("human", "json"))
    _add_model_options(split)
    split.set_defaults(handler=_split)

    explain = commands.add_parser("explain", help="the long explanation of a diagnostic code")
    explain.add_argument("code")
    explain.set_defaults(handler=_explain)

    lsp = commands.add_parser("lsp", help="run the language server over stdio (for editors)")
    lsp.set_defaults(handler=_lsp)
    for command in commands.choices.values():
        # `poseir check --debug x.pose` as well as `poseir --debug check x.pose`; SUPPRESS keeps
        # an absent flag from resetting the one given before the command.
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return parser


def _add_optimization(parser) -> None:
    parser.add_argument("-O", dest="optimize", type=int, choices=(0, 1), default=1, metavar="LEVEL",
                        help="-O1 (default) runs the inference optimizations; -O0 only the cleanup backends need")


def _add_format(parser, formats) -> None:
    parser.add_argument("--format", choices=formats, default="human")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


WEIGHTS_HELP = ".safetensors, .npz or a PyTorch checkpoint (.pth, .pt, .bin, .pth.tar, .ckpt) (default: seeded init)"
WEIGHTS_KEY_HELP = "the checkpoint entry holding the state_dict (default: found automatically)"


def _add_weight_options(parser, seed_help: str) -> None:
    parser.add_argument("--weights", help=WEIGHTS_HELP)
    parser.add_argument("--weights-key", metavar="KEY", help=WEIGHTS_KEY_HELP)
    parser.add_argument("--seed", type=int, default=0, help=seed_help)


def _add_model_options(parser) -> None:
    parser.add_argument("--model", help="which model of the file (default: the first)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyper-parameter of the model, e.g. --set channels=256")
    _add_input_options(parser)


def _add_input_options(parser) -> None:
    """Options bounding what an untrusted `.pose` file may reach and spend."""
    parser.add_argument("--root", metavar="DIR",
                        help="imports must stay inside DIR (default: the nearest directory above the file "
                             "with pyproject.toml or .git, else the file's directory)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="raise or lower a limit, e.g. --limit loop_iterations=1000000 (see docs/security.md)")
    parser.add_argument("--verbose", action="store_true", help="also report accepted dtype conversions")


def _limits(arguments):
    """Every `--limit NAME=VALUE`, applied to the defaults."""
    from poseir.limits import parse_limits

    return parse_limits(getattr(arguments, "limit", []))


def _overrides(arguments) -> dict:
    """Parse every `--set`."""
    from poseir.compiler import parse_override

    return dict(parse_override(text) for text in arguments.set)


def _use_color(arguments) -> bool:
    choice = getattr(arguments, "color", "never")
    return choice == "always" or (choice == "auto" and sys.stderr.isatty())


def _report(diagnostics, sources, arguments, stream=None) -> None:
    """Render diagnostics in the chosen format."""
    from poseir.diagnostics.render import render

    if not diagnostics and getattr(arguments, "format", "human") == "human":
        return
    fmt = getattr(arguments, "format", "human")
    text = render(diagnostics, sources, fmt, color=_use_color(arguments) and fmt == "human")
    (stream or (sys.stdout if fmt != "human" else sys.stderr)).write(text if text.endswith("\n") or not text else text + "\n")


def _usage_error(diagnostic: Diagnostic, arguments) -> int:
    """A problem with the command line itself (bad --set, missing model): exit 2."""
    from poseir.syntax.source import SourceMap

    _report([diagnostic], SourceMap(), arguments, stream=sys.stderr)
    return EXIT_USAGE if diagnostic.code in USAGE_CODES else EXIT_ERRORS


def _check(arguments) -> int:
    """`poseir check PATH...`."""
    from poseir.compiler import check
    from poseir.syntax.source import SourceMap

    try:
        overrides = _overrides(arguments)
        limits = _limits(arguments)
    except DiagnosticError as error:
        return _usage_error(error.diagnostic, arguments)
    sources = SourceMap()
    diagnostics = []
    paths = _expand_paths(arguments.paths)
    for path in paths:
        result = check(path, overrides=overrides, sources=sources, root=arguments.root, limits=limits,
                       models=[arguments.model] if arguments.model else None)
        diagnostics.extend(result.sorted_diagnostics())
    _report(diagnostics, sources, arguments)
    if arguments.format == "human" and not diagnostics:
        print(f"poseir: {len(paths)} file(s) checked, no problems found", file=sys.stderr)
    if any(diagnostic.code in USAGE_CODES for diagnostic in diagnostics):
        return EXIT_USAGE
    return EXIT_ERRORS if has_errors(diagnostics) else EXIT_OK


def _expand_paths(paths: list[str]) -> list[str]:
    """Files as given; a directory stands for the `.pose` files below it, in sorted order."""
    from pathlib import Path

    expanded = []
    for path in paths:
        if Path(path).is_dir():
            expanded.extend(str(found) for found in sorted(Path(path).rglob("*.pose")))
        else:
            expanded.append(path)
    return expanded


def _build(arguments, mode: str):
    """Build one graph or report why not; returns (graph, exit code)."""
    from poseir.compiler import build

    try:
        overrides = _overrides(arguments)
        limits = _limits(arguments)
    except DiagnosticError as error:
        return None, _usage_error(error.diagnostic, arguments)
    graph, result = build(arguments.path, model=arguments.model, mode=mode, overrides=overrides,
                          root=arguments.root, limits=limits)
    diagnostics = result.sorted_diagnostics()
    if graph is None:
        _report(diagnostics, result.sources, arguments, stream=sys.stderr)
        usage = any(d.code in USAGE_CODES for d in diagnostics)
        return None, EXIT_USAGE if usage else EXIT_ERRORS
    warnings = [d for d in diagnostics]
    if warnings and getattr(arguments, "format", "human") == "human":
        _report(warnings, result.sources, arguments, stream=sys.stderr)
    return (graph, result), EXIT_OK


def _run(arguments) -> int:
    """`poseir run PATH --inputs in.npz -o out.npz`."""
    from poseir.backends.numpy_interpreter import RunStats, run_graph
    from poseir.compiler import bind_weights, prepare_for_backend
    from poseir.weights.files import save_npz

    built, code = _build(arguments, arguments.mode)
    if built is None:
        return code
    graph, result = built
    limits = _limits(arguments)
    try:
        inputs = _load_inputs(arguments.inputs, limits.array_bytes)
        weights = _weights(arguments, graph, result, limits, seeded=True)
        if weights is None:
            return EXIT_ERRORS
        if not _inputs_fit(graph, inputs, result, arguments):
            return EXIT_ERRORS
        graph, weights = bind_weights(prepare_for_backend(graph, optimize=bool(arguments.optimize)), weights)
        stats = RunStats()
        outputs = run_graph(graph, inputs, weights, seed=arguments.seed, array_bytes=limits.array_bytes, stats=stats)
    except DiagnosticError as error:
        _report([error.diagnostic], result.sources, arguments, stream=sys.stderr)
        return EXIT_ERRORS
    save_npz(arguments.output, outputs)
    for name, array in outputs.items():
        print(f"{name}: {array.dtype}{list(array.shape)}", file=sys.stderr)
    if arguments.stats:
        for line in stats.lines():
            print(line, file=sys.stderr)
    return EXIT_OK


def _weights(arguments, graph, result, limits, *, seeded: bool) -> dict | None:
    """The `--weights` file checked against the model (None after reporting an error), or seeded weights.

    Warnings (NaN, unexpected keys) are reported and the run goes on; `--verbose` also lists the
    dtype conversions accepted as exact.
    """
    from poseir.backends.numpy_interpreter import check_allocations
    from poseir.weights.check import check_weights
    from poseir.weights.files import load_weights
    from poseir.weights.init import initialize

    if not arguments.weights:
        if not seeded:
            return None
        check_allocations(graph, None, limits.array_bytes)
        return initialize(graph.parameters, arguments.seed)
    weights = load_weights(arguments.weights, limits.array_bytes, arguments.weights_key)
    conversions: list = []
    diagnostics = check_weights(graph, weights, conversions)
    _report_checked(diagnostics, conversions, result, arguments)
    return None if has_errors(diagnostics) else weights


def _inputs_fit(graph, inputs: dict, result, arguments) -> bool:
    """Inputs whose dtypes convert exactly (E408) and NaN/Inf noted (W409); False after an error."""
    from poseir.weights.dtypes import check_arrays

    declared = {value.name: (value.type.dtype, value.span) for value in graph.inputs}
    diagnostics, conversions = check_arrays(inputs, declared, "the input")
    _report_checked(diagnostics, conversions, result, arguments)
    return not has_errors(diagnostics)


def _report_checked(diagnostics, conversions, result, arguments) -> None:
    """Diagnostics about arrays on stderr, and with `--verbose` the conversions accepted."""
    if diagnostics:
        _report(sort_diagnostics(diagnostics), result.sources, arguments, stream=sys.stderr)
    if getattr(arguments, "verbose", False):
        for conversion in conversions:
            print(f"note: {conversion}", file=sys.stderr)


def _compile(arguments) -> int:
    """`poseir compile PATH --target onnx|ir -o OUT`."""
    from pathlib import Path

    from poseir.backends.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
    from poseir.compiler import prepare_for_backend

    from poseir.passes.pipeline import describe, pass_names

    if arguments.passes:
        sys.stdout.write(describe())
        return EXIT_OK
    if arguments.path is None or arguments.output is None:
        print("error: `poseir compile` needs a PATH and `-o OUT` (or `--passes` to list the passes)", file=sys.stderr)
        return EXIT_USAGE
    unknown = [name for name in arguments.print_after if name != "all" and name not in pass_names()]
    if unknown:
        print(f"error: no pass called `{unknown[0]}`; passes: {', '.join(pass_names())} (or `all`)",
              file=sys.stderr)
        return EXIT_USAGE
    opset = DEFAULT_OPSET if arguments.opset is None else arguments.opset
    if arguments.target == "onnx" and not MIN_OPSET <= opset <= MAX_OPSET:
        print(f"error: opset {opset} is not supported; choose {MIN_OPSET} to {MAX_OPSET}", file=sys.stderr)
        return EXIT_USAGE
    if arguments.target == "ir" and (arguments.opset is not None or arguments.weights):
        print("error: --opset and --weights only apply to --target onnx", file=sys.stderr)
        return EXIT_USAGE
    built, code = _build(arguments, arguments.mode)
    if built is None:
        return code
    graph, result = built
    weights = None
    if arguments.target == "onnx":
        # Weights are checked against the model as written, before passes fold or drop any.
        weights = _weights(arguments, graph, result, _limits(arguments), seeded=False)
        if arguments.weights and weights is None:
            return EXIT_ERRORS
    graph = prepare_for_backend(graph, optimize=bool(arguments.optimize), after=_printer(arguments.print_after))
    try:
        graph, profile = _legalized(arguments, graph, result)
    except DiagnosticError as error:
        return _usage_error(error.diagnostic, arguments)
    if graph is None:
        return EXIT_ERRORS
    if arguments.target == "ir":
        from poseir.ir.graph import format_graph
        from poseir.syntax.files import write_output

        write_output(arguments.output, format_graph(graph).encode("utf-8"))
        print(f"wrote {arguments.output}: {len(graph.nodes)} nodes", file=sys.stderr)
        return EXIT_OK
    try:
        return _compile_onnx(arguments, graph, weights, opset, profile)
    except DiagnosticError as error:
        _report([error.diagnostic], result.sources, arguments, stream=sys.stderr)
        return EXIT_ERRORS


def _printer(names: list[str]):
    """The `after` hook printing the IR after the passes named (or `all`), or None."""
    from poseir.ir.graph import format_graph

    if not names:
        return None

    def after(name: str, graph) -> None:
        if "all" in names or name in names:
            sys.stdout.write(f"# after {name}: {len(graph.nodes)} nodes\n{format_graph(graph)}")

    return after


def _legalized(arguments, graph, result):
    """(graph, profile) after `--profile`/`--dim`; (None, profile) after reporting what could not be legalized."""
    from poseir.passes.legalize import Profile, legalize, load_profile, parse_dims

    dims = parse_dims(arguments.dim)
    if arguments.profile is None and not dims:
        return graph, None
    profile = load_profile(arguments.profile) if arguments.profile else Profile("dims", "fixed dims", {})
    graph, diagnostics = legalize(graph, profile, dims)
    if diagnostics:
        _report(sort_diagnostics(diagnostics), result.sources, arguments, stream=sys.stderr)
    return (None if has_errors(diagnostics) else graph), profile


def _compile_onnx(arguments, graph, weights, opset: int, profile=None) -> int:
    """Export with the given (already checked) or seeded weights and save."""
    from poseir.backends.onnx_export import export, save
    from poseir.passes.legalize import export_options

    model = export(graph, weights, opset, seed=arguments.seed, options=export_options(profile))
    files = save(model, arguments.output)
    size = sum(_file_size(path) for path in files)
    print(f"wrote {', '.join(files)}: {len(model.graph.node)} ONNX nodes, opset {opset}, "
          f"{size / 1e6:.1f} MB", file=sys.stderr)
    return EXIT_OK


def _convert_weights(arguments) -> int:
    """`poseir convert-weights CKPT -o W.safetensors [--weights-key KEY]`."""
    from poseir.weights.files import read_weights, save_weights

    try:
        weights, entry = read_weights(arguments.checkpoint, _limits(arguments).array_bytes, arguments.weights_key)
        save_weights(arguments.output, weights)
    except DiagnosticError as error:
        return _usage_error(error.diagnostic, arguments)
    values = sum(int(array.size) for array in weights.values())
    source = f"`{entry}` of {arguments.checkpoint}" if entry else arguments.checkpoint
    print(f"wrote {arguments.output}: {len(weights)} tensors, {values:,} values, from {source}", file=sys.stderr)
    return EXIT_OK


def _synth(arguments) -> int:
    """`poseir synth -o DIR [--seed N]`: the two VideoPose3D dataset files, synthesized."""
    from poseir.recipe.data import save_dataset
    from poseir.recipe.synth import METADATA, SynthOptions, check_options, synthesize

    options = SynthOptions(subjects=_names(arguments.subjects), frames=arguments.frames, seed=arguments.seed,
                           **({"actions": _names(arguments.actions)} if arguments.actions else {}))
    try:
        check_options(options)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    positions_3d, positions_2d = synthesize(options)
    path_3d, path_2d = save_dataset(arguments.output, positions_3d, positions_2d, METADATA)
    sequences = sum(len(actions) for actions in positions_3d.values())
    frames = sum(len(array) for actions in positions_3d.values() for array in actions.values())
    print(f"wrote {path_3d} ({sequences} sequences, {frames} frames of 32 joints) and {path_2d} "
          f"(4 cameras each)", file=sys.stderr)
    return EXIT_OK


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _eval(arguments) -> int:
    """`poseir eval PATH --data-3d F --data-2d F`: VideoPose3D's protocol, a table or JSON on stdout."""
    from poseir.recipe.evaluate import EvalOptions, evaluate
    from poseir.recipe.report import report_json, report_table

    built, code = _build(arguments, "infer")
    if built is None:
        return code
    graph, result = built
    limits = _limits(arguments)
    options = EvalOptions(subjects=_names(arguments.subjects), flip=arguments.flip, runtime=arguments.runtime,
                          array_bytes=limits.array_bytes)
    if options.runtime == "onnxruntime" and not _importable("onnxruntime"):
        print("error: --runtime onnxruntime needs the onnxruntime package (pip install onnxruntime)", file=sys.stderr)
        return EXIT_USAGE
    try:
        weights = _weights(arguments, graph, result, limits, seeded=True)
        if weights is None:
            return EXIT_ERRORS
        with _progress(arguments) as progress:
            report = evaluate(graph, weights, arguments.data_3d, arguments.data_2d, options, progress)
    except DiagnosticError as error:
        _report([error.diagnostic], result.sources, arguments, stream=sys.stderr)
        return EXIT_ERRORS
    if arguments.format == "json":
        print(json.dumps(report_json(report, arguments.weights), indent=2, sort_keys=True))
    else:
        from rich.console import Console

        Console(width=110, force_terminal=False, color_system=None).print(report_table(report, arguments.weights))
    return EXIT_OK


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _progress(arguments):
    """A rich progress bar on stderr when it is a terminal; otherwise a context that reports nothing."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    return _ProgressBar()


class _ProgressBar:
    """A rich progress bar as a progress callback (done, total, what)."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.bar.__enter__()
        self.task = self.bar.add_task("evaluating", total=None)
        return self.update

    def update(self, done: int, total: int, what: str) -> None:
        self.bar.update(self.task, completed=done, total=total, description=what)

    def __exit__(self, *exception):
        return self.bar.__exit__(*exception)


def _file_size(path: str) -> int:
    from pathlib import Path

    return Path(path).stat().st_size


def _explain_node(arguments) -> int:
    """`poseir explain-node MODEL.onnx NODE`."""
    from poseir.backends.onnx_explain import explain_node

    try:
        print(explain_node(arguments.model, arguments.node), end="")
    except DiagnosticError as error:
        return _usage_error(error.diagnostic, arguments)
    return EXIT_OK


def _load_inputs(path: str, max_bytes: int) -> dict:
    """An inputs `.npz` (no pickles, at most `max_bytes` of arrays), or E404."""
    from poseir.weights.files import read_npz

    try:
        return read_npz(path, max_bytes)
    except Exception as error:  # noqa: BLE001  (any unreadable file is reported, not raised)
        raise DiagnosticError(Diagnostic.make("E404", f"cannot read inputs from `{path}`: {error}", None))


def _params(arguments) -> int:
    """`poseir params PATH [--weights W]`."""
    from poseir.weights.check import check_weights
    from poseir.weights.files import load_weights

    built, code = _build(arguments, "infer")
    if built is None:
        return code
    graph, result = built
    diagnostics = []
    if arguments.weights:
        try:
            weights = load_weights(arguments.weights, _limits(arguments).array_bytes, arguments.weights_key)
        except DiagnosticError as error:
            _report([error.diagnostic], result.sources, arguments, stream=sys.stderr)
            return EXIT_ERRORS
        diagnostics = check_weights(graph, weights)
    if arguments.format == "json":
        print(json.dumps(_params_json(graph, diagnostics, result.sources), indent=2, sort_keys=True))
    else:
        _print_params_table(graph)
        _report(diagnostics, result.sources, arguments, stream=sys.stderr)
    return EXIT_ERRORS if has_errors(diagnostics) else EXIT_OK


def _params_json(graph, diagnostics, sources) -> dict:
    """The parameter table and weight problems as JSON."""
    from poseir.diagnostics.render import render_json

    return {
        "model": graph.name,
        "parameters": [
            {"name": parameter.name, "shape": list(parameter.shape), "dtype": parameter.type.dtype,
             "kind": parameter.kind, "file": parameter.span.path, "line": parameter.span.line}
            for parameter in graph.parameters
        ],
        "count": sum(_numel(parameter.shape) for parameter in graph.parameters if parameter.kind == "parameter"),
        "diagnostics": json.loads(render_json(diagnostics, sources)),
    }


def _numel(shape) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def _print_params_table(graph) -> None:
    """A rich table: key, shape, dtype, kind, line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{graph.name}: state_dict", show_lines=False)
    for column in ("key", "shape", "dtype", "kind", "line"):
        table.add_column(column, justify="right" if column == "line" else "left")
    for parameter in graph.parameters:
        shape = "(" + ", ".join(str(dim) for dim in parameter.shape) + ("," if len(parameter.shape) == 1 else "") + ")"
        table.add_row(parameter.name, shape, parameter.type.dtype, parameter.kind, str(parameter.span.line))
    console = Console(width=120, force_terminal=False)
    console.print(table)
    trainable = sum(_numel(parameter.shape) for parameter in graph.parameters if parameter.kind == "parameter")
    console.print(f"{len(graph.parameters)} entries, {trainable:,} trainable parameters")


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found `{text}`")
    return number


def _graph(arguments) -> int:
    """`poseir graph PATH -o model.dot|svg`: one vertex per IR node, modules as clusters, types on edges."""
    from pathlib import Path

    from poseir.backends.graphviz import build_drawing, render_svg, write_dot
    from poseir.syntax.files import write_output

    graphs = {}
    for mode in (("infer", "train") if arguments.mode == "both" else (arguments.mode,)):
        built, code = _build(arguments, mode)
        if built is None:
            return code
        graphs[mode] = built[0]
    drawing = build_drawing(graphs, arguments.depth)
    dot = write_dot(drawing)
    output = Path(arguments.output)
    if output.suffix.lower() == ".svg":
        svg = render_svg(dot)
        if svg is None:
            print("error: writing SVG needs Graphviz's `dot` program; install Graphviz or write a .dot file",
                  file=sys.stderr)
            return EXIT_USAGE
        write_output(output, svg)
    else:
        write_output(output, dot.encode("utf-8"))
    ir = ", ".join(f"{mode} {len(graph.nodes)}" for mode, graph in graphs.items())
    boxes = sum(vertex.kind == "module" for vertex in drawing.vertices.values())
    print(f"wrote {output}: {len(drawing.vertices)} vertices ({boxes} module boxes), {len(drawing.edges)} edges, "
          f"{len(drawing.clusters)} module clusters (IR nodes: {ir})", file=sys.stderr)
    return EXIT_OK


def _split(arguments) -> int:
    """`poseir split PATH`: shared and mode-only parameters and ops, and the checks on them."""
    from poseir.passes.split_flows import split_flows

    graphs = {}
    for mode in ("train", "infer"):
        built, code = _build(arguments, mode)
        if built is None:
            return code
        graphs[mode], result = built
    split, diagnostics = split_flows(graphs["train"], graphs["infer"])
    diagnostics = sort_diagnostics(diagnostics)
    if arguments.format == "json":
        print(json.dumps(_split_json(split, diagnostics, result.sources), indent=2, sort_keys=True))
    else:
        sys.stdout.write(_split_text(split))
        _report(diagnostics, result.sources, arguments, stream=sys.stderr)
    return EXIT_ERRORS if has_errors(diagnostics) else EXIT_OK


def _split_text(split) -> str:
    """The split as sections of plain text."""
    lines = [f"model {split.model}: training vs inference", "",
             f"parameters both flows read: {len(split.shared)} "
             f"({sum(_numel(shape) for _, shape in split.shared):,} values)"]
    for title, names in (("read only in training", split.train_only_parameters),
                         ("read only in inference", split.infer_only_parameters)):
        lines.append(f"parameters {title}: " + (", ".join(names) if names else "none"))
    for title, sites in (("ops only in training", split.train_only_ops),
                         ("ops only in inference", split.infer_only_ops),
                         ("ops whose meaning depends on the mode", split.mode_dependent)):
        lines += ["", f"{title}:" if sites else f"{title}: none"]
        lines += [f"  {site.op:<20} x{site.count:<4} {site.span}" for site in sites]
    lines += ["", "parameters read by differently configured ops:" if split.read_differently
              else "parameters read by differently configured ops: none"]
    for name, train, infer in split.read_differently:
        lines += [f"  {name}", f"    training:  {train}", f"    inference: {infer}"]
    return "\n".join(lines) + "\n"


def _split_json(split, diagnostics, sources) -> dict:
    """The split as JSON."""
    from poseir.diagnostics.render import render_json

    def sites(items):
        return [{"op": site.op, "count": site.count, "file": site.span.path, "line": site.span.line,
                 "column": site.span.column} for site in items]

    return {
        "model": split.model,
        "shared_parameters": [{"key": name, "shape": list(shape)} for name, shape in split.shared],
        "train_only_parameters": split.train_only_parameters,
        "infer_only_parameters": split.infer_only_parameters,
        "train_only_ops": sites(split.train_only_ops),
        "infer_only_ops": sites(split.infer_only_ops),
        "mode_dependent_ops": sites(split.mode_dependent),
        "read_differently": [{"key": name, "train": train, "infer": infer}
                             for name, train, infer in split.read_differently],
        "diagnostics": json.loads(render_json(diagnostics, sources)),
    }


def _fix(arguments) -> int:
    """`poseir fix PATH [--write] [--unsafe]`: a diff by default; the file changes only with --write."""
    from poseir.diagnostics.fixes import fix_text
    from poseir.syntax.files import SourceReadError, SourceWriteError, Snapshot, read_source, write_back

    path = arguments.path
    try:
        limits = _limits(arguments)
        snapshot = Snapshot.of(path)
        original, encoding = read_source(path, limits.file_bytes)
    except DiagnosticError as error:
        return _usage_error(error.diagnostic, arguments)
    except (OSError, SourceReadError) as error:
        print(f"error[E405]: cannot read `{path}`: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return EXIT_USAGE
    result = fix_text(path, original, unsafe=arguments.unsafe, root=arguments.root, limits=limits)
    if result.changed and arguments.write:
        try:
            write_back(path, result.fixed, encoding, snapshot)
        except SourceWriteError as error:
            print(f"error: `{path}` was not changed: {error}", file=sys.stderr)
            return EXIT_ERRORS
    elif result.changed:
        sys.stdout.write(result.diff())
    _report(result.remaining, result.sources, arguments, stream=sys.stderr)
    _print_fix_summary(result, arguments)
    return EXIT_ERRORS if has_errors(result.remaining) else EXIT_OK


def _print_fix_summary(result, arguments) -> None:
    """What was applied (or would be), and a hint when only unsafe fixes are left."""
    verb = "applied" if arguments.write else "would apply"
    for message in result.applied:
        print(f"{verb}: {message}", file=sys.stderr)
    if not result.applied:
        print(f"poseir: no {'' if arguments.unsafe else 'safe '}fixes for `{result.path}`", file=sys.stderr)
    unsafe_left = any(fix for diagnostic in result.remaining for fix in diagnostic.fixes if not fix.safe)
    if unsafe_left and not arguments.unsafe:
        print("note: some diagnostics have fixes that may change meaning; review them with --unsafe",
              file=sys.stderr)


def _explain(arguments) -> int:
    """`poseir explain E204`."""
    from poseir.diagnostics.codes import CODES
    from poseir.diagnostics.render import explain

    code = arguments.code.upper()
    if code not in CODES:
        print(f"error: no diagnostic code `{arguments.code}`; codes are E001-E900 and W300-W302", file=sys.stderr)
        return EXIT_USAGE
    print(explain(code))
    return EXIT_OK


def _lsp(arguments) -> int:
    """`poseir lsp`: serve the language server protocol on stdin/stdout."""
    from poseir.lsp.server import serve

    serve()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
