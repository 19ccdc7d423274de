"""Tests for the symbolic dimension algebra in poseir.dims."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from poseir.ir.dims import Dim, FloorDiv, Tri, cancel_common, parse_dim
from poseir.ir.facts import Facts

A, B, C = Dim.symbol("A"), Dim.symbol("B"), Dim.symbol("C")
T, N, J = Dim.symbol("T"), Dim.symbol("N"), Dim.symbol("J")
SYMBOL_NAMES = ("A", "B", "C")

# ---------------------------------------------------------------- strategies
#
# Expressions are generated as small trees so that each one can be evaluated twice:
# once through Dim arithmetic and once with plain Python integers as the reference.

LEAVES = st.one_of(
    st.tuples(st.just("const"), st.integers(-6, 6)),
    st.tuples(st.just("symbol"), st.sampled_from(SYMBOL_NAMES)),
)


def _ring_nodes(children):
    """Tree nodes for + - * only."""
    return st.tuples(st.sampled_from(["add", "sub", "mul"]), children, children)


def _all_nodes(children):
    """Tree nodes for + - * and floor division / modulus by small nonzero ints."""
    divisors = st.sampled_from([2, 3, 4, 5, -2, -3])
    return st.one_of(
        _ring_nodes(children),
        st.tuples(st.sampled_from(["floordiv", "mod"]), children, divisors),
    )


POLYNOMIAL_TREES = st.recursive(LEAVES, _ring_nodes, max_leaves=7)
EXPRESSION_TREES = st.recursive(LEAVES, _all_nodes, max_leaves=8)
POSITIVE_ENVS = st.fixed_dictionaries({name: st.integers(1, 40) for name in SYMBOL_NAMES})


def build(tree) -> Dim:
    """The Dim for a tree."""
    kind = tree[0]
    if kind == "const":
        return Dim.const(tree[1])
    if kind == "symbol":
        return Dim.symbol(tree[1])
    left = build(tree[1])
    right = tree[2] if kind in ("floordiv", "mod") else build(tree[2])
    return {
        "add": lambda: left + right,
        "sub": lambda: left - right,
        "mul": lambda: left * right,
        "floordiv": lambda: left // right,
        "mod": lambda: left % right,
    }[kind]()


def reference(tree, env) -> int:
    """The value of a tree computed with Python integers."""
    kind = tree[0]
    if kind == "const":
        return tree[1]
    if kind == "symbol":
        return env[tree[1]]
    left = reference(tree[1], env)
    right = tree[2] if kind in ("floordiv", "mod") else reference(tree[2], env)
    return {
        "add": lambda: left + right,
        "sub": lambda: left - right,
        "mul": lambda: left * right,
        "floordiv": lambda: left // right,
        "mod": lambda: left % right,
    }[kind]()


def polynomials():
    """Random Dims built with + - * only."""
    return POLYNOMIAL_TREES.map(build)


def expressions():
    """Random Dims that may contain floor-division atoms."""
    return EXPRESSION_TREES.map(build)


@st.composite
def facts_with_witness(draw):
    """A Facts object together with symbol values that satisfy every fact."""
    env = {name: draw(st.integers(-3, 30)) for name in SYMBOL_NAMES}
    facts = Facts()
    for name, value in env.items():
        symbol = Dim.symbol(name)
        if value < 1:
            # Symbols default to >= 1, so a non-positive witness needs an explicit lower bound.
            facts = facts.with_relation(symbol, ">=", value - draw(st.integers(0, 3)))
        kind = draw(st.sampled_from(["none", "lower", "upper", "modulus", "equal", "linear_modulus"]))
        if kind == "lower":
            facts = facts.with_relation(symbol, ">=", value - draw(st.integers(0, 5)))
        elif kind == "upper":
            facts = facts.with_relation(symbol, "<=", value + draw(st.integers(0, 5)))
        elif kind == "modulus":
            modulus = draw(st.integers(2, 4))
            facts = facts.with_relation(symbol % modulus, "==", value % modulus)
        elif kind == "linear_modulus":
            modulus, offset = draw(st.integers(2, 6)), draw(st.integers(-5, 5))
            facts = facts.with_modulus(2 * symbol + offset, modulus, (2 * value + offset) % modulus)
        elif kind == "equal":
            facts = facts.with_relation(symbol, "==", value)
    return facts, env


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


# ---------------------------------------------------------------- canonical printing


@pytest.mark.parametrize(
    ("dim", "text"),
    [
        (T - 242, "T - 242"),
        (T * B, "B*T"),
        (J * 2, "2*J"),
        ((T - 2) // 3, "(T - 2) // 3"),
        (2 * T - 4, "2*T - 4"),
        (T * T, "T**2"),
        (-T + 3, "-T + 3"),
        (T // 3 * 3, "3*(T // 3)"),
        (-(T // 3), "-(T // 3)"),
        (T - T // 3, "T - T // 3"),
        (T - 3 * (T // 3), "T - 3*(T // 3)"),
        (T * T - B * T + 3, "-B*T + T**2 + 3"),
        (Dim.const(0), "0"),
        (Dim.const(-7), "-7"),
    ],
)
def test_canonical_printing(dim, text):
    """Dims print in the documented canonical form and parse back to themselves."""
    assert str(dim) == text
    assert parse_dim(text) == dim


def test_repr_and_dim_param():
    """repr wraps the canonical text; dim_param drops spaces."""
    assert repr(T - 242) == "Dim('T - 242')"
    assert (T - 242).to_dim_param() == "T-242"
    assert (B * T).to_dim_param() == "B*T"
    assert ((T - 2) // 3).to_dim_param() == "(T-2)//3"


def test_floor_division_normal_forms():
    """Floor division pulls out exact multiples and keeps one canonical remainder form."""
    assert (3 * T + 7) // 3 == T + 2
    assert (6 * T - 3) // 3 == 2 * T - 1
    assert (2 * T + 1) // 4 == T // 2
    assert (T + 1) // 3 == (T - 2) // 3 + 1
    assert (T - 242) // 3 == (T - 2) // 3 - 80
    assert (T - 3) // 3 == T // 3 - 1
    assert (T // 3 - 1) // 2 == (T - 3) // 6
    assert Dim.const(7) // 2 == 3
    assert Dim.const(-7) // 2 == -4
    assert T // -1 == -T


def test_modulus_is_constant_when_decidable():
    """`%` folds to a constant when the coefficients decide it."""
    assert (3 * T + 6) % 3 == 0
    assert (3 * T + 7) % 3 == 1
    assert T % 3 == T - 3 * (T // 3)
    assert (B * T) % T == 0


def test_division_by_dim():
    """Division by a Dim is exact or refused."""
    assert (B * T * 34) // (B * T) == 34
    assert (T * T - 1) // (T + 1) == T - 1
    with pytest.raises(ValueError):
        (T + 1) // T
    with pytest.raises(ZeroDivisionError):
        T // 0


def test_constructors_and_properties():
    """Constructors coerce ints and properties describe the polynomial."""
    assert Dim.of(5) == Dim.const(5) == 5
    assert Dim.of(T) is T
    assert Dim.const(4).is_const and Dim.const(4).value == 4
    assert not T.is_const and T.value is None
    assert ((T - 2) // 3 + B).symbols == frozenset({"T", "B"})
    assert (3 * T - 5).is_linear_in_one_symbol() == ("T", 3, -5)
    assert (T * T).is_linear_in_one_symbol() is None
    assert (T + B).is_linear_in_one_symbol() is None
    assert (T // 3).is_linear_in_one_symbol() is None
    with pytest.raises(ValueError):
        Dim.symbol("not a name")
    with pytest.raises(TypeError):
        Dim.of(True)


def test_bool_refused():
    """Truth testing a Dim or Tri raises TypeError."""
    with pytest.raises(TypeError):
        bool(T)
    with pytest.raises(TypeError):
        bool(Tri.UNKNOWN)


def test_evaluate_and_substitute():
    """evaluate names missing symbols; substitute re-normalizes inside floor atoms."""
    assert ((T - 2) // 3).evaluate({"T": 11}) == 3
    with pytest.raises(KeyError) as error:
        (T + B).evaluate({"T": 1})
    assert error.value.args[0] == "B"
    assert ((T - 2) // 3).substitute({"T": 11}) == 3
    assert (T // 3).substitute({"T": 3 * N}) == N
    assert (B * T).substitute({"T": T + 1}) == B * T + B


def test_floor_atom_validation():
    """FloorDiv atoms need a divisor of at least 2."""
    with pytest.raises(ValueError):
        FloorDiv(T, 1)


# ---------------------------------------------------------------- reshape-relevant helpers


def test_cancel_common_examples():
    """cancel_common removes the shared monomial and coefficient gcd."""
    assert cancel_common(34 * B * T, 2754 * B) == (T, Dim.const(81))
    assert cancel_common(1024 * B * T - 2048 * B, 1024 * B * T) == (T - 2, T)
    assert cancel_common(-2 * T, -4) == (T, Dim.const(2))
    assert cancel_common(0, B * T) == (Dim.const(0), B * T)


def test_exact_div_examples():
    """exact_div finds polynomial quotients and refuses inexact ones."""
    assert (B * T * 34).exact_div(B * T) == 34
    assert (B * (T - 2) * 1024).exact_div(B) == 1024 * T - 2048
    assert ((A + B) * (A - B)).exact_div(A - B) == A + B
    assert (T + 1).exact_div(T) is None
    assert (2 * T).exact_div(4) is None
    assert T.exact_div(0) is None


def test_holds_only_when_examples():
    """holds_only_when names the single symbol value that makes two dims equal."""
    facts = Facts()
    assert facts.holds_only_when(B * T * 34, B * 81 * 34) == ("T", 81)
    assert facts.holds_only_when(2 * T, 7) is None
    assert facts.holds_only_when(T + 5, 3) is None
    assert facts.holds_only_when(T, N) is None
    assert Facts().with_relation(T, "<=", 50).holds_only_when(T, 81) is None


def test_assumption_for():
    """assumption_for prints the fact that would settle a comparison."""
    facts = Facts()
    assert facts.assumption_for(B * T * 34, B * 81 * 34) == "T == 81"
    assert facts.assumption_for(B * T, B * N) == "N == T"
    assert facts.assumption_for(T - 242, 1, ">=") == "T >= 243"
    assert facts.assumption_for(T, 100, "<") == "T <= 99"


# ---------------------------------------------------------------- facts


def test_lower_bound_proves_valid_length():
    """T >= 243 proves the conv output length is positive and distinguishes lengths."""
    facts = Facts().with_relation(T, ">=", 243)
    assert facts.greater_equal(T - 242, 1) is Tri.YES
    assert facts.equal(T - 242, T - 2) is Tri.NO
    assert facts.interval(T - 242) == (1, None)
    assert Facts().greater_equal(T - 242, 1) is Tri.UNKNOWN
    assert facts.describe() == ["T >= 243"]


def test_equality_fact_normalizes():
    """T == 243 substitutes the value."""
    facts = Facts().with_relation(T, "==", 243)
    assert facts.normalize(T) == 243
    assert facts.normalize(B * (T - 242)) == B
    assert facts.bounds("T") == (243, 243)
    assert facts.describe() == ["T == 243"]


def test_modulus_fact_simplifies_floors():
    """A modulus fact folds `T // 3 * 3` back to T and shifts floor constants."""
    facts = Facts().with_relation(T % 3, "==", 0)
    assert facts.normalize(T // 3 * 3) == T
    assert facts.normalize(parse_dim("(T - 2) // 3 * 3")) == T - 3
    assert facts.normalize((T - 3) // 3) == T // 3 - 1
    assert facts.divisible(T, 3) is Tri.YES
    assert facts.divisible(T + 1, 3) is Tri.NO
    assert facts.bounds("T") == (3, None)
    assert facts.describe() == ["T % 3 == 0"]
    assert Facts().divisible(T, 3) is Tri.UNKNOWN


def test_modulus_on_linear_expression():
    """(T - 2) % 3 == 0 becomes a residue of T itself."""
    facts = Facts().with_modulus(T - 2, 3, 0)
    assert facts.describe() == ["T % 3 == 2"]
    assert facts.normalize((T - 2) // 3 * 3) == T - 2
    combined = facts.with_modulus(T, 2, 0)
    assert combined.describe() == ["T % 6 == 2"]


def test_divisible_without_facts():
    """Coefficients alone decide divisibility when possible."""
    facts = Facts()
    assert facts.divisible(6 * T + 9, 3) is Tri.YES
    assert facts.divisible(3 * T + 7, 3) is Tri.NO
    assert facts.divisible(Dim.const(10), 4) is Tri.NO
    assert facts.divisible(T + 1, 2) is Tri.UNKNOWN


def test_distinct_symbols_unknown():
    """Nothing relates distinct symbols, so their equality is UNKNOWN."""
    facts = Facts()
    assert facts.equal(T, N) is Tri.UNKNOWN
    assert facts.not_equal(T, N) is Tri.UNKNOWN
    assert facts.equal(T, T) is Tri.YES
    assert facts.equal(34 * B * T, 2754 * B * T) is Tri.NO
    assert facts.equal(3 * T, 3 * N + 1) is Tri.NO


def test_comparisons():
    """Ordering comparisons use intervals and the default positivity of symbols."""
    facts = Facts()
    assert facts.less(T, T + 1) is Tri.YES
    assert facts.less_equal(T + 1, T) is Tri.NO
    assert facts.greater(B * T, 0) is Tri.YES
    assert facts.greater_equal(T, N) is Tri.UNKNOWN


def test_relations_combine():
    """Non-linear relations are kept and used once other facts make them linear."""
    kept = Facts().with_relation(B * T, "==", 100)
    assert kept.relations == ((B * T, "==", Dim.const(100)),)
    assert kept.equal(T, 25) is Tri.UNKNOWN
    solved = kept.with_relation(B, "==", 4)
    assert solved.normalize(T) == 25
    assert solved.relations == ()


def test_bounds_and_exclusions():
    """Default bounds, explicit bounds and `!=` trimming."""
    assert Facts().bounds("T") == (1, None)
    assert Facts().with_relation(2 * T, "<", 9).bounds("T") == (1, 4)
    assert Facts().with_relation(T, "!=", 1).bounds("T") == (2, None)
    assert Facts().with_relation(T, ">=", 0).bounds("T") == (0, None)


def test_contradictions_raise():
    """Facts that leave no value raise ValueError."""
    with pytest.raises(ValueError):
        Facts().with_relation(T, "==", 4).with_relation(T % 3, "==", 0)
    with pytest.raises(ValueError):
        Facts().with_relation(2 * T, "==", 5)
    with pytest.raises(ValueError):
        Facts().with_relation(T, ">=", 10).with_relation(T, "<", 10)
    with pytest.raises(ValueError):
        Facts().with_relation(T, "~", 10)


def test_facts_are_immutable_values():
    """Adding a fact returns a new object and equal fact sets compare equal."""
    base = Facts()
    extended = base.with_relation(T, ">=", 243)
    assert base.describe() == []
    assert extended == Facts().with_relation(T - 243, ">=", 0)


def test_interval_mixed_signs():
    """Products of intervals with mixed signs are bounded correctly."""
    facts = Facts().with_relation(A, ">=", -2).with_relation(A, "<=", 3).with_relation(B, "<=", 5)
    assert facts.interval(A * B) == (-10, 15)
    assert facts.interval(A * A) == (0, 9)
    assert facts.interval(-A) == (-3, 2)
    assert facts.interval(A * T) == (None, None)


def test_tri_logic():
    """Three-valued and/or/not tables."""
    assert Tri.of(True) is Tri.YES and Tri.of(False) is Tri.NO
    assert (Tri.YES & Tri.UNKNOWN) is Tri.UNKNOWN
    assert (Tri.NO & Tri.UNKNOWN) is Tri.NO
    assert (Tri.YES | Tri.UNKNOWN) is Tri.YES
    assert (Tri.NO | Tri.UNKNOWN) is Tri.UNKNOWN
    assert ~Tri.YES is Tri.NO and ~Tri.UNKNOWN is Tri.UNKNOWN


def test_parse_errors():
    """The convenience parser rejects malformed text."""
    for text in ["T +", "(T", "T $ 2", "T ** N", ""]:
        with pytest.raises(ValueError):
            parse_dim(text)


# ---------------------------------------------------------------- properties


@PROPERTY_SETTINGS
@given(EXPRESSION_TREES, POSITIVE_ENVS)
def test_evaluate_matches_integers(tree, env):
    """Dim arithmetic (+ - * // %) agrees with Python integer arithmetic."""
    assert build(tree).evaluate(env) == reference(tree, env)


@PROPERTY_SETTINGS
@given(polynomials(), polynomials(), POSITIVE_ENVS, st.integers(2, 5))
def test_ring_operations_and_floor(p, q, env, divisor):
    """p+q, p-q, p*q and p//c evaluate like their integer counterparts."""
    p_value, q_value = p.evaluate(env), q.evaluate(env)
    assert (p + q).evaluate(env) == p_value + q_value
    assert (p - q).evaluate(env) == p_value - q_value
    assert (p * q).evaluate(env) == p_value * q_value
    assert (p // divisor).evaluate(env) == p_value // divisor
    assert (p % divisor).evaluate(env) == p_value % divisor


@PROPERTY_SETTINGS
@given(expressions(), expressions())
def test_equality_and_hash_are_structural(p, q):
    """Equal polynomials built in different ways are == and hash alike."""
    assert p * q == q * p and hash(p * q) == hash(q * p)
    assert (p + q) - q == p and hash((p + q) - q) == hash(p)
    assert (p + q) * (p - q) == p * p - q * q


def test_difference_of_squares_hash():
    """The documented example of structural equality."""
    assert (A + B) * (A - B) == A * A - B * B
    assert hash((A + B) * (A - B)) == hash(A * A - B * B)
    assert len({(A + B) * (A - B), A * A - B * B}) == 1


@PROPERTY_SETTINGS
@given(expressions())
def test_printing_round_trips(d):
    """Canonical text and dim_param text parse back to the same Dim."""
    assert parse_dim(str(d)) == d
    assert parse_dim(d.to_dim_param()) == d


@PROPERTY_SETTINGS
@given(expressions(), expressions())
def test_exact_div_inverts_multiplication(p, q):
    """(p*q).exact_div(q) recovers p for any nonzero q."""
    assume(not q.is_zero)
    assert (p * q).exact_div(q) == p


@PROPERTY_SETTINGS
@given(polynomials(), polynomials(), polynomials())
def test_cancel_common_keeps_ratio(p, q, factor):
    """cancel_common divides both sides by the same factor."""
    left, right = cancel_common(p * factor, q * factor)
    assert left * (q * factor) == right * (p * factor)


@PROPERTY_SETTINGS
@given(expressions(), POSITIVE_ENVS)
def test_interval_is_sound(d, env):
    """Every evaluation with positive symbols lies inside the default interval."""
    low, high = Facts().interval(d)
    value = d.evaluate(env)
    assert low is None or low <= value
    assert high is None or value <= high


@PROPERTY_SETTINGS
@given(expressions(), expressions(), st.lists(POSITIVE_ENVS, min_size=1, max_size=5))
def test_equal_is_sound(p, q, envs):
    """YES means equal on every sample and NO means different on every sample."""
    verdict = Facts().equal(p, q)
    same = [p.evaluate(env) == q.evaluate(env) for env in envs]
    if verdict is Tri.YES:
        assert all(same)
    elif verdict is Tri.NO:
        assert not any(same)
    else:
        assert verdict is Tri.UNKNOWN


@PROPERTY_SETTINGS
@given(facts_with_witness(), expressions(), expressions())
def test_facts_reasoning_is_sound(facts_and_env, p, q):
    """normalize, interval, comparisons and divisibility agree with a witness satisfying the facts."""
    facts, env = facts_and_env
    p_value, q_value = p.evaluate(env), q.evaluate(env)
    assert facts.normalize(p).evaluate(env) == p_value
    low, high = facts.interval(p)
    assert (low is None or low <= p_value) and (high is None or p_value <= high)
    assert facts.equal(p, q) in _consistent(p_value == q_value)
    assert facts.less_equal(p, q) in _consistent(p_value <= q_value)
    assert facts.less(p, q) in _consistent(p_value < q_value)
    assert facts.divisible(p, 3) in _consistent(p_value % 3 == 0)


@PROPERTY_SETTINGS
@given(facts_with_witness(), polynomials(), polynomials())
def test_holds_only_when_is_sound(facts_and_env, p, q):
    """When holds_only_when names (S, v), equality on a witness implies S == v there."""
    facts, env = facts_and_env
    found = facts.holds_only_when(p, q)
    if found is not None and p.evaluate(env) == q.evaluate(env):
        symbol, value = found
        assert env[symbol] == value


def _consistent(truth: bool) -> set[Tri]:
    """Verdicts that do not contradict an observed truth value."""
    return {Tri.of(truth), Tri.UNKNOWN}


def test_floor_division_facts_bound_the_numerator():
    """`where H // 32 <= 32` bounds H itself, so sizes computed from H are bounded too."""
    facts = Facts().with_relation(parse_dim("H // 32"), "<=", 32)
    assert facts.bounds("H") == (1, 32 * 32 + 31)
    assert facts.less_equal(parse_dim("8 * (H // 32)"), 256) is Tri.YES
    assert Facts().with_relation(parse_dim("H // 32"), ">=", 2).bounds("H")[0] == 64
    assert Facts().with_relation(parse_dim("2 * (H // 32) - 3"), "<", 10).bounds("H")[1] == 223
