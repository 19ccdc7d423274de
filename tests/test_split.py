"""`poseir split`: how the training and inference flows differ, on every example, and its checks."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from poseir.compiler import build
from poseir.passes.split_flows import split_flows

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = sorted(path.stem for path in EXAMPLES.glob("*.pose"))


def flows(path: str, text: str | None = None, **overrides):
    """The training and inference graphs of a model."""
    train, _ = build(path, mode="train", text=text, overrides=overrides)
    infer, _ = build(path, mode="infer", text=text, overrides=overrides)
    return train, infer


@pytest.mark.parametrize("name", NAMES)
def test_split_of_every_example(name):
    result = subprocess.run([sys.executable, "-m", "poseir", "split", str(EXAMPLES / f"{name}.pose"),
                             "--format", "json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    train, infer = flows(str(EXAMPLES / f"{name}.pose"))
    read = {name for graph in (train, infer) for node in graph.nodes for name in node.inputs}
    assert {entry["key"] for entry in report["shared_parameters"]} == \
        {parameter.name for parameter in train.parameters if parameter.name in read}
    assert report["diagnostics"] == []
    # Every training flow has a loss the inference flow does not compute.
    assert any(site["op"] in ("mpjpe", "weighted_mpjpe", "n_mpjpe", "mean_velocity_error", "mean", "sum")
               for site in report["train_only_ops"]), report["train_only_ops"]
    if any(node.op in ("dropout", "drop_path") for node in train.nodes):
        assert {"dropout", "drop_path"} & {site["op"] for site in report["train_only_ops"]}


def test_videopose3d_strided_training_and_dilated_inference():
    train, infer = flows(str(EXAMPLES / "videopose3d.pose"))
    split, diagnostics = split_flows(train, infer)
    assert diagnostics == []
    differing = {name: (training, inference) for name, training, inference in split.read_differently}
    assert differing["layers_conv.0.weight"] == ("conv1d(stride=3)", "conv1d(dilation=3)")
    assert differing["layers_conv.6.weight"] == ("conv1d(stride=3)", "conv1d(dilation=81)")
    assert "layers_conv.1.weight" not in differing  # the 1x1 convolutions are the same in both flows
    assert split.infer_only_ops == []
    assert {site.op for site in split.mode_dependent} == {"batch_norm"}


def test_flip_augmentation_exists_only_in_inference():
    train, infer = flows(str(EXAMPLES / "videopose3d.pose"), test_time_flip=True)
    split, _ = split_flows(train, infer)
    assert {"gather", "concat"} <= {site.op for site in split.infer_only_ops}


LEFTOVER = """\
dim B
model m = Net()

module Net() {
    self.fc = Linear(4, 4)
    self.aux = Linear(4, 2)
    forward(x: f32[B, 4]) -> (y: f32[B, 4], train loss: f32[]) {
        y = self.fc(x)
        train {
            loss = self.aux(y).mean()
        }
        return y, loss
    }
}
"""


def test_a_parameter_read_by_one_flow_is_reported_where_it_is_declared():
    train, infer = flows("leftover.pose", LEFTOVER)
    split, diagnostics = split_flows(train, infer)
    assert split.train_only_parameters == ["aux.weight", "aux.bias"]
    assert [(diagnostic.code, diagnostic.span.line) for diagnostic in diagnostics] == [("W315", 6), ("W315", 6)]


def test_a_training_only_op_feeding_an_inference_output_is_an_error():
    train, infer = flows(str(EXAMPLES / "videopose3d.pose"))
    # An inference graph assembled by other means: the training graph (with its MPJPE loss) relabelled.
    mislabelled = replace(train, mode="infer")
    _, diagnostics = split_flows(train, mislabelled)
    assert [(diagnostic.code, diagnostic.span.line) for diagnostic in diagnostics] == [("E110", 84)]  # mpjpe(...)
