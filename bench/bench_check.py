"""Time `poseir check` per example: in a fresh process (what a user waits for) and warm (an editor).

Prints a table; run with `.venv/bin/python bench/bench_check.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.pose"))


def cold(path: Path, repeats: int = 3) -> float:
    """Median wall time of `python -m poseir check PATH` in a new process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "poseir", "check", str(path)], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def warm(path: Path, repeats: int = 5) -> float:
    """Median time of `poseir.compiler.check` in a process that has already checked once."""
    from poseir.compiler import check

    check(str(path))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        check(str(path))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """One row per example."""
    print(f"{'example':<22}{'nodes (infer)':>14}{'cold check (s)':>16}{'warm check (s)':>16}")
    from poseir.compiler import build

    for path in EXAMPLES:
        graph, _ = build(str(path))
        nodes = len(graph.nodes) if graph else 0
        print(f"{path.stem:<22}{nodes:>14}{cold(path):>16.3f}{warm(path):>16.3f}")


if __name__ == "__main__":
    main()
