"""Targeted checks of the op shape rules' diagnostics and of the numpy implementations' numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from poseir.compiler import check
from poseir.ir.dims import parse_dim
from poseir.ir.facts import Facts
from poseir.ir.graph import TensorType
from poseir.ops.elementwise import erf
from poseir.ops.registry import RunContext, ShapeContext, ShapeError, lookup
from poseir.diagnostics.render import render
from poseir.syntax.source import SourceFile, Span

RNG = np.random.default_rng(1234)


# --------------------------------------------------------------------------- helpers


def tensor(text: str, dtype: str = "f32") -> TensorType:
    """A tensor type from `"B, T, 17, 2"`."""
    return TensorType(dtype, tuple(parse_dim(part) for part in text.split(",") if part.strip()))


def context(op: str, facts: Facts = Facts(), **details) -> ShapeContext:
    """A shape context for `op` with no source (unless spans are given)."""
    return ShapeContext(op=op, facts=facts, span=Span.unknown(), **details)


def infer(op: str, shapes, attrs: dict, facts: Facts = Facts(), **details):
    """(output types as text, warning codes) of a successful inference."""
    ctx = context(op, facts, **details)
    types = [None if shape is None else tensor(shape) for shape in shapes]
    outputs = lookup(op).infer(ctx, types, attrs)
    return [str(output) for output in outputs], [warning.code for warning in ctx.warnings]


def error(op: str, shapes, attrs: dict, facts: Facts = Facts(), **details):
    """The diagnostic of a failing inference."""
    with pytest.raises(ShapeError) as caught:
        infer(op, shapes, attrs, facts, **details)
    return caught.value.diagnostic


def run(op: str, *arrays, mode: str = "infer", seed: int = 0, **attrs):
    """The outputs of an op's numpy implementation (attributes completed with their defaults)."""
    return lookup(op).run(RunContext(mode, np.random.default_rng(seed)), list(arrays), attrs)


def floats(*shape) -> np.ndarray:
    """Random float32 values."""
    return RNG.standard_normal(shape).astype(np.float32)


B, T = parse_dim("B"), parse_dim("T")


# --------------------------------------------------------------------------- reshape


def test_reshape_element_count_error_suggests_the_right_size():
    diagnostic = error("reshape", ["B, T, 17, 2"], {"shape": (B, T, 51)})
    assert diagnostic.code == "E204"
    assert diagnostic.labels[0].message == "34*B*T elements cannot become 51*B*T"
    assert any("f32[B, T, 17, 2]" in note for note in diagnostic.notes)
    assert any("`34`" in help_ for help_ in diagnostic.helps)


def test_reshape_baked_size_points_at_the_literal():
    source = SourceFile("t.pose", "y = x.view(B, 81, 34)\n")
    start = source.text.index("81")
    literal = source.span(start, start + 2)
    diagnostic = error("reshape", ["B, T, 17, 2"], {"shape": (B, 81, 34)},
                       spans={("shape", 1): literal}, texts={("shape", 1): "81"})
    assert diagnostic.code == "E205"
    assert diagnostic.message == "reshape only works when T == 81"
    assert diagnostic.span == literal
    (fix,) = diagnostic.fixes
    assert fix.message == "write `T` instead of `81`" and [edit.replacement for edit in fix.edits] == ["T"]
    assert not any("symbolically" in help_ for help_ in diagnostic.helps), "the fix is the help; no second copy"


def test_reshape_baked_size_in_a_product_suggests_a_symbolic_product():
    diagnostic = error("reshape", ["B, T, 17, 2"], {"shape": (B, 81 * 34)})
    assert diagnostic.code == "E205"
    assert any("`34*T`" in help_ for help_ in diagnostic.helps)


def test_reshape_baked_literal_multiplied_by_a_dim_blames_that_element():
    source = SourceFile("t.pose", "y = x.reshape(B * 81, 34)\n")
    first, second = source.text.index("B * 81"), source.text.index("34)")
    spans = {("shape", 0): source.span(first, first + 6), ("shape", 1): source.span(second, second + 2)}
    texts = {("shape", 0): "B * 81", ("shape", 1): "34"}
    diagnostic = error("reshape", ["B, T, 34"], {"shape": (B * 81, 34)}, spans=spans, texts=texts)
    assert diagnostic.code == "E205" and diagnostic.span == spans[("shape", 0)]
    assert diagnostic.labels[0].message == "`B * 81` fits only when T == 81"
    assert [edit.replacement for fix in diagnostic.fixes for edit in fix.edits] == ["B * T"]


def test_reshape_baked_literal_without_texts_falls_back_to_the_sizes():
    diagnostic = error("reshape", ["B, T, 34"], {"shape": (B * 81, 34)})
    assert diagnostic.code == "E205" and diagnostic.fixes == ()


def test_reshape_that_reorders_axes_suggests_permute_once():
    texts = {0: "x", ("shape", 0): "B", ("shape", 1): "T", ("shape", 2): "17", ("shape", 3): "3"}
    diagnostic = error("reshape", ["B, 51, T"], {"shape": (B, T, 17, 3)}, texts=texts)
    assert diagnostic.code == "E206"
    assert diagnostic.helps == (), "the fix is the one help: render shows its message and the rewritten line"
    (fix,) = diagnostic.fixes
    assert not fix.safe and fix.message == "permute the axes first"
    assert fix.edits[0].replacement == "x.permute(0, 2, 1).reshape(B, T, 17, 3)"


def test_reshape_that_reorders_axes_without_source_text_helps_instead():
    diagnostic = error("reshape", ["B, 51, T"], {"shape": (B, T, 17, 3)})
    assert diagnostic.fixes == ()
    assert diagnostic.helps == ("permute the axes first: `x.permute(0, 2, 1).reshape(B, T, 17, 3)`",)


def test_reshape_receiver_with_an_operator_is_parenthesized():
    diagnostic = error("reshape", ["B, T, 34"], {"shape": (B, 34, T)}, texts={0: "a + b"})
    assert diagnostic.fixes[0].edits[0].replacement == "(a + b).permute(0, 2, 1).reshape(B, 34, T)"


@pytest.mark.parametrize(("shape", "target", "expected"), [
    ("B, T, 17, 2", (B, T, 34), "f32[B, T, 34]"),
    ("B, T, 17, 2", (B * T, -1), "f32[B*T, 34]"),
    ("B*T, 34", (B, T, 17, 2), "f32[B, T, 17, 2]"),
    ("B, T, 51", (B, T, 17, 3), "f32[B, T, 17, 3]"),
    ("B, 1, T", (B, T), "f32[B, T]"),
])
def test_reshape_accepts_regroupings(shape, target, expected):
    assert infer("reshape", [shape], {"shape": target}) == ([expected], [])


def suggestions(diagnostic) -> list[str]:
    """The `did you mean` helps of a diagnostic."""
    return [help_ for help_ in diagnostic.helps if help_.startswith("did you mean")]


def test_reshape_suggestion_rewrites_the_literal_of_a_product():
    texts = {("shape", 0): "B", ("shape", 1): "width", ("shape", 2): "joints * 3"}
    diagnostic = error("reshape", ["B, 3, 17, 2"], {"shape": (B, 3, 51)}, texts=texts)
    assert diagnostic.code == "E204"
    assert suggestions(diagnostic) == ["did you mean `joints * 2` instead of `joints * 3`? that keeps the 102*B "
                                       "elements"]


def test_reshape_suggestion_prefers_the_size_the_input_does_not_have():
    texts = {("shape", 0): "B", ("shape", 1): "T", ("shape", 2): "3", ("shape", 3): "17"}
    diagnostic = error("reshape", ["B, T, 17, 2"], {"shape": (B, T, 3, 17)}, texts=texts)
    assert suggestions(diagnostic) == ["did you mean `2` instead of `3`? that keeps the 34*B*T elements"]


def test_reshape_suggestion_is_omitted_when_no_constant_keeps_the_count():
    texts = {("shape", 0): "B", ("shape", 1): "width", ("shape", 2): "joints * 3"}
    diagnostic = error("reshape", ["B, T, 17, 2"], {"shape": (B, 17, 51)}, texts=texts)
    assert diagnostic.code == "E204" and suggestions(diagnostic) == []
    assert diagnostic.helps == ("write `-1` for one size to let poseir infer it",)


def test_reshape_unprovable_count_warns():
    outputs, warnings = infer("reshape", ["B, T, 34"], {"shape": (B, parse_dim("N"), 34)})
    assert outputs == ["f32[B, N, 34]"] and warnings == ["W300"]


def test_reshape_minus_one_that_does_not_divide():
    assert error("reshape", ["B, T, 34"], {"shape": (B, T, 3, -1)}).code == "E216"
    assert error("reshape", ["B, T, 34"], {"shape": (B, -1, -1)}).code == "E216"


def test_reshape_minus_one_that_may_not_divide():
    N, F = parse_dim("N"), parse_dim("F")
    assert infer("reshape", ["N, 32"], {"shape": (-1, 3, 32)}) == (["f32[N // 3, 3, 32]"], ["W300"])
    facts = Facts().with_relation(N % 3, "==", 0)
    assert infer("reshape", ["N, 32"], {"shape": (-1, 3, 32)}, facts) == (["f32[N // 3, 3, 32]"], [])
    diagnostic = error("reshape", ["N, 32"], {"shape": (-1, F, 32)})
    assert diagnostic.code == "E216" and "cannot prove that N is a multiple of F" in diagnostic.message
    facts = Facts().with_relation(N, "==", B * F)
    assert infer("reshape", ["N, 32"], {"shape": (-1, F, 32)}, facts) == (["f32[B, F, 32]"], [])


def test_reshape_run_matches_numpy():
    x = floats(2, 3, 17, 2)
    assert np.array_equal(run("reshape", x, shape=(2, 3, 34))[0], x.reshape(2, 3, 34))


# --------------------------------------------------------------------------- other shape ops


def test_permute_and_transpose():
    assert infer("permute", ["B, T, 34"], {"dims": (0, 2, 1)})[0] == ["f32[B, 34, T]"]
    diagnostic = error("permute", ["B, T, 34"], {"dims": (0, 2, 2)})
    assert diagnostic.code == "E215" and "axis 1 is missing" in diagnostic.notes
    assert error("permute", ["B, T, 34"], {"dims": (0, 1, 3)}).code == "E202"
    assert infer("transpose", ["B, T, 34"], {"dim0": 1, "dim1": -1})[0] == ["f32[B, 34, T]"]


def test_flatten_unflatten_squeeze_unsqueeze():
    assert infer("flatten", ["B, T, 17, 2"], {"start_dim": 2})[0] == ["f32[B, T, 34]"]
    assert infer("unflatten", ["B, T, 51"], {"dim": 2, "sizes": (17, -1)})[0] == ["f32[B, T, 17, 3]"]
    assert error("unflatten", ["B, T, 51"], {"dim": 2, "sizes": (17, 2)}).code == "E216"
    assert error("squeeze", ["B, 2, 3"], {"dim": 1}).code == "E209"
    assert infer("squeeze", ["B, T, 3"], {"dim": 1}) == (["f32[B, 3]"], ["W300"])
    assert infer("unsqueeze", ["B, T"], {"dim": -1})[0] == ["f32[B, T, 1]"]


def test_expand_only_grows_size_one_axes():
    assert infer("expand", ["1, 1, C"], {"sizes": (B, T, -1)})[0] == ["f32[B, T, C]"]
    diagnostic = error("expand", ["B, 2, C"], {"sizes": (-1, 5, -1)})
    assert diagnostic.code == "E200" and "from 2 to 5" in diagnostic.message


def test_concat_diagnostics_and_result():
    assert infer("concat", ["B, T, 17, 2", "B, T, 17, 1"], {"dim": -1})[0] == ["f32[B, T, 17, 3]"]
    assert infer("concat", ["B, 34, T", "B, 34, T"], {"dim": 0})[0] == ["f32[2*B, 34, T]"]
    assert error("concat", ["B, T, 17, 2", "B, T, 3"], {"dim": -1}).code == "E213"
    assert error("concat", ["B, T, 17, 2", "B, T, 16, 1"], {"dim": -1}).code == "E213"
    ctx = context("concat")
    with pytest.raises(ShapeError) as caught:
        lookup("concat").infer(ctx, [tensor("B, 3"), tensor("B, 3", "f16")], {"dim": 0})
    assert caught.value.diagnostic.code == "E203"


def test_split_and_chunk():
    outputs, _ = infer("split", ["B, T, 1536"], {"sections": (512, 512, 512), "dim": -1})
    assert outputs == ["f32[B, T, 512]"] * 3
    assert lookup("split").output_count({"sections": (1, 2)}) == 2
    assert error("split", ["B, T, 1536"], {"sections": (512, 512), "dim": -1}).code == "E216"
    assert infer("chunk", ["B, 12, C"], {"chunks": 3, "dim": 1})[0] == ["f32[B, 4, C]"] * 3
    assert error("chunk", ["B, 10, C"], {"chunks": 3, "dim": 1}).code == "E216"
    assert infer("chunk", ["B, T, C"], {"chunks": 3, "dim": 1}) == (["f32[B, T // 3, C]"] * 3, ["W300"])
    facts = Facts().with_relation(T % 3, "==", 0)
    assert infer("chunk", ["B, T, C"], {"chunks": 3, "dim": 1}, facts) == (["f32[B, T // 3, C]"] * 3, [])
    x = floats(2, 6, 4)
    parts = run("chunk", x, chunks=3, dim=1)
    assert [part.shape for part in parts] == [(2, 2, 4)] * 3


# --------------------------------------------------------------------------- broadcasting


def test_broadcast_with_a_missing_axis_is_an_error():
    diagnostic = error("add", ["B, T, 17, 3", "B, 17, 3"], {})
    assert diagnostic.code == "E200"
    assert "f32[B, T, 17, 3]" in diagnostic.message and "f32[B, 17, 3]" in diagnostic.message


def test_broadcast_of_unrelated_symbols_warns():
    assert infer("add", ["B, T", "B, N"], {}) == (["f32[B, T]"], ["W300"])


def test_broadcast_results_and_scalars():
    assert infer("mul", ["B, T, 17, 3", "1, 1, 17, 3"], {})[0] == ["f32[B, T, 17, 3]"]
    ctx = context("mul")
    (output,) = lookup("mul").infer(ctx, [tensor("B, 3", "f16"), tensor("", "f32")], {})
    assert str(output) == "f16[B, 3]"
    with pytest.raises(ShapeError) as caught:
        lookup("add").infer(context("add"), [tensor("B, 3", "f16"), tensor("B, 3")], {})
    assert caught.value.diagnostic.code == "E203"
    (result,) = run("mul", np.ones((2, 3), np.float16), np.asarray(2.5, np.float32))
    assert result.dtype == np.float16 and np.all(result == 2.5)


# --------------------------------------------------------------------------- linear, matmul, conv


def test_linear_reports_the_feature_count():
    diagnostic = error("linear", ["B, T, 51", "1024, 34", "1024"], {})
    assert diagnostic.code == "E207"
    assert diagnostic.message == "Linear expects 34 input features, found 51"


def test_linear_suggests_moving_the_feature_axis():
    diagnostic = error("linear", ["B, 34, T", "1024, 34", None], {})
    assert any("transpose(1, -1)" in help_ for help_ in diagnostic.helps)


def test_matmul_inner_dimension_mismatch_labels_both_operands():
    diagnostic = error("matmul", ["B, N, 64", "B, 32, N"], {})
    assert diagnostic.code == "E207"
    assert {label.message for label in diagnostic.labels} == {"this is f32[B, N, 64]", "this is f32[B, 32, N]"}
    assert infer("matmul", ["B, H, N, D", "B, H, D, N"], {})[0] == ["f32[B, H, N, N]"]


def test_conv1d_output_lengths():
    facts = Facts().with_relation(T, ">=", 243)
    assert infer("conv1d", ["B, 34, T", "1024, 34, 3", None], {}, facts) == (["f32[B, 1024, T - 2]"], [])
    assert infer("conv1d", ["B, 1024, T", "1024, 1024, 3", None], {"dilation": 9}, facts)[0] == \
        ["f32[B, 1024, T - 18]"]
    assert infer("conv1d", ["B, 34, 243", "1024, 34, 3", None], {"stride": 3})[0] == ["f32[B, 1024, 81]"]
    assert infer("conv1d", ["B, 34, T", "1024, 34, 3", None], {}) == (["f32[B, 1024, T - 2]"], ["W301"])


def test_conv1d_too_short_and_channel_mismatch():
    assert error("conv1d", ["B, 34, 2", "64, 34, 3", None], {}).code == "E211"
    diagnostic = error("conv1d", ["B, T, 34", "64, 34, 1", None], {})
    assert diagnostic.code == "E207" and diagnostic.message == "Conv1d expects 34 input channels, found T"
    assert any("transpose(2, 1)" in help_ for help_ in diagnostic.helps)


def reference_conv1d(x, weight, bias, stride, padding, dilation, groups):
    """A direct loop over positions, written independently of the vectorized version."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding))).astype(np.float64)
    batch, channels, length = x.shape
    outputs, per_group, kernel = weight.shape
    size = (length - dilation * (kernel - 1) - 1) // stride + 1
    out = np.zeros((batch, outputs, size))
    for b in range(batch):
        for o in range(outputs):
            group = o // (outputs // groups)
            for t in range(size):
                for c in range(per_group):
                    for k in range(kernel):
                        out[b, o, t] += weight[o, c, k] * x[b, group * per_group + c, t * stride + k * dilation]
                out[b, o, t] += 0 if bias is None else bias[o]
    return out


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), [(1, 0, 1, 1), (3, 0, 1, 1), (1, 2, 3, 2),
                                                                        (2, 1, 2, 4)])
def test_conv1d_matches_loops(stride, padding, dilation, groups):
    x, weight, bias = floats(2, 8, 20), floats(4, 8 // groups, 3), floats(4)
    (result,) = run("conv1d", x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert result.dtype == np.float32
    expected = reference_conv1d(x, weight, bias, stride, padding, dilation, groups)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


def test_conv2d_matches_loops():
    x, weight, bias = floats(2, 3, 7, 8), floats(5, 3, 3, 2), floats(5)
    (result,) = run("conv2d", x, weight, bias, stride=(2, 1), padding=1, dilation=1, groups=1)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(np.float64)
    expected = np.zeros((2, 5, 4, 9))
    for i in range(4):
        for j in range(9):
            patch = padded[:, :, 2 * i:2 * i + 3, j:j + 2]
            expected[:, :, i, j] = np.einsum("bchw,ochw->bo", patch, weight) + bias
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
    assert infer("conv2d", ["B, 3, 256, 256", "64, 3, 7, 7", None], {"stride": 2, "padding": 3})[0] == \
        ["f32[B, 64, 128, 128]"]


def test_conv_transpose2d_matches_scatter_loops():
    x, weight = floats(1, 3, 4, 5), floats(3, 2, 4, 4)
    (result,) = run("conv_transpose2d", x, weight, None, stride=2, padding=1, output_padding=0)
    full = np.zeros((1, 2, (4 - 1) * 2 + 4, (5 - 1) * 2 + 4))
    for i in range(4):
        for j in range(5):
            full[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("bc,cokl->bokl", x[:, :, i, j], weight)
    np.testing.assert_allclose(result, full[:, :, 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    assert infer("conv_transpose2d", ["B, 2048, 8, 8", "2048, 256, 4, 4", None], {"stride": 2, "padding": 1})[0] \
        == ["f32[B, 256, 16, 16]"]


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 2, 1), (2, None, 0), ((3, 2), (1, 2), (1, 0))])
def test_max_pool2d_matches_loops(kernel, stride, padding):
    x = floats(2, 3, 7, 8)
    (result,) = run("max_pool2d", x, kernel_size=kernel, stride=stride, padding=padding)
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    sh, sw = (kh, kw) if stride is None else stride if isinstance(stride, tuple) else (stride, stride)
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    out_h, out_w = (7 + 2 * ph - kh) // sh + 1, (8 + 2 * pw - kw) // sw + 1
    expected = np.full((2, 3, out_h, out_w), -np.inf, np.float32)
    for i in range(out_h):
        for j in range(out_w):
            for u in range(kh):
                for v in range(kw):
                    row, col = i * sh + u - ph, j * sw + v - pw
                    if 0 <= row < 7 and 0 <= col < 8:
                        expected[:, :, i, j] = np.maximum(expected[:, :, i, j], x[:, :, row, col])
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)
    (unbatched,) = run("max_pool2d", x[0], kernel_size=kernel, stride=stride, padding=padding)
    np.testing.assert_array_equal(unbatched, expected[0])


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), (4, 1, 2)])
def test_max_pool1d_matches_loops(kernel, stride, padding):
    """torch MaxPool1d: out[i] = max over x[i * s + u - p] for u < k that fall inside the input."""
    x = floats(2, 3, 9)
    (result,) = run("max_pool1d", x, kernel_size=kernel, stride=stride, padding=padding)
    step = kernel if stride is None else stride
    length = (9 + 2 * padding - kernel) // step + 1
    expected = np.full((2, 3, length), -np.inf, np.float32)
    for i in range(length):
        for u in range(kernel):
            if 0 <= i * step + u - padding < 9:
                expected[:, :, i] = np.maximum(expected[:, :, i], x[:, :, i * step + u - padding])
    np.testing.assert_array_equal(result, expected)
    (unbatched,) = run("max_pool1d", x[0], kernel_size=kernel, stride=stride, padding=padding)
    np.testing.assert_array_equal(unbatched, expected[0])


def test_max_pool1d_shapes_and_diagnostics():
    """SemGCN's non-local sub-sampling (16 joints -> 8), symbolic lengths, and each mistake's code."""
    assert infer("max_pool1d", ["B, 64, 16"], {"kernel_size": 2}) == (["f32[B, 64, 8]"], [])
    assert infer("max_pool1d", ["B, 8, T"], {"kernel_size": 3, "stride": 2, "padding": 1}) == \
        (["f32[B, 8, (T - 1) // 2 + 1]"], [])
    assert infer("max_pool1d", ["B, 8, T"], {"kernel_size": 2})[1] == ["W301"]
    too_much_padding = error("max_pool1d", ["B, 8, 16"], {"kernel_size": 3, "padding": 2})
    assert too_much_padding.code == "E103" and "at most half the kernel size" in too_much_padding.message
    assert error("max_pool1d", ["B, 8, 2"], {"kernel_size": 3}).code == "E211"
    assert error("max_pool1d", ["B, 8, 4, 4"], {"kernel_size": 2}).code == "E201"
    assert error("max_pool1d", ["B, 8, 4"], {"kernel_size": 0}).code == "E103"


def test_max_pool2d_shapes_and_diagnostics():
    assert infer("max_pool2d", ["B, 64, 128, 96"], {"kernel_size": 3, "stride": 2, "padding": 1}) == \
        (["f32[B, 64, 64, 48]"], [])
    assert infer("max_pool2d", ["B, 8, H, W"], {"kernel_size": 3, "stride": 2, "padding": 1})[1] == []
    assert infer("max_pool2d", ["C, 9, 10"], {"kernel_size": (3, 2)}) == (["f32[C, 3, 5]"], [])
    too_much_padding = error("max_pool2d", ["B, 8, 16, 16"], {"kernel_size": 3, "stride": 2, "padding": 2})
    assert too_much_padding.code == "E103" and "at most half the kernel size" in too_much_padding.message
    assert error("max_pool2d", ["B, 8, 2, 16"], {"kernel_size": 3}).code == "E211"
    assert infer("max_pool2d", ["B, 8, H, W"], {"kernel_size": 2})[1] == ["W301", "W301"]
    assert error("max_pool2d", ["B, 8"], {"kernel_size": 2}).code == "E201"
    assert error("max_pool2d", ["B, 8, 4, 4"], {"kernel_size": (2, 2, 2)}).code == "E103"
    assert error("max_pool2d", ["B, 8, 4, 4"], {"kernel_size": 2, "stride": 0}).code == "E103"
    # Integers pad with their smallest value: a window mostly outside the input keeps its one negative element.
    (ints,) = run("max_pool2d", np.arange(16, dtype=np.int64).reshape(1, 4, 4) - 20, kernel_size=2, padding=1)
    assert ints.dtype == np.int64 and ints.tolist() == [[[-20, -18, -17], [-12, -10, -9], [-8, -6, -5]]]



def test_linear_and_matmul_numbers():
    x, weight, bias = floats(2, 3, 4), floats(5, 4), floats(5)
    (result,) = run("linear", x, weight, bias)
    expected = np.array([[[sum(x[b, t, i] * weight[o, i] for i in range(4)) + bias[o] for o in range(5)]
                          for t in range(3)] for b in range(2)])
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    (vector,) = run("matmul", floats(4), floats(2, 4, 3))
    assert vector.shape == (2, 3)


# --------------------------------------------------------------------------- normalization and activations


def test_batch_norm_uses_batch_statistics_only_in_training():
    x, weight, bias = floats(4, 3, 5), floats(3), floats(3)
    mean, var = np.array([0.5, -1.0, 2.0], np.float32), np.array([1.0, 4.0, 0.25], np.float32)
    (inferred,) = run("batch_norm", x, weight, bias, mean, var, momentum=0.1, eps=1e-5)
    expected = (x - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-5) * weight[None, :, None] \
        + bias[None, :, None]
    np.testing.assert_allclose(inferred, expected, rtol=1e-5, atol=1e-5)
    (trained,) = run("batch_norm", x, weight, bias, mean, var, mode="train", momentum=0.1, eps=1e-5)
    for channel in range(3):
        values = x[:, channel, :].astype(np.float64)
        normalized = (values - values.mean()) / math.sqrt(values.var() + 1e-5)
        np.testing.assert_allclose(trained[:, channel, :], normalized * weight[channel] + bias[channel],
                                   rtol=1e-4, atol=1e-5)
    assert error("batch_norm", ["B, 64, T", "32", "32", "32", "32"], {"momentum": 0.1, "eps": 1e-5}).code == "E207"


def test_batch_norm_accepts_only_the_layer_ranks():
    vectors = ["64", "64", "64", "64"]
    diagnostic = error("batch_norm", ["B, 64, T, 2", *vectors], {"ranks": (2, 3)})
    assert diagnostic.code == "E201"
    assert diagnostic.message == "batch_norm expects a rank-2 or 3 input, found rank 4"
    assert infer("batch_norm", ["B, 64, T, 2", *vectors], {"ranks": (4,)})[0] == ["f32[B, 64, T, 2]"]
    assert infer("batch_norm", ["B, 64, T, 2, 2", *vectors], {})[0] == ["f32[B, 64, T, 2, 2]"]
    assert error("batch_norm", ["B", *vectors], {}).message == "batch_norm expects a rank-2 or more input, found rank 1"
    assert error("batch_norm", ["B, 64", *vectors], {"ranks": (1, 2)}).code == "E103"
    assert error("batch_norm", ["B, 64", *vectors], {"ranks": ()}).code == "E103"


def test_layer_dtype_mismatch_blames_the_input():
    source = SourceFile("t.pose", "y = linear(x, w, b)\n")
    spans = {index: source.span(source.text.index(name), source.text.index(name) + 1)
             for index, name in enumerate("xwb")}
    ctx = context("linear", spans=spans, texts={0: "x"})
    with pytest.raises(ShapeError) as caught:
        lookup("linear").infer(ctx, [tensor("B, 32", "f16"), tensor("64, 32"), tensor("64")], {})
    diagnostic = caught.value.diagnostic
    assert diagnostic.code == "E203" and diagnostic.span == spans[0]
    assert diagnostic.message == "`linear` is given an f16 input, but its weight is f32"
    assert [(label.span, label.message) for label in diagnostic.labels] == [
        (spans[0], "the input is f16[B, 32]"), (spans[1], "the weight is f32[64, 32]")]
    assert diagnostic.helps == ("cast the input to the weight's dtype: `x.cast(\"f32\")`",)


def test_layer_dtype_mismatch_inside_a_layer_notes_the_weight():
    with pytest.raises(ShapeError) as caught:
        lookup("conv1d").infer(context("conv1d"), [tensor("B, 8, T", "f16"), tensor("4, 8, 1"), None], {})
    diagnostic = caught.value.diagnostic
    assert diagnostic.code == "E203" and diagnostic.notes == ("the layer's weight is f32[4, 8, 1]",)
    assert [label.message for label in diagnostic.labels] == ["the input is f16[B, 8, T]"]
    with pytest.raises(ShapeError) as caught:
        lookup("linear").infer(context("linear"), [tensor("B, 32"), tensor("64, 32"), tensor("64", "f16")], {})
    assert caught.value.diagnostic.message == "`linear` has an f32 weight but an f16 bias"


def test_layer_norm_normalizes_the_trailing_axes():
    x, weight, bias = floats(2, 3, 4), floats(4), floats(4)
    (result,) = run("layer_norm", x, weight, bias, eps=1e-5)
    for b in range(2):
        for t in range(3):
            row = x[b, t].astype(np.float64)
            expected = (row - row.mean()) / math.sqrt(row.var() + 1e-5) * weight + bias
            np.testing.assert_allclose(result[b, t], expected, rtol=1e-4, atol=1e-5)
    diagnostic = error("layer_norm", ["B, 34, 351", "512", "512"], {"eps": 1e-5})
    assert diagnostic.code == "E207"
    assert infer("layer_norm", ["B, 34, F", "512", "512"], {"eps": 1e-5})[1] == ["W300"]


def test_softmax_is_stable_and_normalized():
    x = np.array([[1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]], np.float32)
    (result,) = run("softmax", x, dim=-1)
    expected = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    (logs,) = run("log_softmax", x, dim=1)
    np.testing.assert_allclose(logs, np.log(expected), rtol=1e-5, atol=1e-6)


def test_gelu_and_erf_accuracy():
    (value,) = run("gelu", np.array([1.0], np.float64))
    assert abs(float(value[0]) - 0.8413447460685429) < 1e-12
    points = np.linspace(-7.0, 7.0, 20001)
    reference = np.array([math.erf(point) for point in points])
    assert np.max(np.abs(erf(points) - reference)) < 1e-12
    (single,) = run("gelu", np.array([-2.0, 0.0, 3.0], np.float32))
    assert single.dtype == np.float32


def test_dropout_in_training_and_inference():
    x = np.ones((200, 50), np.float32)
    (kept,) = run("dropout", x, p=0.25)
    assert kept is x or np.array_equal(kept, x)
    (dropped,) = run("dropout", x, mode="train", p=0.25)
    assert set(np.unique(dropped)) <= {0.0, np.float32(1 / 0.75)}
    assert abs(float((dropped == 0).mean()) - 0.25) < 0.02
    (again,) = run("dropout", x, mode="train", p=0.25)
    assert np.array_equal(dropped, again), "a seeded run is deterministic"
    (paths,) = run("drop_path", np.ones((400, 3, 2), np.float32), mode="train", p=0.5)
    per_sample = paths.reshape(400, -1)
    assert np.all(per_sample == per_sample[:, :1]) and set(np.unique(per_sample)) == {0.0, 2.0}
    (identity,) = run("drop_path", np.ones((4, 3), np.float32), p=0.5)
    assert np.all(identity == 1.0)


# --------------------------------------------------------------------------- losses


def test_mpjpe_hand_computed():
    pred = np.zeros((1, 1, 2, 3), np.float32)
    target = np.array([[[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]]], np.float32)
    (value,) = run("mpjpe", pred, target, mode="train")
    assert value.shape == () and value.dtype == np.float32 and float(value) == pytest.approx(3.0)
    (weighted,) = run("weighted_mpjpe", pred, target, np.array([2.0, 0.0], np.float32), mode="train")
    assert float(weighted) == pytest.approx(5.0)
    assert error("mpjpe", ["B, T, 17, 3", "B, T, 16, 3"], {}).code == "E200"
    assert lookup("mpjpe").modes == ("train",)


def test_n_mpjpe_ignores_scale():
    target = floats(2, 3, 17, 3)
    (value,) = run("n_mpjpe", 2.5 * target, target, mode="train")
    assert float(value) == pytest.approx(0.0, abs=1e-5)
    pred = np.ones((1, 1, 2, 3), np.float32)
    target = np.array([[[[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]]], np.float32)
    # s = mean_j sum_c(G P) / mean_j sum_c(P P) = 3 / 3 = 1, so this is the plain MPJPE
    (plain,) = run("n_mpjpe", pred, target, mode="train")
    assert float(plain) == pytest.approx(math.sqrt(3.0))
    assert error("n_mpjpe", ["B, 17, 3", "B, 17, 3"], {}).code == "E201"


def test_mean_velocity_error():
    pred = np.zeros((1, 3, 1, 3), np.float32)
    target = np.array([[[[0, 0, 0]], [[3, 4, 0]], [[3, 4, 0]]]], np.float32)
    (value,) = run("mean_velocity_error", pred, target, mode="train", axis=1)
    assert float(value) == pytest.approx(2.5)
    assert error("mean_velocity_error", ["B, 1, 17, 3", "B, 1, 17, 3"], {"axis": 1}).code == "E209"


# --------------------------------------------------------------------------- indexing


def test_slice_lengths_and_errors():
    facts = Facts().with_relation(T, ">=", 243)
    attrs = {"axis": 2, "start": 3, "stop": T - 2 - 3, "step": 1}
    assert infer("slice", ["B, 1024, T - 2"], attrs, facts) == (["f32[B, 1024, T - 8]"], [])
    assert infer("slice", ["B, 1024, 81"], {"axis": 2, "start": 1, "stop": None, "step": 3})[0] == \
        ["f32[B, 1024, 27]"]
    assert infer("slice", ["B, T, 3"], {"axis": 1, "start": -5, "stop": None, "step": 1}, facts)[0] == \
        ["f32[B, 5, 3]"]
    empty = error("slice", ["B, 10, 3"], {"axis": 1, "start": 6, "stop": 4, "step": 1})
    assert empty.code == "E209" and "axis 1 has length 10" in empty.notes
    assert error("slice", ["B, 10, 3"], {"axis": 1, "start": 0, "stop": 12, "step": 1}).code == "E209"
    x = floats(2, 10, 3)
    (part,) = run("slice", x, axis=1, start=1, stop=None, step=3)
    assert np.array_equal(part, x[:, 1::3])


def test_select_gather_and_pad_edge():
    assert infer("select", ["B, T, 17, 3"], {"axis": 2, "index": 16})[0] == ["f32[B, T, 3]"]
    assert error("select", ["B, T, 17, 3"], {"axis": 2, "index": 17}).code == "E209"
    assert error("gather", ["B, T, 17, 3"], {"axis": 2, "indices": (0, 8, 17)}).code == "E214"
    x = floats(2, 4, 3)
    (picked,) = run("gather", x, indices=(3, 0, 0), axis=1)
    assert np.array_equal(picked, x[:, [3, 0, 0]])
    assert infer("pad_edge", ["B, T, 17, 2"], {"axis": 1, "before": 121, "after": 121})[0] == \
        ["f32[B, T + 242, 17, 2]"]
    (padded,) = run("pad_edge", x, axis=1, before=2, after=1)
    assert np.array_equal(padded[:, :2], np.repeat(x[:, :1], 2, axis=1))
    assert np.array_equal(padded[:, -1], x[:, -1])


def test_scatter_places_values_and_reports_bad_indices():
    assert infer("scatter", ["46"], {"indices": tuple(range(0, 92, 2)), "size": 256, "fill": -9e15}) == \
        (["f32[256]"], [])
    out_of_range = error("scatter", ["2"], {"indices": (0, 16), "size": 16})
    assert out_of_range.code == "E214" and "outside" in out_of_range.message
    assert error("scatter", ["2"], {"indices": (-1, 3), "size": 16}).code == "E214"
    repeated = error("scatter", ["3"], {"indices": (3, 5, 3), "size": 16})
    assert repeated.code == "E214" and "repeated" in repeated.message
    assert error("scatter", ["5"], {"indices": (0, 1, 2, 3), "size": 16}).code == "E207"
    assert infer("scatter", ["K"], {"indices": (0, 1, 2), "size": 4}) == (["f32[4]"], ["W300"])
    assert error("scatter", ["1, 46"], {"indices": (0,), "size": 4}).code == "E201"
    assert error("scatter", ["2"], {"indices": (0, 1), "size": 4, "fill": "x"}).code == "E103"
    assert error("scatter", ["2"], {"indices": (), "size": 4}).code == "E103"
    values = floats(3)
    (placed,) = run("scatter", values, indices=(4, 0, 2), size=6, fill=-1.0)
    assert np.array_equal(placed, np.array([values[1], -1, values[2], -1, values[0], -1], np.float32))
    (ints,) = run("scatter", np.array([7, 8], np.int64), indices=(1, 0), size=3, fill=0)
    assert ints.dtype == np.int64 and ints.tolist() == [8, 7, 0]


# --------------------------------------------------------------------------- rearrange


def test_rearrange_shapes_and_errors():
    assert infer("rearrange", ["B, T, 17, 2"], {"pattern": "b t j c -> b (j c) t", "sizes": ()})[0] == \
        ["f32[B, 34, T]"]
    sizes = (("f", parse_dim("F")),)
    assert infer("rearrange", ["B*F, N, C"], {"pattern": "(b f) n c -> (b n) f c", "sizes": sizes})[0] == \
        ["f32[B*N, F, C]"]
    for pattern in ("b t j c -> b t (j d)", "b t t c -> b t c", "b t j c b t j c", "b (t j c -> b t j c",
                    "b t j -> b t j"):
        assert error("rearrange", ["B, T, 17, 2"], {"pattern": pattern, "sizes": ()}).code == "E210"
    assert error("rearrange", ["B, 34, T"], {"pattern": "b (j c) t -> b t j c", "sizes": ()}).code == "E210"
    assert error("rearrange", ["B, 34, T"], {"pattern": "b (j c) t -> b t j c", "sizes": (("c", 3),)}).code == \
        "E216"


def test_rearrange_split_that_may_not_divide():
    N, F = parse_dim("N"), parse_dim("F")
    pattern = "(b f) n c -> b f n c"
    assert infer("rearrange", ["N, 17, 32"], {"pattern": pattern, "sizes": (("f", 3),)}) == \
        (["f32[N // 3, 3, 17, 32]"], ["W300"])
    diagnostic = error("rearrange", ["N, 17, 32"], {"pattern": pattern, "sizes": (("f", F),)})
    assert diagnostic.code == "E210"
    assert diagnostic.message == "cannot infer the size of `b`: poseir cannot prove that N is a multiple of F"
    assert "`where N == K * F`" in diagnostic.helps[0]
    facts = Facts().with_relation(N, "==", B * F)
    assert infer("rearrange", ["N, 17, 32"], {"pattern": pattern, "sizes": (("f", F),)}, facts) == \
        (["f32[B, F, 17, 32]"], [])
    x = floats(6, 2, 4)
    (split,) = run("rearrange", x, pattern="(b f) n c -> b f n c", sizes=(("f", 3),))
    assert np.array_equal(split, x.reshape(2, 3, 2, 4))


def test_rearrange_round_trips():
    x = floats(2, 5, 17, 2)
    (channels,) = run("rearrange", x, pattern="b t j c -> b (j c) t", sizes=())
    assert np.array_equal(channels, x.reshape(2, 5, 34).transpose(0, 2, 1))
    (back,) = run("rearrange", channels, pattern="b (j c) t -> b t j c", sizes=(("c", 2),))
    assert np.array_equal(back, x)
    merged = floats(6, 17, 8)
    (swapped,) = run("rearrange", merged, pattern="(b f) n c -> (b n) f c", sizes=(("f", 3),))
    (restored,) = run("rearrange", swapped, pattern="(b n) f c -> (b f) n c", sizes=(("n", 17),))
    assert np.array_equal(restored, merged)
    assert np.array_equal(swapped.reshape(2, 17, 3, 8), merged.reshape(2, 3, 17, 8).transpose(0, 2, 1, 3))


# --------------------------------------------------------------------------- reductions and constants


def test_reductions():
    assert infer("mean", ["B, T, 17, 3"], {"dim": (1, 2), "keepdim": True})[0] == ["f32[B, 1, 1, 3]"]
    assert infer("sum", ["B, T"], {"dim": None, "keepdim": False})[0] == ["f32[]"]
    assert error("sum", ["B, T"], {"dim": (1, -1), "keepdim": False}).code == "E202"
    x = floats(3, 4)
    (variance,) = run("var", x, dim=1, keepdim=False, unbiased=True)
    np.testing.assert_allclose(variance, x.var(axis=1, ddof=1), rtol=1e-5)
    (norm,) = run("norm", np.array([[3.0, 4.0]], np.float32), dim=-1, keepdim=False)
    assert float(norm[0]) == pytest.approx(5.0)


def test_constant_and_cast():
    assert infer("constant", [], {"value": ((1.0, 2.0), (3.0, 4.0)), "dtype": None})[0] == ["f32[2, 2]"]
    assert error("constant", [], {"value": ((1.0, 2.0), (3.0,)), "dtype": None}).code == "E103"
    assert error("cast", ["B, 3"], {"dtype": "float"}).code == "E103"
    (cast,) = run("cast", np.array([1.7, -2.2], np.float32), dtype="i64")
    assert cast.dtype == np.int64


def test_integer_constants_never_truncate():
    assert error("constant", [], {"value": 0.5, "dtype": "i64"}).code == "E203"
    assert infer("constant", [], {"value": 2.0, "dtype": "i64"})[0] == ["i64[]"]


def test_integer_division_is_true_division():
    assert infer("div", ["B, 3", "B, 3"], {})[0] == ["f32[B, 3]"]
    ctx = context("div")
    (output,) = lookup("div").infer(ctx, [tensor("B, 3", "i64"), tensor("B, 3", "i64")], {})
    assert str(output) == "f32[B, 3]"
    (result,) = run("div", np.array([3, 4], np.int64), np.array([2, 8], np.int64))
    assert result.dtype == np.float32 and result.tolist() == [1.5, 0.5]


# --------------------------------------------------------------------------- diagnostics of whole programs


CASES = Path(__file__).parent / "cases"


def checked(name: str):
    """(diagnostics by code, human rendering) of one file of the broken-program corpus."""
    result = check(str(CASES / f"{name}.pose"))
    diagnostics = result.sorted_diagnostics()
    return {diagnostic.code: diagnostic for diagnostic in diagnostics}, render(diagnostics, result.sources, "human")


def test_corpus_reshape_suggestion_rewrites_the_literal_that_differs():
    diagnostics, _ = checked("vp3d_train_and_infer_two_mistakes")
    (fix,) = diagnostics["E204"].fixes
    assert fix.message == "write `joints * 2` instead of `joints * 3`, which keeps the 102*B elements"
    assert [edit.replacement for edit in fix.edits] == ["joints * 2"] and not fix.safe
    assert suggestions(diagnostics["E204"]) == [], "the fix says it; a help would repeat it"


def test_corpus_permute_suggestion_is_shown_once():
    diagnostics, text = checked("vp3d_train_and_infer_two_mistakes")
    assert diagnostics["E206"].helps == ()
    assert text.count("= help: permute the axes first") == 1
    assert text.count("x.permute(0, 2, 1).reshape(B, T - 2, joints, 3)") == 1


def test_corpus_half_input_into_a_float_layer():
    diagnostics, _ = checked("half_input_full_weights")
    e203 = diagnostics["E203"]
    assert e203.message == "`linear` is given an f16 input, but its weight is f32"
    assert [label.message for label in e203.labels] == ["the input is f16[B, 32]", "`Linear` created here"]
    assert e203.notes == ("the layer's weight is f32[64, 32]",)
    assert e203.helps == ("cast the input to the weight's dtype: `.cast(\"f32\")`",)


def test_corpus_baked_clip_length_points_at_its_product():
    diagnostics, text = checked("clip_length_times_batch_in_reshape")
    e205 = diagnostics["E205"]
    assert (e205.span.line, e205.span.column, e205.span.end_column) == (9, 26, 32)
    assert "`B * 81` fits only when T == 81" in text
    assert [edit.replacement for fix in e205.fixes for edit in fix.edits] == ["B * T"]


# --------------------------------------------------------------------------- ops a port needs (issue 11)


@pytest.mark.parametrize(("kernel", "stride", "padding", "include"),
                         [(2, None, 0, True), (3, 2, 1, True), (4, 3, 2, True), (3, 2, 1, False), (4, 1, 2, False)])
def test_avg_pool1d_matches_loops(kernel, stride, padding, include):
    """torch AvgPool1d: the mean of x[i * s + u - p] for u < k, zero padding counted unless excluded."""
    x = floats(2, 3, 9)
    (result,) = run("avg_pool1d", x, kernel_size=kernel, stride=stride, padding=padding, count_include_pad=include)
    step = kernel if stride is None else stride
    length = (9 + 2 * padding - kernel) // step + 1
    expected = np.zeros((2, 3, length), np.float64)
    for i in range(length):
        inside = [i * step + u - padding for u in range(kernel) if 0 <= i * step + u - padding < 9]
        total = sum(x[:, :, position].astype(np.float64) for position in inside)
        expected[:, :, i] = total / (kernel if include else len(inside))
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-7)
    assert result.dtype == np.float32
    (unbatched,) = run("avg_pool1d", x[0], kernel_size=kernel, stride=stride, padding=padding,
                       count_include_pad=include)
    np.testing.assert_allclose(unbatched, expected[0], rtol=1e-6, atol=1e-7)


def test_avg_pool1d_shapes_and_diagnostics():
    """Lengths as max pooling's; integer inputs average to f32; each mistake's code."""
    assert infer("avg_pool1d", ["B, 8, T"], {"kernel_size": 3, "stride": 2, "padding": 1,
                                             "count_include_pad": True}) == (["f32[B, 8, (T - 1) // 2 + 1]"], [])
    ctx = context("avg_pool1d")
    assert [str(t) for t in lookup("avg_pool1d").infer(ctx, [tensor("C, 9", "i64")], {"kernel_size": 3})] == \
        ["f32[C, 3]"]
    assert error("avg_pool1d", ["B, 8, 16"], {"kernel_size": 3, "padding": 2}).code == "E103"
    assert error("avg_pool1d", ["B, 8, 2"], {"kernel_size": 3}).code == "E211"
    assert error("avg_pool1d", ["B, 8, 16"], {"kernel_size": 2, "count_include_pad": 1}).code == "E103"


def test_leaky_relu_scales_only_negatives():
    x = np.array([[-2.0, -0.5, 0.0, 3.0]], np.float32)
    (default,) = run("leaky_relu", x)
    np.testing.assert_allclose(default, [[-0.02, -0.005, 0.0, 3.0]], rtol=1e-6)
    (steep,) = run("leaky_relu", x, negative_slope=0.2)
    np.testing.assert_allclose(steep, [[-0.4, -0.1, 0.0, 3.0]], rtol=1e-6)
    assert error("leaky_relu", ["B, 3"], {"negative_slope": "0.2"}).code == "E103"


def test_std_and_var_are_unbiased_by_default_as_in_torch():
    """torch.var/std divide by n - 1 unless `unbiased=False` (The Annotated Transformer's LayerNorm relies on it)."""
    x = floats(3, 5)
    (variance,) = run("var", x, dim=1)
    np.testing.assert_allclose(variance, x.var(axis=1, ddof=1), rtol=1e-5)
    (deviation,) = run("std", x, dim=-1, keepdim=True)
    np.testing.assert_allclose(deviation, x.std(axis=-1, ddof=1, keepdims=True), rtol=1e-5)
    (biased,) = run("std", x, dim=None, unbiased=False)
    np.testing.assert_allclose(biased, x.std(), rtol=1e-5)
    assert infer("std", ["B, T, C"], {"dim": -1, "keepdim": True}) == (["f32[B, T, 1]"], [])
    assert error("std", ["B, T"], {"dim": 1, "unbiased": "yes"}).code == "E103"


def test_comparisons_give_bool_masks():
    a, b = floats(2, 3), floats(3)
    for name, expected in (("eq", a == b), ("ne", a != b), ("lt", a < b), ("le", a <= b), ("gt", a > b),
                           ("ge", a >= b)):
        (mask,) = run(name, a, b)
        assert mask.dtype == np.bool_ and np.array_equal(mask, expected), name
    assert infer("gt", ["B, T, 17, 3", ""], {}) == (["bool[B, T, 17, 3]"], [])
    assert error("lt", ["B, 17", "B, 16"], {}).code == "E200"
    mixed = context("eq")
    with pytest.raises(ShapeError) as caught:
        lookup("eq").infer(mixed, [tensor("B, 3"), tensor("B, 3", "i64")], {})
    assert caught.value.diagnostic.code == "E203"


def test_where_and_masked_fill():
    condition = np.array([[True, False, True]])
    x, other = floats(2, 3), floats(2, 1)
    (chosen,) = run("where", condition, x, other)
    np.testing.assert_array_equal(chosen, np.where(condition, x, other))
    (filled,) = run("masked_fill", x, condition, value=-1e9)
    np.testing.assert_array_equal(filled, np.where(condition, np.float32(-1e9), x))
    ctx = context("where")
    out = lookup("where").infer(ctx, [tensor("B, 1, N", "bool"), tensor("B, H, N"), tensor("")], {})
    assert [str(type_) for type_ in out] == ["f32[B, H, N]"]
    not_a_mask = context("where")
    with pytest.raises(ShapeError) as caught:
        lookup("where").infer(not_a_mask, [tensor("B, N"), tensor("B, N"), tensor("B, N")], {})
    assert caught.value.diagnostic.code == "E203"
    grows = context("masked_fill")
    with pytest.raises(ShapeError) as caught:
        lookup("masked_fill").infer(grows, [tensor("B, 1, N"), tensor("B, H, N", "bool")], {"value": 0.0})
    assert caught.value.diagnostic.code == "E200"
    integer = context("masked_fill")
    with pytest.raises(ShapeError) as caught:
        lookup("masked_fill").infer(integer, [tensor("B, N", "i64"), tensor("B, N", "bool")], {"value": 0.5})
    assert caught.value.diagnostic.code == "E203"
