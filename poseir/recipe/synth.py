"""A synthetic Human3.6M in VideoPose3D's file layout, so the recipe runs with no download.

Each sequence animates the 17-joint `h36m` skeleton by forward kinematics: bone offsets of an adult
body, joint angles that swing sinusoidally within plausible ranges (hips, knees, spine, neck,
shoulders, elbows), and a root that wanders over the capture floor, turning slowly. The 17 joints
are placed into the 32-joint mocap layout (the 15 static joints sit on their parents), stored in
metres in world coordinates (z up), and projected into the four H36M cameras of the subject with
VideoPose3D's camera model, as its `prepare_data_h36m.py` makes the ground-truth 2D file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poseir.recipe import h36m
from poseir.recipe.preprocess import image_coordinates, project_to_2d, world_to_camera

FPS = 50
# Bone offsets (metres) of each joint from its parent at rest, in a body frame: x to the subject's
# left, y forward, z up. Arms hang down; the `h36m` parents are (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15).
REST_OFFSETS = np.array([
    (0.0, 0.0, 0.0),                                          # 0 hip (root)
    (-0.13, 0.0, 0.0), (0.0, 0.0, -0.45), (0.0, 0.0, -0.44),  # 1-3 right hip, knee, foot
    (0.13, 0.0, 0.0), (0.0, 0.0, -0.45), (0.0, 0.0, -0.44),   # 4-6 left hip, knee, foot
    (0.0, 0.0, 0.23), (0.0, 0.0, 0.25),                       # 7 spine, 8 thorax
    (0.0, 0.06, 0.11), (0.0, -0.02, 0.11),                    # 9 neck/nose, 10 head
    (0.16, 0.0, -0.02), (0.0, 0.0, -0.28), (0.0, 0.0, -0.25),  # 11-13 left shoulder, elbow, wrist
    (-0.16, 0.0, -0.02), (0.0, 0.0, -0.28), (0.0, 0.0, -0.25),  # 14-16 right shoulder, elbow, wrist
])

# (joint, axis, centre, amplitude) in radians: the joint's rotation, which moves its children.
# Axis 0 bends forward/back (x), 1 abducts sideways (y), 2 twists (z). Knees bend back only.
SWINGS = (
    (0, 0, 0.0, 0.08), (0, 1, 0.0, 0.05),
    (1, 0, -0.15, 0.45), (1, 1, -0.05, 0.08), (2, 0, -0.55, 0.5),
    (4, 0, -0.15, 0.45), (4, 1, 0.05, 0.08), (5, 0, -0.55, 0.5),
    (7, 0, 0.1, 0.15), (7, 2, 0.0, 0.2), (8, 0, 0.05, 0.1), (9, 0, 0.1, 0.2), (9, 2, 0.0, 0.4),
    (11, 0, 0.2, 0.6), (11, 1, 0.35, 0.3), (12, 0, 0.8, 0.6),
    (14, 0, 0.2, 0.6), (14, 1, -0.35, 0.3), (15, 0, 0.8, 0.6),
)
PARENTS_17 = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
METADATA = {"layout_name": "h36m", "num_joints": 17,
            "keypoints_symmetry": [list(h36m.JOINTS_LEFT), list(h36m.JOINTS_RIGHT)]}


@dataclass(frozen=True)
class SynthOptions:
    """What to generate: subjects, actions, roughly how many frames per sequence, and the seed."""

    subjects: tuple[str, ...] = h36m.SUBJECTS
    actions: tuple[str, ...] = h36m.ACTIONS
    frames: int = 200
    seed: int = 0


def check_options(options: SynthOptions) -> None:
    """ValueError naming the first unknown subject or action, or a frame count below 2."""
    for subject in options.subjects:
        if subject not in h36m.SUBJECTS:
            raise ValueError(f"unknown subject `{subject}`; H36M's calibrated subjects are {', '.join(h36m.SUBJECTS)}")
    for action in options.actions:
        if action not in h36m.ACTIONS:
            raise ValueError(f"unknown action `{action}`; H36M's actions are {', '.join(h36m.ACTIONS)}")
    if options.frames < 2:
        raise ValueError("a sequence needs at least 2 frames")


def _rotation(axis: int, angles: np.ndarray) -> np.ndarray:
    """Rotation matrices (T, 3, 3) about a body axis by angles (T,)."""
    cos, sin = np.cos(angles), np.sin(angles)
    one, zero = np.ones_like(angles), np.zeros_like(angles)
    rows = {
        0: ((one, zero, zero), (zero, cos, -sin), (zero, sin, cos)),
        1: ((cos, zero, sin), (zero, one, zero), (-sin, zero, cos)),
        2: ((cos, -sin, zero), (sin, cos, zero), (zero, zero, one)),
    }[axis]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def joint_rotations(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Local rotations (T, 17, 3, 3): each swing a sinusoid with the sequence's own tempo and phases."""
    time = np.arange(frames) / FPS
    tempo = rng.uniform(0.4, 1.4)  # cycles per second, shared so that limbs move together
    rotations = np.broadcast_to(np.eye(3), (frames, 17, 3, 3)).copy()
    for joint, axis, centre, amplitude in SWINGS:
        phase = rng.uniform(0, 2 * np.pi)
        angles = centre + amplitude * rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * tempo * time + phase)
        rotations[:, joint] = rotations[:, joint] @ _rotation(axis, angles)
    return rotations


def root_motion(frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The root's world position (T, 3) wandering within a 1.5 m square, and its heading (T,) in radians."""
    time = np.arange(frames) / FPS
    start = rng.uniform(-0.75, 0.75, 2)
    velocity = rng.uniform(-0.4, 0.4, 2)
    heading = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.3, 0.3) * time
    floor = start + np.outer(time, velocity)
    floor = 0.75 - np.abs((floor + 0.75) % 3.0 - 1.5)  # reflect off the square's sides
    height = 0.92 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * time)
    return np.column_stack([floor, height]), heading


def forward_kinematics(rotations: np.ndarray, root: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """World positions (T, 17, 3): each joint at its parent plus the parent's world rotation of its offset."""
    frames = rotations.shape[0]
    world = [None] * 17
    positions = np.zeros((frames, 17, 3))
    for joint, parent in enumerate(PARENTS_17):
        if parent < 0:
            world[joint] = _rotation(2, heading) @ rotations[:, joint]
            positions[:, joint] = root
            continue
        positions[:, joint] = positions[:, parent] + np.einsum("tij,j->ti", world[parent], REST_OFFSETS[joint])
        world[joint] = world[parent] @ rotations[:, joint]
    return positions


def to_32_joints(positions: np.ndarray) -> np.ndarray:
    """The 32-joint mocap layout: the 17 joints in their places, each static joint on its parent."""
    full = np.zeros(positions.shape[:-2] + (32, 3), positions.dtype)
    full[..., list(h36m.KEPT_JOINTS_32), :] = positions
    for joint in h36m.STATIC_JOINTS_32:  # parents come first, so each parent is already placed
        full[..., joint, :] = full[..., h36m.PARENTS_32[joint], :]
    return full


def sequence(frames: int, rng: np.random.Generator) -> np.ndarray:
    """One synthetic sequence: world positions (T, 32, 3) in metres, float32."""
    root, heading = root_motion(frames, rng)
    return to_32_joints(forward_kinematics(joint_rotations(frames, rng), root, heading)).astype(np.float32)


def project(positions_32: np.ndarray, subject: str) -> list[np.ndarray]:
    """The 17 joints in each of the subject's four cameras, in pixels (float32), as `prepare_data_h36m.py` does."""
    positions = h36m.keep_17_joints(positions_32)
    views = []
    for camera in h36m.cameras(subject):
        in_camera = world_to_camera(positions, camera.orientation, camera.translation)
        normalized = project_to_2d(in_camera, camera.intrinsic)
        views.append(image_coordinates(normalized, camera.width, camera.height).astype(np.float32))
    return views


def synthesize(options: SynthOptions) -> tuple[dict, dict]:
    """`positions_3d` and `positions_2d` for every subject and action (two takes each: `A` and `A 1`)."""
    positions_3d: dict = {}
    positions_2d: dict = {}
    for subject in options.subjects:
        positions_3d[subject] = {}
        positions_2d[subject] = {}
        for action in options.actions:
            for take in (0, 1):
                name = action if take == 0 else f"{action} 1"
                # One stream per sequence, so a sequence does not change when others are added.
                rng = np.random.default_rng([options.seed, h36m.SUBJECTS.index(subject),
                                             h36m.ACTIONS.index(action), take])
                frames = options.frames + int(rng.integers(0, options.frames // 2 + 1))
                positions_3d[subject][name] = sequence(frames, rng)
                positions_2d[subject][name] = project(positions_3d[subject][name], subject)
    return positions_3d, positions_2d
