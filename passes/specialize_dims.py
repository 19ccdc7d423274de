"""Fix symbolic dims to numbers (`--dim B=1 --dim T=243`), for runtimes that need static shapes.

Every type, atom size and attribute is rewritten with the values, the graph is re-typed from its
inputs (so a value that breaks a shape rule — a clip shorter than the receptive field — is
reported there), and the values must satisfy the model's `where` facts. A pure function of the
graph and the values.
"""

from __future__ import annotations

from dataclasses import replace

from poseir.diagnostics.record import Diagnostic, Label
from poseir.ir.axes import Atom
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts
from poseir.ir.graph import Graph, TensorType, Value, freeze_values
from poseir.passes.infer_shapes import infer_shapes


def specialize_dims(graph: Graph, values: dict[str, int]) -> tuple[Graph, list[Diagnostic], bool]:
    """The graph with the dims in `values` replaced by numbers; diagnostics for values the model excludes."""
    env = _closed(graph.facts, values)
    problems = _violated_facts(graph, env)
    if problems:
        return graph, problems, False
    relevant = {name: value for name, value in env.items() if name in _symbols(graph)}
    if not relevant:
        return graph, [], False
    specialized = _substituted(graph, relevant)
    retyped, found, _ = infer_shapes(specialized)
    errors = [diagnostic for diagnostic in found if diagnostic.code.startswith("E")]
    return retyped, errors, True


def _closed(facts: Facts, values: dict[str, int]) -> dict[str, int]:
    """The given values plus the symbols the facts define from them (`N == 2*B`)."""
    env = dict(values)
    for name, dim in facts.substitutions:
        if name not in env and dim.symbols <= set(env):
            env[name] = dim.evaluate(env)
    return env


def _symbols(graph: Graph) -> set[str]:
    """Every symbol the graph's types mention."""
    return {symbol for value in graph.values.values() if not value.type.is_error
            for dim in value.type.shape for symbol in dim.symbols}


def _violated_facts(graph: Graph, env: dict[str, int]) -> list[Diagnostic]:
    """E421 for each `where` fact (bound, residue, relation) the values break."""
    facts, problems = graph.facts, []
    for name, value in sorted(env.items()):
        low, high = facts.bounds(name)
        if value < low or (high is not None and value > high):
            bound = f"{name} >= {low}" if value < low else f"{name} <= {high}"
            problems.append(f"{name} = {value} breaks `{bound}`")
    for name, modulus, residue in facts.residues:
        if name in env and env[name] % modulus != residue:
            problems.append(f"{name} = {env[name]} breaks `{name} % {modulus} == {residue}`")
    for left, op, right in facts.relations:
        if (left.symbols | right.symbols) <= set(env) and not _holds(left.evaluate(env), op, right.evaluate(env)):
            problems.append(f"the values break `{left} {op} {right}`")
    span = graph.inputs[0].span if graph.inputs else None
    return [Diagnostic.make("E421", f"--dim values the model excludes: {problem}", span,
                            labels=(Label(span, "the model's inputs"),) if span else ()) for problem in problems]


def _holds(left: int, op: str, right: int) -> bool:
    """A comparison of two numbers by its operator's text."""
    return {"==": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[op]


def _substituted(graph: Graph, env: dict[str, int]) -> Graph:
    """Types, atoms and attributes with the values substituted; facts reduced to what is left."""
    values = {name: replace(value, type=_type(value.type, env)) for name, value in graph.values.items()}
    nodes = tuple(replace(node, attrs=tuple((key, _attribute(item, env)) for key, item in node.attrs))
                  for node in graph.nodes)
    inputs = tuple(values[value.name] for value in graph.inputs)
    outputs = tuple(values[value.name] for value in graph.outputs)
    parameters = tuple(replace(parameter, type=values[parameter.name].type) for parameter in graph.parameters)
    return replace(graph, values=freeze_values(values), nodes=nodes, inputs=inputs, outputs=outputs,
                   parameters=parameters, facts=Facts(), symbols=())


def _type(type_: TensorType, env: dict[str, int]) -> TensorType:
    """A tensor type with numbers for the symbols."""
    if type_.is_error:
        return type_
    shape = tuple(dim.substitute(env) for dim in type_.shape)
    atoms = None if type_.atoms is None else tuple(
        tuple(Atom(atom.key, atom.size.substitute(env), atom.name) for atom in axis) for axis in type_.atoms)
    return TensorType(type_.dtype, shape, atoms)


def _attribute(value, env: dict[str, int]):
    """An attribute with numbers for the symbols (inside tuples too)."""
    if isinstance(value, Dim):
        substituted = value.substitute(env)
        return substituted.value if substituted.is_const else substituted
    if isinstance(value, tuple):
        return tuple(_attribute(item, env) for item in value)
    return value
