"""Check times of every example: warm (both modes, in a process that has checked the file once) and cold.

Self-contained on purpose: copied into an older checkout (with its own virtual environment), it
measures that code the same way, which is how before/after rows of the check time are made:

    python bench/bench_check.py                      # this checkout
    cp bench/bench_check.py OLD/bench/ && OLD/.venv/bin/python OLD/bench/bench_check.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def warm_ms(path: Path, repeats: int) -> float:
    """Median milliseconds of `poseir.compiler.check` after one warm-up check of the same file."""
    from poseir.compiler import check

    check(str(path))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        check(str(path))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def cold_ms(path: Path, repeats: int) -> float:
    """Median milliseconds of `python -m poseir check PATH` in a new process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "poseir", "check", str(path)], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    """Print one row per example of this checkout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed warm checks per example")
    parser.add_argument("--cold", type=int, default=3, help="cold processes per example (0: skip)")
    arguments = parser.parse_args()
    print(f"{'example':<18}{'warm ms':>9}{'cold ms':>9}")
    for path in sorted((ROOT / "examples").glob("*.pose")):
        cold = f"{cold_ms(path, arguments.cold):9.0f}" if arguments.cold else f"{'-':>9}"
        print(f"{path.stem:<18}{warm_ms(path, arguments.repeats):9.1f}{cold}", flush=True)


if __name__ == "__main__":
    main()
