"""Synthetic data, the restricted dataset reader and `poseir eval`, checked against the official evaluation.

`official_eval.json` holds what VideoPose3D's own `run.py --evaluate` printed for the checkpoint
fixture on a `poseir synth` dataset (tests/fixtures/official_eval/make_official_eval.py, run once
with torch); `poseir eval` must report the same numbers.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from poseir.diagnostics.record import DiagnosticError
from poseir.recipe import data, evaluate, h36m, synth
from poseir.recipe.preprocess import flip_permutation

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
OFFICIAL = json.loads((ROOT / "tests" / "fixtures" / "official_eval" / "official_eval.json").read_text())
CHECKPOINT = ROOT / "tests" / "fixtures" / "checkpoints" / OFFICIAL["checkpoint"]
SMALL_VIDEOPOSE = (EXAMPLES / "videopose3d.pose", "--set", "channels=16", "--set", "filter_widths=[3,3,3]")


def poseir(*arguments, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "poseir", *map(str, arguments)], capture_output=True, text=True,
                          cwd=cwd)


@pytest.fixture(scope="module")
def official_data(tmp_path_factory) -> Path:
    """The dataset the official numbers were measured on."""
    folder = tmp_path_factory.mktemp("official")
    result = poseir("synth", "-o", folder, *OFFICIAL["synth"])
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    result = poseir("synth", "-o", folder, "--frames", "20", "--subjects", "S9,S11", "--actions", "Walking,Eating")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stderr and "8 sequences" in result.stderr
    return folder


def eval_json(folder: Path, *extra) -> dict:
    result = poseir("eval", *SMALL_VIDEOPOSE, "--data-3d", folder / "data_3d_h36m.npz",
                    "--data-2d", folder / "data_2d_h36m_gt.npz", "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("flip", ["flip", "no_flip"])
def test_eval_reports_what_the_official_videopose3d_evaluation_reports(official_data, flip):
    report = eval_json(official_data, "--weights", CHECKPOINT, *(["--no-flip"] if flip == "no_flip" else []))
    official = OFFICIAL[flip]
    assert [row["action"] for row in report["actions"]] == sorted(official)
    for row in report["actions"]:
        for metric, value in official[row["action"]].items():
            # Our JSON rounds to 1e-4 mm; the official code sums in float32.
            assert row[metric] == pytest.approx(value, abs=5e-4), (row["action"], metric)
    for metric in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve"):
        expected = np.mean([values[metric] for values in official.values()])
        assert report["average"][metric] == pytest.approx(expected, abs=5e-4)


def test_two_runs_give_byte_identical_json_and_tables(small_data):
    arguments = ("eval", *SMALL_VIDEOPOSE, "--data-3d", small_data / "data_3d_h36m.npz",
                 "--data-2d", small_data / "data_2d_h36m_gt.npz")
    for output_format in ("json", "human"):
        first = poseir(*arguments, "--format", output_format)
        second = poseir(*arguments, "--format", output_format)
        assert first.returncode == 0, first.stderr
        assert first.stdout == second.stdout
        assert first.stderr == "" and second.stderr == ""  # no progress bar when stderr is not a terminal
    report = json.loads(first.stdout if output_format == "json" else poseir(*arguments, "--format", "json").stdout)
    assert report["protocol"] == {"mode": "sequence", "pad": 13, "receptive_field": 27}
    assert [row["action"] for row in report["actions"]] == ["Eating", "Walking"]
    assert all(row["sequences"] == 16 for row in report["actions"])  # 2 subjects x 2 takes x 4 cameras
    assert "average (action-wise)" in second.stdout


def test_onnxruntime_gives_the_numbers_numpy_gives(small_data):
    numpy_report = eval_json(small_data)
    onnx_report = eval_json(small_data, "--runtime", "onnxruntime")
    assert onnx_report["runtime"] == "onnxruntime"
    for ours, theirs in zip(numpy_report["actions"], onnx_report["actions"]):
        for metric in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve"):
            assert ours[metric] == pytest.approx(theirs[metric], abs=1e-3)


def test_a_fixed_window_model_is_evaluated_one_window_per_frame(small_data):
    result = poseir("eval", EXAMPLES / "poseformer.pose", "--set", "embed_dim_ratio=8", "--set", "depth=1",
                    "--set", "num_frame=3", "--data-3d", small_data / "data_3d_h36m.npz",
                    "--data-2d", small_data / "data_2d_h36m_gt.npz", "--format", "json", "--subjects", "S9")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["protocol"] == {"mode": "window", "pad": 1, "receptive_field": 3}
    assert report["subjects"] == ["S9"]


def test_a_model_that_does_not_lift_sequences_is_e411(small_data):
    result = poseir("eval", EXAMPLES / "simplebaseline.pose", "--data-3d", small_data / "data_3d_h36m.npz",
                    "--data-2d", small_data / "data_2d_h36m_gt.npz")
    assert result.returncode == 1
    assert "error[E414]: `simplebaseline` does not fit the evaluation protocol" in result.stderr


def test_flip_augmentation_of_a_mirror_symmetric_model_changes_nothing():
    """With a model that commutes with mirroring (here: lift by appending z = 0), flip TTA is a no-op."""
    protocol = evaluate.Protocol("keypoints", "pose", "sequence", 3, 17)
    lift = lambda batch: np.concatenate([batch[:, 1:-1], np.zeros(batch[:, 1:-1, :, :1].shape, np.float32)], -1)
    keypoints = np.random.default_rng(0).normal(size=(6, 17, 2)).astype(np.float32)
    flips = (flip_permutation(h36m.JOINTS_LEFT, h36m.JOINTS_RIGHT, 17),) * 2
    plain = evaluate.predict(lift, protocol, keypoints, None)
    assert plain.shape == (6, 17, 3)
    assert np.array_equal(plain[..., :2], keypoints)
    assert np.allclose(evaluate.predict(lift, protocol, keypoints, flips), plain)


# ---------------------------------------------------------------- the datasets


def test_synth_writes_videopose3ds_layout_and_reads_back(small_data):
    positions_3d = data.load_3d(str(small_data / "data_3d_h36m.npz"))
    keypoints = data.load_2d(str(small_data / "data_2d_h36m_gt.npz"))
    assert sorted(positions_3d) == ["S11", "S9"]
    assert sorted(positions_3d["S9"]) == ["Eating", "Eating 1", "Walking", "Walking 1"]
    assert (keypoints.keypoints_left, keypoints.keypoints_right) == (h36m.JOINTS_LEFT, h36m.JOINTS_RIGHT)
    expected_3d, expected_2d = synth.synthesize(synth.SynthOptions(("S9", "S11"), ("Walking", "Eating"), 20, 0))
    for subject in ("S9", "S11"):
        for action, world in expected_3d[subject].items():
            assert world.shape[1:] == (32, 3) and world.dtype == np.float32
            assert np.array_equal(positions_3d[subject][action], h36m.keep_17_joints(world))
            views = keypoints.positions[subject][action]
            assert len(views) == 4
            assert all(np.array_equal(view, want) for view, want in zip(views, expected_2d[subject][action]))
    # numpy reads the same files with its (unsafe) pickle loading: the layout is numpy's own.
    with np.load(small_data / "data_2d_h36m_gt.npz", allow_pickle=True) as archive:
        assert archive["metadata"].item() == synth.METADATA


def test_synthetic_people_stand_in_front_of_the_cameras():
    positions_3d, positions_2d = synth.synthesize(synth.SynthOptions(("S9",), ("Walking",), 100, 1))
    world = positions_3d["S9"]["Walking"]
    assert world[..., 2].min() > -0.05 and 1.4 < world[..., 2].max() < 2.0  # feet on the floor, head up
    for view in positions_2d["S9"]["Walking"]:
        assert view.min() > 0 and view.max() < 1000  # inside every image
    bones = np.linalg.norm(world[:, 2] - world[:, 1], axis=-1)  # the right thigh keeps its length
    assert np.ptp(bones) < 1e-5


def hostile_npz(path: Path, payload) -> None:
    """An .npz whose object array pickles `payload` (written without running it)."""
    array = np.empty((), dtype=object)
    array[()] = {"S9": payload}
    np.savez(path, positions_3d=array)


class Marker:
    """Unpickled by numpy's allow_pickle=True, creates the file `pwned_dataset`."""

    def __reduce__(self):
        import os

        return os.system, ("touch pwned_dataset",)


def test_a_hostile_dataset_is_refused_and_runs_nothing(tmp_path):
    hostile_npz(tmp_path / "data_3d_h36m.npz", Marker())
    result = poseir("eval", *SMALL_VIDEOPOSE, "--data-3d", "data_3d_h36m.npz", "--data-2d", "data_3d_h36m.npz",
                    cwd=tmp_path)
    assert result.returncode == 1
    assert "error[E411]: `data_3d_h36m.npz` refers to `posix.system`, which poseir does not load" in result.stderr
    assert not (tmp_path / "pwned_dataset").exists()
    # The control: numpy's own loader with allow_pickle=True runs it.
    subprocess.run([sys.executable, "-c", "import numpy; numpy.load('data_3d_h36m.npz', allow_pickle=True)"
                    "['positions_3d']"], cwd=tmp_path, capture_output=True)
    assert (tmp_path / "pwned_dataset").exists()


@pytest.mark.parametrize("positions, message", [
    ({"S9": {"Walking": np.zeros((5, 16, 3), np.float32)}}, "has shape (5, 16, 3)"),
    ({"S9": {"Walking": np.full((5, 17, 3), np.nan, np.float32)}}, "NaN"),
    ({"S9": ["not", "a", "dict"]}, "is not a dict"),
    ([1, 2, 3], "is not a dict"),
])
def test_a_dataset_with_the_wrong_layout_is_e410(tmp_path, positions, message):
    array = np.empty((), dtype=object)
    array[()] = positions
    np.savez(tmp_path / "d.npz", positions_3d=array)
    with pytest.raises(DiagnosticError) as raised:
        data.load_3d(str(tmp_path / "d.npz"))
    assert raised.value.diagnostic.code == "E413"
    assert message in raised.value.diagnostic.message


def test_a_pickled_array_claiming_more_than_it_holds_is_e410(tmp_path):
    """An object array whose inner float array's shape was enlarged after pickling."""
    inner = np.arange(6, dtype=np.float32)
    blob = pickle.dumps(np.array({"S9": {"Walking": inner}}, dtype=object), protocol=3)
    forged = blob.replace(b"K\x06\x85", b"J\x00\x00\x00\x40\x85", 1)  # (6,) -> (2**30,)
    assert forged != blob
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header += b" " * (118 - len(header)) + b"\n"
    import zipfile

    with zipfile.ZipFile(tmp_path / "forged.npz", "w") as archive:
        archive.writestr("positions_3d.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + forged)
    with pytest.raises(DiagnosticError) as raised:
        data.load_3d(str(tmp_path / "forged.npz"))
    assert raised.value.diagnostic.code == "E413"
    assert "declares 1073741824 x 4 bytes" in raised.value.diagnostic.message


def test_missing_subjects_and_unreadable_files_are_e410(small_data, tmp_path):
    result = poseir("eval", *SMALL_VIDEOPOSE, "--data-3d", small_data / "data_3d_h36m.npz",
                    "--data-2d", small_data / "data_2d_h36m_gt.npz", "--subjects", "S9,S1")
    assert result.returncode == 1
    assert "has no subject `S1` in `positions_3d`" in result.stderr
    (tmp_path / "cut.npz").write_bytes((small_data / "data_3d_h36m.npz").read_bytes()[:500])
    with pytest.raises(DiagnosticError) as raised:
        data.load_3d(str(tmp_path / "cut.npz"))
    assert raised.value.diagnostic.code == "E413"
    assert "Traceback" not in result.stderr


def test_synth_rejects_unknown_subjects(tmp_path):
    result = poseir("synth", "-o", tmp_path, "--subjects", "S2")
    assert result.returncode == 2
    assert "unknown subject `S2`" in result.stderr


def test_the_array_bytes_limit_bounds_what_a_dataset_may_allocate(small_data):
    result = poseir("eval", *SMALL_VIDEOPOSE, "--data-3d", small_data / "data_3d_h36m.npz",
                    "--data-2d", small_data / "data_2d_h36m_gt.npz", "--limit", "array_bytes=10k")
    assert result.returncode == 1
    assert "error[E413]: " in result.stderr and "more than the `array_bytes` limit (10,000 bytes)" in result.stderr
