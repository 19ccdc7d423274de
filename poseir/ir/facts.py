"""Facts about symbolic dims (bounds, residues, equalities) and the yes/no/unknown comparisons they decide."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from functools import cached_property, wraps

from poseir.ir.dims import (  # noqa: F401  (private helpers are shared by the two halves of the algebra)
    Variable,
    Dim,
    FloorDiv,
    Monomial,
    Tri,
    _DEFAULT_LOWER_BOUND,
    _INFINITY,
    _OPERATORS,
    _common_factor,
    _rebuild,
    cancel_common,
)


def _add_bounds(left: int | float, right: int | float) -> int | float:
    """Sum of two bounds where either may be infinite (never opposite infinities)."""
    # Adding a huge int to a float would overflow, so infinities are handled without arithmetic.
    if isinstance(left, float):
        return left
    if isinstance(right, float):
        return right
    return left + right


def _multiply_bounds(left: int | float, right: int | float) -> int | float:
    """Product of two bounds where zero times infinity is zero."""
    if left == 0 or right == 0:
        return 0
    if isinstance(left, float) or isinstance(right, float):
        return _INFINITY if (left > 0) == (right > 0) else -_INFINITY
    return left * right


def _multiply_intervals(left: tuple, right: tuple) -> tuple:
    """Product of two intervals, taking all sign combinations into account."""
    corners = [_multiply_bounds(a, b) for a in left for b in right]
    return min(corners), max(corners)


def _power_bound(bound: int | float, power: int) -> int | float:
    """A bound raised to a positive power."""
    if isinstance(bound, float):
        return _INFINITY if bound > 0 or power % 2 == 0 else -_INFINITY
    return bound**power


def _power_interval(interval: tuple, power: int) -> tuple:
    """An interval raised to a positive power (even powers are non-negative)."""
    low, high = interval
    if power % 2 == 1 or low >= 0:
        return _power_bound(low, power), _power_bound(high, power)
    if high <= 0:
        return _power_bound(high, power), _power_bound(low, power)
    return 0, max(_power_bound(low, power), _power_bound(high, power))


def _floor_bound(bound: int | float, divisor: int) -> int | float:
    """Floor division of a bound by a positive divisor."""
    return bound if isinstance(bound, float) else bound // divisor


def _optional_bound(bound: int | float) -> int | None:
    """Public form of a bound: None for infinity."""
    return None if isinstance(bound, float) else bound


# --------------------------------------------------------------------------- facts helpers


def _compare_constant(value: int, operator: str) -> bool:
    """Truth of `value op 0`."""
    return {
        "==": value == 0,
        "!=": value != 0,
        ">=": value >= 0,
        ">": value > 0,
        "<=": value <= 0,
        "<": value < 0,
    }[operator]


def _ceil_divide(numerator: int, divisor: int) -> int:
    """Ceiling of numerator / divisor for a positive divisor."""
    return -((-numerator) // divisor)


def _combine_residues(first: tuple[int, int], second: tuple[int, int]) -> tuple[int, int] | None:
    """Chinese-remainder merge of two (modulus, residue) facts, None when inconsistent."""
    (modulus_a, residue_a), (modulus_b, residue_b) = first, second
    gcd = math.gcd(modulus_a, modulus_b)
    if (residue_b - residue_a) % gcd != 0:
        return None
    lcm = modulus_a // gcd * modulus_b
    step_modulus = modulus_b // gcd
    step = (residue_b - residue_a) // gcd * pow(modulus_a // gcd, -1, step_modulus) % step_modulus
    return lcm, (residue_a + modulus_a * step) % lcm


def _constant_residue(dim: Dim, modulus: int) -> int | None:
    """`dim mod modulus` when every non-constant coefficient is a multiple of the modulus."""
    variable, constant = dim._split_constant()
    if any(coefficient % modulus != 0 for coefficient in variable._coefficients()):
        return None
    return constant % modulus


def _match_modulus(difference: Dim) -> tuple[Dim, int, int, int] | None:
    """Recognize `scale*(n % m) + offset` (as built by `Dim.__mod__`); returns (n, m, scale, offset)."""
    for monomial, coefficient in difference.terms:
        if len(monomial) != 1 or monomial[0][1] != 1 or not isinstance(monomial[0][0], FloorDiv):
            continue
        variable = monomial[0][0]
        if coefficient % variable.divisor != 0:
            continue
        scale = -coefficient // variable.divisor
        rest = difference - scale * (variable.numerator - variable.divisor * Dim._of_variable(variable))
        if rest.is_const:
            return variable.numerator, variable.divisor, scale, rest.value
    return None


def _floor_inequality(difference: Dim, op: str) -> tuple[Dim, str, Dim] | None:
    """`a*(p // c) + b op 0` (one floor variable) as an equivalent relation on `p` itself.

    For integers, `p // c <= k` holds exactly when `p <= c*k + c - 1`, and `p // c >= k` when
    `p >= c*k`; so `where H // 32 <= 32` bounds `H` and everything computed from it.
    """
    terms = [(monomial, coefficient) for monomial, coefficient in difference.terms if monomial]
    constant = difference - sum((Dim._of_variable(monomial[0][0]) * coefficient for monomial, coefficient in terms),
                                Dim.const(0))
    if len(terms) != 1 or not constant.is_const or op not in ("<=", "<", ">=", ">"):
        return None
    (monomial, coefficient), = terms
    if len(monomial) != 1 or monomial[0][1] != 1 or not isinstance(monomial[0][0], FloorDiv):
        return None
    variable = monomial[0][0]
    # a*f + b op 0  =>  f op' k with k a rational bound; keep integers exact by flooring/ceiling.
    if coefficient < 0:
        coefficient, constant = -coefficient, -constant
        op = {"<=": ">=", "<": ">", ">=": "<=", ">": "<"}[op]
    bound = -constant.value
    if op in ("<", ">"):
        bound, op = (bound - 1, "<=") if op == "<" else (bound + 1, ">=")
    if op == "<=":
        limit = bound // coefficient  # f <= limit
        return variable.numerator, "<=", Dim.const(variable.divisor * limit + variable.divisor - 1)
    limit = -((-bound) // coefficient)  # f >= limit
    return variable.numerator, ">=", Dim.const(variable.divisor * limit)


def _solve_unit_symbol(difference: Dim) -> tuple[str, Dim] | None:
    """For `difference == 0` with some symbol S as `±S` and nowhere else, (S, its value)."""
    for symbol in sorted(difference.symbols, reverse=True):
        for monomial, coefficient in difference.terms:
            if monomial == ((symbol, 1),) and coefficient in (1, -1):
                rest = difference - Dim.symbol(symbol) * coefficient
                if symbol not in rest.symbols:
                    return symbol, rest * -coefficient
    return None


def _relation_key(relation: tuple[Dim, str, Dim]) -> tuple[str, str, str]:
    """Deterministic sort key of a stored relation."""
    left, operator, right = relation
    return str(left), operator, str(right)


def _modulus_text(dim: Dim, modulus: int, remainder: int) -> str:
    """Text of a modulus fact, parenthesizing sums."""
    text = str(dim) if len(dim.terms) == 1 and dim.terms[0][1] > 0 else f"({dim})"
    return f"{text} % {modulus} == {remainder}"


def _residue_variable(symbol: str) -> Dim:
    """A fresh internal symbol standing for `symbol // modulus` in residue reasoning."""
    # '#' cannot appear in user symbol names, so this never collides with a real symbol.
    return Dim._of_variable(f"#{symbol}")


# --------------------------------------------------------------------------- query logs

# Replay (poseir.elaborate.replay) reuses a recorded run under other facts when every question the run
# asked of its facts gets the same answer: the log of those questions is what the run depends on. An open
# log is a list of (query, arguments, answer) entries and of the closed logs of the runs inside it, so a
# block's log is shared by every run around it and checked once per set of facts. Only a caller's
# question is entered, not those a query asks itself.
_OPEN_LOGS = 0  # logs open in any thread: the fast path of a query when nothing is recorded
_COUNTING = threading.Lock()  # (two threads may open and close logs at once: no count may be lost)


class Queries(tuple):
    """A closed query log: (query, arguments, answer) entries and the closed logs nested in it."""

    __slots__ = ()


class _Logs(threading.local):
    """This thread's open query logs (innermost last), and whether a query is running."""

    def __init__(self):
        self.stack: list[list] = []
        self.inside = False


_LOGS = _Logs()


def _open_log() -> list:
    """Start a query log (inside any open one); every query until `_close_log` is entered in it."""
    global _OPEN_LOGS
    log: list = []
    _LOGS.stack.append(log)
    with _COUNTING:
        _OPEN_LOGS += 1
    return log


def _close_log(log: list) -> Queries:
    """End the innermost log, `log`; the log around it, if any, depends on its queries too."""
    global _OPEN_LOGS
    stack = _LOGS.stack
    if not stack or stack[-1] is not log:
        raise RuntimeError("query logs must be closed innermost first")
    stack.pop()
    with _COUNTING:
        _OPEN_LOGS -= 1
    closed = Queries(log)
    if stack and closed:
        stack[-1].append(closed)
    return closed


def logged(enabled: bool, run):
    """`run()` with the queries it makes logged when `enabled`: its result and the closed log (None if not logged)."""
    if not enabled:
        return run(), None
    log = _open_log()
    try:
        result = run()
    finally:
        queries = _close_log(log)
    return result, queries


def note_queries(queries: Queries) -> None:
    """Enter queries answered earlier (a memo's, a replayed template's) in the open log, which depends on them."""
    if _OPEN_LOGS and queries:
        stack = _LOGS.stack
        if stack:
            stack[-1].append(queries)


def answers_hold(facts: Facts, queries: Queries, verdicts: dict) -> bool:
    """Whether `facts` answer every logged query as the facts of the log did.

    `verdicts` remembers the answer per log and facts (equal facts share one memo, which stands for
    them), so a log nested in many runs, or asked of both flows' equal facts, is checked once.
    """
    memo = facts._memo
    key = (id(queries), id(memo))
    found = verdicts.get(key)
    if found is not None and found[0] is queries and found[1] is memo:
        return found[2]
    logs, inside = _LOGS, _LOGS.inside
    logs.inside = True  # re-asking is no new question for an open log (the caller notes `queries` itself)
    try:
        verdict = all(answers_hold(facts, entry, verdicts) if type(entry) is Queries else
                      getattr(facts, entry[0])(*entry[1]) == entry[2] for entry in queries)
    finally:
        logs.inside = inside
    verdicts[key] = (queries, memo, verdict)
    return verdict


def holds_by_definition(facts: Facts, queries: Queries, verdicts: dict) -> None:
    """Remember in `verdicts` that `facts` answer `queries` alike: the questions were asked of them."""
    verdicts[(id(queries), id(facts._memo))] = (queries, facts._memo, True)


def _logged(method):
    """A query method that enters its question and answer in the open query log, if there is one."""
    name = method.__name__

    @wraps(method)
    def query(self, *arguments):
        if not _OPEN_LOGS:
            return method(self, *arguments)
        logs = _LOGS
        if logs.inside or not logs.stack:
            return method(self, *arguments)
        logs.inside = True  # the queries this one asks itself are not the caller's
        try:
            answer = method(self, *arguments)
        finally:
            logs.inside = False
        logs.stack[-1].append((name, arguments, answer))
        return answer

    return query


# --------------------------------------------------------------------------- Facts

# The memos of normalize/equal, by facts (equal facts give equal answers); bounded in both directions.
_MEMOS: dict = {}
_MEMO_FACTS = 256
_MEMO_LIMIT = 1 << 17


@dataclass(frozen=True)
class Facts:
    """Immutable assumptions about symbols; each symbol is >= 1 unless a fact bounds it otherwise."""

    lower_bounds: tuple[tuple[str, int], ...] = ()
    upper_bounds: tuple[tuple[str, int], ...] = ()
    residues: tuple[tuple[str, int, int], ...] = ()
    moduli: tuple[tuple[Dim, int, int], ...] = ()
    relations: tuple[tuple[Dim, str, Dim], ...] = ()
    substitutions: tuple[tuple[str, Dim], ...] = ()  # `N == 2*B` stored as N := 2*B

    # ---- lookups

    @cached_property
    def _substitution_map(self) -> dict[str, Dim]:
        """Symbols defined by an equality with other symbols."""
        return dict(self.substitutions)

    @cached_property
    def _lower_map(self) -> dict[str, int]:
        """Explicit lower bounds by symbol."""
        return dict(self.lower_bounds)

    @cached_property
    def _upper_map(self) -> dict[str, int]:
        """Explicit upper bounds by symbol."""
        return dict(self.upper_bounds)

    @cached_property
    def _residue_map(self) -> dict[str, tuple[int, int]]:
        """(modulus, residue) facts by symbol."""
        return {symbol: (modulus, residue) for symbol, modulus, residue in self.residues}

    @cached_property
    def equalities(self) -> dict[str, int]:
        """Symbols whose value is fixed by the facts."""
        names = sorted(set(self._lower_map) | set(self._upper_map))
        fixed = {name: self.bounds(name) for name in names}
        return {name: low for name, (low, high) in fixed.items() if low == high}

    def bounds(self, symbol: str) -> tuple[int, int | None]:
        """(lower, upper) bound of a symbol; upper None means unbounded."""
        low = self._lower_map.get(symbol, _DEFAULT_LOWER_BOUND)
        high = self._upper_map.get(symbol)
        if symbol in self._residue_map:
            # Round the bounds inwards to the nearest values with the known residue.
            modulus, residue = self._residue_map[symbol]
            low += (residue - low) % modulus
            high = None if high is None else high - (high - residue) % modulus
        return low, high

    # ---- adding facts

    def with_relation(self, left: Dim | int, op: str, right: Dim | int) -> Facts:
        """Facts extended with `left op right` (op in == != >= > <= <)."""
        if op not in _OPERATORS:
            raise ValueError(f"unknown relation operator {op!r}; expected one of {', '.join(_OPERATORS)}")
        relation = (Dim.of(left), op, Dim.of(right))
        absorbed = self._absorb(relation)
        if absorbed is None:
            kept = sorted(set(self.relations) | {relation}, key=_relation_key)
            return replace(self, relations=tuple(kept))
        return absorbed._reabsorb()

    def with_modulus(self, d: Dim | int, modulus: int, remainder: int) -> Facts:
        """Facts extended with `d % modulus == remainder`."""
        if modulus == 0:
            raise ValueError("modulus must be nonzero")
        modulus = abs(modulus)
        remainder %= modulus
        d = self.normalize(d)
        if modulus == 1:
            return self
        if d.is_const:
            return self._checked(d.value % modulus == remainder, _modulus_text(d, modulus, remainder))
        linear = d.is_linear_in_one_symbol()
        if linear is not None:
            return self._with_linear_modulus(linear, modulus, remainder)._reabsorb()
        entries = set(self.moduli) | {(d, modulus, remainder)}
        kept = sorted(entries, key=lambda entry: (str(entry[0]), entry[1], entry[2]))
        return replace(self, moduli=tuple(kept))._reabsorb()

    def _checked(self, holds: bool, text: str) -> Facts:
        """Self when a constant fact holds; ValueError when it contradicts."""
        if not holds:
            raise ValueError(f"contradictory fact: {text}")
        return self

    def _absorb(self, relation: tuple[Dim, str, Dim]) -> Facts | None:
        """Facts with the relation turned into bounds/residues, or None when it is not usable."""
        left, op, right = relation
        difference = self.normalize(left - right)
        if difference.is_const:
            return self._checked(_compare_constant(difference.value, op), f"{left} {op} {right}")
        if op == "==":
            modulus = _match_modulus(difference)
            if modulus is not None:
                return self._with_matched_modulus(modulus, relation)
        linear = difference.is_linear_in_one_symbol()
        if linear is None:
            floor_bound = _floor_inequality(difference, op)
            if floor_bound is not None:
                return self._absorb(floor_bound)
            solved = _solve_unit_symbol(difference) if op == "==" else None
            return self._with_substitution(*solved) if solved is not None else None
        return self._with_linear(linear, op)

    def _with_substitution(self, symbol: str, value: Dim) -> Facts:
        """Facts where `symbol` is replaced by `value` everywhere (from `symbol == value`)."""
        entries = {name: self._substitute_one(existing, symbol, value) for name, existing in self.substitutions}
        entries[symbol] = value
        facts = replace(self, substitutions=tuple(sorted(entries.items())))
        low, high = self.bounds(symbol)
        # The substituted symbol's own bounds become facts about its replacement.
        if symbol in self._lower_map:
            facts = facts.with_relation(value, ">=", low)
        if high is not None:
            facts = facts.with_relation(value, "<=", high)
        return facts

    @staticmethod
    def _substitute_one(existing: Dim, symbol: str, value: Dim) -> Dim:
        """An earlier substitution's value with the new one applied."""
        return existing.substitute({symbol: value})

    def _with_matched_modulus(self, match: tuple[Dim, int, int, int], relation: tuple) -> Facts:
        """Facts with `scale*(numerator % modulus) + offset == 0`."""
        numerator, modulus, scale, offset = match
        remainder, leftover = divmod(-offset, scale)
        self._checked(leftover == 0 and 0 <= remainder < modulus, " ".join(map(str, relation)))
        return self.with_modulus(numerator, modulus, remainder)

    def _with_linear(self, linear: tuple[str, int, int], op: str) -> Facts | None:
        """Facts with `a*symbol + b op 0` as a bound; None for an unusable `!=`."""
        symbol, a, b = linear
        if op in ("<=", "<"):
            # a*S + b <= 0  <=>  -a*S - b >= 0, and integers make `> 0` the same as `>= 1`.
            a, b, op = -a, -b, ">=" if op == "<=" else ">"
        if op == ">":
            b, op = b - 1, ">="
        if op == ">=":
            if a > 0:
                return self._with_bounds(symbol, lower=_ceil_divide(-b, a))
            return self._with_bounds(symbol, upper=b // -a)
        if op == "==":
            value, leftover = divmod(-b, a)
            self._checked(leftover == 0, f"{a}*{symbol} + {b} == 0")
            return self._with_bounds(symbol, lower=value, upper=value)
        return self._with_exclusion(symbol, a, b)

    def _with_exclusion(self, symbol: str, a: int, b: int) -> Facts | None:
        """Facts with `a*symbol + b != 0`, when that only trims a bound."""
        value, leftover = divmod(-b, a)
        if leftover != 0:
            return self
        low, high = self.bounds(symbol)
        if value == low:
            return self._with_bounds(symbol, lower=value + 1)
        if value == high:
            return self._with_bounds(symbol, upper=value - 1)
        if value < low or (high is not None and value > high):
            return self
        return None

    def _with_bounds(self, symbol: str, lower: int | None = None, upper: int | None = None) -> Facts:
        """Facts with tightened explicit bounds for a symbol (ValueError when empty)."""
        lowers, uppers = dict(self._lower_map), dict(self._upper_map)
        if lower is not None:
            lowers[symbol] = max(lower, lowers.get(symbol, lower))
        if upper is not None:
            uppers[symbol] = min(upper, uppers.get(symbol, upper))
        facts = replace(
            self, lower_bounds=tuple(sorted(lowers.items())), upper_bounds=tuple(sorted(uppers.items()))
        )
        facts._check_symbol(symbol)
        return facts

    def _with_linear_modulus(self, linear: tuple[str, int, int], modulus: int, remainder: int) -> Facts:
        """Facts with `(a*symbol + b) % modulus == remainder` solved for the symbol."""
        symbol, a, b = linear
        target = remainder - b
        gcd = math.gcd(a, modulus)
        self._checked(target % gcd == 0, f"({a}*{symbol} + {b}) % {modulus} == {remainder}")
        reduced = modulus // gcd
        if reduced == 1:
            return self
        residue = target // gcd * pow(a // gcd % reduced, -1, reduced) % reduced
        return self._with_symbol_residue(symbol, reduced, residue)

    def _with_symbol_residue(self, symbol: str, modulus: int, residue: int) -> Facts:
        """Facts with `symbol % modulus == residue`, merged with any earlier residue fact."""
        merged: tuple[int, int] | None = (modulus, residue)
        if symbol in self._residue_map:
            merged = _combine_residues(self._residue_map[symbol], (modulus, residue))
        self._checked(merged is not None, f"{symbol} % {modulus} == {residue}")
        residues = dict(self._residue_map)
        residues[symbol] = merged
        entries = tuple(sorted((name, m, r) for name, (m, r) in residues.items()))
        facts = replace(self, residues=entries)
        facts._check_symbol(symbol)
        return facts

    def _check_symbol(self, symbol: str) -> None:
        """ValueError when the facts leave no value for a symbol."""
        low, high = self.bounds(symbol)
        if high is not None and low > high:
            raise ValueError(f"contradictory facts: no value of {symbol} satisfies them")

    def _reabsorb(self) -> Facts:
        """Retry stored relations that earlier facts may have made usable."""
        facts = self
        progress = True
        while progress:
            progress = False
            for relation in facts.relations:
                rest = tuple(kept for kept in facts.relations if kept != relation)
                absorbed = replace(facts, relations=rest)._absorb(relation)
                if absorbed is not None:
                    facts, progress = absorbed, True
                    break
        return facts

    # ---- normalization and residues

    @cached_property
    def _memo(self) -> dict:
        """Results of normalize/equal for these facts (immutable, so they never go stale).

        Shared by every Facts object equal to this one: both flows of a check, and each later check
        of the same model, ask the same questions under equal facts.
        """
        memo = _MEMOS.get(self)
        if memo is None or len(memo) > _MEMO_LIMIT:
            if len(_MEMOS) >= _MEMO_FACTS:
                _MEMOS.clear()
            memo = _MEMOS[self] = {}
        return memo

    def normalize(self, d: Dim | int) -> Dim:
        """Substitute fixed symbols and simplify floor divisions using modulus facts."""
        d = Dim.of(d)
        key = ("normalize", d)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = d if self._unaffected(d) else \
                self._fold_multiples(_rebuild(d, self._normalize_variable))
        return found

    def _unaffected(self, d: Dim) -> bool:
        """Whether normalizing `d` leaves it as it is: plain symbols, none of them fixed or substituted.

        Most dims (`B`, `T`, `J * C`) are such; rebuilding them term by term would only make them again.
        """
        fixed = self._fixed_symbols
        return all(isinstance(variable, str) and variable not in fixed for monomial, _ in d.terms
                   for variable, _ in monomial)

    @cached_property
    def _fixed_symbols(self) -> frozenset[str]:
        """Symbols that normalizing replaces: substituted ones and those with a single value."""
        return frozenset(self._substitution_map) | frozenset(self.equalities)

    def _normalize_variable(self, variable: Variable) -> Dim:
        """Normalized replacement of one variable."""
        if isinstance(variable, str):
            if variable in self._substitution_map:
                return self.normalize(self._substitution_map[variable])
            return Dim._of_variable(variable) if variable not in self.equalities else Dim.const(self.equalities[variable])
        return self._shift_floors(self.normalize(variable.numerator) // variable.divisor)

    def _shift_floors(self, d: Dim) -> Dim:
        """Rewrite `(n + k) // c` as `n // c + (r + k) // c` when `n % c == r` is known."""

        def shift(variable: Variable) -> Dim:
            if isinstance(variable, str):
                return Dim._of_variable(variable)
            varying, constant = variable.numerator._split_constant()
            residue = self.residue(varying, variable.divisor)
            if residue is None:
                return Dim._of_variable(variable)
            return varying // variable.divisor + (residue + constant) // variable.divisor

        return _rebuild(d, shift)

    def _fold_multiples(self, d: Dim) -> Dim:
        """Rewrite `c * (n // c)` as `n - r` wherever `n % c == r` is known."""
        while True:
            folded = Dim()
            for monomial, coefficient in d.terms:
                folded = folded + self._fold_term(monomial, coefficient)
            if folded == d:
                return d
            d = folded

    def _fold_term(self, monomial: Monomial, coefficient: int) -> Dim:
        """One term with multiples of known-remainder floor variables folded back."""
        product = Dim.const(1)
        for variable, power in monomial:
            if isinstance(variable, FloorDiv):
                residue = self.residue(variable.numerator, variable.divisor)
                while residue is not None and power > 0 and coefficient % variable.divisor == 0:
                    coefficient //= variable.divisor
                    power -= 1
                    product = product * (variable.numerator - residue)
            product = product * Dim._of_variable(variable) ** power
        return product * coefficient

    def residue(self, d: Dim | int, modulus: int) -> int | None:
        """`d % modulus` when the facts determine it, else None."""
        modulus = abs(modulus)
        if modulus == 0:
            raise ValueError("modulus must be nonzero")
        d = Dim.of(d).substitute(self.equalities)
        # A fact `e % m' == r` with m dividing m' gives d == d - e + r (mod m).
        candidates = [d] + [
            d - entry + remainder
            for entry, entry_modulus, remainder in self.moduli
            if entry_modulus % modulus == 0
        ]
        for candidate in candidates:
            for view in (candidate, self._residue_substitution(candidate, modulus)):
                found = _constant_residue(view, modulus)
                if found is not None:
                    return found
        return None

    def _residue_substitution(self, d: Dim, modulus: int) -> Dim:
        """`d` with each symbol of known residue r written as `modulus*#S + r`."""
        replacements = {}
        for symbol in sorted(d.symbols):
            if symbol in self._residue_map:
                known_modulus, known_residue = self._residue_map[symbol]
                if known_modulus % modulus == 0:
                    replacements[symbol] = modulus * _residue_variable(symbol) + known_residue % modulus
        return d.substitute(replacements) if replacements else d

    # ---- intervals

    def interval(self, d: Dim | int) -> tuple[int | None, int | None]:
        """(lower, upper) bounds of a dimension by interval arithmetic; None means unbounded."""
        low, high = self._interval(self.normalize(d))
        return _optional_bound(low), _optional_bound(high)

    def _interval(self, d: Dim) -> tuple:
        """Interval of an already-normalized dimension with float infinities."""
        low, high = 0, 0
        for monomial, coefficient in d.terms:
            term = (coefficient, coefficient)
            for variable, power in monomial:
                term = _multiply_intervals(term, _power_interval(self._atom_interval(variable), power))
            low, high = _add_bounds(low, term[0]), _add_bounds(high, term[1])
        return low, high

    def _atom_interval(self, variable: Variable) -> tuple:
        """Interval of one variable."""
        if isinstance(variable, str):
            low, high = self.bounds(variable)
            return low, _INFINITY if high is None else high
        low, high = self._interval(variable.numerator)
        return _floor_bound(low, variable.divisor), _floor_bound(high, variable.divisor)

    # ---- comparisons

    def equal(self, a: Dim | int, b: Dim | int) -> Tri:
        """Whether `a == b` under the facts."""
        key = ("equal", Dim.of(a), Dim.of(b))
        if key not in self._memo:
            self._memo[key] = self._equal(a, b)
        return self._memo[key]

    def _equal(self, a: Dim | int, b: Dim | int) -> Tri:
        """`equal` without the memo."""
        difference = self.normalize(Dim.of(a) - Dim.of(b))
        if difference.is_zero:
            return Tri.YES
        if difference.is_const or self._excludes_zero(difference) or self._residue_excludes_zero(difference):
            return Tri.NO
        if self._cancelled_constants_differ(a, b):
            return Tri.NO
        return Tri.UNKNOWN

    def provably_equal(self, a: Dim | int, b: Dim | int) -> bool:
        """Whether `a == b` is proved (a caller that treats "no" and "unknown" alike asks this, so that a
        replayed run depends only on the distinction it makes)."""
        return self.equal(a, b) is Tri.YES

    def not_equal(self, a: Dim | int, b: Dim | int) -> Tri:
        """Whether `a != b` under the facts."""
        return ~self.equal(a, b)

    def _refined_interval(self, d: Dim) -> tuple:
        """The interval of `d`, tightened by writing each lone `p // c` as `(p - r) / c`, 0 <= r < c.

        Plain interval arithmetic treats `T // 2` and `T` as unrelated, so it cannot see that
        `T - T // 2 >= 0`; eliminating the floor keeps the correlation.
        """
        low, high = self._interval(d)
        floors = [(monomial[0][0], coefficient) for monomial, coefficient in d.terms
                  if len(monomial) == 1 and isinstance(monomial[0][0], FloorDiv) and monomial[0][1] == 1]
        if not floors:
            return low, high
        scale = math.lcm(*(variable.divisor for variable, _ in floors))
        rest = d * scale
        slack = (0, 0)
        for variable, coefficient in floors:
            weight = coefficient * (scale // variable.divisor)
            rest = rest - Dim._of_variable(variable) * coefficient * scale + variable.numerator * weight
            # The term -weight * r with 0 <= r <= divisor - 1.
            extreme = -weight * (variable.divisor - 1)
            slack = (_add_bounds(slack[0], min(0, extreme)), _add_bounds(slack[1], max(0, extreme)))
        rest_low, rest_high = self._interval(self.normalize(rest))
        scaled_low, scaled_high = _add_bounds(rest_low, slack[0]), _add_bounds(rest_high, slack[1])
        if scaled_low != -_INFINITY:
            low = max(low, -((-scaled_low) // scale))
        if scaled_high != _INFINITY:
            high = min(high, scaled_high // scale)
        return low, high

    def less_equal(self, a: Dim | int, b: Dim | int) -> Tri:
        """Whether `a <= b` under the facts."""
        low, high = self._refined_interval(self.normalize(Dim.of(b) - Dim.of(a)))
        if low >= 0:
            return Tri.YES
        if high < 0:
            return Tri.NO
        return Tri.UNKNOWN

    def less(self, a: Dim | int, b: Dim | int) -> Tri:
        """Whether `a < b` under the facts."""
        return self.less_equal(Dim.of(a) + 1, b)

    def greater_equal(self, a: Dim | int, b: Dim | int) -> Tri:
        """Whether `a >= b` under the facts."""
        return self.less_equal(b, a)

    def greater(self, a: Dim | int, b: Dim | int) -> Tri:
        """Whether `a > b` under the facts."""
        return self.less(b, a)

    def divisible(self, d: Dim | int, m: int) -> Tri:
        """Whether `d` is a multiple of `m` under the facts."""
        residue = self.residue(self.normalize(d), m)
        if residue is None:
            return Tri.UNKNOWN
        return Tri.of(residue == 0)

    def _excludes_zero(self, d: Dim) -> bool:
        """True when the interval of `d` does not contain zero."""
        low, high = self._refined_interval(d)
        return low > 0 or high < 0

    def _residue_excludes_zero(self, d: Dim) -> bool:
        """True when some modulus shows `d` has a nonzero remainder."""
        variable, _ = d._split_constant()
        moduli = {math.gcd(*variable._coefficients())}
        moduli |= {modulus for _, modulus, _ in self.residues} | {modulus for _, modulus, _ in self.moduli}
        for modulus in sorted(m for m in moduli if m >= 2):
            residue = self.residue(d, modulus)
            if residue is not None and residue != 0:
                return True
        return False

    def _cancelled_constants_differ(self, a: Dim | int, b: Dim | int) -> bool:
        """True when `a`, `b` are distinct constants times a common factor that is never zero."""
        a, b = self.normalize(a), self.normalize(b)
        factor = _common_factor(a, b)
        left, right = a.exact_div(factor), b.exact_div(factor)
        return left.is_const and right.is_const and left != right and self._excludes_zero(factor)

    # ---- explanations

    def holds_only_when(self, a: Dim | int, b: Dim | int) -> tuple[str, int] | None:
        """(symbol, value) when `a == b` holds exactly when that symbol has that value."""
        a, b = self.normalize(a), self.normalize(b)
        factor = _common_factor(a, b)
        if not self._excludes_zero(factor):
            # A common factor that may be zero could make the equality hold for other values too.
            return None
        linear = self.normalize(a.exact_div(factor) - b.exact_div(factor)).is_linear_in_one_symbol()
        if linear is None:
            return None
        symbol, coefficient, constant = linear
        value, leftover = divmod(-constant, coefficient)
        if leftover != 0 or not self._admits(symbol, value):
            return None
        return symbol, value

    def _admits(self, symbol: str, value: int) -> bool:
        """True when the facts about the symbol allow the value."""
        low, high = self.bounds(symbol)
        if value < low or (high is not None and value > high):
            return False
        modulus, residue = self._residue_map.get(symbol, (1, 0))
        return value % modulus == residue

    def assumption_for(self, a: Dim | int, b: Dim | int, op: str = "==") -> str:
        """Text of the fact that would settle `a op b`, e.g. `T == 81` or `T >= 243`."""
        a, b = self.normalize(a), self.normalize(b)
        left, right = cancel_common(a, b)
        if op == "==":
            only = self.holds_only_when(a, b)
            if only is not None:
                return f"{only[0]} == {only[1]}"
            residue = self._residue_assumption(self.normalize(left - right))
            if residue is not None:
                return residue
            first, second = sorted([str(left), str(right)])
            return f"{first} == {second}"
        linear = (left - right).is_linear_in_one_symbol()
        if linear is not None:
            return _bound_text(linear, op)
        return f"{left} {op} {right}"

    def _residue_assumption(self, difference: Dim) -> str | None:
        """`F % 3 == 0` for `(F - 2) // 3 + 1 - F // 3 == 0`: a difference of floor divisions of one symbol
        depends only on its remainder, and a remainder is a fact these facts understand (an equation between
        floors is not). One remainder that works is stated; when several do, divisibility is, if among them."""
        if len(difference.symbols) != 1 or not any(not isinstance(variable, str) for variable in difference.variables):
            return None
        symbol = next(iter(difference.symbols))
        modulus = math.lcm(*(variable.divisor for variable in difference.variables if not isinstance(variable, str)))
        if modulus > 64:
            return None
        low, _ = self.bounds(symbol)
        start = max(low, 0) // modulus + 1
        working = []
        for remainder in range(modulus):
            values = {difference.evaluate({symbol: remainder + modulus * step}) for step in range(start, start + 3)}
            if len(values) != 1:
                return None  # not periodic in the remainder: the floors do not cancel the symbol
            if values == {0}:
                working.append(remainder)
        if not working or len(working) == modulus:
            return None
        chosen = working[0] if len(working) == 1 else 0 if 0 in working else None
        return None if chosen is None else _modulus_text(Dim.symbol(symbol), modulus, chosen)

    def describe(self) -> list[str]:
        """The facts as text lines in a deterministic order."""
        lines = []
        for symbol in sorted(set(self._lower_map) | set(self._upper_map) | set(self._residue_map)):
            lines += self._describe_symbol(symbol)
        lines += [f"{symbol} == {value}" for symbol, value in self.substitutions]
        lines += [_modulus_text(d, modulus, remainder) for d, modulus, remainder in self.moduli]
        lines += [f"{left} {op} {right}" for left, op, right in self.relations]
        return lines

    def _describe_symbol(self, symbol: str) -> list[str]:
        """Text lines of the bound and residue facts about one symbol."""
        if symbol in self.equalities:
            return [f"{symbol} == {self.equalities[symbol]}"]
        lines = []
        if symbol in self._lower_map:
            lines.append(f"{symbol} >= {self._lower_map[symbol]}")
        if symbol in self._upper_map:
            lines.append(f"{symbol} <= {self._upper_map[symbol]}")
        if symbol in self._residue_map:
            modulus, residue = self._residue_map[symbol]
            lines.append(f"{symbol} % {modulus} == {residue}")
        return lines


def _bound_text(linear: tuple[str, int, int], op: str) -> str:
    """Text of `a*symbol + b op 0` solved for the symbol, e.g. `T >= 243`."""
    symbol, a, b = linear
    if op in ("==", "!="):
        value, leftover = divmod(-b, a)
        return f"{symbol} {op} {value}" if leftover == 0 else f"{Dim.symbol(symbol) * a + b} {op} 0"
    if op in ("<=", "<"):
        a, b, op = -a, -b, ">=" if op == "<=" else ">"
    if op == ">":
        b -= 1
    if a > 0:
        return f"{symbol} >= {_ceil_divide(-b, a)}"
    return f"{symbol} <= {b // -a}"


class LoggedFacts(Facts):
    """Facts that enter each question a caller asks of them, with its answer, in the open query log.

    A program whose flows run under different facts is elaborated with these, so that a replay
    template recorded in one flow is reused in the other when it asked nothing they answer
    differently (`poseir.elaborate.replay`); plain Facts keep their queries free of the bookkeeping.
    """


_QUERIES = ("bounds", "normalize", "residue", "interval", "equal", "provably_equal", "not_equal", "less_equal",
            "less", "greater_equal", "greater", "divisible", "holds_only_when", "assumption_for", "describe")
for _name in _QUERIES:
    setattr(LoggedFacts, _name, _logged(getattr(Facts, _name)))
