"""Weights, inputs and outputs as untrusted files: exact dtypes only, NaN noted, bounded reads, honest writes."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from poseir.weights.files import save_weights
from test_cli import SMALL_MODEL

MODEL = SMALL_MODEL  # a Linear then a BatchNorm1d, as the CLI tests use


def poseir(*arguments, cwd) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "poseir", *map(str, arguments)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def good_weights() -> dict[str, np.ndarray]:
    """Weights of the small model, with the dtypes it declares."""
    rng = np.random.default_rng(0)
    return {"fc.weight": rng.normal(size=(3, 4)).astype(np.float32), "fc.bias": np.zeros(3, np.float32),
            "bn.weight": np.ones(3, np.float32), "bn.bias": np.zeros(3, np.float32),
            "bn.running_mean": np.zeros(3, np.float32), "bn.running_var": np.ones(3, np.float32),
            "bn.num_batches_tracked": np.array(0, np.int64)}


@pytest.fixture
def project(tmp_path) -> Path:
    """The small model and an inputs file."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "small.pose").write_text(MODEL)
    np.savez(tmp_path / "in.npz", x=np.ones((2, 4), np.float32))
    return tmp_path


def run_with(project: Path, weights: dict, *options) -> subprocess.CompletedProcess:
    """`poseir run` with these weights saved as safetensors."""
    save_weights(str(project / "w.safetensors"), weights)
    return poseir("run", "small.pose", "--inputs", "in.npz", "--weights", "w.safetensors", "-o", "out.npz",
                  *options, cwd=project)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.complex64])
def test_a_weight_of_another_kind_is_refused(project, dtype):
    weights = good_weights()
    weights["fc.weight"] = weights["fc.weight"].astype(dtype) if dtype is not np.complex64 else \
        weights["fc.weight"].astype(np.complex64)
    result = run_with(project, weights) if dtype is not np.complex64 else _run_npz(project, weights)
    assert result.returncode == 1, result.stderr
    assert "error[E408]" in result.stderr and "fc.weight" in result.stderr
    assert not (project / "out.npz").exists()


def _run_npz(project: Path, weights: dict) -> subprocess.CompletedProcess:
    """safetensors has no complex type; an .npz does."""
    np.savez(project / "w.npz", **weights)
    return poseir("run", "small.pose", "--inputs", "in.npz", "--weights", "w.npz", "-o", "out.npz", cwd=project)


def test_float64_within_range_is_accepted_and_reported_with_verbose(project):
    weights = good_weights()
    weights["fc.weight"] = weights["fc.weight"].astype(np.float64)
    quiet = run_with(project, weights)
    assert quiet.returncode == 0 and "converted" not in quiet.stderr, quiet.stderr
    verbose = run_with(project, weights, "--verbose")
    assert verbose.returncode == 0
    assert "`fc.weight`: float64 converted to f32 exactly" in verbose.stderr


def test_float64_beyond_float32_is_refused(project):
    weights = good_weights()
    weights["fc.weight"] = np.full((3, 4), 1e300)
    result = run_with(project, weights)
    assert result.returncode == 1 and "error[E408]" in result.stderr and "beyond the range" in result.stderr


def test_float16_widens(project):
    weights = good_weights()
    weights["fc.bias"] = weights["fc.bias"].astype(np.float16)
    assert run_with(project, weights).returncode == 0


def test_nan_in_weights_is_a_warning_naming_the_tensor(project):
    weights = good_weights()
    weights["fc.weight"][0, 0] = np.nan
    weights["fc.bias"][1] = np.inf
    result = run_with(project, weights)
    assert result.returncode == 0, result.stderr
    assert "warning[W409]: the weight `fc.weight` holds 1 NaN value(s) of 12" in result.stderr
    assert "warning[W409]: the weight `fc.bias` holds 1 infinite value(s) of 3" in result.stderr


def test_an_int64_input_is_refused_and_nan_input_noted(project):
    np.savez(project / "in.npz", x=np.ones((2, 4), np.int64))
    refused = run_with(project, good_weights())
    assert refused.returncode == 1 and "error[E408]: the input `x` is int64" in refused.stderr
    inputs = np.ones((2, 4), np.float32)
    inputs[1, 2] = np.nan
    np.savez(project / "in.npz", x=inputs)
    noted = run_with(project, good_weights())
    assert noted.returncode == 0 and "warning[W409]: the input `x` holds 1 NaN" in noted.stderr


def test_an_output_path_is_used_as_given(project):
    result = poseir("run", "small.pose", "--inputs", "in.npz", "-o", "result", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "result").exists() and not (project / "result.npz").exists()
    with np.load(project / "result") as saved:
        assert saved["y"].shape == (2, 3)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_failed_write_is_an_error(project):
    result = poseir("run", "small.pose", "--inputs", "in.npz", "-o", "/dev/full", cwd=project)
    assert result.returncode == 2 and "error" in result.stderr, result.stderr
    assert not Path("/dev/full.npz").exists()


def test_a_failed_write_keeps_the_old_output(project):
    (project / "ro").mkdir()
    old = project / "ro" / "out.npz"
    old.write_bytes(b"old results")
    (project / "ro").chmod(0o555)
    try:
        result = poseir("compile", "small.pose", "--target", "ir", "-o", old, cwd=project)
    finally:
        (project / "ro").chmod(0o755)
    if result.returncode == 0:  # root may write anywhere: then the write simply succeeded
        assert old.read_bytes() != b"old results"
    else:
        assert result.returncode == 2 and old.read_bytes() == b"old results"


def test_an_allocation_above_the_limit_is_a_diagnostic_at_the_line(project):
    (project / "wide.pose").write_text(
        "dim B\nmodel wide = Wide()\nmodule Wide() {\n    self.fc = Linear(4, 64)\n"
        "    forward(x: f32[B, 4]) -> (y: f32[B, 64]) {\n        return self.fc(x)\n    }\n}\n")
    np.savez(project / "in.npz", x=np.ones((16, 4), np.float32))  # 256 bytes in, 4 KiB out
    result = poseir("run", "wide.pose", "--inputs", "in.npz", "-o", "out.npz", "--limit", "array_bytes=2000",
                    cwd=project)
    assert result.returncode == 1
    assert "error[E410]" in result.stderr and "wide.pose:6:16" in result.stderr, result.stderr
    assert not (project / "out.npz").exists()


def test_an_inputs_file_holding_pickles_is_refused(project):
    np.savez(project / "in.npz", x=np.array([{"a": 1}], dtype=object))
    result = poseir("run", "small.pose", "--inputs", "in.npz", "-o", "out.npz", cwd=project)
    assert result.returncode == 1 and "pickle" in result.stderr


def test_a_compressed_bomb_is_refused_before_it_is_read(project):
    """A 16 GB array of zeros compresses to a few MB; its header is read, never its data."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (1 << 32,)
    with zipfile.ZipFile(project / "in.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(bytes(1 << 20))
    result = poseir("run", "small.pose", "--inputs", "in.npz", "-o", "out.npz", cwd=project)
    assert result.returncode == 1 and "array_bytes" in result.stderr, result.stderr
