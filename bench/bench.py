"""`make bench`: one table of speed and memory, every number measured in this run.

For every example at the issue's sizes: the numpy backend's run time and onnxruntime's on poseir's
export (2 intra-op threads; numpy's BLAS pinned to 2 threads too), their ratio, onnxruntime on
the export without poseir's optimizing passes (-O0), the peak memory of
both (peak RSS of a child process that builds, loads and runs only that backend), warm and cold
`poseir check`, and onnx's C++ shape inference on the structure-only export. Then the scaling
rows: `check` of generated chains of ~1k, 10k and 100k nodes and the fitted exponent of time vs
nodes. Run with `.venv/bin/python bench/bench.py` (`--quick`: tiny sizes, one repeat, a smoke run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
THREADS = 2
MAX_REPEATS = 50  # timed runs a backend child makes at most within its time budget
FLOOR_REPEATS = 5  # timed calls per product shape in a products child (its minimum is that shape's time)
# Fixed before numpy is imported in the children, so BLAS and onnxruntime get the same threads.
CHILD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": str(THREADS), "OMP_NUM_THREADS": str(THREADS),
                     "MKL_NUM_THREADS": str(THREADS)}

# (example, input shape): the sizes of issue 10 (MHFormer at its 351 frames, SemGCN with non-local like SemGCN).
CASES = [
    ("videopose3d", (1, 2242, 17, 2)),
    ("simplebaseline", (1024, 32)),
    ("poseformer", (64, 81, 17, 2)),
    ("mixste", (1, 243, 17, 2)),
    ("motionbert", (1, 243, 17, 3)),
    ("semgcn", (1024, 16, 2)),
    ("integral", (8, 3, 256, 256)),
    ("mhformer", (1, 351, 17, 2)),
    ("semgcn_nonlocal", (1024, 16, 2)),
]
QUICK_CASES = {"videopose3d": (1, 250, 17, 2), "simplebaseline": (8, 32), "poseformer": (2, 81, 17, 2),
               "mixste": (1, 27, 17, 2), "motionbert": (1, 9, 17, 3), "semgcn": (8, 16, 2), "integral": (1, 3, 64, 64),
               "mhformer": (1, 27, 17, 2), "semgcn_nonlocal": (8, 16, 2)}
QUICK_OVERRIDES = {"videopose3d": {"channels": 64}, "simplebaseline": {"linear_size": 64},
                   "poseformer": {"embed_dim_ratio": 8, "depth": 2}, "semgcn": {"hid_dim": 16},
                   "motionbert": {"dim_feat": 32, "dim_rep": 32, "depth": 1},
                   "mixste": {"num_frame": 27, "embed_dim_ratio": 16, "depth": 2}, "integral": {"width": 8},
                   "mhformer": {"frames": 27, "channel": 16, "d_hid": 32}, "semgcn_nonlocal": {"hid_dim": 16}}
SCALING_NODES = (1_000, 10_000, 100_000)
QUICK_SCALING_NODES = (100, 300, 1_000)
NODES_PER_BLOCK = 3  # linear, relu, add


# --------------------------------------------------------------------------- the children


def child_main(arguments: list[str]) -> None:
    """`--child numpy|onnxruntime NAME SHAPE REPEATS OVERRIDES [ONNX]`: time one backend, print JSON.

    REPEATS is a count, or for a backend `{"at_least": count, "seconds": budget}`: the child runs at
    least `count` times and goes on, up to MAX_REPEATS runs, until `budget` seconds have passed, so a
    small model's minimum is taken over as many runs as a large one's time allows.
    """
    backend, name, shape, repeats, overrides = arguments[:5]
    shape, repeats, overrides = tuple(json.loads(shape)), json.loads(repeats), json.loads(overrides)
    at_least, budget = (repeats, 0.0) if isinstance(repeats, int) else (repeats["at_least"], repeats["seconds"])
    if backend.startswith("products-"):  # the example's matrix products alone (bench/products.py)
        import products

        found = products.products(name, overrides, shape)
        seconds = (products.numpy_seconds(found, at_least) if backend == "products-numpy"
                   else products.onnxruntime_seconds(found, at_least, THREADS))
        print(json.dumps({"min": seconds}))
        return
    import numpy as np

    inputs_array = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if backend == "numpy":
        run, extra = _numpy_runner(name, overrides, inputs_array)
    else:
        run, extra = _onnxruntime_runner(arguments[5], inputs_array)
    times = wall_times(run, at_least, budget)  # (the warm-up run builds plans, sessions, first-touch memory)
    print(json.dumps({"min": min(times), "median": statistics.median(times), "rss": peak_rss(), **extra()}))


def peak_rss() -> int:
    """This process's peak resident memory in bytes: VmHWM of its own address space.

    getrusage's ru_maxrss (self, or the parent's RUSAGE_CHILDREN) would also count the parent's
    memory, which a child inherits at fork and keeps as its maximum across exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _numpy_runner(name: str, overrides: dict, array):
    """The numpy backend on the prepared inference graph with seeded weights."""
    from poseir.backends import numpy_interpreter
    from poseir.compiler import build, prepare_for_backend
    from poseir.weights.init import initialize

    graph, _ = build(str(EXAMPLES / f"{name}.pose"), overrides=overrides)
    graph = prepare_for_backend(graph)
    weights = initialize(graph.parameters, 0)
    if hasattr(numpy_interpreter, "RunStats"):
        # Binding weights computes what reads only them (folded batch norms) once, as onnxruntime does at load.
        from poseir.passes.fold_parameters import fold_parameters

        graph, weights = fold_parameters(graph, weights)
    inputs = {graph.inputs[0].name: array}
    if not hasattr(numpy_interpreter, "RunStats"):  # a checkout from before the plan (for before/after tables)
        return (lambda: numpy_interpreter.run_graph(graph, inputs, weights)), (lambda: {"tracked": 0})
    stats = numpy_interpreter.RunStats()
    return ((lambda: numpy_interpreter.run_graph(graph, inputs, weights, stats=stats)),
            (lambda: {"tracked": stats.peak_bytes}))


def _onnxruntime_runner(path: str, array):
    """onnxruntime on the exported file, `THREADS` intra-op threads, default optimizations."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inputs = {session.get_inputs()[0].name: array}
    return (lambda: session.run(None, inputs)), dict


def run_child(arguments: list) -> dict:
    """Run a child (BLAS and onnxruntime threads fixed in its environment) and return its JSON."""
    environment = {**os.environ, **CHILD_ENVIRONMENT}
    process = subprocess.run([sys.executable, __file__, "--child", *map(str, arguments)], capture_output=True,
                             env=environment, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"benchmark child {arguments[:2]} failed:\n{process.stderr}")
    return json.loads(process.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- one example


def export_files(name: str, overrides: dict, directory: Path) -> tuple[Path, Path, object]:
    """The full ONNX exports (seeded weights) on disk, optimized and with only the cleanup passes (-O0),
    and the structure-only optimized model in memory."""
    from poseir.backends.onnx_export import export, save
    from poseir.compiler import build, prepare_for_backend
    from poseir.weights.init import initialize

    built, _ = build(str(EXAMPLES / f"{name}.pose"), overrides=overrides)
    paths, models = [], []
    for optimize in (True, False):
        graph = prepare_for_backend(built, optimize=optimize)
        models.append(export(graph, initialize(graph.parameters, 0)))
        paths.append(directory / f"{name}{'' if optimize else '-O0'}.onnx")
        save(models[-1], str(paths[-1]))
    return paths[0], paths[1], structure_only(models[0])


def structure_only(model):
    """The model with every initializer's data moved out (declared as external data, never read)."""
    import onnx

    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for tensor in stripped.graph.initializer:
        tensor.ClearField("raw_data")
        for field in ("float_data", "int64_data", "int32_data", "double_data"):
            tensor.ClearField(field)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        tensor.external_data.add(key="location", value="weights.bin")
    return stripped


def infer_shapes_seconds(model, repeats: int) -> float:
    """Median time of onnx.shape_inference.infer_shapes on a model."""
    import onnx.shape_inference

    return median_time(lambda: onnx.shape_inference.infer_shapes(model), repeats)


def wall_times(function, at_least: int, seconds: float = 0.0, most: int = MAX_REPEATS) -> list[float]:
    """Wall times of `function()` after one untimed warm-up call: at least `at_least` calls, and more, up to
    `most`, until `seconds` have passed."""
    function()
    times, deadline = [], time.perf_counter() + seconds
    while len(times) < at_least or (time.perf_counter() < deadline and len(times) < most):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def median_time(function, repeats: int) -> float:
    """Median wall time of `function()` over `repeats` calls after one warm-up call."""
    return statistics.median(wall_times(function, repeats))


def cold_check(path: Path, repeats: int) -> float:
    """Median wall time of `python -m poseir check PATH` in a new process (what a user waits for).

    One untimed run first writes the package's bytecode, as installing it does: with
    PYTHONDONTWRITEBYTECODE set (some CI images set it), every run would compile the changed sources
    again and the column would measure Python's compiler instead of poseir.
    """
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-m", "poseir", "check", str(path)]
    return median_time(lambda: subprocess.run(command, check=True, capture_output=True, env=environment), repeats)


def warm_check(path: Path, repeats: int, overrides: dict | None = None) -> tuple[float, float]:
    """Minimum and median time of `poseir.compiler.check` (both modes) in a process that has checked the file once."""
    from poseir.compiler import check

    times = wall_times(lambda: check(str(path), overrides=overrides), repeats)
    return min(times), statistics.median(times)


def best_of(runs: list[dict]) -> dict:
    """The fastest time and the largest memory over several children of one backend."""
    return {"min": min(run["min"] for run in runs), "rss": max(run["rss"] for run in runs),
            "tracked": max(run.get("tracked", 0) for run in runs)}


def example_row(name: str, shape: tuple, quick: bool, directory: Path, repeats: int, rounds: int,
                seconds: float) -> dict:
    """Every measurement of one example."""
    overrides = QUICK_OVERRIDES[name] if quick else {}
    path, unoptimized, structure = export_files(name, overrides, directory)
    numpy_runs, onnx_runs = [], []
    mine, theirs = (json.dumps({"at_least": count, "seconds": seconds}) for count in (repeats, repeats * 2))
    for _ in range(rounds):  # alternating children, so a burst of load on the machine hits both backends
        numpy_runs.append(run_child(["numpy", name, json.dumps(shape), mine, json.dumps(overrides)]))
        onnx_runs.append(run_child(["onnxruntime", name, json.dumps(shape), theirs, json.dumps(overrides), path]))
    numpy_result, onnx_result = best_of(numpy_runs), best_of(onnx_runs)
    plain = run_child(["onnxruntime", name, json.dumps(shape), theirs, json.dumps(overrides), unoptimized])
    # The products alone, alternating too: each child's sum of per-shape minima, the least sum per backend.
    floors = {"numpy": [], "onnxruntime": []}
    for _ in range(rounds):
        for backend, found in floors.items():
            found.append(run_child([f"products-{backend}", name, json.dumps(shape), max(repeats, FLOOR_REPEATS),
                                    json.dumps(overrides)])["min"])
    floor = [min(floors["numpy"]), min(floors["onnxruntime"])]
    source = EXAMPLES / f"{name}.pose"
    return {"name": name, "shape": shape, "numpy": numpy_result, "onnxruntime": onnx_result, "unoptimized": plain,
            "floor": floor[0] / floor[1],
            "cold": cold_check(source, 1 if quick else 2), "warm": warm_check(source, 1 if quick else 15, overrides),
            "infer_shapes": infer_shapes_seconds(structure, 1 if quick else 5)}


# --------------------------------------------------------------------------- scaling


def chain_source(depth: int) -> str:
    """A generated model: `depth` residual Linear/relu blocks, NODES_PER_BLOCK nodes each."""
    return f"""dim B
model chain = Chain(depth={depth})

module Block() {{
    self.fc = Linear(16, 16)
    forward(x) {{
        return x + relu(self.fc(x))
    }}
}}

module Chain(depth: int) {{
    self.blocks = [Block() for i in 0..depth]
    forward(x: f32[B, 16]) -> (y: f32[B, 16]) {{
        for i in 0..depth {{
            x = self.blocks[i](x)
        }}
        return x
    }}
}}
"""


def scaling_rows(sizes: tuple[int, ...], directory: Path) -> tuple[list[tuple[int, float]], float]:
    """(nodes of the inference graph, seconds of a warm check of both modes) per size, and the fitted exponent."""
    import dataclasses

    from poseir.compiler import check
    from poseir.limits import DEFAULT_LIMITS

    # The largest chain can take longer than the default elaboration time limit on a loaded machine.
    limits = dataclasses.replace(DEFAULT_LIMITS, seconds=3600.0)
    rows = []
    for wanted in sizes:
        path = directory / f"chain_{wanted}.pose"
        path.write_text(chain_source(max(1, wanted // NODES_PER_BLOCK)))
        start = time.perf_counter()
        result = check(str(path), limits=limits)
        seconds = time.perf_counter() - start
        assert result.ok, [diagnostic.message for diagnostic in result.diagnostics]
        rows.append((len(result.graphs[("chain", "infer")].nodes), seconds))
    return rows, fitted_exponent(rows)


def fitted_exponent(rows: list[tuple[int, float]]) -> float:
    """The least-squares slope of log(seconds) against log(nodes): 1 means linear."""
    points = [(math.log(nodes), math.log(seconds)) for nodes, seconds in rows]
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else float("nan")


# --------------------------------------------------------------------------- the table


def format_table(rows: list[dict]) -> list[str]:
    """One line per example."""
    header = (f"{'example':<16}{'input':<18}{'numpy s':>9}{'ort s':>8}{'ratio':>7}{'gemm floor':>11}{'ort -O0 s':>10}"
              f"{'numpy MB':>10}{'ort MB':>8}"
              f"{'mem ratio':>10}{'plan MB':>9}{'warm min/med ms':>16}{'cold ms':>9}{'infer_shapes ms':>16}")
    lines = [header, "-" * len(header)]
    for row in rows:
        numpy_result, onnx_result = row["numpy"], row["onnxruntime"]
        lines.append(
            f"{row['name']:<16}{'x'.join(map(str, row['shape'])):<18}{numpy_result['min']:>9.3f}"
            f"{onnx_result['min']:>8.3f}{numpy_result['min'] / onnx_result['min']:>7.2f}{row['floor']:>11.2f}"
            f"{row['unoptimized']['min']:>10.3f}"
            f"{numpy_result['rss'] / 1e6:>10.0f}{onnx_result['rss'] / 1e6:>8.0f}"
            f"{numpy_result['rss'] / onnx_result['rss']:>10.2f}{numpy_result['tracked'] / 1e6:>9.0f}"
            f"{'/'.join(f'{value * 1e3:.1f}' for value in row['warm']):>16}{row['cold'] * 1e3:>9.0f}"
            f"{row['infer_shapes'] * 1e3:>16.2f}")
    return lines


def main() -> None:
    """Measure everything and print the table (times are minima over the repeats of one child each)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat (a smoke run)")
    parser.add_argument("--only", nargs="*", help="examples to measure (default: all)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the generated-model scaling rows")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed runs per child after a warm-up (onnxruntime's children do twice as many)")
    parser.add_argument("--rounds", type=int, default=2, help="children per backend, alternating between backends")
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="each backend child goes on running, up to %d runs, until this many seconds have passed"
                             % MAX_REPEATS)
    arguments = parser.parse_args()
    started = time.perf_counter()
    cases = [(name, QUICK_CASES[name] if arguments.quick else shape) for name, shape in CASES
             if not arguments.only or name in arguments.only]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, shape in cases:
            repeats, rounds, seconds = ((1, 1, 0.0) if arguments.quick
                                        else (arguments.repeats, arguments.rounds, arguments.seconds))
            rows.append(example_row(name, shape, arguments.quick, Path(directory), repeats, rounds, seconds))
            print(f"measured {name}", file=sys.stderr, flush=True)
        print(f"numpy backend vs onnxruntime, {THREADS} threads each; times: the minimum over alternating children;"
              f" memory: each child's peak RSS, VmHWM (plan MB: the plan's own peak of held arrays)")
        print("\n".join(format_table(rows)), flush=True)
        scaling = None if arguments.no_scaling else scaling_rows(
            QUICK_SCALING_NODES if arguments.quick else SCALING_NODES, Path(directory))
    if scaling is not None:
        rows_text = ", ".join(f"{nodes} nodes {seconds:.2f} s" for nodes, seconds in scaling[0])
        print(f"scaling of a warm check (both modes) on generated chains: {rows_text}; "
              f"fitted exponent {scaling[1]:.2f}")
    print(f"total bench time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
