"""Language features that need more than one file or a look inside the built graph."""

from __future__ import annotations

import textwrap

import pytest

from poseir.elaborate.builtins import SKELETONS
from poseir.compiler import build, check
from poseir.diagnostics.render import render


def codes(result) -> list[tuple[str, int]]:
    return [(d.code, d.span.line if d.span else 0) for d in result.sorted_diagnostics()]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_import_brings_modules_into_scope(tmp_path):
    write(tmp_path, "layers.pose", """\
        ## A projection used by other files.
        module Proj(width: int) {
            self.fc = Linear(width, 3)
            forward(x) {
                return self.fc(x)
            }
        }
    """)
    main = write(tmp_path, "main.pose", """\
        import "layers.pose"
        import "layers.pose" as layers
        dim B
        model m = Two()
        module Two() {
            self.a = Proj(4)
            self.b = layers.Proj(3)
            forward(x: f32[B, 4]) -> (y: f32[B, 3]) {
                return self.b(self.a(x))
            }
        }
    """)
    result = check(str(main))
    assert codes(result) == [], render(result.sorted_diagnostics(), result.sources, "human")
    graph = result.graphs[("m", "infer")]
    assert [p.name for p in graph.parameters] == ["a.fc.weight", "a.fc.bias", "b.fc.weight", "b.fc.bias"]


def test_import_cycle_and_missing_file(tmp_path):
    write(tmp_path, "a.pose", 'import "b.pose"\n')
    write(tmp_path, "b.pose", 'import "a.pose"\n')
    result = check(str(tmp_path / "a.pose"))
    assert [d.code for d in result.sorted_diagnostics()] == ["E002"]
    assert "import cycle" in result.sorted_diagnostics()[0].message
    missing = write(tmp_path, "c.pose", 'import "nowhere.pose"\n')
    assert [(d.code, d.span.line) for d in check(str(missing)).sorted_diagnostics()] == [("E002", 1)]


def test_builtin_skeletons_are_valid():
    """Each built-in flip is an involution of length J and each tree has one root."""
    assert {name: skeleton.J for name, skeleton in SKELETONS.items()} == {
        "h36m": 17, "h36m16": 16, "mpi_inf_3dhp": 17, "coco": 17}
    for skeleton in SKELETONS.values():
        flip = skeleton.flip
        assert sorted(flip) == list(range(skeleton.J))
        assert all(flip[flip[index]] == index for index in range(skeleton.J))
        assert skeleton.parents.count(-1) == 1
    h36m = SKELETONS["h36m"]
    assert h36m.left == (4, 5, 6, 11, 12, 13) and h36m.right == (1, 2, 3, 14, 15, 16)
    assert h36m.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


@pytest.mark.parametrize(("body", "code"), [
    ('joints = ["a", "b"]\n    parents = [-1, -1]', "E105"),
    ('joints = ["a", "b", "c"]\n    parents = [-1, 0, 0]\n    pairs = [("b", "c"), ("c", "a")]', "E215"),
    ('joints = ["a", "a"]\n    parents = [-1, 0]', "E104"),
    ('joints = ["a", "b"]\n    parents = [-1, "z"]', "E100"),
])
def test_skeleton_mistakes(body, code):
    text = f"skeleton s {{\n    {body}\n}}\ndim B\nmodel m = M()\nmodule M() {{\n    forward(x: f32[B, s.J]) {{\n        return x\n    }}\n}}\n"
    result = check("s.pose", text)
    assert [d.code for d in result.sorted_diagnostics()][:1] == [code]


def test_mode_specific_forwards_and_statements():
    text = textwrap.dedent("""\
        dim B
        model m = M()
        module M() {
            self.fc = Linear(2, 2)
            forward train(x: f32[B, 2], target: f32[B, 2]) -> (y: f32[B, 2], loss: f32[]) {
                y = self.fc(x)
                return y, mean((y - target) ** 2.0)
            }
            forward infer(x: f32[B, 2]) -> (y: f32[B, 2]) {
                y = self.fc(x)
                train {
                    y = y * 100.0
                }
                return y
            }
        }
    """)
    result = check("m.pose", text)
    assert codes(result) == []
    train, infer = result.graphs[("m", "train")], result.graphs[("m", "infer")]
    assert [v.name for v in train.inputs] == ["x", "target"] and [v.name for v in train.outputs] == ["y", "loss"]
    assert [v.name for v in infer.inputs] == ["x"] and [v.name for v in infer.outputs] == ["y"]
    assert "mul" not in [node.op for node in infer.nodes]
    assert train.parameter_table().keys() == infer.parameter_table().keys()


def test_loss_outside_training_is_reported():
    text = textwrap.dedent("""\
        dim B, J
        model m = M()
        module M() {
            forward(x: f32[B, J, 3], t: f32[B, J, 3]) -> (e: f32[]) {
                return mpjpe(x, t)
            }
        }
    """)
    assert codes(check("m.pose", text)) == [("E105", 5)]


def test_facts_settle_comparisons_and_unknowns_warn():
    text = textwrap.dedent("""\
        dim B, T, N
        model m = M()
        module M() {
            forward(x: f32[B, T, 3], y: f32[B, N, 3]) -> (z: f32[B, T, 3]) where T >= 10 {
                assert(T - 9 >= 1, "needs ten frames")
                return x + y
            }
        }
    """)
    result = check("m.pose", text)
    assert codes(result) == [("W300", 6)]
    warning = result.sorted_diagnostics()[0]
    assert any("where" in help_ and "==" in help_ for help_ in warning.helps)


def test_callee_facts_are_checked_at_each_call():
    text = textwrap.dedent("""\
        dim B, T, L
        model m = M()
        module Window() {
            forward(x: f32[B, L, 2]) -> (y: f32[B, L, 2]) where L >= 27 {
                return x
            }
        }
        module M() {
            self.w = Window()
            forward(a: f32[B, 9, 2], b: f32[B, T, 2]) -> (y: f32[B, T, 2]) {
                unused = self.w(a)
                return self.w(b)
            }
        }
    """)
    assert codes(check("m.pose", text)) == [("E212", 11), ("W301", 12)]


def test_shape_introspection_unpacking_and_sequential():
    text = textwrap.dedent("""\
        dim B, T
        model m = M(widths = [4, 8])
        module M(widths: list) {
            self.mlp = Sequential(Linear(3, widths[0]), ReLU(), Linear(widths[0], widths[1]))
            forward(x: f32[B, T, 3]) -> (y: f32[B, T, 8], z: f32[B, T]) {
                batch, frames, channels = x.shape
                h = self.mlp(x.reshape(batch * frames, channels)).view(B, T, -1)
                first, second = h[..., 0:4], h[..., 4:8]
                assert first: f32[B, T, 4]
                return h, (first + second).sum(-1)
            }
        }
    """)
    result = check("m.pose", text)
    assert codes(result) == [], render(result.sorted_diagnostics(), result.sources, "human")
    graph = result.graphs[("m", "infer")]
    assert [p.name for p in graph.parameters] == ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]


def test_set_overrides_and_unknown_model():
    text = "dim B\nmodel m = M()\nmodule M(k: int = 3) {\n    self.fc = Linear(k, 2)\n    forward(x: f32[B, k]) {\n        return self.fc(x)\n    }\n}\n"
    graph, _ = build("m.pose", text=text, overrides={"k": 5})
    assert graph.parameter_table()["fc.weight"].shape == (2, 5)
    graph, result = build("m.pose", text=text, model="n")
    assert graph is None and [d.code for d in result.diagnostics] == ["E106"]


def test_strided_slices_and_gather_with_skeleton():
    text = textwrap.dedent("""\
        dim B, T
        model m = M()
        module M() {
            forward(x: f32[B, T, 17, 2]) -> (y: f32[B, (T - 1) // 3 + 1, 17, 2]) where T >= 3 {
                return x[:, 0::3, h36m.flip]
            }
        }
    """)
    result = check("m.pose", text)
    assert codes(result) == [], render(result.sorted_diagnostics(), result.sources, "human")


def test_where_facts_can_be_limited_to_one_mode():
    text = textwrap.dedent("""\
        dim B, T
        model m = M()
        module M() {
            forward(x: f32[B, T, 3]) -> (y: f32[B, T - 1, 3]) where train T >= 2, T <= 9 {
                return x[:, 1:] - x[:, :-1]
            }
        }
    """)
    result = check("m.pose", text)
    assert codes(result) == [("W301", 5), ("W301", 5)], "inference cannot prove the slices are non-empty"
    train, infer = result.graphs[("m", "train")], result.graphs[("m", "infer")]
    assert train.facts.bounds("T") == (2, 9) and infer.facts.bounds("T") == (1, 9)


def test_dims_in_tensor_arithmetic_and_arange_follow_the_runtime_size():
    import numpy as np

    from poseir.backends.numpy_interpreter import run_graph

    text = textwrap.dedent("""\
        dim B, T
        model m = M()
        module M() {
            forward(x: f32[B, T, 3]) -> (mean: f32[B, 3], ramp: f32[T]) {
                return x.sum(1) / T, arange(T)
            }
        }
    """)
    graph, result = build("m.pose", text=text)
    assert graph is not None, result.diagnostics
    for frames in (4, 11):
        x = np.random.default_rng(frames).standard_normal((2, frames, 3)).astype(np.float32)
        outputs = run_graph(graph, {"x": x}, {})
        np.testing.assert_allclose(outputs["mean"], x.mean(1), rtol=1e-5)
        np.testing.assert_array_equal(outputs["ramp"], np.arange(frames, dtype=np.float32))


def test_imports_bring_constants_and_skeletons_transitively(tmp_path):
    """a.pose imports b.pose, which imports c.pose: c's constants, skeletons and modules reach a."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "layers").mkdir()
    write(tmp_path, "layers/c.pose", """\
        WIDTH = 8
        skeleton stick {
            joints = ["pelvis", "lhip", "rhip"]
            parents = [-1, "pelvis", "pelvis"]
            pairs = [("lhip", "rhip")]
        }
        module Deep(w: int = WIDTH) {
            self.fc = Linear(w, w)
            forward(x) {
                return self.fc(x)
            }
        }
    """)
    write(tmp_path, "layers/b.pose", """\
        import "c.pose"
        HIDDEN = WIDTH * 2
        module Mid(w: int = WIDTH) {
            self.deep = Deep(w)
            forward(x) {
                return self.deep(x)
            }
        }
    """)
    main = write(tmp_path, "a.pose", """\
        import "layers/b.pose"
        import "layers/c.pose" as c
        dim B
        WIDTH = 8
        model m = Top()
        module Top() {
            self.mid = Mid(WIDTH)
            self.deep = Deep(HIDDEN // 2)
            forward(x: f32[B, stick.J, c.WIDTH]) -> (y: f32[B, c.stick.J, WIDTH]) {
                return self.deep(self.mid(x[:, stick.flip]))
            }
        }
    """)
    result = check(str(main))
    assert codes(result) == [], render(result.sorted_diagnostics(), result.sources, "human")
    # A path written with Windows separators names the same files (never a `\b` escape).
    windows = main.read_text().replace('"layers/b.pose"', '"layers\\b.pose"')
    windows = windows.replace('"layers/c.pose"', '"layers\\c.pose"')
    assert 'import "layers\\b.pose"' in windows
    result = check(str(main), windows)
    assert codes(result) == [], render(result.sorted_diagnostics(), result.sources, "human")


def test_augmented_assignment_enumerate_and_zip_compute_what_they_spell():
    import numpy as np

    from poseir.backends.numpy_interpreter import run_graph
    from poseir.weights.init import initialize

    text = textwrap.dedent("""\
        dim B, T
        model m = M()
        module M() {
            self.layers = [Linear(4, 4) for i in 0..3]
            forward(x: f32[B, T, 4]) -> (y: f32[B, T, 4], z: f32[B, T, 4]) {
                y = x
                for i, layer in enumerate(self.layers) {
                    y += layer(y) * (i + 1)
                }
                z = x
                for scale, shift in zip([2.0, 3.0], [1.0, -1.0]) {
                    z *= scale
                    z -= shift
                    z /= 2.0
                }
                return y, z.contiguous()
            }
        }
    """)
    graph, result = build("m.pose", text=text)
    assert graph is not None and result.diagnostics == [], result.diagnostics
    weights = initialize(graph.parameters, seed=1)
    x = np.random.default_rng(2).standard_normal((2, 5, 4)).astype(np.float32)
    outputs = run_graph(graph, {"x": x}, weights)
    expected = x.astype(np.float64)
    for index in range(3):
        layer = expected @ weights[f"layers.{index}.weight"].T + weights[f"layers.{index}.bias"]
        expected = expected + layer * (index + 1)
    np.testing.assert_allclose(outputs["y"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs["z"], ((x * 2.0 - 1.0) / 2.0 * 3.0 + 1.0) / 2.0, rtol=1e-6)


def test_typo_fix_never_swaps_a_users_layer_for_a_builtin_with_other_parameters():
    """`Linar(16, p_dropout = 0.1)` is the user's `LinearBlock`, never torch's closer-spelled `Linear`."""
    text = textwrap.dedent("""\
        dim B, T
        model m = M()
        module LinearBlock(linear_size: int, p_dropout: float = 0.25) {
            self.w1 = Conv1d(linear_size, linear_size, 1)
            forward(x) {
                return x + self.w1(x)
            }
        }
        module M() {
            self.block = Linar(16, p_dropout = 0.1)
            self.other = Linar(16, 16, bias = false)
            self.third = Linar(linear_size = 16, dropout = 0.1)
            forward(x: f32[B, 16, T]) -> (y: f32[B, 16, T]) {
                return self.block(x)
            }
        }
    """)
    found = {d.span.line: d for d in check("m.pose", text).sorted_diagnostics()}
    assert {line: d.code for line, d in found.items()} == {10: "E101", 11: "E101", 12: "E101"}
    assert [fix.edits[0].replacement for fix in found[10].fixes] == ["LinearBlock"]
    assert [fix.edits[0].replacement for fix in found[11].fixes] == ["Linear"]  # its arguments fit torch's Linear
    assert found[12].fixes == () and found[12].helps == ()  # neither takes `dropout`
