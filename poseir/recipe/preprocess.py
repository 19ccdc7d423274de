"""Preprocessing as VideoPose3D does it: screen normalization, quaternion camera frames, H36M projection, flips.

Formulas follow the official `common/camera.py` and `common/quaternion.py` semantics, restated for
numpy: quaternions are (w, x, y, z) and rotate v by v + 2 (w (q x v) + q x (q x v)) with q the
vector part; the projection clamps x/z and y/z to [-1, 1] before the radial (k1, k2, k3) and
tangential (p1, p2) distortion, and the intrinsic vector is [f_x, f_y, c_x, c_y, k1, k2, k3, p1, p2].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Intrinsic-vector entries that change sign when an image is mirrored horizontally (c_x and p1).
MIRRORED_INTRINSICS = (2, 7)


def normalize_screen_coordinates(points, width: int, height: int) -> np.ndarray:
    """Pixels (..., 2) to [-1, 1] across the width, keeping the aspect ratio: x = 2u/w - 1, y = 2v/w - h/w."""
    points = np.asarray(points)
    _require_last(points, 2)
    # As the official code: the offset is a float64 list, so float32 points come back as float64.
    return points / width * 2 - [1, height / width]


def image_coordinates(points, width: int, height: int) -> np.ndarray:
    """The inverse of `normalize_screen_coordinates`: u = (x + 1) w / 2, v = (y + h/w) w / 2."""
    points = np.asarray(points)
    _require_last(points, 2)
    return (points + [1, height / width]) * width / 2


def _require_last(array: np.ndarray, size: int) -> None:
    if array.shape[-1] != size:
        raise ValueError(f"expected a last axis of {size}, got shape {array.shape}")


def quaternion_rotate(quaternion, vectors) -> np.ndarray:
    """Rotate vectors (..., 3) by a unit quaternion (w, x, y, z), broadcast over the leading axes."""
    quaternion = np.asarray(quaternion)
    vectors = np.asarray(vectors)
    _require_last(quaternion, 4)
    _require_last(vectors, 3)
    scalar, axis = quaternion[..., :1], quaternion[..., 1:]
    axis = np.broadcast_to(axis, np.broadcast_shapes(axis.shape, vectors.shape))
    first = np.cross(axis, vectors)
    second = np.cross(axis, first)
    return vectors + 2 * (scalar * first + second)


def quaternion_inverse(quaternion) -> np.ndarray:
    """The inverse of a unit quaternion: (w, -x, -y, -z)."""
    quaternion = np.asarray(quaternion)
    _require_last(quaternion, 4)
    return np.concatenate([quaternion[..., :1], -quaternion[..., 1:]], axis=-1)


def world_to_camera(points, orientation, translation) -> np.ndarray:
    """World points (..., 3) into a camera's frame: rotate by the inverse orientation after removing its position."""
    points = np.asarray(points)
    return quaternion_rotate(quaternion_inverse(orientation), points - np.asarray(translation, dtype=points.dtype))


def camera_to_world(points, orientation, translation) -> np.ndarray:
    """Camera-frame points (..., 3) into the world: rotate by the orientation, then add the camera's position."""
    points = np.asarray(points)
    return quaternion_rotate(orientation, points) + np.asarray(translation, dtype=points.dtype)


def project_to_2d(points, intrinsic) -> np.ndarray:
    """Camera-frame points (..., 3) to image points (..., 2) with the H36M distortion model.

    `intrinsic` is [f_x, f_y, c_x, c_y, k1, k2, k3, p1, p2] (one vector, or one per leading index).
    With VideoPose3D's normalized intrinsics the result is in normalized screen coordinates.
    """
    points = np.asarray(points)
    _require_last(points, 3)
    intrinsic = np.asarray(intrinsic, dtype=points.dtype)
    _require_last(intrinsic, 9)
    intrinsic = intrinsic.reshape(intrinsic.shape[:-1] + (1,) * (points.ndim - intrinsic.ndim) + (9,))
    focal, centre = intrinsic[..., 0:2], intrinsic[..., 2:4]
    radial_k, tangential_p = intrinsic[..., 4:7], intrinsic[..., 7:9]
    plane = np.clip(points[..., :2] / points[..., 2:], -1, 1)
    r2 = np.sum(plane ** 2, axis=-1, keepdims=True)
    powers = np.concatenate([r2, r2 ** 2, r2 ** 3], axis=-1)
    radial = 1 + np.sum(radial_k * powers, axis=-1, keepdims=True)
    tangential = np.sum(tangential_p * plane, axis=-1, keepdims=True)
    distorted = plane * (radial + tangential) + tangential_p * r2
    return focal * distorted + centre


def root_relative(poses, root: int = 0, keep_trajectory: bool = False) -> np.ndarray:
    """Joints (..., J, 3) relative to the root joint; with `keep_trajectory` the root keeps its position.

    VideoPose3D stores targets with the trajectory kept (`pos[:, 1:] -= pos[:, :1]`) and zeroes the
    root when it scores them, which gives the plain root-relative pose.
    """
    poses = np.array(poses)
    origin = poses[..., root:root + 1, :].copy()
    relative = poses - origin
    if keep_trajectory:
        relative[..., root, :] = origin[..., 0, :]
    return relative


def flip_poses(poses, permutation: Sequence[int]) -> np.ndarray:
    """Mirror poses (..., J, C) horizontally: negate x and exchange left and right joints by `permutation`."""
    poses = np.array(poses)
    if poses.shape[-2] != len(permutation):
        raise ValueError(f"a flip permutation of {len(permutation)} joints for poses with {poses.shape[-2]}")
    flipped = poses[..., list(permutation), :]
    flipped[..., 0] *= -1
    return flipped


def flip_permutation(left: Sequence[int], right: Sequence[int], joints: int) -> tuple[int, ...]:
    """The joint permutation exchanging `left[i]` and `right[i]` (the lists a 2D file's metadata gives)."""
    permutation = list(range(joints))
    for one, other in zip(left, right):
        permutation[one], permutation[other] = other, one
    return tuple(permutation)


def skeleton_flip(name: str) -> tuple[int, ...]:
    """The flip permutation of a built-in skeleton (`h36m`, `h36m16`, `mpi_inf_3dhp`, `coco`)."""
    from poseir.elaborate.builtins import SKELETONS

    return SKELETONS[name].flip


def flip_intrinsics(intrinsic) -> np.ndarray:
    """A camera's intrinsic vector for the mirrored image: c_x and p1 change sign."""
    flipped = np.array(intrinsic)
    flipped[..., list(MIRRORED_INTRINSICS)] *= -1
    return flipped
