"""Axis identity: atoms through every op, reshapes read by atoms, and fixes that give the intended numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poseir.backends.numpy_interpreter import run_graph
from poseir.compiler import build, check
from poseir.diagnostics.fixes import fix_text
from poseir.diagnostics.render import render
from poseir.ir.axes import Atom, canonical, dim_atom, flat, inconsistency, read, split
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts
from poseir.passes.infer_shapes import verify
from poseir.weights.init import initialize

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.pose"))
B, T, J = Dim.symbol("B"), Dim.symbol("T"), Dim.symbol("J")


def atom(name: str, size) -> Atom:
    """A new atom for the unit tests."""
    return Atom(("born", name, 0), Dim.of(size), name)


# --------------------------------------------------------------------------- the reading of a reshape


def test_a_split_that_merges_with_its_neighbours_is_a_regrouping():
    """`[B, 64, 8, 8]` as `[B, 8, 512]` only splits the 64 (the old size check called it a reorder)."""
    channels, height, width = atom("C", 64), atom("H", 8), atom("W", 8)
    reading = read([dim_atom("B"), channels, height, width], [B, Dim.of(8), Dim.of(512)], Facts())
    assert reading is not None
    outer, inner = split(channels, (Dim.of(8), Dim.of(8)))
    assert reading == ((dim_atom("B"),), (outer,), (inner, height, width))


def test_a_merged_axis_cannot_be_read_in_the_other_order():
    assert read([dim_atom("B"), dim_atom("T"), dim_atom("J")], [B, J, T], Facts()) is None
    assert read([dim_atom("B"), dim_atom("T"), dim_atom("J")], [B, T * J], Facts()) == \
        ((dim_atom("B"),), (dim_atom("T"), dim_atom("J")))


def test_split_pieces_merge_back_into_their_atom():
    channels = atom("C", 51)
    pieces = split(channels, (Dim.of(17), Dim.of(3)))
    assert canonical(pieces) == (channels,)
    assert canonical(pieces[::-1]) == pieces[::-1]
    joints, coordinates = read([channels], [Dim.of(17), Dim.of(3)], Facts())
    assert read([*joints, *coordinates], [Dim.of(51)], Facts()) == ((channels,),)


def test_size_one_axes_hold_no_atoms():
    assert read([dim_atom("B")], [Dim.of(1), B, Dim.of(1)], Facts()) == ((), (dim_atom("B"),), ())


# --------------------------------------------------------------------------- every example carries atoms


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_every_value_of_every_example_has_consistent_atoms(path):
    for mode in ("infer", "train"):
        graph, result = build(str(path), mode=mode)
        assert graph is not None, render(result.sorted_diagnostics(), result.sources, "human")
        verify(graph)
        for value in graph.values.values():
            assert inconsistency(value.type.shape, value.type.atoms, graph.facts) is None, value.name


def test_atoms_are_shown_on_merged_axes():
    graph, _ = build("tokens.pose", text=MERGED.format(view="tokens.reshape(B, T, 17, C)"))
    tokens = next(value for name, value in graph.values.items() if value.type.rank == 3 and "linear" not in name)
    assert tokens.type.describe() == "f32[B, (T·17), 32]"
    assert str(tokens.type) == "f32[B, 17*T, 32]"


# --------------------------------------------------------------------------- reorders found, with fixes that compute the intent

MERGED = """\
dim B, T
model net = Net()
module Net(C: int = 32) {{
    self.embed = Linear(2, C)
    forward(x: f32[B, T, 17, 2]) -> (y: f32[B, 17, T, C]) {{
        tokens = self.embed(x).view(B, T * 17, C)
        return {view}.permute(0, 2, 1, 3)
    }}
}}
"""

BATCH_MERGED = """\
dim B, F
model net = Net()
module Net(C: int = 16) {{
    self.embed = Linear(2, C)
    forward(x: f32[B, F, 17, 2]) -> (y: f32[B * 17, F, C]) {{
        spatial = self.embed(x).reshape(B * F, 17, C)
        return {temporal}
    }}
}}
"""

REARRANGED = """\
dim B, F
model net = Net()
module Net() {{
    forward(x: f32[B, F, 17, 8]) -> (y: f32[B, 17, F, 8]) {{
        merged = rearrange(x, "b f j c -> (b f) j c")
        temporal = rearrange(merged, "{pattern} j c -> (b j) f c", f = F)
        return rearrange(temporal, "(b j) f c -> b j f c", j = 17)
    }}
}}
"""

CASES = {
    # Tokens stored frame-major, viewed joint-major: PyTorch runs it and interleaves frames and joints.
    "merged_tokens": (MERGED.format(view="tokens.view(B, 17, T, C).permute(0, 2, 1, 3)"),
                      MERGED.format(view="tokens.reshape(B, T, 17, C)"),
                      {"x": (2, 5, 17, 2)}, {"x": (3, 4, 17, 2)}),
    # MixSTE's spatial-to-temporal hand-off through the merged (B·F) batch axis, joints and frames swapped.
    "merged_batch": (BATCH_MERGED.format(temporal="spatial.reshape(B, 17, F, C).reshape(B * 17, F, C)"),
                     BATCH_MERGED.format(temporal="spatial.reshape(B, F, 17, C).permute(0, 2, 1, 3).reshape(B * 17, F, C)"),
                     {"x": (2, 5, 17, 2)}, {"x": (1, 3, 17, 2)}),
    # A rearrange that names the parts of the merged batch in the wrong order.
    "rearrange_split_order": (REARRANGED.format(pattern="(f b)"), REARRANGED.format(pattern="(b f)"),
                              {"x": (2, 5, 17, 8)}, {"x": (3, 2, 17, 8)}),
}


def _run(text: str, shapes: dict) -> dict:
    """Run a program's inference flow on seeded inputs and weights."""
    graph, result = build("case.pose", text=text)
    assert graph is not None, render(result.sorted_diagnostics(), result.sources, "human")
    rng = np.random.default_rng(1)
    inputs = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    return run_graph(graph, inputs, initialize(graph.parameters, 0))


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_reorder_is_found_and_its_fix_computes_the_intended_program(name):
    broken, intended, *sizes = CASES[name]
    found = check("case.pose", broken).sorted_diagnostics()
    assert [diagnostic.code for diagnostic in found] == ["E206"], render(found, check("case.pose", broken).sources,
                                                                           "human")
    fixed = fix_text("case.pose", broken, unsafe=True)
    assert fixed.remaining == [], render(fixed.remaining, fixed.sources, "human")
    assert fix_text("case.pose", fixed.fixed, unsafe=True).fixed == fixed.fixed
    for shapes in sizes:
        ours, theirs = _run(fixed.fixed, shapes), _run(intended, shapes)
        for key in theirs:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6)


def test_the_intended_programs_check_clean():
    for name, (_, intended, *_) in CASES.items():
        assert check("case.pose", intended).sorted_diagnostics() == [], name


def test_a_regrouping_with_coincident_sizes_is_not_an_error():
    text = """\
dim B
model net = Net()
module Net() {
    self.conv = Conv2d(3, 64, 3, padding = 1)
    forward(image: f32[B, 3, 8, 8]) -> (y: f32[B, 8, 512]) {
        return self.conv(image).view(B, 8, 512)
    }
}
"""
    assert check("coincide.pose", text).sorted_diagnostics() == []
