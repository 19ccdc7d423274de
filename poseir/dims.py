"""Symbolic tensor dimensions: normalized integer polynomials, facts about symbols, three-valued logic."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property, reduce
from typing import Union

__all__ = [
    "Dim",
    "FloorDiv",
    "Tri",
    "Facts",
    "cancel_common",
    "parse_dim",
]

Atom = Union[str, "FloorDiv"]
Monomial = tuple[tuple[Atom, int], ...]
Terms = tuple[tuple[Monomial, int], ...]

# Interval bounds use float infinities internally; every finite bound stays a Python int.
_INFINITY = math.inf
_DEFAULT_LOWER_BOUND = 1
_OPERATORS = ("==", "!=", ">=", ">", "<=", "<")


# --------------------------------------------------------------------------- monomials


def _atom_key(atom: Atom) -> tuple:
    """Sort key of an atom: symbols by name first, then floor-division atoms by text."""
    if isinstance(atom, str):
        return (0, atom, 0)
    return (1, atom.sort_text, atom.divisor)


def _monomial_degree(monomial: Monomial) -> int:
    """Total degree of a monomial (floor-division atoms count as degree one)."""
    return sum(power for _, power in monomial)


def _monomial_key(monomial: Monomial) -> tuple:
    """Sort key giving graded-lexicographic order, highest monomial first, constant last."""
    # Graded lex is a true monomial order, which keeps polynomial long division terminating.
    return (-_monomial_degree(monomial), tuple((_atom_key(atom), -power) for atom, power in monomial))


def _sorted_monomial(powers: Mapping[Atom, int]) -> Monomial:
    """Canonical monomial from an atom -> power mapping, dropping zero powers."""
    items = [(atom, power) for atom, power in powers.items() if power != 0]
    return tuple(sorted(items, key=lambda item: _atom_key(item[0])))


def _multiply_monomials(left: Monomial, right: Monomial) -> Monomial:
    """Product of two monomials."""
    powers = dict(left)
    for atom, power in right:
        powers[atom] = powers.get(atom, 0) + power
    return _sorted_monomial(powers)


def _divide_monomials(dividend: Monomial, divisor: Monomial) -> Monomial | None:
    """Quotient of two monomials, or None when the divisor does not divide."""
    powers = dict(dividend)
    for atom, power in divisor:
        remaining = powers.get(atom, 0) - power
        if remaining < 0:
            return None
        powers[atom] = remaining
    return _sorted_monomial(powers)


def _common_monomial(monomials: Iterable[Monomial]) -> Monomial:
    """Greatest monomial dividing every given monomial."""
    powers_list = [dict(monomial) for monomial in monomials]
    if not powers_list:
        return ()
    shared = set(powers_list[0]).intersection(*powers_list[1:])
    return _sorted_monomial({atom: min(powers[atom] for powers in powers_list) for atom in shared})


def _from_mapping(mapping: Mapping[Monomial, int]) -> Dim:
    """Build a canonical Dim from a monomial -> coefficient mapping."""
    items = [(monomial, coefficient) for monomial, coefficient in mapping.items() if coefficient != 0]
    items.sort(key=lambda item: _monomial_key(item[0]))
    return Dim(tuple(items))


# --------------------------------------------------------------------------- printing


def _format_factor(atom: Atom, power: int, standalone: bool) -> str:
    """Text of one atom raised to a power inside a product."""
    if isinstance(atom, str):
        text = atom
    else:
        # `a // b` binds like `*`, so inside a product it needs parentheses to keep its meaning.
        text = str(atom) if standalone else f"({atom})"
    return text if power == 1 else f"{text}**{power}"


def _format_term(monomial: Monomial, coefficient: int, first: bool) -> str:
    """Text of one term without its leading sign."""
    magnitude = abs(coefficient)
    if not monomial:
        return str(magnitude)
    # A leading `-a // b` would parse as `(-a) // b`, so only non-leading negated floors stay bare.
    single_atom = len(monomial) == 1 and monomial[0][1] == 1 and magnitude == 1
    standalone = single_atom and (coefficient == 1 or not first)
    factors = "*".join(_format_factor(atom, power, standalone) for atom, power in monomial)
    return factors if magnitude == 1 else f"{magnitude}*{factors}"


def _format_terms(terms: Terms) -> str:
    """Canonical text of a polynomial."""
    if not terms:
        return "0"
    pieces = []
    for index, (monomial, coefficient) in enumerate(terms):
        body = _format_term(monomial, coefficient, first=index == 0)
        if index == 0:
            pieces.append(f"-{body}" if coefficient < 0 else body)
        else:
            pieces.append(f" - {body}" if coefficient < 0 else f" + {body}")
    return "".join(pieces)


# --------------------------------------------------------------------------- Dim


@dataclass(frozen=True, eq=False, repr=False)
class Dim:
    """A symbolic dimension: a normalized polynomial with integer coefficients over atoms."""

    # Canonical (monomial, coefficient) pairs; build through the constructors, not directly.
    terms: Terms = ()

    # ---- constructors

    @staticmethod
    def const(value: int) -> Dim:
        """The constant dimension `value`."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Dim.const expects an int, got {type(value).__name__}")
        return Dim((((), value),)) if value != 0 else Dim(())

    @staticmethod
    def symbol(name: str) -> Dim:
        """The dimension consisting of the single symbol `name`."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"invalid dimension symbol name: {name!r}")
        return Dim._of_atom(name)

    @staticmethod
    def of(value: Dim | int) -> Dim:
        """Coerce an int or Dim to a Dim."""
        if isinstance(value, Dim):
            return value
        return Dim.const(value)

    @staticmethod
    def _of_atom(atom: Atom) -> Dim:
        """The dimension consisting of one atom (no name validation, for internal atoms)."""
        return Dim(((((atom, 1),), 1),))

    # ---- inspection

    @property
    def is_const(self) -> bool:
        """True when the dimension has no atoms."""
        return not self.terms or (len(self.terms) == 1 and not self.terms[0][0])

    @property
    def is_zero(self) -> bool:
        """True when the dimension is the constant zero."""
        return not self.terms

    @property
    def value(self) -> int | None:
        """The integer value when constant, else None."""
        if not self.terms:
            return 0
        return self.terms[0][1] if self.is_const else None

    @cached_property
    def symbols(self) -> frozenset[str]:
        """All symbol names, including those inside floor-division atoms."""
        names: set[str] = set()
        for monomial, _ in self.terms:
            for atom, _ in monomial:
                names |= {atom} if isinstance(atom, str) else atom.numerator.symbols
        return frozenset(names)

    @property
    def atoms(self) -> frozenset[Atom]:
        """The top-level atoms (symbols and floor-division atoms) of the polynomial."""
        return frozenset(atom for monomial, _ in self.terms for atom, _ in monomial)

    def is_linear_in_one_symbol(self) -> tuple[str, int, int] | None:
        """(symbol, a, b) when the dimension is `a*symbol + b` with a != 0, else None."""
        variable, constant = self._split_constant()
        if len(variable.terms) != 1:
            return None
        monomial, coefficient = variable.terms[0]
        if len(monomial) != 1 or monomial[0][1] != 1 or not isinstance(monomial[0][0], str):
            return None
        return monomial[0][0], coefficient, constant

    def _split_constant(self) -> tuple[Dim, int]:
        """Split into (non-constant part, constant term)."""
        if self.terms and not self.terms[-1][0]:
            return Dim(self.terms[:-1]), self.terms[-1][1]
        return self, 0

    def _coefficients(self) -> list[int]:
        """All coefficients, highest monomial first."""
        return [coefficient for _, coefficient in self.terms]

    # ---- evaluation and substitution

    def evaluate(self, env: Mapping[str, int]) -> int:
        """Integer value of the dimension under `env`; KeyError names a missing symbol."""
        total = 0
        for monomial, coefficient in self.terms:
            product = coefficient
            for atom, power in monomial:
                product *= _evaluate_atom(atom, env) ** power
            total += product
        return total

    def substitute(self, env: Mapping[str, Dim | int]) -> Dim:
        """Replace symbols by dimensions and re-normalize (also inside floor-division atoms)."""
        replacements = {name: Dim.of(value) for name, value in env.items()}

        def replace_atom(atom: Atom) -> Dim:
            if isinstance(atom, str):
                return replacements.get(atom, Dim._of_atom(atom))
            return atom.numerator.substitute(replacements) // atom.divisor

        return _rebuild(self, replace_atom)

    # ---- arithmetic

    def __add__(self, other: Dim | int) -> Dim:
        """Sum of two dimensions."""
        if not _is_operand(other):
            return NotImplemented
        mapping = dict(self.terms)
        for monomial, coefficient in Dim.of(other).terms:
            mapping[monomial] = mapping.get(monomial, 0) + coefficient
        return _from_mapping(mapping)

    __radd__ = __add__

    def __neg__(self) -> Dim:
        """Negated dimension."""
        return Dim(tuple((monomial, -coefficient) for monomial, coefficient in self.terms))

    def __pos__(self) -> Dim:
        """The dimension itself."""
        return self

    def __sub__(self, other: Dim | int) -> Dim:
        """Difference of two dimensions."""
        if not _is_operand(other):
            return NotImplemented
        return self + (-Dim.of(other))

    def __rsub__(self, other: Dim | int) -> Dim:
        """Difference with the dimension on the right."""
        if not _is_operand(other):
            return NotImplemented
        return Dim.of(other) - self

    def __mul__(self, other: Dim | int) -> Dim:
        """Product of two dimensions."""
        if not _is_operand(other):
            return NotImplemented
        mapping: dict[Monomial, int] = {}
        for left_monomial, left_coefficient in self.terms:
            for right_monomial, right_coefficient in Dim.of(other).terms:
                monomial = _multiply_monomials(left_monomial, right_monomial)
                mapping[monomial] = mapping.get(monomial, 0) + left_coefficient * right_coefficient
        return _from_mapping(mapping)

    __rmul__ = __mul__

    def __pow__(self, exponent: int) -> Dim:
        """The dimension raised to a non-negative integer power."""
        if isinstance(exponent, bool) or not isinstance(exponent, int):
            return NotImplemented
        if exponent < 0:
            raise ValueError("dimensions only support non-negative integer powers")
        return reduce(lambda product, _: product * self, range(exponent), Dim.const(1))

    def __floordiv__(self, other: Dim | int) -> Dim:
        """Floor division by an int, or exact division by a dimension (ValueError otherwise)."""
        if not _is_operand(other):
            return NotImplemented
        divisor = Dim.of(other)
        if divisor.is_const:
            return _floor_divide(self, divisor.value)
        quotient = self.exact_div(divisor)
        if quotient is None:
            raise ValueError(f"cannot divide {self} by {divisor}: the division is not exact")
        return quotient

    def __rfloordiv__(self, other: int) -> Dim:
        """Floor division with the dimension as the divisor."""
        if not _is_operand(other):
            return NotImplemented
        return Dim.of(other) // self

    def __mod__(self, other: Dim | int) -> Dim:
        """Remainder `p - m*(p // m)`; a constant whenever it is structurally decidable."""
        if not _is_operand(other):
            return NotImplemented
        divisor = Dim.of(other)
        return self - divisor * (self // divisor)

    def __rmod__(self, other: int) -> Dim:
        """Remainder with the dimension as the modulus."""
        if not _is_operand(other):
            return NotImplemented
        return Dim.of(other) % self

    def exact_div(self, divisor: Dim | int) -> Dim | None:
        """The polynomial quotient when `divisor` divides this dimension exactly, else None."""
        divisor = Dim.of(divisor)
        if divisor.is_zero:
            return None
        lead_monomial, lead_coefficient = divisor.terms[0]
        remainder, quotient = self, {}
        # Polynomial long division: a single divisor is a Groebner basis of its ideal,
        # so the remainder is zero exactly when the division is exact.
        while not remainder.is_zero:
            monomial, coefficient = remainder.terms[0]
            factor = _divide_monomials(monomial, lead_monomial)
            if factor is None or coefficient % lead_coefficient != 0:
                return None
            step = Dim(((factor, coefficient // lead_coefficient),))
            quotient[factor] = coefficient // lead_coefficient
            remainder = remainder - step * divisor
        return _from_mapping(quotient)

    def _divide_coefficients(self, divisor: int) -> Dim:
        """Divide every coefficient by `divisor` (which must divide them all)."""
        return Dim(tuple((monomial, coefficient // divisor) for monomial, coefficient in self.terms))

    # ---- protocol

    def __eq__(self, other: object) -> bool:
        """Polynomial equality (ints compare as constants)."""
        if isinstance(other, Dim):
            return self.terms == other.terms
        if isinstance(other, int) and not isinstance(other, bool):
            return self.value == other and self.is_const
        return NotImplemented

    def __hash__(self) -> int:
        """Hash consistent with equality, including equality with ints."""
        return hash(self.value) if self.is_const else hash(self.terms)

    def __bool__(self) -> bool:
        """Refuse truth testing: a symbolic dimension has no truth value."""
        raise TypeError("a Dim has no truth value; use Facts comparisons or .is_zero")

    def __int__(self) -> int:
        """The integer value of a constant dimension."""
        if not self.is_const:
            raise TypeError(f"dimension {self} is not a constant")
        return self.value

    @cached_property
    def _text(self) -> str:
        """Cached canonical text."""
        return _format_terms(self.terms)

    def __str__(self) -> str:
        """Canonical human-readable form, e.g. `2*T - 4` or `(T - 2) // 3`."""
        return self._text

    def __repr__(self) -> str:
        """Debug form `Dim('...')`."""
        return f"Dim({self._text!r})"

    def to_dim_param(self) -> str:
        """The canonical text without spaces, usable as an ONNX dim_param."""
        return self._text.replace(" ", "")


@dataclass(frozen=True)
class FloorDiv:
    """An atom `numerator // divisor` (divisor >= 2) that could not be simplified."""

    numerator: Dim
    divisor: int

    def __post_init__(self) -> None:
        """Validate the divisor."""
        if self.divisor < 2:
            raise ValueError(f"FloorDiv divisor must be >= 2, got {self.divisor}")

    @cached_property
    def sort_text(self) -> str:
        """Text of the numerator, used to order atoms deterministically."""
        return str(self.numerator)

    def __str__(self) -> str:
        """Canonical text, e.g. `(T - 2) // 3`."""
        terms = self.numerator.terms
        text = str(self.numerator)
        if not (len(terms) == 1 and terms[0][1] > 0):
            text = f"({text})"
        return f"{text} // {self.divisor}"


def _is_operand(value: object) -> bool:
    """True for values usable in Dim arithmetic."""
    return isinstance(value, Dim) or (isinstance(value, int) and not isinstance(value, bool))


def _evaluate_atom(atom: Atom, env: Mapping[str, int]) -> int:
    """Integer value of one atom."""
    if isinstance(atom, str):
        if atom not in env:
            raise KeyError(atom)
        return env[atom]
    return atom.numerator.evaluate(env) // atom.divisor


def _rebuild(dim: Dim, replace_atom: Callable[[Atom], Dim]) -> Dim:
    """Re-evaluate a polynomial with every atom replaced by a dimension."""
    total = Dim()
    for monomial, coefficient in dim.terms:
        product = Dim.const(coefficient)
        for atom, power in monomial:
            product = product * replace_atom(atom) ** power
        total = total + product
    return total


# --------------------------------------------------------------------------- floor division


def _floor_divide(dividend: Dim, divisor: int) -> Dim:
    """Canonical `dividend // divisor` for an integer divisor."""
    if divisor == 0:
        raise ZeroDivisionError(f"dimension {dividend} divided by zero")
    if divisor < 0:
        return _floor_divide(-dividend, -divisor)
    if divisor == 1:
        return dividend
    variable, constant = dividend._split_constant()
    if variable.is_zero:
        return Dim.const(constant // divisor)
    common = math.gcd(divisor, *variable._coefficients())
    if common > 1:
        # floor((g*n + k) / (g*c)) == floor((n + floor(k/g)) / c)
        return _floor_divide(variable._divide_coefficients(common) + constant // common, divisor // common)
    return _split_floor(variable, constant, divisor)


def _split_floor(variable: Dim, constant: int, divisor: int) -> Dim:
    """Pull the multiples of `divisor` out of `(variable + constant) // divisor`."""
    quotient: dict[Monomial, int] = {}
    remainder: dict[Monomial, int] = {}
    for monomial, coefficient in variable.terms:
        quotient[monomial], remainder[monomial] = divmod(coefficient, divisor)
    # The constant remainder lives in (-divisor, 0] so that `(T - 2) // 3` stays readable.
    constant_quotient = -((-constant) // divisor)
    constant_remainder = constant - divisor * constant_quotient
    whole = _from_mapping(quotient) + constant_quotient
    rest = _from_mapping(remainder)
    nested = _single_floor_atom(rest)
    if nested is not None:
        # floor((n // d + k) / c) == floor((n + d*k) / (d*c)) keeps chained strides flat.
        flattened = nested.numerator + nested.divisor * constant_remainder
        return whole + _floor_divide(flattened, nested.divisor * divisor)
    return whole + Dim._of_atom(FloorDiv(rest + constant_remainder, divisor))


def _single_floor_atom(dim: Dim) -> FloorDiv | None:
    """The floor atom X when `dim` is exactly `X`, else None."""
    if len(dim.terms) != 1:
        return None
    monomial, coefficient = dim.terms[0]
    if coefficient != 1 or len(monomial) != 1 or monomial[0][1] != 1:
        return None
    atom = monomial[0][0]
    return atom if isinstance(atom, FloorDiv) else None


# --------------------------------------------------------------------------- cancellation


def _common_factor(left: Dim, right: Dim) -> Dim:
    """Greatest common monomial times the gcd of all coefficients, signed to make `left` lead positive."""
    if left.is_zero or right.is_zero:
        return Dim.const(1)
    monomial = _common_monomial(m for m, _ in left.terms + right.terms)
    gcd = math.gcd(*left._coefficients(), *right._coefficients())
    sign = -1 if left.terms[0][1] < 0 else 1
    return Dim(((monomial, sign * gcd),))


def cancel_common(a: Dim | int, b: Dim | int) -> tuple[Dim, Dim]:
    """Divide both dimensions by their greatest common monomial and coefficient gcd."""
    a, b = Dim.of(a), Dim.of(b)
    factor = _common_factor(a, b)
    return a.exact_div(factor), b.exact_div(factor)


# --------------------------------------------------------------------------- three-valued logic


class Tri(enum.Enum):
    """A three-valued truth: YES, NO or UNKNOWN."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"

    def __bool__(self) -> bool:
        """Refuse truth testing so UNKNOWN is never silently treated as true or false."""
        raise TypeError("Tri has no truth value; compare with Tri.YES / Tri.NO / Tri.UNKNOWN")

    @classmethod
    def of(cls, value: bool) -> Tri:
        """YES for True, NO for False."""
        return cls.YES if value else cls.NO

    def __and__(self, other: Tri) -> Tri:
        """Three-valued conjunction."""
        if self is Tri.NO or other is Tri.NO:
            return Tri.NO
        if self is Tri.YES and other is Tri.YES:
            return Tri.YES
        return Tri.UNKNOWN

    def __or__(self, other: Tri) -> Tri:
        """Three-valued disjunction."""
        if self is Tri.YES or other is Tri.YES:
            return Tri.YES
        if self is Tri.NO and other is Tri.NO:
            return Tri.NO
        return Tri.UNKNOWN

    def __invert__(self) -> Tri:
        """Three-valued negation."""
        return {Tri.YES: Tri.NO, Tri.NO: Tri.YES, Tri.UNKNOWN: Tri.UNKNOWN}[self]


# --------------------------------------------------------------------------- interval helpers


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
        atom = monomial[0][0]
        if coefficient % atom.divisor != 0:
            continue
        scale = -coefficient // atom.divisor
        rest = difference - scale * (atom.numerator - atom.divisor * Dim._of_atom(atom))
        if rest.is_const:
            return atom.numerator, atom.divisor, scale, rest.value
    return None


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
    return Dim._of_atom(f"#{symbol}")


# --------------------------------------------------------------------------- Facts


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

    def normalize(self, d: Dim | int) -> Dim:
        """Substitute fixed symbols and simplify floor divisions using modulus facts."""
        return self._fold_multiples(_rebuild(Dim.of(d), self._normalize_atom))

    def _normalize_atom(self, atom: Atom) -> Dim:
        """Normalized replacement of one atom."""
        if isinstance(atom, str):
            if atom in self._substitution_map:
                return self.normalize(self._substitution_map[atom])
            return Dim._of_atom(atom) if atom not in self.equalities else Dim.const(self.equalities[atom])
        return self._shift_floors(self.normalize(atom.numerator) // atom.divisor)

    def _shift_floors(self, d: Dim) -> Dim:
        """Rewrite `(n + k) // c` as `n // c + (r + k) // c` when `n % c == r` is known."""

        def shift(atom: Atom) -> Dim:
            if isinstance(atom, str):
                return Dim._of_atom(atom)
            variable, constant = atom.numerator._split_constant()
            residue = self.residue(variable, atom.divisor)
            if residue is None:
                return Dim._of_atom(atom)
            return variable // atom.divisor + (residue + constant) // atom.divisor

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
        """One term with multiples of known-remainder floor atoms folded back."""
        product = Dim.const(1)
        for atom, power in monomial:
            if isinstance(atom, FloorDiv):
                residue = self.residue(atom.numerator, atom.divisor)
                while residue is not None and power > 0 and coefficient % atom.divisor == 0:
                    coefficient //= atom.divisor
                    power -= 1
                    product = product * (atom.numerator - residue)
            product = product * Dim._of_atom(atom) ** power
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
            for atom, power in monomial:
                term = _multiply_intervals(term, _power_interval(self._atom_interval(atom), power))
            low, high = _add_bounds(low, term[0]), _add_bounds(high, term[1])
        return low, high

    def _atom_interval(self, atom: Atom) -> tuple:
        """Interval of one atom."""
        if isinstance(atom, str):
            low, high = self.bounds(atom)
            return low, _INFINITY if high is None else high
        low, high = self._interval(atom.numerator)
        return _floor_bound(low, atom.divisor), _floor_bound(high, atom.divisor)

    # ---- comparisons

    def equal(self, a: Dim | int, b: Dim | int) -> Tri:
        """Whether `a == b` under the facts."""
        difference = self.normalize(Dim.of(a) - Dim.of(b))
        if difference.is_zero:
            return Tri.YES
        if difference.is_const or self._excludes_zero(difference) or self._residue_excludes_zero(difference):
            return Tri.NO
        if self._cancelled_constants_differ(a, b):
            return Tri.NO
        return Tri.UNKNOWN

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
        scale = math.lcm(*(atom.divisor for atom, _ in floors))
        rest = d * scale
        slack = (0, 0)
        for atom, coefficient in floors:
            weight = coefficient * (scale // atom.divisor)
            rest = rest - Dim._of_atom(atom) * coefficient * scale + atom.numerator * weight
            # The term -weight * r with 0 <= r <= divisor - 1.
            extreme = -weight * (atom.divisor - 1)
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
            first, second = sorted([str(left), str(right)])
            return f"{first} == {second}"
        linear = (left - right).is_linear_in_one_symbol()
        if linear is not None:
            return _bound_text(linear, op)
        return f"{left} {op} {right}"

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


# --------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|//|[-+*%()]))")


def _tokenize(text: str) -> list[str]:
    """Split dimension text into number, name and operator tokens."""
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"unexpected character in dimension {text!r} at position {position}")
        tokens.append(match.group(match.lastgroup))
        position = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser with Python precedence for + - * // % ** and unary minus."""

    def __init__(self, text: str) -> None:
        """Prepare to parse `text`."""
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self) -> str | None:
        """The next token, or None at the end."""
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        """Consume and return the next token."""
        token = self.peek()
        if token is None:
            raise ValueError(f"unexpected end of dimension {self.text!r}")
        self.position += 1
        return token

    def parse(self) -> Dim:
        """Parse the whole text."""
        result = self.sum()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} in dimension {self.text!r}")
        return result

    def sum(self) -> Dim:
        """sum := product (('+' | '-') product)*"""
        result = self.product()
        while self.peek() in ("+", "-"):
            result = result + self.product() if self.take() == "+" else result - self.product()
        return result

    def product(self) -> Dim:
        """product := unary (('*' | '//' | '%') unary)*"""
        result = self.unary()
        while self.peek() in ("*", "//", "%"):
            operator, operand = self.take(), self.unary()
            if operator == "*":
                result = result * operand
            elif operator == "//":
                result = result // operand
            else:
                result = result % operand
        return result

    def unary(self) -> Dim:
        """unary := ('-' | '+') unary | power"""
        if self.peek() in ("-", "+"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.power()

    def power(self) -> Dim:
        """power := atom ('**' unary)?"""
        base = self.atom()
        if self.peek() != "**":
            return base
        self.take()
        exponent = self.unary()
        if not exponent.is_const or exponent.value < 0:
            raise ValueError(f"exponent must be a non-negative integer in {self.text!r}")
        return base**exponent.value

    def atom(self) -> Dim:
        """atom := number | name | '(' sum ')'"""
        token = self.take()
        if token == "(":
            inner = self.sum()
            if self.take() != ")":
                raise ValueError(f"missing ')' in dimension {self.text!r}")
            return inner
        if token.isdigit():
            return Dim.const(int(token))
        if token.isidentifier():
            return Dim.symbol(token)
        raise ValueError(f"unexpected {token!r} in dimension {self.text!r}")


def parse_dim(text: str) -> Dim:
    """Parse a dimension expression such as `(T - 2) // 3 * 3`."""
    return _Parser(text).parse()
