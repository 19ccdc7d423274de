"""Registry-wide checks (house rule 1): every op's symbolic shape rule agrees with its numpy run."""

from __future__ import annotations

import re

import numpy as np
import pytest

from poseir.ir.dims import Dim, parse_dim
from poseir.ir.facts import Facts
from poseir.ir.graph import TensorType
from poseir.ops.common import NUMPY_DTYPES, dtype_name
from poseir.ops.registry import ALIASES, REGISTRY, TENSORS, RunContext, ShapeContext, ShapeError, all_ops, lookup
from poseir.syntax.source import Span

_TYPED = re.compile(r"^\s*(?P<dtype>\w+)\[(?P<dims>.*)\]\s*$")
_RELATION = re.compile(r"^(?P<left>.+?)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<right>.+)$")


def parse_type(text: str) -> TensorType:
    """`"B, T, 17, 2"` (f32) or `"i64[B, 3]"`; the empty string is a rank-0 tensor."""
    match = _TYPED.match(text)
    dtype, dims = (match["dtype"], match["dims"]) if match else ("f32", text)
    return TensorType(dtype, tuple(parse_dim(part) for part in dims.split(",") if part.strip()))


def parse_inputs(op, shapes: tuple) -> list:
    """Input types in signature order; a TENSORS parameter takes a tuple of shapes."""
    types = []
    for param, shape in zip(op.tensor_params, shapes):
        if param.kind == TENSORS:
            types.extend(parse_type(item) for item in shape)
        else:
            types.append(None if shape is None else parse_type(shape))
    return types


def parse_facts(lines: tuple) -> Facts:
    """Facts from relation texts such as `T >= 9` or `T % 3 == 0`."""
    facts = Facts()
    for line in lines:
        match = _RELATION.match(line)
        facts = facts.with_relation(parse_dim(match["left"]), match["op"], parse_dim(match["right"]))
    return facts


def symbols_of(types: list, attrs: dict) -> set[str]:
    """Every symbol used by the input shapes and the attributes."""
    found: set[str] = set()
    for type_ in types:
        if type_ is not None:
            for dim in type_.shape:
                found |= dim.symbols
    _collect(attrs, found)
    return found


def _collect(value, found: set) -> None:
    """Symbols inside a (nested) attribute value."""
    if isinstance(value, Dim):
        found |= value.symbols
    elif isinstance(value, (tuple, list)):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)


def assignments(symbols: set[str], facts: Facts) -> list[dict[str, int]]:
    """Two different assignments satisfying the facts, with distinct values per symbol."""
    first, second = {}, {}
    for offset, name in enumerate(sorted(symbols)):
        first[name] = _satisfying(facts, name, 2 + offset)
        second[name] = _satisfying(facts, name, first[name] + 3 + offset)
    return [first, second]


def _satisfying(facts: Facts, name: str, start: int) -> int:
    """The smallest value >= start (and >= the lower bound) that the facts admit."""
    value = max(start, facts.bounds(name)[0])
    while True:
        try:
            facts.with_relation(Dim.symbol(name), "==", value)
            return value
        except ValueError:
            value += 1


def evaluate(value, env: dict):
    """Attributes with dims evaluated to ints, as the interpreter passes them to `run`."""
    if isinstance(value, Dim):
        return value.evaluate(env)
    if isinstance(value, tuple):
        return tuple(evaluate(item, env) for item in value)
    if isinstance(value, dict):
        return {key: evaluate(item, env) for key, item in value.items()}
    return value


def random_array(rng: np.random.Generator, type_: TensorType, env: dict) -> np.ndarray:
    """Random values of the right dtype; floats in [0.5, 1.5] keep log, sqrt and pow finite."""
    shape = tuple(dim.evaluate(env) for dim in type_.shape)
    if type_.dtype == "bool":
        return rng.random(shape) < 0.5
    if type_.dtype in ("i64", "i32"):
        return rng.integers(0, 5, size=shape).astype(NUMPY_DTYPES[type_.dtype])
    return rng.uniform(0.5, 1.5, size=shape).astype(NUMPY_DTYPES[type_.dtype])


def cases():
    """(op, sample) for every sample of every op."""
    for op in all_ops():
        for index, sample in enumerate(op.samples):
            yield pytest.param(op, sample, id=f"{op.name}-{index}")


def test_every_op_is_documented_and_sampled():
    """Each op has samples, a one-line doc and a behaviour description; aliases resolve."""
    for op in all_ops():
        assert op.samples, f"{op.name} has no samples"
        assert op.doc and "\n" not in op.doc, f"{op.name} needs a one-line doc"
        assert op.behaviour, f"{op.name} needs a behaviour"
        assert set(op.modes) <= {"train", "infer"} and op.modes, op.name
    for alias, name in ALIASES.items():
        assert lookup(alias) is REGISTRY[name]


@pytest.mark.parametrize(("op", "sample"), list(cases()))
def test_inferred_shapes_match_numpy(op, sample):
    """Infer symbolically, then check the numpy outputs at two symbol assignments in every mode."""
    shapes, attrs = sample[0], sample[1]
    facts = parse_facts(sample[2] if len(sample) > 2 else ())
    types = parse_inputs(op, shapes)
    context = ShapeContext(op=op.name, facts=facts, span=Span.unknown())
    try:
        outputs = op.infer(context, types, attrs)
    except ShapeError as error:
        pytest.fail(f"{op.name} rejected its own sample: {error.diagnostic.code} {error.diagnostic.message}")
    assert not context.warnings, [warning.message for warning in context.warnings]
    assert len(outputs) == op.output_count(attrs)
    rng = np.random.default_rng(7)
    for env in assignments(symbols_of(types, attrs), facts):
        arrays = [None if type_ is None else random_array(rng, type_, env) for type_ in types]
        for mode in op.modes:
            results = op.run(RunContext(mode, np.random.default_rng(0)), arrays, evaluate(attrs, env))
            assert len(results) == len(outputs)
            for result, type_ in zip(results, outputs):
                expected = tuple(dim.evaluate(env) for dim in type_.shape)
                assert np.shape(result) == expected, (mode, env, type_)
                assert dtype_name(np.asarray(result)) == type_.dtype, (mode, env, type_)
