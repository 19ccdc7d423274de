"""Tests for source spans, the diagnostic record, the code table and the renderers."""

from __future__ import annotations

import json
import re

import pytest

from poseir.diagnostics.codes import CODES, all_codes, lookup
from poseir.diagnostics.record import (
    Diagnostic,
    DiagnosticError,
    Edit,
    Fix,
    Label,
    Severity,
    count,
    has_errors,
    sort_diagnostics,
)
from poseir.diagnostics.render import explain, render, render_gcc, render_human, render_json, render_sarif
from poseir.syntax.source import SourceFile, SourceMap, Span

LIFT = """\
dim B, T
module Lift() {
    self.expand = Conv1d(34, 1024, 1)
    forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 51]) {
        y = x.view(B, T, 51)
        return y
    }
}
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def find(file: SourceFile, needle: str, occurrence: int = 0) -> Span:
    """Span of the n-th occurrence of needle in file."""
    index = -1
    for _ in range(occurrence + 1):
        index = file.text.index(needle, index + 1)
    return file.span(index, index + len(needle))


@pytest.fixture
def lift() -> SourceFile:
    return SourceFile("lift.pose", LIFT)


@pytest.fixture
def sources(lift: SourceFile) -> SourceMap:
    return SourceMap([lift])


def reshape_error(lift: SourceFile) -> Diagnostic:
    """An E204 with a far label, an adjacent-line label, a same-line label, notes, helps and a fix."""
    primary = find(lift, "x.view(B, T, 51)")
    return Diagnostic.make(
        "E204",
        "reshape changes the element count",
        primary,
        labels=[
            Label(primary, "34*B*T elements cannot become 51*B*T"),
            Label(find(lift, "T"), "T declared here"),
            Label(find(lift, "x: f32[B, T, 17, 2]"), "x has 34*B*T elements"),
            Label(find(lift, "51", 1), "51 is not 17 * 2"),
        ],
        notes=["17 joints times 2 coordinates is 34"],
        helps=["the target must keep every element"],
        fixes=[Fix("use the real element count", (Edit(find(lift, "51", 1), "34"),))],
    )


def unused_warning(lift: SourceFile) -> Diagnostic:
    return Diagnostic.make("W302", "unused value `y`", find(lift, "y", 2))


GOLDEN = """\
error[E204]: reshape changes the element count
 --> lift.pose:5:13
  |
1 | dim B, T
  |        - T declared here
...
4 |     forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 51]) {
  |             ------------------- x has 34*B*T elements
5 |         y = x.view(B, T, 51)
  |             ^^^^^^^^^^^^^^^^ 34*B*T elements cannot become 51*B*T
  |                          -- 51 is not 17 * 2
  |
  = note: 17 joints times 2 coordinates is 34
  = help: the target must keep every element
  = help: use the real element count
  |
5 |         y = x.view(B, T, 34)
  |                          ~~

error: could not compile due to 1 error
"""


# ---------------------------------------------------------------- source


def test_positions_are_one_based_characters(lift: SourceFile) -> None:
    assert lift.position(0) == (1, 1)
    assert lift.position(LIFT.index("module")) == (2, 1)
    assert lift.position(LIFT.index("self")) == (3, 5)
    assert lift.position(10**6) == (lift.line_count, 1)  # clamped to the end


def test_line_text_strips_terminators() -> None:
    file = SourceFile("crlf.pose", "dim B\r\nmodel m = M()\r\n")
    assert file.line_text(1) == "dim B"
    assert file.line_text(2) == "model m = M()"
    assert file.line_count == 3
    with pytest.raises(IndexError):
        file.line_text(4)


def test_span_positions_and_str(lift: SourceFile) -> None:
    span = find(lift, "x.view(B, T, 51)")
    assert (span.line, span.column, span.end_line, span.end_column) == (5, 13, 5, 29)
    assert str(span) == "lift.pose:5:13"
    assert LIFT[span.start : span.end] == "x.view(B, T, 51)"


def test_span_merge_covers_both(lift: SourceFile) -> None:
    first, second = find(lift, "Lift"), find(lift, "Conv1d")
    merged = second.merge(first)
    assert (merged.start, merged.end) == (first.start, second.end)
    assert (merged.line, merged.column) == (first.line, first.column)
    assert (merged.end_line, merged.end_column) == (second.end_line, second.end_column)
    assert first.merge(Span.unknown()) == first
    with pytest.raises(ValueError):
        first.merge(SourceFile("other.pose", LIFT).span(0, 1))


def test_unknown_span() -> None:
    span = Span.unknown()
    assert not span.is_known
    assert str(span) == "<unknown>"


def test_source_map_lookup(lift: SourceFile) -> None:
    sources = SourceMap()
    assert "lift.pose" not in sources
    sources.add(lift)
    assert "lift.pose" in sources
    assert sources.get("lift.pose") is lift
    assert sources.get("missing.pose") is None
    assert list(sources) == ["lift.pose"]


# ---------------------------------------------------------------- diagnostics


def test_make_rejects_unknown_code(lift: SourceFile) -> None:
    with pytest.raises(KeyError):
        Diagnostic.make("E999", "no such code", find(lift, "Lift"))


def test_severity_comes_from_table(lift: SourceFile) -> None:
    assert reshape_error(lift).severity is Severity.ERROR
    assert unused_warning(lift).severity is Severity.WARNING
    assert Diagnostic.make("E401", "unexpected weight `refine.weight`", None).severity is Severity.WARNING


def test_count_and_has_errors(lift: SourceFile) -> None:
    diagnostics = [reshape_error(lift), unused_warning(lift), unused_warning(lift)]
    assert count(diagnostics) == (1, 2)
    assert has_errors(diagnostics)
    assert not has_errors([unused_warning(lift)])


def test_sort_is_by_position(lift: SourceFile) -> None:
    error, warning = reshape_error(lift), unused_warning(lift)
    no_span = Diagnostic.make("E403", "cannot read weights file", None)
    assert sort_diagnostics([warning, error, no_span]) == [no_span, error, warning]
    assert error.sort_key() == ("lift.pose", error.span.start, error.span.end, "E204", error.message)


def test_diagnostic_error_carries_diagnostic(lift: SourceFile) -> None:
    error = DiagnosticError(reshape_error(lift))
    assert error.diagnostic.code == "E204"
    assert "E204" in str(error)


# ---------------------------------------------------------------- codes


def test_every_code_has_title_and_example() -> None:
    for code, entry in CODES.items():
        assert entry.code == code
        assert entry.title.strip()
        assert "example" in entry.explanation.lower(), code
        assert entry.explanation.count("```") >= 2, code
        assert isinstance(entry.severity, Severity)


def test_all_codes_sorted_and_lookup() -> None:
    codes = [entry.code for entry in all_codes()]
    assert codes == sorted(CODES)
    assert lookup("E204").title == "reshape changes the element count"
    assert lookup("E401").severity is Severity.WARNING
    with pytest.raises(KeyError):
        lookup("E999")


def test_explain() -> None:
    text = explain("E204")
    assert text.startswith("E204: reshape changes the element count\n\n")
    assert text.endswith(lookup("E204").explanation)
    with pytest.raises(KeyError):
        explain("nope")


# ---------------------------------------------------------------- human


def test_human_golden(lift: SourceFile, sources: SourceMap) -> None:
    assert render_human([reshape_error(lift)], sources) == GOLDEN


def caret_row(output: str) -> str:
    return next(line for line in output.splitlines() if "^" in line and "|" in line)


def test_caret_aligned_under_primary(lift: SourceFile, sources: SourceMap) -> None:
    output = render_human([reshape_error(lift)], sources)
    source_row = next(line for line in output.splitlines() if line.startswith("5 | "))
    row = caret_row(output)
    start = row.index("^")
    assert source_row[start : start + len("x.view(B, T, 51)")] == "x.view(B, T, 51)"
    assert row[start:].split(" ")[0] == "^" * len("x.view(B, T, 51)")


def test_tabs_expand_in_text_and_underline() -> None:
    file = SourceFile("tabs.pose", "module M() {\n\t\ty = x.view(B, 34, T)\n}\n")
    span = find(file, "x.view(B, 34, T)")
    diagnostic = Diagnostic.make("E206", "reshape reorders axes", span, labels=[Label(span, "use permute")])
    output = render_human([diagnostic], SourceMap([file]))
    assert "\t" not in output
    source_row = next(line for line in output.splitlines() if line.startswith("2 | "))
    row = caret_row(output)
    assert source_row.index("x.view") == row.index("^")
    assert source_row == "2 |         y = x.view(B, 34, T)"
    assert str(span) == "tabs.pose:2:7"  # columns still count characters


def test_multi_line_span_underlines_first_line(lift: SourceFile, sources: SourceMap) -> None:
    span = find(lift, "forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 51]) {\n        y")
    output = render_human([Diagnostic.make("E208", "declared type differs", span)], sources)
    row = caret_row(output)
    assert row == "  |     " + "^" * len("forward(x: f32[B, T, 17, 2]) -> (y: f32[B, T, 51]) {")


def test_label_in_other_file_gets_own_block(lift: SourceFile) -> None:
    other = SourceFile("layers.pose", "dim B\n\nmodule Head() {\n}\n")
    primary = find(lift, "x.view(B, T, 51)")
    diagnostic = Diagnostic.make(
        "E204", "reshape changes the element count", primary, labels=[Label(find(other, "Head"), "defined here")]
    )
    output = render_human([diagnostic], SourceMap([lift, other]))
    arrows = [line for line in output.splitlines() if "-->" in line]
    assert arrows == [" --> lift.pose:5:13", " --> layers.pose:3:8"]
    assert "3 | module Head() {" in output
    assert "  |        ---- defined here" in output


def test_gutter_fits_largest_line_number() -> None:
    text = "".join(f"c{index} = {index}\n" for index in range(1, 13))
    file = SourceFile("long.pose", text)
    diagnostic = Diagnostic.make(
        "E104", "duplicate definition of `c12`", find(file, "c12"), labels=[Label(find(file, "c1 "), "first here")]
    )
    lines = render_human([diagnostic], SourceMap([file])).splitlines()
    assert lines[1] == "  --> long.pose:12:1"
    assert " 1 | c1 = 1" in lines
    assert "12 | c12 = 12" in lines
    assert "..." in lines


def test_diagnostic_without_span(sources: SourceMap) -> None:
    diagnostic = Diagnostic.make("E403", "cannot read weights file `vp.npz`", None, notes=["no such file"])
    assert render_human([diagnostic], sources) == (
        "error[E403]: cannot read weights file `vp.npz`\n"
        "  = note: no such file\n"
        "\n"
        "error: could not compile due to 1 error\n"
    )


def test_missing_source_still_renders_location(lift: SourceFile) -> None:
    output = render_human([reshape_error(lift)], SourceMap())
    assert " --> lift.pose:5:13" in output
    assert "34*B*T elements cannot become 51*B*T" in output


def test_summary_lines(lift: SourceFile, sources: SourceMap) -> None:
    assert render_human([], sources) == ""
    warnings_only = render_human([unused_warning(lift)], sources)
    assert warnings_only.endswith("\nwarning: 1 warning emitted\n")
    both = render_human([reshape_error(lift), reshape_error(lift), unused_warning(lift)], sources)
    assert both.endswith("\nerror: could not compile due to 2 errors; 1 warning emitted\n")


def test_human_deterministic_and_order_independent(lift: SourceFile, sources: SourceMap) -> None:
    diagnostics = [unused_warning(lift), reshape_error(lift)]
    first = render_human(diagnostics, sources)
    assert first == render_human(diagnostics, sources)
    assert first == render_human(list(reversed(diagnostics)), sources)
    assert first.index("error[E204]") < first.index("warning[W302]")


def test_color_output_is_plain_text_plus_escapes(lift: SourceFile, sources: SourceMap) -> None:
    diagnostics = [reshape_error(lift), unused_warning(lift)]
    colored = render_human(diagnostics, sources, color=True)
    assert "\x1b[" in colored
    assert "\x1b[1;31m" in colored  # bold red for the error
    assert ANSI.sub("", colored) == render_human(diagnostics, sources)
    assert colored == render_human(diagnostics, sources, color=True)


def test_color_never_wraps_long_lines(lift: SourceFile, sources: SourceMap) -> None:
    long_message = "a very long message " * 20
    diagnostic = Diagnostic.make("E204", long_message, find(lift, "x.view(B, T, 51)"))
    colored = render_human([diagnostic], sources, color=True, width=40)
    assert ANSI.sub("", colored) == render_human([diagnostic], sources)


# ---------------------------------------------------------------- machine formats


def test_json_fields(lift: SourceFile, sources: SourceMap) -> None:
    text = render_json([unused_warning(lift), reshape_error(lift)], sources)
    data = json.loads(text)
    assert [item["code"] for item in data] == ["E204", "W302"]
    error = data[0]
    assert error["severity"] == "error"
    assert error["title"] == "reshape changes the element count"
    assert (error["file"], error["line"], error["column"], error["end_line"], error["end_column"]) == (
        "lift.pose",
        5,
        13,
        5,
        29,
    )
    assert error["labels"][1] == {
        "file": "lift.pose",
        "line": 1,
        "column": 8,
        "end_line": 1,
        "end_column": 9,
        "message": "T declared here",
    }
    assert error["notes"] == ["17 joints times 2 coordinates is 34"]
    assert error["helps"] == ["the target must keep every element"]
    edit = error["fixes"][0]["edits"][0]
    assert error["fixes"][0]["safe"] is True
    assert (edit["line"], edit["column"], edit["replacement"]) == (5, 26, "34")
    assert LIFT[edit["start"] : edit["end"]] == "51"
    assert text == render_json([reshape_error(lift), unused_warning(lift)], sources)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"


def test_json_without_span(sources: SourceMap) -> None:
    data = json.loads(render_json([Diagnostic.make("E405", "cannot read file `x.pose`", None)], sources))
    assert data[0]["file"] is None
    assert data[0]["line"] is None


def test_gcc_lines(lift: SourceFile, sources: SourceMap) -> None:
    text = render_gcc([unused_warning(lift), reshape_error(lift)], sources)
    assert text == (
        "lift.pose:5:13: error: reshape changes the element count [E204]\n"
        "lift.pose:5:13: note: 34*B*T elements cannot become 51*B*T\n"
        "lift.pose:1:8: note: T declared here\n"
        "lift.pose:4:13: note: x has 34*B*T elements\n"
        "lift.pose:5:26: note: 51 is not 17 * 2\n"
        "lift.pose:6:16: warning: unused value `y` [W302]\n"
    )


def test_sarif_structure(lift: SourceFile, sources: SourceMap) -> None:
    text = render_sarif([unused_warning(lift), reshape_error(lift)], sources, "0.1.0")
    log = json.loads(text)
    assert log["version"] == "2.1.0"
    assert "sarif" in log["$schema"]
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("poseir", "0.1.0")
    assert [rule["id"] for rule in driver["rules"]] == ["E204", "W302"]
    assert driver["rules"][0]["shortDescription"]["text"] == "reshape changes the element count"
    assert driver["rules"][0]["fullDescription"]["text"] == lookup("E204").explanation
    error, warning = run["results"]
    assert (error["ruleId"], error["level"], warning["level"]) == ("E204", "error", "warning")
    assert error["message"]["text"] == "reshape changes the element count"
    location = error["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "lift.pose"
    assert location["region"] == {"startLine": 5, "startColumn": 13, "endLine": 5, "endColumn": 29}
    related = error["relatedLocations"]
    assert len(related) == 4
    assert related[1]["message"]["text"] == "T declared here"
    assert related[1]["physicalLocation"]["region"]["startLine"] == 1
    assert text == render_sarif([reshape_error(lift), unused_warning(lift)], sources, "0.1.0")


def test_render_dispatch(lift: SourceFile, sources: SourceMap) -> None:
    diagnostics = [reshape_error(lift)]
    assert render(diagnostics, sources, "human") == render_human(diagnostics, sources)
    assert render(diagnostics, sources, "json") == render_json(diagnostics, sources)
    assert render(diagnostics, sources, "gcc") == render_gcc(diagnostics, sources)
    assert json.loads(render(diagnostics, sources, "sarif"))["version"] == "2.1.0"
    assert "\x1b[" in render(diagnostics, sources, "human", color=True)
    with pytest.raises(ValueError):
        render(diagnostics, sources, "xml")


def test_unplaced_label_becomes_note(lift: SourceFile, sources: SourceMap) -> None:
    span = find(lift, "x.view(B, T, 51)")
    diagnostic = Diagnostic.make(
        "E204", "reshape changes the element count", span, labels=[Label(Span.unknown(), "from a synthesized node")]
    )
    output = render_human([diagnostic], sources)
    assert "  = note: from a synthesized node\n" in output
    assert "<unknown>" not in output


def test_fix_preview_marks_insertions_and_replacements() -> None:
    file = SourceFile("fix.pose", "module M() {\n\ty = x.view(B, 34, T)\n}\n")
    view = find(file, "x.view(B, 34, T)")
    insertion = file.span(view.end, view.end)
    fix = Fix("use permute", (Edit(view, "x.permute(0, 2, 1)"), Edit(insertion, " # moved")), safe=False)
    output = render_human([Diagnostic.make("E206", "reshape reorders axes", view, fixes=[fix])], SourceMap([file]))
    assert output.splitlines()[-5:-2] == [
        "  |",
        "2 |     y = x.permute(0, 2, 1) # moved",
        "  |         ~~~~~~~~~~~~~~~~~~++++++++",
    ]
    data = json.loads(render_json([Diagnostic.make("E206", "reshape reorders axes", view, fixes=[fix])], SourceMap()))
    assert data[0]["fixes"][0]["safe"] is False
