"""Preprocessing against hand-computed values: screen normalization, quaternions, the H36M projection, flips."""

from __future__ import annotations

import numpy as np
import pytest

from poseir.recipe import h36m, preprocess


def test_screen_normalization_maps_the_width_to_minus_one_one():
    points = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    normalized = preprocess.normalize_screen_coordinates(points, 1000, 1002)
    assert np.allclose(normalized, [[-1, -1.002], [1, 1.002], [0, 0]])
    assert np.allclose(preprocess.image_coordinates(normalized, 1000, 1002), points)


def test_quaternion_rotation_and_inverse():
    quarter_turn_about_z = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    assert np.allclose(preprocess.quaternion_rotate(quarter_turn_about_z, [1.0, 0, 0]), [0, 1, 0])
    inverse = preprocess.quaternion_inverse(quarter_turn_about_z)
    assert np.allclose(preprocess.quaternion_rotate(inverse, [0, 1.0, 0]), [1, 0, 0])


def test_world_camera_round_trip_and_the_camera_centre():
    camera = h36m.camera("S9", 1)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(5, 17, 3))
    in_camera = preprocess.world_to_camera(points, camera.orientation, camera.translation)
    # float32 calibration: the quaternion is unit to about 1e-7.
    assert np.allclose(preprocess.camera_to_world(in_camera, camera.orientation, camera.translation), points,
                       atol=1e-5)
    assert np.allclose(preprocess.world_to_camera(camera.translation.astype(float), camera.orientation,
                                                  camera.translation), 0, atol=1e-6)
    # H36M cameras look at the capture area: the origin is in front of every camera (z > 0).
    for subject in h36m.SUBJECTS:
        for view in h36m.cameras(subject):
            assert preprocess.world_to_camera(np.zeros(3), view.orientation, view.translation)[2] > 3


def test_projection_with_distortion_by_hand():
    # f = (2, 3), c = (0.1, 0.2), k = (0.1, 0, 0), p = (0.01, 0.02); the point (0.5, 0.25, 1):
    # r2 = 0.3125, radial = 1.03125, tan = 0.01, x' = 0.5 * 1.04125 + 0.01 * 0.3125 = 0.52375,
    # y' = 0.25 * 1.04125 + 0.02 * 0.3125 = 0.2665625; u = 2 x' + 0.1, v = 3 y' + 0.2.
    intrinsic = [2, 3, 0.1, 0.2, 0.1, 0, 0, 0.01, 0.02]
    assert np.allclose(preprocess.project_to_2d(np.array([0.5, 0.25, 1.0]), intrinsic), [1.1475, 0.9996875])
    linear = [2, 3, 0.1, 0.2, 0, 0, 0, 0, 0]
    assert np.allclose(preprocess.project_to_2d(np.array([[1.0, 0.5, 2.0]]), linear), [[1.1, 0.95]])
    # x / z is clamped to [-1, 1] before distortion.
    assert np.allclose(preprocess.project_to_2d(np.array([6.0, 0.0, 2.0]), linear),
                       preprocess.project_to_2d(np.array([2.0, 0.0, 2.0]), linear))


def test_projection_takes_one_intrinsic_vector_per_leading_index():
    points = np.ones((2, 4, 17, 3))
    intrinsic = np.array([[1, 1, 0, 0, 0, 0, 0, 0, 0], [2, 2, 0, 0, 0, 0, 0, 0, 0]], float)
    projected = preprocess.project_to_2d(points, intrinsic)
    assert projected.shape == (2, 4, 17, 2)
    assert np.allclose(projected[0], 1) and np.allclose(projected[1], 2)


def test_h36m_intrinsics_are_normalized_as_videopose3d_does():
    camera = h36m.camera("S11", 0)
    assert camera.intrinsic.dtype == np.float32
    assert camera.intrinsic[0] == pytest.approx(1145.0494384765625 / 1000 * 2)
    assert camera.intrinsic[2] == pytest.approx(512.54150390625 / 1000 * 2 - 1, abs=1e-6)  # float32 as VideoPose3D
    assert camera.intrinsic[3] == pytest.approx(515.4514770507812 / 1000 * 2 - 1002 / 1000, abs=1e-6)
    assert camera.translation == pytest.approx(np.array([2098.440185546875, 4926.5546875, 1500.278564453125]) / 1000)


def test_root_relative_with_and_without_the_trajectory():
    poses = np.array([[[1.0, 2, 3], [2, 2, 2], [0, 0, 0]]])
    assert preprocess.root_relative(poses).tolist() == [[[0, 0, 0], [1, 0, -1], [-1, -2, -3]]]
    kept = preprocess.root_relative(poses, keep_trajectory=True)
    assert kept.tolist() == [[[1, 2, 3], [1, 0, -1], [-1, -2, -3]]]


def test_flip_by_a_skeletons_permutation():
    flip = preprocess.skeleton_flip("h36m")
    assert flip == preprocess.flip_permutation(h36m.JOINTS_LEFT, h36m.JOINTS_RIGHT, 17)
    poses = np.random.default_rng(3).normal(size=(2, 17, 3))
    flipped = preprocess.flip_poses(poses, flip)
    assert flipped[0, 4, 0] == -poses[0, 1, 0] and flipped[0, 4, 1] == poses[0, 1, 1]  # LHip <- mirrored RHip
    assert np.array_equal(preprocess.flip_poses(flipped, flip), poses)
    assert preprocess.skeleton_flip("h36m16")[10] == 13
    with pytest.raises(ValueError):
        preprocess.flip_poses(poses, preprocess.skeleton_flip("h36m16"))


def test_mirrored_intrinsics_negate_cx_and_p1():
    intrinsic = np.arange(1.0, 10.0)
    assert preprocess.flip_intrinsics(intrinsic).tolist() == [1, 2, -3, 4, 5, 6, 7, -8, 9]
