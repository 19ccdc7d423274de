"""The metrics against hand-computed values: similarity and reflection for P-MPJPE, threshold edges for PCK/AUC."""

from __future__ import annotations

import numpy as np
import pytest

from poseir.recipe import metrics

# Six points on the axes, centred, principal axes x, y, z with spreads 18 > 8 > 2.
AXES = np.array([[3, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]], dtype=float)


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_mpjpe_is_the_mean_euclidean_error():
    target = np.zeros((2, 1, 3))
    predicted = np.array([[[3.0, 4.0, 0.0]], [[0.0, 0.0, 0.0]]])
    assert metrics.mpjpe(predicted, target) == 2.5
    assert metrics.joint_errors(predicted, target).tolist() == [[5.0], [0.0]]


def test_p_mpjpe_of_a_similarity_transformed_copy_is_zero():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(4, 17, 3))
    predicted = np.stack([2.5 * pose @ random_rotation(rng) + rng.normal(size=3) for pose in target])
    assert metrics.mpjpe(predicted, target) > 1
    assert metrics.p_mpjpe(predicted, target) < 1e-12


def test_p_mpjpe_of_a_reflected_copy_keeps_a_proper_rotation():
    """Mirroring x cannot be undone by a rotation: the best one turns 180 degrees about y.

    H = G0^T P0 = diag(-18, 8, 2) / 28; det(V U^T) = -1, so the smallest axis (z) is flipped and the
    scale is (18 + 8 - 2) / 28 = 6/7. Errors: |6/7 - 1| * 3, |6/7 - 1| * 2 and (6/7 + 1) * 1 for each
    pair, mean (6 + 4 + 26) / 42 = 6/7.
    """
    mirrored = AXES * [-1, 1, 1]
    assert metrics.p_mpjpe(mirrored, AXES) == pytest.approx(6 / 7, abs=1e-12)
    rng = np.random.default_rng(1)
    moved = 0.3 * mirrored @ random_rotation(rng) + [5.0, -2.0, 1.0]
    assert metrics.p_mpjpe(moved, AXES) == pytest.approx(6 / 7, abs=1e-12)
    aligned = metrics.procrustes_align(mirrored, AXES)
    assert np.allclose(aligned, 6 / 7 * AXES * [1, 1, -1])


def test_p_mpjpe_works_on_any_leading_axes():
    rng = np.random.default_rng(2)
    target = rng.normal(size=(2, 3, 17, 3))
    predicted = target + rng.normal(scale=0.1, size=target.shape)
    flat = metrics.p_mpjpe(predicted.reshape(6, 17, 3), target.reshape(6, 17, 3))
    assert metrics.p_mpjpe(predicted, target) == pytest.approx(flat, rel=1e-12)
    assert 0 < flat < metrics.mpjpe(predicted, target)


def test_n_mpjpe_rescales_each_pose():
    target = np.array([[[[1.0, 0.0, 0.0]]]])
    assert metrics.n_mpjpe(3 * target, target) == pytest.approx(0.0)
    # s = <G, P> / <P, P> = 1 / 2, so s P = (0.5, 0.5, 0) and the error is sqrt(0.5).
    assert metrics.n_mpjpe(np.array([[[[1.0, 1.0, 0.0]]]]), target) == pytest.approx(np.sqrt(0.5))


def test_mpjve_compares_frame_to_frame_differences():
    target = np.array([[[0.0, 0, 0]], [[1.0, 0, 0]], [[2.0, 0, 0]]])
    assert metrics.mpjve(np.zeros_like(target), target) == 1.0
    assert metrics.mpjve(target + 7.0, target) == 0.0  # a constant offset has no velocity error
    batch = np.stack([target, 2 * target])  # (B, T, J, 3): differences along axis 1
    assert metrics.mpjve(np.zeros_like(batch), batch, axis=1) == 1.5


def offsets(errors) -> tuple[np.ndarray, np.ndarray]:
    """Poses whose joint errors are exactly `errors` (one joint per value)."""
    target = np.zeros((1, len(errors), 3))
    predicted = target.copy()
    predicted[0, :, 0] = errors
    return predicted, target


def test_pck_counts_errors_strictly_below_150_mm():
    predicted, target = offsets([0.0, 149.99, 150.0, 150.01])
    assert metrics.pck(predicted, target) == 50.0
    assert metrics.pck(*offsets([150.0] * 3)) == 0.0
    assert metrics.pck(*offsets([149.999999] * 3)) == 100.0


def test_auc_averages_31_thresholds_with_the_strict_comparison():
    assert metrics.AUC_THRESHOLDS == tuple(np.linspace(0, 150, 31))
    # A perfect prediction still misses the threshold 0 (0 < 0 is false): 30 of 31.
    assert metrics.auc(*offsets([0.0, 0.0])) == pytest.approx(100 * 30 / 31)
    assert metrics.auc(*offsets([5.0])) == pytest.approx(100 * 29 / 31)  # counted from 10 mm on
    assert metrics.auc(*offsets([149.0])) == pytest.approx(100 * 1 / 31)  # only at 150 mm
    assert metrics.auc(*offsets([150.0])) == 0.0
    assert metrics.auc(*offsets([0.0, 150.0])) == pytest.approx(100 * 15 / 31)


def test_3dhp_uses_14_of_its_17_joints():
    predicted = np.zeros((2, 17, 3))
    target = np.zeros((2, 17, 3))
    predicted[:, 14:, 0] = 500.0  # pelvis, spine and head are far off, and do not count
    assert metrics.pck(predicted, target, joints=metrics.MPI_INF_3DHP_PCK_JOINTS) == 100.0
    assert metrics.pck(predicted, target) == pytest.approx(100 * 14 / 17)
    assert metrics.select_3dhp_pck_joints(predicted).shape == (2, 14, 3)
    with pytest.raises(ValueError):
        metrics.select_3dhp_pck_joints(np.zeros((2, 16, 3)))


def test_h36m_aggregation_weights_frames_within_actions_and_actions_equally():
    errors = metrics.ActionErrors()
    errors.add("Walking", {"mpjpe": 1.0}, 10)
    errors.add("Walking 1", {"mpjpe": 2.0}, 30)
    errors.add("Sitting 2", {"mpjpe": 4.0}, 5)
    assert errors.action_means() == {"Sitting": {"mpjpe": 4.0}, "Walking": {"mpjpe": 1.75}}
    assert errors.actionwise_average() == {"mpjpe": 2.875}
    assert metrics.action_name("SittingDown 2") == "SittingDown"


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError):
        metrics.mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))


def test_the_python_example_of_docs_recipe_prints_what_the_page_says(capsys):
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "recipe.md").read_text()
    block = re.search(r"```python\n(.*?)```", page, re.DOTALL).group(1)
    exec(compile(block, "docs/recipe.md", "exec"), {})
    assert capsys.readouterr().out.split() == ["0.857143", "96.7742"]
    assert "prints `0.857143` (6/7) and `96.7742` (100 · 30/31)" in page
