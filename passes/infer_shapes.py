"""Shape inference: type every node through its registry shape rule, reporting each mistake once."""

from __future__ import annotations

from dataclasses import replace

from poseir.diagnostics.record import Diagnostic
from poseir.ir.axes import inconsistency
from poseir.ir.facts import logged, note_queries
from poseir.ir.graph import ERROR_TYPE, Graph, TensorType, freeze_values
from poseir.ops.registry import OpDef, ShapeContext, ShapeError, lookup


# Shape rules that read the inputs' atoms (their result depends on more than sizes and dtypes).
READS_ATOMS = frozenset({"reshape", "rearrange", "permute", "transpose", "flatten", "unflatten", "squeeze",
                         "unsqueeze"})


def infer_node(op: OpDef, types: list, attrs: dict, context: ShapeContext, memo: dict | None = None, *,
               logs_queries: bool = False) -> tuple[list[TensorType], list[Diagnostic]]:
    """Apply one shape rule; an error-typed input or a failed rule gives error-typed outputs.

    Returns the output types and the diagnostics (at most one error plus warnings). With `memo`
    (one per set of facts), a rule that already ran cleanly on the same sizes, dtypes and
    attributes is not run again — a transformer's blocks repeat the same shapes — and only the
    atoms are mapped anew. With `logs_queries`, a memo entry keeps what its rule asked of the facts,
    so that a replay template recorded around a later use of the entry depends on it too.
    """
    count = op.output_count(attrs)
    if any(type_ is not None and type_.is_error for type_ in types):
        return [ERROR_TYPE] * count, []
    key = _memo_key(op, types, attrs) if memo is not None else None
    try:
        found = memo.get(key) if key is not None else None
        if found is not None:
            shapes, queries = found
            note_queries(queries)  # what the rule asked of the facts, for a replay template recorded around this
            outputs = [TensorType(dtype, shape) for dtype, shape in shapes]
        else:
            outputs, queries = logged(key is not None and logs_queries, lambda: list(op.infer(context, types, attrs)))
            if key is not None and not context.warnings and not context.assumptions:
                memo[key] = (tuple((output.dtype, output.shape) for output in outputs), queries)
        outputs = with_atoms(op, context, types, attrs, outputs)
    except ShapeError as error:
        return [ERROR_TYPE] * count, [*context.warnings, error.diagnostic]
    return outputs, list(context.warnings)


def _memo_key(op: OpDef, types: list, attrs: dict):
    """What a shape rule's result depends on, when that is hashable and the rule ignores atoms."""
    if op.name in READS_ATOMS:
        return None
    key = (op.name, tuple(None if type_ is None else (type_.dtype, type_.shape) for type_ in types),
           tuple(attrs.items()))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def with_atoms(op: OpDef, context: ShapeContext, types: list, attrs: dict, outputs: list) -> list[TensorType]:
    """The output types with their atoms: from the shape rule, the op's atoms facet, or the default."""
    if all(output.atoms is not None for output in outputs):
        return outputs
    mapped = op.atoms(context, types, attrs, outputs) if op.atoms is not None else \
        keep_unchanged_axes(context, types, outputs)
    return [output if output.atoms is not None else output.with_atoms(axes)
            for output, axes in zip(outputs, mapped)]


def keep_unchanged_axes(context: ShapeContext, types: list, outputs: list) -> list:
    """The default facet: aligned from the right with input 0, an axis keeps its atoms where its size is
    unchanged (a slice of the whole axis, a same-length pad), and gets a new atom elsewhere."""
    first = next((type_ for type_ in types if type_ is not None), None)
    source = context.axes(first) if first is not None else ()
    mapped = []
    for index, output in enumerate(outputs):
        lead = output.rank - len(source)
        mapped.append(tuple(
            source[axis - lead] if 0 <= axis - lead < len(source) and
            context.provably_equal(size, first.shape[axis - lead])
            else context.fresh(index, axis, size)
            for axis, size in enumerate(output.shape)))
    return mapped


def infer_shapes(graph: Graph) -> tuple[Graph, list[Diagnostic], bool]:
    """Re-infer every node of a graph from its inputs; the pure-function form of the pass.

    Used after transformations and as the verifier between passes: `changed` says whether any
    recorded type differed from the re-inferred one.
    """
    values = dict(graph.values)
    diagnostics: list[Diagnostic] = []
    changed = False
    for node in graph.nodes:
        op = lookup(node.op)
        if op is None:
            raise RuntimeError(f"internal compiler error: node uses unknown op {node.op!r}")
        types = [values[name].type if name else None for name in node.inputs]
        context = ShapeContext(op=node.op, facts=graph.facts, span=node.span, outputs=node.outputs)
        outputs, found = infer_node(op, types, node.attributes, context)
        diagnostics.extend(found)
        for name, type_ in zip(node.outputs, outputs):
            if values[name].type != type_:
                changed = True
                values[name] = replace(values[name], type=type_)
    if not changed:
        return graph, diagnostics, False
    outputs = tuple(values[value.name] for value in graph.outputs)
    return replace(graph, values=freeze_values(values), outputs=outputs), diagnostics, True


def verify(graph: Graph) -> None:
    """Raise (a compiler bug) if the graph is malformed: undefined values, bad types, stale shapes."""
    defined = {value.name for value in graph.inputs} | {parameter.name for parameter in graph.parameters}
    for node in graph.nodes:
        for name in node.inputs:
            if name and name not in defined:
                raise AssertionError(f"node {node.op} at {node.span} reads undefined value {name!r}")
        for name in node.outputs:
            if name in defined:
                raise AssertionError(f"value {name!r} defined twice")
            defined.add(name)
    for value in graph.outputs:
        if value.name not in defined:
            raise AssertionError(f"graph output {value.name!r} is never defined")
    for value in graph.values.values():
        problem = None if value.type.is_error else inconsistency(value.type.shape, value.type.atoms, graph.facts)
        if problem is not None:
            raise AssertionError(f"value {value.name!r}: {problem}")
    _, _, changed = infer_shapes(graph)
    if changed:
        raise AssertionError("recorded types differ from re-inferred types")
