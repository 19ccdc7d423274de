"""Evaluation as VideoPose3D's `run.py --evaluate` does it, for any poseir model that lifts 2D sequences.

Per test subject (S9, S11), action and camera: the world positions go into the camera's frame and
become root-relative (root zeroed), the 2D keypoints are truncated to the mocap length and
normalized to the screen, the sequence is edge-padded by (receptive field - 1) / 2 frames per side
and run through the model (with flip test-time augmentation: the mirrored sequence is a second
batch element, its prediction is mirrored back and the two are averaged). MPJPE, P-MPJPE, N-MPJPE
and MPJVE are computed per sequence, weighted by its frame count within its action (`Walking 1`
counts as `Walking`), and the actions are averaged with equal weight. Errors are in millimetres.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.ir.dims import Dim
from poseir.ir.graph import Graph
from poseir.limits import DEFAULT_LIMITS
from poseir.recipe import h36m, metrics
from poseir.recipe.data import Keypoints2D, dataset_error, load_2d, load_3d
from poseir.recipe.preprocess import flip_permutation, flip_poses, normalize_screen_coordinates, root_relative, \
    world_to_camera

METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")
RUNTIMES = ("numpy", "onnxruntime")
# Windows per model call for fixed-window (seq2frame) models, to bound memory.
WINDOW_BATCH = 512

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class EvalOptions:
    """The protocol's choices: test subjects, flip test-time augmentation, the runtime."""

    subjects: tuple[str, ...] = h36m.TEST_SUBJECTS
    flip: bool = True
    runtime: str = "numpy"
    array_bytes: int = DEFAULT_LIMITS.array_bytes  # bounds each dataset file and each array of a run


@dataclass(frozen=True)
class Protocol:
    """How a model is fed: a whole padded sequence (`sequence`) or one window per frame (`window`)."""

    input_name: str
    output_name: str
    mode: str
    receptive_field: int
    joints: int

    @property
    def pad(self) -> int:
        """Frames of edge padding on each side."""
        return (self.receptive_field - 1) // 2


@dataclass(frozen=True)
class Sequence:
    """One test video: its name, 2D keypoints (T, J, 2) normalized, and the root-relative 3D target (T, 17, 3)."""

    subject: str
    action: str
    camera: int
    keypoints: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class ActionResult:
    """One action's frame-weighted errors in millimetres."""

    action: str
    sequences: int
    frames: int
    errors: dict[str, float]


@dataclass(frozen=True)
class EvalReport:
    """Every action's errors and their action-wise average, with what produced them."""

    model: str
    protocol: Protocol
    options: EvalOptions
    actions: tuple[ActionResult, ...]
    average: dict[str, float]


# ---------------------------------------------------------------- the model's side


def protocol_of(graph: Graph, joints: int) -> Protocol:
    """Read the protocol off the model's types; E414 when it does not lift 2D keypoint sequences."""
    if len(graph.inputs) != 1 or not graph.outputs:
        raise _unfit(graph, "one input (2D keypoints) and a 3D pose output")
    value, output = graph.inputs[0], graph.outputs[0]
    shape, out = value.type.shape, output.type.shape
    if value.type.rank != 4 or output.type.rank != 4 or not _is_symbol(shape[0]):
        raise _unfit(graph, f"input f32[B, T, {joints}, 2] and output f32[B, T', {joints}, 3]")
    if (shape[2].value, shape[3].value, out[2].value, out[3].value) != (joints, 2, joints, 3):
        raise _unfit(graph, f"{joints} joints with 2 coordinates in and {joints} joints with 3 out")
    trimmed = shape[1] - out[1]
    if _is_symbol(shape[1]) and trimmed.is_const and trimmed.value >= 0 and trimmed.value % 2 == 0:
        return Protocol(value.name, output.name, "sequence", trimmed.value + 1, joints)
    if shape[1].is_const and shape[1].value % 2 == 1 and out[1].value == 1:
        return Protocol(value.name, output.name, "window", shape[1].value, joints)
    raise _unfit(graph, "an output T - (rf - 1) frames long for an odd receptive field rf, or one frame from an "
                        "odd window")


def _is_symbol(dim: Dim) -> bool:
    return len(dim.symbols) == 1 and dim == Dim.symbol(next(iter(dim.symbols)))


def _unfit(graph: Graph, wanted: str) -> DiagnosticError:
    inputs = ", ".join(f"{value.name}: {value.type}" for value in graph.inputs)
    outputs = ", ".join(f"{value.name}: {value.type}" for value in graph.outputs)
    return DiagnosticError(Diagnostic.make(
        "E414", f"`{graph.name}` does not fit the evaluation protocol: it takes ({inputs}) -> ({outputs})", None,
        notes=(f"`poseir eval` needs {wanted}",)))


def runner(graph: Graph, weights: dict[str, np.ndarray], protocol: Protocol, options: EvalOptions):
    """A function from an input batch to the output batch, on numpy or onnxruntime."""
    if options.runtime == "onnxruntime":
        return _onnxruntime_runner(graph, weights, protocol)
    from poseir.backends.numpy_interpreter import run_graph
    from poseir.compiler import bind_weights, prepare_for_backend

    # The same pipeline `poseir run` and `poseir compile` use, weights bound once.
    graph, weights = bind_weights(prepare_for_backend(graph), weights)
    return lambda batch: run_graph(graph, {protocol.input_name: batch}, weights,
                                   array_bytes=options.array_bytes)[protocol.output_name]


def _onnxruntime_runner(graph: Graph, weights: dict[str, np.ndarray], protocol: Protocol):
    """Export once (as `poseir compile` does) and run every batch in one session."""
    import onnxruntime

    from poseir.backends.onnx_export import export
    from poseir.compiler import prepare_for_backend

    model = export(prepare_for_backend(graph), weights)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda batch: session.run([protocol.output_name], {protocol.input_name: batch})[0]


def predict(run, protocol: Protocol, keypoints: np.ndarray, flips: tuple | None) -> np.ndarray:
    """The 3D poses (T, J, 3) of one sequence: edge-padded, optionally with its mirror image, averaged."""
    padded = np.pad(keypoints, ((protocol.pad, protocol.pad), (0, 0), (0, 0)), mode="edge")[None]
    if flips is not None:
        padded = np.concatenate([padded, flip_poses(padded, flips[0])])
    padded = padded.astype(np.float32)
    if protocol.mode == "sequence":
        output = run(padded)
    else:
        output = _run_windows(run, padded, protocol.receptive_field)
    if flips is None:
        return output[0]
    return (output[0] + flip_poses(output[1], flips[1])) / 2


def _run_windows(run, padded: np.ndarray, window: int) -> np.ndarray:
    """One window per output frame, in batches; (B, T + window - 1, J, 2) -> (B, T, J, 3)."""
    batches, length = padded.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)  # (B, T, J, 2, window)
    windows = np.moveaxis(windows, -1, 2).reshape(-1, window, *padded.shape[2:])
    outputs = [run(np.ascontiguousarray(windows[start:start + WINDOW_BATCH]))
               for start in range(0, len(windows), WINDOW_BATCH)]
    return np.concatenate(outputs)[:, 0].reshape(batches, length - window + 1, -1, 3)


# ---------------------------------------------------------------- the data's side


def test_sequences(positions_3d: dict, keypoints: Keypoints2D, subjects: tuple[str, ...],
                   path_3d: str, path_2d: str) -> list[Sequence]:
    """Every (subject, action, camera) of the test subjects, prepared as VideoPose3D prepares them."""
    sequences = []
    for subject in subjects:
        if subject not in positions_3d:
            raise dataset_error(path_3d, f"has no subject `{subject}` in `positions_3d`")
        if subject not in keypoints.positions:
            raise dataset_error(path_2d, f"has no subject `{subject}` in `positions_2d`")
        try:
            cameras = h36m.cameras(subject)
        except KeyError:
            raise dataset_error(path_3d, f"subject `{subject}` has no H36M camera calibration",
                                notes=(f"calibrated subjects: {', '.join(h36m.SUBJECTS)}",)) from None
        for action in sorted(positions_3d[subject]):
            sequences.extend(_action_sequences(subject, action, positions_3d[subject][action], keypoints, cameras,
                                               path_2d))
    return sequences


def _action_sequences(subject, action, world, keypoints: Keypoints2D, cameras, path_2d: str) -> list[Sequence]:
    views = keypoints.positions[subject].get(action)
    if views is None:
        raise dataset_error(path_2d, f"has no action `{action}` for subject `{subject}`")
    if len(views) != len(cameras):
        raise dataset_error(path_2d, f"`{subject}` / `{action}` has {len(views)} cameras, expected {len(cameras)}")
    sequences = []
    for index, (camera, view) in enumerate(zip(cameras, views)):
        if len(view) < len(world):
            raise dataset_error(path_2d, f"`{subject}` / `{action}` camera {index} has {len(view)} frames, "
                                         f"fewer than the {len(world)} of the 3D data")
        target = root_relative(world_to_camera(world, camera.orientation, camera.translation))
        # Some H36M videos have extra frames; VideoPose3D cuts them to the mocap length.
        normalized = normalize_screen_coordinates(view[:len(world)], camera.width, camera.height)
        sequences.append(Sequence(subject, action, index, normalized.astype(np.float32), target))
    return sequences


# ---------------------------------------------------------------- the run


def evaluate(graph: Graph, weights: dict[str, np.ndarray], path_3d: str, path_2d: str,
             options: EvalOptions = EvalOptions(), progress: Progress | None = None) -> EvalReport:
    """Run the protocol over the test subjects and aggregate the errors by action."""
    keypoints = load_2d(path_2d, options.array_bytes)
    if keypoints.joints != 17:
        raise dataset_error(path_2d, f"has {keypoints.joints} keypoints; the H36M targets have 17 joints")
    protocol = protocol_of(graph, keypoints.joints)  # before reading the (larger) 3D file
    positions_3d = load_3d(path_3d, options.array_bytes)
    sequences = test_sequences(positions_3d, keypoints, options.subjects, path_3d, path_2d)
    run = runner(graph, weights, protocol, options)
    flips = None
    if options.flip:
        flips = (flip_permutation(keypoints.keypoints_left, keypoints.keypoints_right, keypoints.joints),
                 flip_permutation(h36m.JOINTS_LEFT, h36m.JOINTS_RIGHT, 17))
    errors = metrics.ActionErrors()
    counts: dict[str, int] = {}
    for done, item in enumerate(sequences, start=1):
        predicted = predict(run, protocol, item.keypoints, flips)
        errors.add(item.action, sequence_errors(predicted, item.target), len(item.target))
        counts[metrics.action_name(item.action)] = counts.get(metrics.action_name(item.action), 0) + 1
        if progress is not None:
            progress(done, len(sequences), f"{item.subject} {item.action} camera {item.camera}")
    actions = tuple(ActionResult(action, counts[action], errors.frames[action], values)
                    for action, values in errors.action_means().items())
    return EvalReport(graph.name, protocol, options, actions, errors.actionwise_average())


def sequence_errors(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The four errors of one sequence in millimetres (the data are in metres)."""
    return {
        "mpjpe": 1000 * metrics.mpjpe(predicted, target),
        "p_mpjpe": 1000 * metrics.p_mpjpe(predicted, target),
        "n_mpjpe": 1000 * metrics.n_mpjpe(predicted, target),
        # A one-frame sequence has no velocity to compare (VideoPose3D would report NaN).
        "mpjve": 1000 * metrics.mpjve(predicted, target) if len(target) > 1 else 0.0,
    }
