"""`make demo`: check every example, then run each with the numpy backend at two sizes.

Every step is a real `poseir` command, printed before it runs, so the output doubles as a
tour of the CLI.
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
]


def run(command: list[str]) -> None:
    """Echo and run one command; stop the demo if it fails."""
    shown = ["poseir", *command[len(POSEIR):]] if command[:len(POSEIR)] == POSEIR else command
    print("$ " + " ".join(shlex.quote(part) for part in shown), flush=True)
    completed = subprocess.run(command, cwd=ROOT)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def main() -> None:
    """Check, then run each example at two sizes."""
    (ROOT / OUT).mkdir(parents=True, exist_ok=True)
    run([*POSEIR, "check", *(str(HERE / name) for name, _ in EXAMPLES)])
    rng = np.random.default_rng(0)
    for name, sizes in EXAMPLES:
        for index, (shapes, flags) in enumerate(sizes):
            inputs = OUT / f"{Path(name).stem}_inputs_{index}.npz"
            np.savez(ROOT / inputs, **{key: rng.standard_normal(shape).astype(np.float32) for key, shape in shapes.items()})
            output = OUT / f"{Path(name).stem}_outputs_{index}.npz"
            run([*POSEIR, "run", str(HERE / name), "--inputs", str(inputs), "-o", str(output), *flags])
    print(f"demo finished: outputs in {OUT}/")


if __name__ == "__main__":
    main()
