"""ONNX export per example: export time, file size, and numpy backend vs onnxruntime run time.

Prints one table; every number is measured in this run. Run with `.venv/bin/python bench/bench_onnx.py`
(`--small` uses the test suite's small hyper-parameters for a quick look).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# (example, input shapes): the published configurations at a typical serving batch.
CASES = [
    ("videopose3d", {"keypoints": (1, 243, 17, 2)}),
    ("videopose3d", {"keypoints": (4, 300, 17, 2)}),
    ("simplebaseline", {"pose_2d": (64, 32)}),
    ("poseformer", {"keypoints": (8, 81, 17, 2)}),
    ("semgcn", {"pose_2d": (64, 16, 2)}),
    ("motionbert", {"keypoints": (1, 27, 17, 3)}),
    ("mixste", {"keypoints": (1, 27, 17, 2)}),
    ("integral", {"image": (1, 3, 256, 256)}),
    ("mhformer", {"keypoints": (1, 351, 17, 2)}),
    ("semgcn_nonlocal", {"pose_2d": (64, 16, 2)}),
]
# Published configurations, except MixSTE at 27 frames (its 243-frame clip costs ~295 GFLOPs,
# minutes in numpy); MotionBERT accepts any clip length up to 243.
OVERRIDES = {"mixste": {"num_frame": 27}}
SMALL = {"videopose3d": {"channels": 64}, "simplebaseline": {"linear_size": 64},
         "poseformer": {"embed_dim_ratio": 8, "depth": 2}, "semgcn": {"hid_dim": 16},
         "motionbert": {"dim_feat": 32, "dim_rep": 32, "depth": 1}, "mixste": {"num_frame": 27, "embed_dim_ratio": 16,
                                                                             "depth": 2},
         "integral": {"width": 8}, "mhformer": {"frames": 27, "channel": 16, "d_hid": 32},
         "semgcn_nonlocal": {"hid_dim": 16}}


def median_time(function, repeats: int) -> float:
    """Median wall time of `function()` over `repeats` calls (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, shapes: dict, overrides: dict, directory: Path) -> dict:
    """One row: export and file size, then both backends on the same inputs and weights."""
    import onnxruntime

    from poseir.backends.numpy_interpreter import run_graph
    from poseir.backends.onnx_export import export, save
    from poseir.compiler import build
    from poseir.weights.init import initialize

    graph, _ = build(str(EXAMPLES / f"{name}.pose"), overrides=overrides)
    weights = initialize(graph.parameters, 0)
    export_seconds = median_time(lambda: export(graph, weights), 3)
    path = directory / f"{name}.onnx"
    files = save(export(graph, weights), str(path))
    size = sum(Path(file).stat().st_size for file in files)
    rng = np.random.default_rng(0)
    inputs = {key: rng.standard_normal(shape).astype(np.float32) for key, shape in shapes.items()}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    numpy_seconds = median_time(lambda: run_graph(graph, inputs, weights), 3)
    onnx_seconds = median_time(lambda: session.run(None, inputs), 10)
    expected = run_graph(graph, inputs, weights)
    got = dict(zip([output.name for output in session.get_outputs()], session.run(None, inputs)))
    difference = max(float(np.max(np.abs(got[key] - value))) for key, value in expected.items())
    return {"nodes": len(graph.nodes), "export": export_seconds, "size": size, "numpy": numpy_seconds,
            "onnx": onnx_seconds, "difference": difference}


def main() -> None:
    """Print the table."""
    small = "--small" in sys.argv
    header = (f"{'example':<16}{'inputs':<26}{'IR nodes':>9}{'export s':>10}{'file MB':>9}{'numpy ms':>10}"
              f"{'ort ms':>9}{'numpy/ort':>10}{'max |diff|':>12}")
    print(header)
    with tempfile.TemporaryDirectory() as directory:
        for name, shapes in CASES:
            row = measure(name, shapes, SMALL[name] if small else OVERRIDES.get(name, {}), Path(directory))
            inputs = " ".join("x".join(map(str, shape)) for shape in shapes.values())
            print(f"{name:<16}{inputs:<26}{row['nodes']:>9}{row['export']:>10.3f}{row['size'] / 1e6:>9.1f}"
                  f"{row['numpy'] * 1e3:>10.1f}{row['onnx'] * 1e3:>9.2f}{row['numpy'] / row['onnx']:>10.1f}"
                  f"{row['difference']:>12.1e}")


if __name__ == "__main__":
    main()
