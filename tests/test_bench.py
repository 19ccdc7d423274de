"""The benchmark script runs (quick mode: tiny sizes, one repeat); its numbers are never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench.py"


def test_quick_bench_prints_the_table():
    """One example and the scaling rows at tiny sizes: every column and the fitted exponent are printed."""
    result = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", "simplebaseline"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("example") and "ratio" in line and "gemm floor" in line and "infer_shapes" in line
               for line in lines)
    row = next(line for line in lines if line.startswith("simplebaseline"))
    assert len(row.split()) == 14, row
    assert any("fitted exponent" in line for line in lines)
