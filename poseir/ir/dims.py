"""Symbolic tensor dimensions: normalized integer polynomials with floor division, and three-valued logic.

Facts about symbols (bounds, residues, equalities) and the comparisons they decide live in
`poseir.ir.facts`.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, reduce
from typing import Union

__all__ = [
    "Dim",
    "FloorDiv",
    "Tri",
    "cancel_common",
    "parse_dim",
]

Variable = Union[str, "FloorDiv"]
Monomial = tuple[tuple[Variable, int], ...]
Terms = tuple[tuple[Monomial, int], ...]

# Interval bounds use float infinities internally; every finite bound stays a Python int.
_INFINITY = math.inf
_DEFAULT_LOWER_BOUND = 1
_OPERATORS = ("==", "!=", ">=", ">", "<=", "<")


# --------------------------------------------------------------------------- monomials


def _variable_key(variable: Variable) -> tuple:
    """Sort key of an variable: symbols by name first, then floor-division variables by text."""
    if isinstance(variable, str):
        return (0, variable, 0)
    return (1, variable.sort_text, variable.divisor)


def _monomial_degree(monomial: Monomial) -> int:
    """Total degree of a monomial (floor-division variables count as degree one)."""
    return sum(power for _, power in monomial)


def _monomial_key(monomial: Monomial) -> tuple:
    """Sort key giving graded-lexicographic order, highest monomial first, constant last."""
    found = _MONOMIAL_KEYS.get(monomial)
    if found is None:
        # Graded lex is a true monomial order, which keeps polynomial long division terminating.
        found = (-_monomial_degree(monomial), tuple((_variable_key(variable), -power) for variable, power in monomial))
        if len(_MONOMIAL_KEYS) >= _MEMO_LIMIT:
            _MONOMIAL_KEYS.clear()
        _MONOMIAL_KEYS[monomial] = found
    return found


# Dims are immutable and their arithmetic pure, and the same few sizes are combined over and over
# (every layer of a network computes `B * T`, every ResNet stage `(H - 1) // 2 + 1`): results are
# remembered, up to a bound past which the tables start again.
_MEMO_LIMIT = 1 << 16
_MONOMIAL_KEYS: dict[Monomial, tuple] = {}
_RESULTS: dict[tuple, "Dim"] = {}


def _remembered(operation: str, left: Dim, right, compute: Callable) -> Dim:
    """`compute(left, right)`, computed once per (operation, left, right)."""
    key = (operation, left, right)
    found = _RESULTS.get(key)
    if found is None:
        if len(_RESULTS) >= _MEMO_LIMIT:
            _RESULTS.clear()
        found = _RESULTS[key] = compute(left, right)
    return found


def _sorted_monomial(powers: Mapping[Variable, int]) -> Monomial:
    """Canonical monomial from an variable -> power mapping, dropping zero powers."""
    items = [(variable, power) for variable, power in powers.items() if power != 0]
    return tuple(sorted(items, key=lambda item: _variable_key(item[0])))


def _multiply_monomials(left: Monomial, right: Monomial) -> Monomial:
    """Product of two monomials."""
    powers = dict(left)
    for variable, power in right:
        powers[variable] = powers.get(variable, 0) + power
    return _sorted_monomial(powers)


def _divide_monomials(dividend: Monomial, divisor: Monomial) -> Monomial | None:
    """Quotient of two monomials, or None when the divisor does not divide."""
    powers = dict(dividend)
    for variable, power in divisor:
        remaining = powers.get(variable, 0) - power
        if remaining < 0:
            return None
        powers[variable] = remaining
    return _sorted_monomial(powers)


def _common_monomial(monomials: Iterable[Monomial]) -> Monomial:
    """Greatest monomial dividing every given monomial."""
    powers_list = [dict(monomial) for monomial in monomials]
    if not powers_list:
        return ()
    shared = set(powers_list[0]).intersection(*powers_list[1:])
    return _sorted_monomial({variable: min(powers[variable] for powers in powers_list) for variable in shared})


def _from_mapping(mapping: Mapping[Monomial, int]) -> Dim:
    """Build a canonical Dim from a monomial -> coefficient mapping."""
    items = [(monomial, coefficient) for monomial, coefficient in mapping.items() if coefficient != 0]
    items.sort(key=lambda item: _monomial_key(item[0]))
    return Dim(tuple(items))


# --------------------------------------------------------------------------- printing


def _format_factor(variable: Variable, power: int, standalone: bool) -> str:
    """Text of one variable raised to a power inside a product."""
    if isinstance(variable, str):
        text = variable
    else:
        # `a // b` binds like `*`, so inside a product it needs parentheses to keep its meaning.
        text = str(variable) if standalone else f"({variable})"
    return text if power == 1 else f"{text}**{power}"


def _format_term(monomial: Monomial, coefficient: int, first: bool) -> str:
    """Text of one term without its leading sign."""
    magnitude = abs(coefficient)
    if not monomial:
        return str(magnitude)
    # A leading `-a // b` would parse as `(-a) // b`, so only non-leading negated floors stay bare.
    single_variable = len(monomial) == 1 and monomial[0][1] == 1 and magnitude == 1
    standalone = single_variable and (coefficient == 1 or not first)
    factors = "*".join(_format_factor(variable, power, standalone) for variable, power in monomial)
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
    """A symbolic dimension: a normalized polynomial with integer coefficients over variables."""

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
        return Dim._of_variable(name)

    @staticmethod
    def of(value: Dim | int) -> Dim:
        """Coerce an int or Dim to a Dim."""
        if isinstance(value, Dim):
            return value
        return Dim.const(value)

    @staticmethod
    def _of_variable(variable: Variable) -> Dim:
        """The dimension consisting of one variable (no name validation, for internal variables)."""
        return Dim(((((variable, 1),), 1),))

    # ---- inspection

    @cached_property
    def is_const(self) -> bool:
        """True when the dimension has no variables."""
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
        """All symbol names, including those inside floor-division variables."""
        names: set[str] = set()
        for monomial, _ in self.terms:
            for variable, _ in monomial:
                names |= {variable} if isinstance(variable, str) else variable.numerator.symbols
        return frozenset(names)

    @property
    def variables(self) -> frozenset[Variable]:
        """The top-level variables (symbols and floor-division variables) of the polynomial."""
        return frozenset(variable for monomial, _ in self.terms for variable, _ in monomial)

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
            for variable, power in monomial:
                product *= _evaluate_variable(variable, env) ** power
            total += product
        return total

    def substitute(self, env: Mapping[str, Dim | int]) -> Dim:
        """Replace symbols by dimensions and re-normalize (also inside floor-division variables)."""
        replacements = {name: Dim.of(value) for name, value in env.items()}

        def replace_variable(variable: Variable) -> Dim:
            if isinstance(variable, str):
                return replacements.get(variable, Dim._of_variable(variable))
            return variable.numerator.substitute(replacements) // variable.divisor

        return _rebuild(self, replace_variable)

    # ---- arithmetic

    def __add__(self, other: Dim | int) -> Dim:
        """Sum of two dimensions."""
        if not _is_operand(other):
            return NotImplemented
        return _remembered("+", self, other, _add)

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
        return _remembered("*", self, other, _multiply)

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
            return _remembered("//", self, divisor.value, _floor_divide)
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
        """Hash consistent with equality, including equality with ints (computed once: dims key many memos)."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(self.value) if self.is_const else hash(self.terms)
            object.__setattr__(self, "_hash", cached)
        return cached

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
    """An variable `numerator // divisor` (divisor >= 2) that could not be simplified."""

    numerator: Dim
    divisor: int

    def __post_init__(self) -> None:
        """Validate the divisor."""
        if self.divisor < 2:
            raise ValueError(f"FloorDiv divisor must be >= 2, got {self.divisor}")

    @cached_property
    def sort_text(self) -> str:
        """Text of the numerator, used to order variables deterministically."""
        return str(self.numerator)

    def __str__(self) -> str:
        """Canonical text, e.g. `(T - 2) // 3`."""
        terms = self.numerator.terms
        text = str(self.numerator)
        if not (len(terms) == 1 and terms[0][1] > 0):
            text = f"({text})"
        return f"{text} // {self.divisor}"


def _add(left: Dim, right: Dim | int) -> Dim:
    """Sum of two dimensions, computed."""
    mapping = dict(left.terms)
    for monomial, coefficient in Dim.of(right).terms:
        mapping[monomial] = mapping.get(monomial, 0) + coefficient
    return _from_mapping(mapping)


def _multiply(left: Dim, right: Dim | int) -> Dim:
    """Product of two dimensions, computed."""
    mapping: dict[Monomial, int] = {}
    for left_monomial, left_coefficient in left.terms:
        for right_monomial, right_coefficient in Dim.of(right).terms:
            monomial = _multiply_monomials(left_monomial, right_monomial)
            mapping[monomial] = mapping.get(monomial, 0) + left_coefficient * right_coefficient
    return _from_mapping(mapping)


def _is_operand(value: object) -> bool:
    """True for values usable in Dim arithmetic."""
    return isinstance(value, Dim) or (isinstance(value, int) and not isinstance(value, bool))


def _evaluate_variable(variable: Variable, env: Mapping[str, int]) -> int:
    """Integer value of one variable."""
    if isinstance(variable, str):
        if variable not in env:
            raise KeyError(variable)
        return env[variable]
    return variable.numerator.evaluate(env) // variable.divisor


def _rebuild(dim: Dim, replace_variable: Callable[[Variable], Dim]) -> Dim:
    """Re-evaluate a polynomial with every variable replaced by a dimension."""
    total = Dim()
    for monomial, coefficient in dim.terms:
        product = Dim.const(coefficient)
        for variable, power in monomial:
            product = product * replace_variable(variable) ** power
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
    nested = _single_floor_variable(rest)
    if nested is not None:
        # floor((n // d + k) / c) == floor((n + d*k) / (d*c)) keeps chained strides flat.
        flattened = nested.numerator + nested.divisor * constant_remainder
        return whole + _floor_divide(flattened, nested.divisor * divisor)
    return whole + Dim._of_variable(FloorDiv(rest + constant_remainder, divisor))


def _single_floor_variable(dim: Dim) -> FloorDiv | None:
    """The floor variable X when `dim` is exactly `X`, else None."""
    if len(dim.terms) != 1:
        return None
    monomial, coefficient = dim.terms[0]
    if coefficient != 1 or len(monomial) != 1 or monomial[0][1] != 1:
        return None
    variable = monomial[0][0]
    return variable if isinstance(variable, FloorDiv) else None


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
        """power := variable ('**' unary)?"""
        base = self.variable()
        if self.peek() != "**":
            return base
        self.take()
        exponent = self.unary()
        if not exponent.is_const or exponent.value < 0:
            raise ValueError(f"exponent must be a non-negative integer in {self.text!r}")
        return base**exponent.value

    def variable(self) -> Dim:
        """variable := number | name | '(' sum ')'"""
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
