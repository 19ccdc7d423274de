"""The papers' error metrics on numpy arrays (..., J, 3), each returning a float, as the official code computes them.

MPJPE, P-MPJPE, N-MPJPE and MPJVE follow VideoPose3D's `common/loss.py` (the units are those of
the inputs; VideoPose3D works in metres and reports x1000). PCK and AUC follow the MPI-INF-3DHP
MATLAB evaluation (inputs in millimetres, results in percent, strict `<`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

PCK_THRESHOLD = 150.0
# The 31 thresholds 0, 5, ..., 150 mm of the 3DHP AUC.
AUC_THRESHOLDS = tuple(5.0 * step for step in range(31))
# The 14 joints of the 3DHP PCK/AUC (0-based, in the `mpi_inf_3dhp` order): head top, neck, shoulders,
# elbows, wrists, hips, knees, ankles; pelvis, spine and head (14, 15, 16) are left out.
MPI_INF_3DHP_PCK_JOINTS = tuple(range(14))


def _pair(predicted, target) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64, of one shape (..., J, 3)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.ndim < 2 or predicted.shape[-1] != 3:
        raise ValueError(f"expected two arrays (..., J, 3) of one shape, got {predicted.shape} and {target.shape}")
    return predicted, target


def joint_errors(predicted, target) -> np.ndarray:
    """The Euclidean distance of every joint (..., J)."""
    predicted, target = _pair(predicted, target)
    return np.linalg.norm(predicted - target, axis=-1)


def mpjpe(predicted, target) -> float:
    """Protocol #1: the mean over every leading index and joint of the joint's Euclidean error."""
    return float(np.mean(joint_errors(predicted, target)))


def procrustes_align(predicted, target) -> np.ndarray:
    """Each pose (J, 3) of `predicted` aligned to `target` by the similarity P-MPJPE uses (rotation, scale, shift).

    As VideoPose3D: centre both, scale each to unit Frobenius norm, H = G0^T P0, SVD H = U S V^T,
    R = V U^T; when det R < 0 the last column of V and the last singular value change sign (an
    improper rotation, a reflection, is never used); scale a = trace(S) |G0| / |P0|; the aligned
    pose is a P R + (mu_G - a mu_P R), with poses as rows.
    """
    predicted, target = _pair(predicted, target)
    shape = predicted.shape
    predicted = predicted.reshape(-1, *shape[-2:])
    target = target.reshape(-1, *shape[-2:])
    mean_target = target.mean(axis=1, keepdims=True)
    mean_predicted = predicted.mean(axis=1, keepdims=True)
    centred_target = target - mean_target
    centred_predicted = predicted - mean_predicted
    norm_target = np.sqrt(np.sum(centred_target ** 2, axis=(1, 2), keepdims=True))
    norm_predicted = np.sqrt(np.sum(centred_predicted ** 2, axis=(1, 2), keepdims=True))
    centred_target = centred_target / norm_target
    centred_predicted = centred_predicted / norm_predicted
    u, singular, vt = np.linalg.svd(np.matmul(centred_target.transpose(0, 2, 1), centred_predicted))
    v = vt.transpose(0, 2, 1)
    rotation = np.matmul(v, u.transpose(0, 2, 1))
    # Multiplying by the sign of det R (as the official code does) flips a reflection into a rotation.
    sign = np.sign(np.linalg.det(rotation))[:, None]
    v[:, :, -1] *= sign
    singular[:, -1] *= sign[:, 0]
    rotation = np.matmul(v, u.transpose(0, 2, 1))
    scale = np.sum(singular, axis=1)[:, None, None] * norm_target / norm_predicted
    translation = mean_target - scale * np.matmul(mean_predicted, rotation)
    return (scale * np.matmul(predicted, rotation) + translation).reshape(shape)


def p_mpjpe(predicted, target) -> float:
    """Protocol #2: MPJPE after aligning each pose to its target by rotation, scale and translation."""
    return mpjpe(procrustes_align(predicted, target), target)


def n_mpjpe(predicted, target) -> float:
    """Protocol #3: MPJPE after scaling each pose by s = mean_j <G, P> / mean_j <P, P> (scale only)."""
    predicted, target = _pair(predicted, target)
    norm_predicted = np.mean(np.sum(predicted ** 2, axis=-1, keepdims=True), axis=-2, keepdims=True)
    norm_target = np.mean(np.sum(target * predicted, axis=-1, keepdims=True), axis=-2, keepdims=True)
    return mpjpe(norm_target / norm_predicted * predicted, target)


def mpjve(predicted, target, axis: int = 0) -> float:
    """Mean per-joint velocity error: MPJPE of the frame-to-frame differences along `axis` (time)."""
    predicted, target = _pair(predicted, target)
    return mpjpe(np.diff(predicted, axis=axis), np.diff(target, axis=axis))


def _selected(predicted, target, joints) -> np.ndarray:
    errors = joint_errors(predicted, target)
    return errors if joints is None else errors[..., list(joints)]


def pck(predicted, target, threshold: float = PCK_THRESHOLD, joints: Iterable[int] | None = None) -> float:
    """Percentage of joints whose error is strictly below `threshold` (3DHP: 150 mm, over `joints`)."""
    return float(100.0 * np.mean(_selected(predicted, target, joints) < threshold))


def auc(predicted, target, thresholds: Iterable[float] = AUC_THRESHOLDS,
        joints: Iterable[int] | None = None) -> float:
    """The mean PCK (percent) over the thresholds 0, 5, ..., 150 mm."""
    errors = _selected(predicted, target, joints)
    return float(np.mean([100.0 * np.mean(errors < threshold) for threshold in thresholds]))


def select_3dhp_pck_joints(poses) -> np.ndarray:
    """The 14 joints of the 3DHP PCK/AUC from poses (..., 17, 3) in the `mpi_inf_3dhp` order."""
    poses = np.asarray(poses)
    if poses.shape[-2] != 17:
        raise ValueError(f"expected the 17 MPI-INF-3DHP joints, got {poses.shape[-2]}")
    return poses[..., list(MPI_INF_3DHP_PCK_JOINTS), :]


def action_name(sequence: str) -> str:
    """The H36M action a sequence belongs to: `Walking 1` and `Walking` are both `Walking`."""
    return sequence.split(" ")[0]


@dataclass
class ActionErrors:
    """H36M's aggregation: errors are frame-weighted within an action, then the actions are averaged."""

    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)

    def add(self, sequence: str, errors: Mapping[str, float], frames: int) -> None:
        """Add one sequence's mean errors (by metric name), weighted by its frame count."""
        action = action_name(sequence)
        totals = self.totals.setdefault(action, {})
        for metric, value in errors.items():
            totals[metric] = totals.get(metric, 0.0) + value * frames
        self.frames[action] = self.frames.get(action, 0) + frames

    def action_means(self) -> dict[str, dict[str, float]]:
        """Each action's frame-weighted mean of each metric, actions in sorted order."""
        return {action: {metric: total / self.frames[action] for metric, total in self.totals[action].items()}
                for action in sorted(self.totals)}

    def actionwise_average(self) -> dict[str, float]:
        """The papers' headline number: the unweighted mean over actions of each metric."""
        means = self.action_means()
        metrics = sorted({metric for values in means.values() for metric in values})
        return {metric: float(np.mean([values[metric] for values in means.values()])) for metric in metrics}
