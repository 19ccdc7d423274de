"""Bad input never crashes the checker: mutated examples give diagnostics, not tracebacks."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poseir.compiler import check

EXAMPLES = {path.stem: path.read_text() for path in
            sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.pose"))}
TOKENS = ["(", ")", "[", "]", "{", "}", ",", ":", "=", "-1", "0", "17", "T", "B", "x", "self", ".", "..",
          "forward", "return", "for", "if", "train", "infer", "none", "true", "*", "//", "@", "\"", "#", "\n",
          "f32[B]", "param f32[3] ~ zeros()", "x.view(B, -1)", "x[:, ::2]", "where T >= 1"]


@st.composite
def mutated(draw) -> str:
    """An example with a few random edits: deleted, duplicated or swapped lines and inserted tokens."""
    lines = EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "insert", "truncate", "swap"]))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "insert":
            column = draw(st.integers(0, len(lines[index])))
            lines[index] = lines[index][:column] + draw(st.sampled_from(TOKENS)) + lines[index][column:]
        elif action == "truncate":
            lines[index] = lines[index][:draw(st.integers(0, len(lines[index])))]
        else:
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
    return "\n".join(lines) + "\n"


@settings(max_examples=int(__import__("os").environ.get("POSEIR_FUZZ", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_examples_never_crash(text):
    """check() returns diagnostics for any edit; rendering them works too."""
    from poseir.diagnostics.render import render

    result = check("mutated.pose", text)
    rendered = render(result.sorted_diagnostics(), result.sources, "human")
    assert isinstance(rendered, str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200))
def test_random_text_never_crashes(text):
    result = check("random.pose", text)
    assert all(diagnostic.code for diagnostic in result.sorted_diagnostics())
