"""The `poseir` command line, run as a user runs it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

BROKEN = """\
dim B, T
model broken = Broken()

module Broken() {
    forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 34]) {
        return x.view(B, T, 51)
    }
}
"""

SMALL_MODEL = """\
dim B
model small = Small()

module Small() {
    self.fc = Linear(4, 3)
    self.bn = BatchNorm1d(3)
    forward(x: f32[B, 4]) -> (y: f32[B, 3]) {
        return self.bn(self.fc(x))
    }
}
"""


def poseir(*arguments, cwd=None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "poseir", *map(str, arguments)], capture_output=True, text=True,
                          cwd=cwd)


@pytest.fixture
def broken(tmp_path) -> Path:
    path = tmp_path / "broken.pose"
    path.write_text(BROKEN)
    return path


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "small.pose"
    path.write_text(SMALL_MODEL)
    return path


def test_check_clean_examples_exit_zero():
    result = poseir("check", *sorted(EXAMPLES.glob("*.pose")))
    assert result.returncode == 0, result.stderr
    assert "no problems found" in result.stderr


def test_check_a_directory_checks_every_pose_file_below_it():
    result = poseir("check", EXAMPLES)
    assert result.returncode == 0
    assert f"{len(list(EXAMPLES.glob('*.pose')))} file(s) checked" in result.stderr


def test_check_reports_rustc_style_and_exits_one(broken):
    result = poseir("check", broken)
    assert result.returncode == 1
    assert "error[E204]: cannot reshape f32[B, T, 17, 2] to [B, T, 51]" in result.stderr
    assert f"--> {broken}:6:16" in result.stderr
    assert "^^^^^^^^^^^^^^^^" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_json_gcc_sarif(broken):
    as_json = json.loads(poseir("check", broken, "--format", "json").stdout)
    assert [(item["code"], item["line"], item["column"]) for item in as_json] == [("E204", 6, 16)]
    gcc = poseir("check", broken, "--format", "gcc").stdout
    assert gcc.startswith(f"{broken}:6:16: error: ") and "[E204]" in gcc
    sarif = json.loads(poseir("check", broken, "--format", "sarif").stdout)
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"][0]["ruleId"] == "E204"


def test_check_output_is_deterministic(broken):
    first = poseir("check", broken, "--format", "json").stdout
    assert first == poseir("check", broken, "--format", "json").stdout


def test_usage_errors_exit_two(broken, tmp_path):
    assert poseir("check", tmp_path / "missing.pose").returncode == 2
    missing = poseir("check", tmp_path / "missing.pose")
    assert "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    assert poseir("check", broken, "--model", "nope").returncode == 2
    bad_set = poseir("params", EXAMPLES / "videopose3d.pose", "--set", "chanels=3")
    assert bad_set.returncode == 2
    assert "did you mean `channels`?" in bad_set.stderr
    assert poseir("explain", "E999").returncode == 2
    assert poseir().returncode == 2


def test_explain():
    result = poseir("explain", "e204")
    assert result.returncode == 0
    assert result.stdout.startswith("E204: reshape changes the element count")


def test_params_lists_official_keys_and_honours_set():
    result = poseir("params", EXAMPLES / "videopose3d.pose", "--format", "json")
    table = json.loads(result.stdout)
    assert len(table["parameters"]) == 56 and table["count"] == 16_952_371
    smaller = json.loads(poseir("params", EXAMPLES / "videopose3d.pose", "--format", "json",
                                "--set", "channels=256", "--set", "filter_widths=[3,3,3]").stdout)
    shapes = {entry["name"]: entry["shape"] for entry in smaller["parameters"]}
    assert shapes["layers_conv.0.weight"] == [256, 256, 3]
    assert "layers_conv.4.weight" not in shapes


def test_params_with_weights_reports_missing_unexpected_misshaped(small, tmp_path):
    weights = tmp_path / "w.npz"
    np.savez(weights, **{
        "fc.weight": np.zeros((4, 3), np.float32),  # transposed
        "fc.bias": np.zeros(3, np.float32),
        "bn.weight": np.ones(3, np.float32),
        "bn.running_mean": np.zeros(3, np.float32),
        "bn.running_var": np.ones(3, np.float32),
        "bn.num_batches_tracked": np.zeros((), np.int64),
        "head.weight": np.zeros((1,), np.float32),
    })
    result = poseir("params", small, "--weights", weights, "--format", "json")
    assert result.returncode == 1
    found = {(item["code"], item["line"]) for item in json.loads(result.stdout)["diagnostics"]}
    assert found == {("E402", 5), ("E400", 6), ("E401", None)}
    human = poseir("params", small, "--weights", weights)
    assert "looks transposed" in human.stderr


def test_run_with_weights_and_default_init(small, tmp_path):
    inputs = tmp_path / "in.npz"
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.savez(inputs, x=x)
    from safetensors.numpy import save_file

    weight = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    save_file({"fc.weight": weight, "fc.bias": np.ones(3, np.float32), "bn.weight": np.ones(3, np.float32),
               "bn.bias": np.zeros(3, np.float32), "bn.running_mean": np.zeros(3, np.float32),
               "bn.running_var": np.ones(3, np.float32), "bn.num_batches_tracked": np.zeros((), np.int64)},
              str(tmp_path / "w.safetensors"))
    output = tmp_path / "out.npz"
    result = poseir("run", small, "--inputs", inputs, "--weights", tmp_path / "w.safetensors", "-o", output)
    assert result.returncode == 0, result.stderr
    expected = (x @ weight.T + 1) / np.sqrt(1 + 1e-5)  # batch-norm in inference: running statistics
    np.testing.assert_allclose(np.load(output)["y"], expected, rtol=1e-5)
    assert poseir("run", small, "--inputs", inputs, "-o", output).returncode == 0
    assert np.load(output)["y"].shape == (2, 3)


def test_run_bad_inputs_are_diagnosed(small, tmp_path):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.zeros((2, 5), np.float32))
    result = poseir("run", small, "--inputs", inputs, "-o", tmp_path / "o.npz")
    assert result.returncode == 1
    assert "E404" in result.stderr and "Traceback" not in result.stderr
    np.savez(inputs, other=np.zeros((2, 4), np.float32), labels=np.zeros(3, np.int64))
    missing = poseir("run", small, "--inputs", inputs, "-o", tmp_path / "o.npz").stderr
    assert "error[E404]: the inputs have no array `x`" in missing and f"--> {small}:7:13" in missing  # at `x:`
    assert "the inputs hold `labels` i64[3], `other` f32[2, 4]" in missing  # what the file has, sorted
    assert "if `other` is meant, save it under the forward's name: `np.savez(path, x=...)`" in missing  # its rank
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    junk = poseir("run", small, "--inputs", tmp_path / "junk.npz", "-o", tmp_path / "o.npz")
    assert junk.returncode == 1 and "cannot read inputs" in junk.stderr


def test_unwritable_output_is_an_error_not_a_crash(small, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = poseir("compile", small, "-o", blocker / "model.onnx")
    assert result.returncode == 2
    assert "cannot access" in result.stderr and "internal compiler error" not in result.stderr


def test_version_is_the_installed_one():
    from importlib.metadata import version

    result = poseir("--version")
    assert result.returncode == 0 and result.stdout == f"poseir {version('poseir')}\n"


@pytest.mark.parametrize("argv", [["--debug", "check", "m.pose"], ["check", "--debug", "m.pose"],
                                  ["check", "m.pose", "--debug"], ["check", "m.pose"]])
def test_debug_is_accepted_before_or_after_the_command(argv, monkeypatch, capsys):
    """An internal error shows its traceback with --debug wherever it is written, a hint without."""
    from poseir import cli

    def broken(arguments):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_check", broken)
    assert cli.main(argv) == 2
    stderr = capsys.readouterr().err
    assert "internal compiler error" in stderr
    if "--debug" in argv:
        assert "Traceback" in stderr and "RuntimeError: a bug" in stderr
    else:
        assert "Traceback" not in stderr and "run with --debug" in stderr
