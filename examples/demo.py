"""`make demo`: check every example, run each with the numpy backend at two sizes, export it to ONNX.

Every step is a real `poseir` command, printed before it runs, so the output doubles as a
tour of the CLI. Each ONNX file is then run in onnxruntime on the same inputs, and its outputs
are compared with the numpy backend's (both use poseir's seeded default weights, seed 0).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HERE = Path("examples")  # paths relative to the repository root, as a user would type them
OUT = Path("out") / "demo"
POSEIR = [sys.executable, "-m", "poseir"]

# (file, input builders per size, extra --set flags per size)
EXAMPLES = [
    ("simplebaseline.pose", [
        ({"pose_2d": (4, 32)}, []),
        ({"pose_2d": (9, 32)}, []),
    ]),
    ("videopose3d.pose", [
        ({"keypoints": (2, 243, 17, 2)}, ["--set", "channels=256"]),
        ({"keypoints": (1, 300, 17, 2)}, ["--set", "channels=256"]),
    ]),
    ("poseformer.pose", [
        ({"keypoints": (2, 81, 17, 2)}, []),
        ({"keypoints": (3, 27, 17, 2)}, ["--set", "num_frame=27"]),
    ]),
    ("mixste.pose", [
        ({"keypoints": (2, 27, 17, 2)}, ["--set", "embed_dim_ratio=32", "--set", "depth=2", "--set", "num_frame=27"]),
        ({"keypoints": (3, 9, 17, 2)}, ["--set", "embed_dim_ratio=32", "--set", "depth=2", "--set", "num_frame=9"]),
    ]),
    # One export serves both clip lengths: T is read from the input (T <= maxlen).
    ("motionbert.pose", [
        ({"keypoints": (2, 27, 17, 3)}, ["--set", "dim_feat=32", "--set", "dim_rep=32", "--set", "depth=2"]),
        ({"keypoints": (1, 100, 17, 3)}, ["--set", "dim_feat=32", "--set", "dim_rep=32", "--set", "depth=2"]),
    ]),
    # The adjacency is built from the h36m16 skeleton at compile time; one export serves both batch sizes.
    ("semgcn.pose", [
        ({"pose_2d": (4, 16, 2)}, []),
        ({"pose_2d": (11, 16, 2)}, []),
    ]),
    # A slim ResNet (width 16, 32 deconv filters) with the default 18 joints x 64 depth bins: the paper's
    # 256x256 patch and a 128x192 image share one export (any sides that are multiples of 32).
    ("integral.pose", [
        ({"image": (2, 3, 256, 256)}, ["--set", "width=16", "--set", "deconv_filters=32"]),
        ({"image": (1, 3, 128, 192)}, ["--set", "width=16", "--set", "deconv_filters=32"]),
    ]),
    # MHFormer accepts only T = frames: the paper's 351-frame clip and an 81-frame model, each with
    # 128 hypothesis channels.
    ("mhformer.pose", [
        ({"keypoints": (1, 351, 17, 2)}, ["--set", "channel=128", "--set", "d_hid=256"]),
        ({"keypoints": (2, 81, 17, 2)}, ["--set", "frames=81", "--set", "channel=128", "--set", "d_hid=256"]),
    ]),
    # The paper's SemGCN with non-local blocks; one export serves both batch sizes.
    ("semgcn_nonlocal.pose", [
        ({"pose_2d": (4, 16, 2)}, []),
        ({"pose_2d": (11, 16, 2)}, []),
    ]),
    # P-STMO accepts only F = frames, in the official (B, 2, F, J, 1) layout: the paper's 243-frame PSTMOS
    # (strides 3^5), and 81 frames with the official strides for that length; both outputs.
    ("pstmo.pose", [
        ({"x": (2, 2, 243, 17, 1)}, []),
        ({"x": (3, 2, 81, 17, 1)}, ["--set", "frames=81", "--set", "stride_num=[3,3,3,3]"]),
    ]),
]


def run(command: list[str]) -> None:
    """Echo and run one command; stop the demo if it fails."""
    shown = ["poseir", *command[len(POSEIR):]] if command[:len(POSEIR)] == POSEIR else command
    print("$ " + " ".join(shlex.quote(part) for part in shown), flush=True)
    completed = subprocess.run(command, cwd=ROOT)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def compare_with_onnxruntime(model: Path, inputs: Path, outputs: Path) -> None:
    """Run the ONNX file in onnxruntime and compare with the numpy backend's outputs (stop if they differ)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(ROOT / model), providers=["CPUExecutionProvider"])
    with np.load(ROOT / inputs) as feed, np.load(ROOT / outputs) as expected:
        got = dict(zip([output.name for output in session.get_outputs()], session.run(None, dict(feed))))
        difference = max(float(np.max(np.abs(got[key] - expected[key]))) for key in expected.files)
    shapes = ", ".join(f"{key} {list(value.shape)}" for key, value in got.items())
    verdict = "matches" if difference <= 1e-4 else "DIFFERS FROM"
    print(f"  onnxruntime on {model.name}: {shapes}; {verdict} numpy (max |diff| = {difference:.1e})", flush=True)
    if difference > 1e-4:
        sys.exit(1)


def main() -> None:
    """Check, then run each example at two sizes and export it, comparing onnxruntime with numpy."""
    (ROOT / OUT).mkdir(parents=True, exist_ok=True)
    run([*POSEIR, "check", *(str(HERE / name) for name, _ in EXAMPLES)])
    rng = np.random.default_rng(0)
    for name, sizes in EXAMPLES:
        stem = Path(name).stem
        models: dict[tuple, Path] = {}  # one ONNX file per hyper-parameter set; it serves every size
        for index, (shapes, flags) in enumerate(sizes):
            if tuple(flags) not in models:
                models[tuple(flags)] = OUT / (f"{stem}.onnx" if not models else f"{stem}_{index}.onnx")
                run([*POSEIR, "compile", str(HERE / name), "--target", "onnx", "-o", str(models[tuple(flags)]),
                     *flags])
            inputs = OUT / f"{stem}_inputs_{index}.npz"
            np.savez(ROOT / inputs, **{key: rng.standard_normal(shape).astype(np.float32) for key, shape in shapes.items()})
            output = OUT / f"{stem}_outputs_{index}.npz"
            run([*POSEIR, "run", str(HERE / name), "--inputs", str(inputs), "-o", str(output), *flags])
            compare_with_onnxruntime(models[tuple(flags)], inputs, output)
    print(f"demo finished: outputs and ONNX models in {OUT}/")


if __name__ == "__main__":
    main()
