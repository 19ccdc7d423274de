"""Target profiles: every example legalized, checked by an independent reader of the ONNX file, and run.

- `rank4` on every example: the file breaks none of the profile's rules (tests/onnx_rules.py reads
  only the ONNX file), and onnxruntime equals the numpy backend on the un-legalized model at two sizes;
- `static` on every example with `--dim` values, and `edgetpu` on VideoPose3D, SimpleBaseline and
  SemGCN, checked and run the same way at their fixed sizes;
- profiles as data: shipped ones by name, a user's TOML file by path, bad ones refused.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from onnx_rules import violations
from poseir.backends.numpy_interpreter import bind_symbols, concrete_shape, run_graph
from poseir.backends.onnx_export import export
from poseir.compiler import build, prepare_for_backend
from poseir.diagnostics.record import DiagnosticError
from poseir.passes.legalize import export_options, legalize, load_profile, parse_dims
from poseir.weights.init import initialize

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Small configurations; two input sizes for rank4 (symbolic dims kept) and the --dim values for static ones.
CASES = {
    "videopose3d": ({"channels": 32}, [{"keypoints": (2, 250, 17, 2)}, {"keypoints": (1, 243, 17, 2)}],
                    {"B": 1, "T": 243}),
    "simplebaseline": ({"linear_size": 32}, [{"pose_2d": (5, 32)}, {"pose_2d": (1, 32)}], {"B": 1}),
    "poseformer": ({"embed_dim_ratio": 8, "depth": 2, "num_frame": 9}, [{"keypoints": (2, 9, 17, 2)},
                                                                         {"keypoints": (3, 9, 17, 2)}], {"B": 2}),
    "mixste": ({"embed_dim_ratio": 16, "depth": 2, "num_frame": 9}, [{"keypoints": (2, 9, 17, 2)},
                                                                      {"keypoints": (1, 9, 17, 2)}], {"B": 1}),
    "motionbert": ({"dim_feat": 16, "dim_rep": 16, "depth": 2, "maxlen": 27}, [{"keypoints": (2, 9, 17, 3)},
                                                                                {"keypoints": (1, 20, 17, 3)}],
                   {"B": 1, "T": 20}),
    "semgcn": ({"hid_dim": 32, "num_layers": 2}, [{"pose_2d": (3, 16, 2)}, {"pose_2d": (1, 16, 2)}], {"B": 1}),
    "semgcn_nonlocal": ({"hid_dim": 32, "num_layers": 2}, [{"pose_2d": (3, 16, 2)}, {"pose_2d": (1, 16, 2)}],
                        {"B": 1}),
    "integral": ({"width": 8, "depth": 8, "deconv_filters": 16}, [{"image": (1, 3, 64, 64)},
                                                                  {"image": (2, 3, 32, 64)}],
                 {"B": 1, "H": 64, "W": 64}),
    "mhformer": ({"frames": 27, "channel": 16}, [{"keypoints": (2, 27, 17, 2)}, {"keypoints": (1, 27, 17, 2)}],
                 {"B": 1}),
    "pstmo": ({"frames": 9, "layers": 2, "channel": 32, "d_hid": 64, "stride_num": (1, 3, 3)},
              [{"x": (2, 2, 9, 17, 1)}, {"x": (1, 2, 9, 17, 1)}], {"B": 1}),
}
EDGE_TPU = ("videopose3d", "simplebaseline", "semgcn")


def rules(profile: str) -> dict:
    """A shipped profile's rules, read from its TOML file as a user would."""
    with open(ROOT / "passes" / "profiles" / f"{profile}.toml", "rb") as handle:
        return tomllib.load(handle)["rules"]


def exported(name: str, profile: str, dims: dict):
    """(un-legalized graph, weights, the ONNX model) of an example under a profile."""
    overrides, _, _ = CASES[name]
    graph, result = build(str(EXAMPLES / f"{name}.pose"), overrides=overrides)
    assert graph is not None, [diagnostic.message for diagnostic in result.sorted_diagnostics()]
    chosen = load_profile(profile)
    legal, diagnostics = legalize(prepare_for_backend(graph), chosen, dims)
    assert diagnostics == [], [diagnostic.message for diagnostic in diagnostics]
    weights = initialize(graph.parameters, 0)
    return graph, weights, legal, export(legal, weights, options=export_options(chosen))


def run_both(graph, weights, legal, model, shapes: dict) -> None:
    """onnxruntime on the legalized file equals numpy on the un-legalized graph (inputs and outputs
    a profile took in a lower rank are fed and compared reshaped)."""
    rng = np.random.default_rng(7)
    inputs = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    expected = run_graph(graph, inputs, weights)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    env = bind_symbols(graph, inputs)
    fed = {value.name: inputs[value.name].reshape(concrete_shape(value.type, env)) for value in legal.inputs}
    names = [output.name for output in session.get_outputs()]
    for name, found in zip(names, session.run(names, fed)):
        want = expected[name]
        assert found.size == want.size, name
        scale = max(float(np.max(np.abs(want))), 1e-6)
        assert float(np.max(np.abs(found.reshape(want.shape) - want))) <= 1e-4 * scale, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_rank4_export_keeps_every_rule_and_the_numbers(name):
    graph, weights, legal, model = exported(name, "rank4", {})
    assert violations(model, rules("rank4")) == []
    for shapes in CASES[name][1]:
        run_both(graph, weights, legal, model, shapes)


def _static_export_keeps_its_rules(name: str, profile: str) -> None:
    """Export under a profile that fixes every dim, check its rules, run it at the case's fitting sizes."""
    dims = CASES[name][2]
    graph, weights, legal, model = exported(name, profile, dims)
    assert violations(model, rules(profile)) == []
    shapes = next(shapes for shapes in CASES[name][1] if _fits(graph, shapes, dims))
    run_both(graph, weights, legal, model, shapes)


@pytest.mark.parametrize("name", sorted(CASES))
def test_static_export_keeps_every_rule_and_the_numbers(name):
    _static_export_keeps_its_rules(name, "static")


@pytest.mark.parametrize("name", EDGE_TPU)
def test_edgetpu_export_keeps_every_rule_and_the_numbers(name):
    _static_export_keeps_its_rules(name, "edgetpu")


def _fits(graph, shapes: dict, dims: dict) -> bool:
    """Whether input arrays of these shapes give the --dim values."""
    for value in graph.inputs:
        for dim, size in zip(value.type.shape, shapes[value.name]):
            if not dim.is_const and str(dim) in dims and dims[str(dim)] != size:
                return False
    return True


def test_the_edgetpu_profile_refuses_what_it_cannot_run():
    graph, _ = build(str(EXAMPLES / "poseformer.pose"), overrides=CASES["poseformer"][0])
    _, diagnostics = legalize(prepare_for_backend(graph), load_profile("edgetpu"), {"B": 2})
    assert diagnostics and {diagnostic.code for diagnostic in diagnostics} == {"E420"}
    assert all("edgetpu" in diagnostic.message and diagnostic.span.path.endswith("poseformer.pose")
               for diagnostic in diagnostics)


def test_a_static_profile_needs_every_dim():
    graph, _ = build(str(EXAMPLES / "videopose3d.pose"), overrides=CASES["videopose3d"][0])
    _, diagnostics = legalize(prepare_for_backend(graph), load_profile("static"), {"B": 1})
    (diagnostic,) = diagnostics
    assert diagnostic.code == "E420" and "T" in diagnostic.message and "--dim T=..." in diagnostic.helps[0]
    assert diagnostic.span.line == 48  # the forward that declares T


def test_dim_values_the_model_excludes_are_reported():
    graph, _ = build(str(EXAMPLES / "videopose3d.pose"), overrides=CASES["videopose3d"][0])
    _, diagnostics = legalize(prepare_for_backend(graph), load_profile("static"), {"B": 1, "T": 100})
    # At line 48, `forward infer(...) where T >= rf`.
    assert [(diagnostic.code, diagnostic.span.line) for diagnostic in diagnostics] == [("E421", 48)]
    assert "T >= 243" in diagnostics[0].message


def test_a_users_profile_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny"\ndescription = "matrices only"\n[rules]\nmax_rank = 2\n')
    profile = load_profile(str(path))
    assert profile.name == "tiny" and profile.rule("max_rank") == 2
    graph, _ = build(str(EXAMPLES / "semgcn.pose"), overrides=CASES["semgcn"][0])
    _, diagnostics = legalize(prepare_for_backend(graph), profile, {})
    assert diagnostics and all(diagnostic.code == "E420" and "tiny" in diagnostic.message
                               for diagnostic in diagnostics)


@pytest.mark.parametrize("text", ['[rules]\nmax_rank = "four"\n', '[rules]\nspeed = 3\n', 'not toml ['])
def test_bad_profiles_are_refused(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DiagnosticError) as error:
        load_profile(str(path))
    assert error.value.diagnostic.code == "E106"


def test_unknown_profiles_and_bad_dims_are_refused():
    with pytest.raises(DiagnosticError):
        load_profile("tpu9000")
    with pytest.raises(DiagnosticError):
        parse_dims(["T=zero"])
    assert parse_dims(["B=1", "T=243"]) == {"B": 1, "T": 243}
