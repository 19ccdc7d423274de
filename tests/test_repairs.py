"""Candidate repairs: settled by re-checking, and the logic of the repairs that have some of their own.

The corpus (tests/test_corpus.py) checks that each case's fix computes its intended program; these
tests pin down the pieces: the settling rule (one working candidate is the fix, several a help), the
syntax lookups repairs edit through, the flip a skeleton's tree implies, bound and permute texts.
"""

from __future__ import annotations

import textwrap

from poseir.compiler import check
from poseir.diagnostics.fixes import fix_text
from poseir.diagnostics.record import Diagnostic, Edit, Fix
from poseir.diagnostics.repair import resolve
from poseir.elaborate.builtins import builtin_names
from poseir.elaborate.flips import oriented_pairs, tree_flip
from poseir.elaborate.values import Skeleton
from poseir.ir.dims import parse_dim
from poseir.ir.facts import Facts
from poseir.ops.broadcast_repairs import shift_text
from poseir.ops.repairs import moved_axes, size_text, trailing_permutation
from poseir.syntax import ast
from poseir.syntax.index import SourceIndex, next_statement, previous_statement, statement_lines


def program(text: str) -> str:
    """A `.pose` text written indented in a test."""
    return textwrap.dedent(text).lstrip()


def checked(text: str, path: str = "case.pose"):
    """Every diagnostic of a text, sorted."""
    return check(path, text).sorted_diagnostics()


# ------------------------------------------------------------------------------------- settling


GOOD = program("""
    dim B
    model m = M()
    module M() {
        forward(x: f32[B, 4]) -> (y: f32[B, 4]) {
            return x
        }
    }
""")


def _settle(diagnostic: Diagnostic, text: str, reports: dict):
    """Settle one diagnostic of `text` whose re-checks report `reports[fixed text]` (a list of diagnostics)."""
    compilation = check("case.pose", text)
    return resolve([diagnostic], compilation.program, lambda fixed: reports[fixed],
                   lambda found: (found.code, found.message))[0]


def _candidate(text: str, old: str, new: str, message: str) -> Fix:
    """A fix replacing the first `old` in `text` by `new`."""
    compilation = check("case.pose", text)
    source = compilation.sources.get(compilation.program.entry.path)
    start = text.index(old)
    return Fix(message, (Edit(source.span(start, start + len(old)), new),), safe=False)


def test_the_one_candidate_that_makes_the_file_check_becomes_the_fix():
    broken = Diagnostic.make("E207", "broken", None)
    first = _candidate(GOOD, "return x", "return x + x", "double it")
    second = _candidate(GOOD, "return x", "return x * x", "square it")
    diagnostic = Diagnostic.make("E207", "broken", None, candidates=(first, second))
    reports = {GOOD.replace("return x", "return x + x"): [],
               GOOD.replace("return x", "return x * x"): [broken, Diagnostic.make("E200", "new", None)]}
    settled = _settle(diagnostic, GOOD, reports)
    assert settled.fixes == (first,) and settled.candidates == ()


def test_several_working_candidates_are_named_in_a_help_and_none_applies():
    first = _candidate(GOOD, "return x", "return x + x", "double it")
    second = _candidate(GOOD, "return x", "return x * x", "square it")
    diagnostic = Diagnostic.make("E207", "broken", None, candidates=(first, second))
    reports = {GOOD.replace("return x", "return x + x"): [], GOOD.replace("return x", "return x * x"): []}
    settled = _settle(diagnostic, GOOD, reports)
    assert settled.fixes == ()
    assert settled.helps == ("more than one repair makes this check, so none is applied: double it: `return x + x`; "
                             "or square it: `return x * x`",)


def test_a_candidate_that_leaves_the_diagnostic_or_adds_one_is_dropped():
    broken = Diagnostic.make("E207", "broken", None)
    only = _candidate(GOOD, "return x", "return -x", "negate it")
    diagnostic = Diagnostic.make("E207", "broken", None, candidates=(only,))
    settled = _settle(diagnostic, GOOD, {GOOD.replace("return x", "return -x"): [broken]})
    assert settled.fixes == () and settled.helps == () and settled.candidates == ()


def test_deferred_candidates_are_built_from_the_syntax():
    def build(index: SourceIndex) -> list:
        forward = next(node for node, _ in index.nodes() if isinstance(node, ast.Forward))
        value = forward.body[0].values[0]
        return [Fix("use the input twice", (Edit(value.span, "x + x"),), safe=False)]

    diagnostic = Diagnostic.make("E207", "broken", None, candidates=(build,))
    settled = _settle(diagnostic, GOOD, {GOOD.replace("return x", "return x + x"): []})
    assert [fix.message for fix in settled.fixes] == ["use the input twice"]


def test_candidates_never_reach_the_rendered_record():
    text = GOOD.replace("return x", "return x.view(B, 2, 3)")
    for diagnostic in checked(text):
        assert diagnostic.candidates == ()


# ------------------------------------------------------------------------------------- syntax lookups


def test_statements_are_found_with_their_neighbours_and_lines():
    text = program("""
        dim B
        model m = M()
        module M() {
            forward(x: f32[B, 4]) -> (y: f32[B, 4]) {
                a = x + x   # doubled
                b = a * x
                return b
            }
        }
    """)
    compilation = check("case.pose", text)
    index = SourceIndex.of_program(compilation.program)
    first, second = [node for node, _ in index.nodes() if isinstance(node, ast.Assign)]
    assert next_statement(index, first) is second and previous_statement(index, second) is first
    assert previous_statement(index, first) is None
    lines = statement_lines(index, first)
    assert text[lines.start:lines.end] == "        a = x + x   # doubled\n"
    assert index.enclosing(first.value.span, ast.Forward) is not None
    assert index.builtin_module("Linear").name == "Linear"


# ------------------------------------------------------------------------------------- skeleton flips


def test_the_tree_flip_of_every_built_in_skeleton_is_its_declared_flip():
    for name, value in builtin_names().items():
        if isinstance(value, Skeleton):
            flip = tree_flip(value.parents)
            assert tuple(flip.get(joint, joint) for joint in range(value.J)) == tuple(value.flip), name


def test_three_branches_of_one_shape_leave_the_flip_undecided():
    # a root with three one-joint branches: which two are left and right is not in the tree
    assert tree_flip((-1, 0, 0, 0)) is None


def test_pairs_keep_the_side_the_user_wrote_first():
    parents = (-1, 0, 1, 0, 3)  # root, left arm (1, 2), right arm (3, 4)
    flip = tree_flip(parents)
    assert oriented_pairs(flip, {3, 4}, parents) == [(3, 1), (4, 2)]
    assert oriented_pairs(flip, {1, 4}, parents) == [(1, 3), (2, 4)]


# ------------------------------------------------------------------------------------- texts


def test_slice_bounds_shift_by_removing_a_written_offset_first():
    assert shift_text("length - pad + 1", -1) == ("length - pad", "removed")
    assert shift_text("pad", 1) == ("pad + 1", "added")
    assert shift_text("-2", 1) == ("-1", "literal")
    assert shift_text("-1", 1) is None, "a stop of 0 would empty the slice"
    assert shift_text("1", 1) == ("2", "literal")


def test_a_transpose_that_undoes_a_trailing_permute_removes_it():
    assert trailing_permutation("x.permute(0, 2, 1)", 3) == ("x", [0, 2, 1])
    assert moved_axes("x.permute(0, 2, 1)", 3, 2, 1) == "x"
    assert moved_axes("x", 3, 2, 1) == "x.transpose(2, 1)"
    assert moved_axes("a + b", 3, 2, 1) == "(a + b).transpose(2, 1)"


def test_a_size_is_written_by_its_literal_a_visible_name_or_its_number():
    seven, three = parse_dim("7"), parse_dim("3")
    assert size_text("joints * 3", parse_dim("48"), parse_dim("32"), [], lambda name: True) == "joints * 2"
    assert size_text("h36m16.J", parse_dim("16"), parse_dim("17"), ["num_joints"], lambda name: True) == "num_joints"
    assert size_text("h36m16.J", parse_dim("16"), parse_dim("17"), ["num_joints"], lambda name: False) == "17"
    assert size_text("h36m16.J", seven, three, [], lambda name: True, numbers=False) is None
    assert size_text("channel * 3", parse_dim("24"), parse_dim("8"), [], lambda name: True) == "8", \
        "`channel * 1` is never offered"


def test_a_floor_equation_is_settled_by_a_remainder_fact():
    facts = Facts().with_relation(parse_dim("F"), ">=", 3)
    assert facts.assumption_for(parse_dim("F // 3"), parse_dim("(F - 2) // 3 + 1")) == "F % 3 == 0"
    settled = facts.with_modulus(parse_dim("F"), 3, 0)
    assert settled.equal(parse_dim("F // 3"), parse_dim("(F - 2) // 3 + 1")).name == "YES"


# ------------------------------------------------------------------------------------- end to end


def test_matmul_with_the_left_operand_a_view_of_split_queries_gets_no_fix():
    text = program("""
        dim B
        model m = M()
        module M() {
            forward(f: f32[B, 1, 16, 8], g: f32[B, 8, 4]) -> (y: f32[B, 16, 4]) {
                return f.view(B, 8, 16) @ g
            }
        }
    """)
    (diagnostic,) = checked(text)
    assert diagnostic.code == "E207" and diagnostic.fixes == (), \
        "transposing half of the queries against the keys checks, but computes something else"


def test_a_residual_keeps_the_layout_of_the_stream_it_rebinds():
    text = program("""
        dim B
        model m = M()
        module M(frames: int = 4, joints: int = 4) {
            forward(x: f32[B, frames, joints, 8]) -> (y: f32[B, frames, joints, 8]) {
                s = rearrange(x, "b f j c -> (b f) j c")
                t = rearrange(s, "(b f) j c -> (b j) f c", f = frames)
                s = s + t
                return rearrange(s, "(b f) j c -> b f j c", f = frames)
            }
        }
    """)
    result = fix_text("case.pose", text, unsafe=True)
    assert result.remaining == []
    assert 's = s + rearrange(t, "(b j) f c -> (b f) j c", j = joints)' in result.fixed


# ------------------------------------------------------------------------------------- fixes of cases
# whose other mistake has no unique repair (so the corpus has no intended program for them)


def _fixed_equals(tmp_path, broken: str, intended: str) -> None:
    """`fix --unsafe` of `broken` checks clean and computes `intended`'s numbers at two sizes."""
    import corpus_support as corpus

    case, reference = tmp_path / "case.pose", tmp_path / "intended.pose"
    case.write_text(broken)
    reference.write_text(intended)
    result = fix_text(str(case), broken, unsafe=True)
    assert result.remaining == [], [diagnostic.message for diagnostic in result.remaining]
    comparison = corpus.compare_programs(case, result.fixed, reference)
    assert comparison.equal, comparison.reasons


def test_a_continued_line_joins_the_expression_above(tmp_path):
    broken = program("""
        dim B, T
        model loss = Loss()
        module Loss() {
            forward(pose: f32[B, T, 17, 3], target: f32[B, T, 17, 3]) -> (value: f32[B, T, 17, 3]) {
                value = pose - target
                        + 20.0 * (pose - target)
                return value
            }
        }
    """)
    intended = broken.replace("value = pose - target\n", "value = pose - target ").replace(
        "                + 20.0", "+ 20.0")
    _fixed_equals(tmp_path, broken, intended)


def test_learned_adjacency_values_follow_the_skeleton_mask(tmp_path):
    broken = program("""
        dim B
        model adjacency = SkeletonMask()
        module SkeletonMask(J: int = 16) {
            parents = h36m16.parents
            mask = []
            for i in 0..J {
                for j in 0..J {
                    if i == j or parents[i] == j or parents[j] == i {
                        mask = mask + [i * J + j]
                    }
                }
            }
            self.e = param f32[1, 45] ~ ones()

            forward(x: f32[B, J, 8]) -> (y: f32[B, J, 8]) {
                adj = softmax(scatter(self.e.view(-1), mask, J * J, fill = -9e15).view(J, J), 1)
                return adj @ x
            }
        }
    """)
    _fixed_equals(tmp_path, broken, broken.replace("f32[1, 45]", "f32[1, 46]"))
