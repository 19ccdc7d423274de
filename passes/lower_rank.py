"""Lower every tensor above a rank limit (and batched matmuls above theirs) by merging axes an op treats alike.

A value may be held in a *form*: its axes grouped into runs of neighbours, each run one axis of a
lower-rank tensor holding the same elements in the same order (so any two forms are one reshape
apart). An op can run on such a form when each group is a run of axes it treats alike: a
reduction over axes 2 and 3 of `[B, J, D, H, W]` runs on `[(B·J), (D·H), W]`; MotionBERT's
temporal attention `[B, H, J, T, D] @ [B, H, J, D, T]` runs as a batched matmul of
`[(B·H·J), T, D]`; a permute moves runs of axes that stay neighbours. Each op's rule says which
axes it treats alike; the pass picks the fewest groups, keeps a value in the form it has when
that fits, and reshapes otherwise. What no form can express within the limit (a permute that
scatters five axes) is E420 at the op's line, with the reason. A pure function of the graph and
the limits.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from poseir.diagnostics.record import Diagnostic, Label
from poseir.ir.dims import Dim
from poseir.ir.graph import Graph, Node, TensorType
from poseir.passes.rewrite import Rewriter, permutation

Groups = tuple[tuple[int, ...], ...]

_UNIFORM = {"relu", "gelu", "exp", "log", "neg", "abs", "sqrt", "tanh", "sigmoid", "cast", "dropout", "drop_path",
            "identity", "leaky_relu"}
_BINARY = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"}
_REDUCTIONS = {"sum", "mean", "amax", "norm", "var"}
_RESHAPES = {"reshape", "flatten", "unflatten", "squeeze", "unsqueeze"}


class CannotLower(Exception):
    """An op that has no form within the limit; the message says why."""


def identity(rank: int) -> Groups:
    """Every axis its own group."""
    return tuple((axis,) for axis in range(rank))


def runs(labels: list) -> Groups:
    """Neighbouring axes with equal labels, grouped."""
    groups: list[list[int]] = []
    for axis, label in enumerate(labels):
        if groups and labels[groups[-1][-1]] == label:
            groups[-1].append(axis)
        else:
            groups.append([axis])
    return tuple(tuple(group) for group in groups)


def lower_rank(graph: Graph, max_rank: int | None, max_matmul_rank: int | None,
               profile: str = "") -> tuple[Graph, list[Diagnostic], bool]:
    """The graph with no value above `max_rank` and no matmul operand above `max_matmul_rank`."""
    lowering = _Lowering(graph, max_rank or 10**9, max_matmul_rank or 10**9, profile)
    if not any(lowering.needs(node) for node in graph.nodes) and \
            all(value.type.rank <= lowering.max_rank for value in (*graph.inputs, *graph.outputs)):
        return graph, [], False
    lowering.inputs()
    for node in graph.nodes:
        lowering.visit(node)
    result = lowering.finish()
    return result, lowering.diagnostics, True


class _Lowering:
    """The new graph being built, and the form each old value has in it."""

    def __init__(self, graph: Graph, max_rank: int, max_matmul_rank: int, profile: str):
        self.graph, self.max_rank, self.max_matmul_rank, self.profile = graph, max_rank, max_matmul_rank, profile
        self.rewriter = Rewriter(graph)
        self.forms: dict[str, tuple[str, Groups]] = {}
        self.diagnostics: list[Diagnostic] = []

    # ------------------------------------------------------------ forms
    def rank(self, name: str) -> int:
        return self.graph.values[name].type.rank

    def shape(self, name: str) -> tuple[Dim, ...]:
        return self.graph.values[name].type.shape

    def form(self, name: str) -> tuple[str, Groups]:
        """Where the old value lives in the new graph, and how its axes are grouped there."""
        return self.forms.get(name, (self.rewriter.source(name), identity(self.rank(name))))

    def held(self, name: str, groups: Groups, span, scope: str, strict: bool = True) -> str:
        """The old value in the form `groups` (a reshape of its current form when they differ)."""
        current, current_groups = self.form(name)
        if current_groups == groups:
            return current
        if strict and len(groups) > self.max_rank:
            raise CannotLower(f"it needs a rank-{len(groups)} form of a {self.rank(name)}-D value")
        sizes = tuple(self._product(self.shape(name), group) for group in groups)
        return self.rewriter.add("reshape", [current], {"shape": sizes}, span, scope)[0]

    def _product(self, shape, group) -> Dim:
        total = Dim.of(1)
        for axis in group:
            total = total * shape[axis]
        return self.graph.facts.normalize(total)

    def emit(self, node: Node, op: str, inputs: list[str], attrs: dict, groups: Groups) -> None:
        """The op on the grouped inputs; the node's output lives in the form `groups`."""
        if len(groups) > self.max_rank:
            raise CannotLower(f"its result would still have {len(groups)} axes")
        name = self.rewriter.add(op, inputs, attrs, node.span, node.scope)[0]
        self.forms[node.outputs[0]] = (name, groups)

    # ------------------------------------------------------------ nodes
    def needs(self, node: Node) -> bool:
        """Whether the node touches a value above the limit, or is a matmul above the matmul limit."""
        ranks = [self.rank(name) for name in (*node.inputs, *node.outputs) if name]
        if any(rank > self.max_rank for rank in ranks):
            return True
        # A linear layer on [B, T, J, C] is a batched matmul in the runtime too.
        return node.op in ("matmul", "linear") and any(self.rank(name) > self.max_matmul_rank
                                                       for name in node.inputs[:1 if node.op == "linear" else 2])

    def visit(self, node: Node) -> None:
        """Keep a node within the limits (its inputs in their full form); lower the others by their rule."""
        if not self.needs(node):
            try:
                inputs = [self.held(name, identity(self.rank(name)), node.span, node.scope) if name else ""
                          for name in node.inputs]
            except CannotLower as reason:
                self._cannot(node, str(reason))
                return
            self.rewriter.nodes.append(replace(node, inputs=tuple(inputs)))
            return
        rule = _RULES.get(node.op) or (_uniform if node.op in _UNIFORM else _binary if node.op in _BINARY
                                       else _reduction if node.op in _REDUCTIONS else _reshape
                                       if node.op in _RESHAPES else None)
        try:
            if rule is None or len(node.outputs) != 1:
                raise CannotLower(f"`{node.op}` has no rule for tensors of rank above {self.max_rank}")
            rule(self, node)
        except CannotLower as reason:
            self._cannot(node, str(reason))

    def _cannot(self, node: Node, reason: str) -> None:
        """E420 at the op's line; its outputs keep their full form so the rest can still be checked."""
        self.diagnostics.append(cannot_legalize(node, self.profile, f"no tensor above rank {self.max_rank}", reason))
        inputs = [self.held(name, identity(self.rank(name)), node.span, node.scope, strict=False) if name else ""
                  for name in node.inputs]
        self.rewriter.nodes.append(replace(node, inputs=tuple(inputs)))
        for name in node.outputs:
            self.forms.pop(name, None)

    def inputs(self) -> None:
        """A model input above the limit is taken with its size-1 axes merged into their neighbours
        (P-STMO's `[B, 2, F, J, 1]` as `[B, 2, F, J]`): the same elements, fed in a lower rank."""
        for value in self.graph.inputs:
            if value.type.rank <= self.max_rank:
                continue
            groups = _without_units(value.type.shape)
            if len(groups) > self.max_rank:
                self.diagnostics.append(Diagnostic.make(
                    "E420", f"the model input `{value.name}` has rank {value.type.rank}, above `{self.profile}`'s "
                    f"limit of {self.max_rank}", value.span, labels=(Label(value.span, str(value.type)),)))
                continue
            shape = tuple(self._product(value.type.shape, group) for group in groups)
            self.rewriter.replace_input(replace(value, type=TensorType(value.type.dtype, shape)))
            self.forms[value.name] = (value.name, groups)

    def finish(self) -> Graph:
        """Graph outputs back in their full form (above the limit: with their size-1 axes merged)."""
        for value in self.graph.outputs:
            if value.type.rank > self.max_rank and len(_without_units(value.type.shape)) <= self.max_rank:
                producer = next(node for node in self.graph.nodes if value.name in node.outputs)
                groups = _without_units(value.type.shape)
                self.rewriter.redirect(value.name, self.held(value.name, groups, producer.span, producer.scope))
                continue
            if value.name in self.forms:
                producer = next(node for node in self.graph.nodes if value.name in node.outputs)
                try:
                    full = self.held(value.name, identity(value.type.rank), producer.span, producer.scope)
                except CannotLower as reason:
                    self._cannot(producer, f"the model output `{value.name}` has rank {value.type.rank}: {reason}")
                    continue
                self.rewriter.redirect(value.name, full)
        return self.rewriter.finish()


def _without_units(shape) -> Groups:
    """Groups that fold every size-1 axis into its neighbour (the previous one, or the next for a leading one)."""
    groups: list[list[int]] = []
    pending: list[int] = []
    for axis, size in enumerate(shape):
        if size.is_const and size.value == 1:
            if groups:
                groups[-1].append(axis)
            else:
                pending.append(axis)
            continue
        groups.append(pending + [axis])
        pending = []
    if pending:
        groups.append(pending)
    return tuple(tuple(group) for group in groups)


def cannot_legalize(node: Node, profile: str, rule: str, reason: str) -> Diagnostic:
    """E420: the op, the profile's rule it breaks, and why no rewrite fits."""
    return Diagnostic.make("E420", f"`{node.op}` cannot be legalized for `{profile or 'the profile'}`: {rule}",
                           node.span, labels=(Label(node.span, reason),),
                           helps=("rewrite this step so it works on fewer axes at a time, or choose a profile "
                                  "that allows it",))


# --------------------------------------------------------------------------- rules


def _uniform(lowering: _Lowering, node: Node) -> None:
    """Elementwise on one input: any form works; keep the input's."""
    name, groups = lowering.form(node.inputs[0])
    if len(groups) > lowering.max_rank:
        groups = _merged_to(lowering.rank(node.inputs[0]), lowering.max_rank)
        name = lowering.held(node.inputs[0], groups, node.span, node.scope)
    lowering.emit(node, node.op, [name], node.attributes, groups)


def _merged_to(rank: int, limit: int) -> Groups:
    """The leading axes merged until at most `limit` groups remain."""
    keep = max(limit - 1, 0)
    lead = rank - keep
    return (tuple(range(lead)),) + tuple((axis,) for axis in range(lead, rank))


def _binary(lowering: _Lowering, node: Node) -> None:
    """Broadcasting elementwise: merge neighbouring axes where every operand broadcasts the same way."""
    out = node.outputs[0]
    rank = lowering.rank(out)
    operands = [name for name in node.inputs]
    patterns = []
    for axis in range(rank):
        pattern = []
        for name in operands:
            offset = axis - (rank - lowering.rank(name))
            size = lowering.shape(name)[offset] if offset >= 0 else Dim.of(1)
            pattern.append(size.is_const and size.value == 1)
        patterns.append(tuple(pattern))
    groups = runs(patterns)
    inputs = []
    for name in operands:
        if lowering.rank(name) == 0:
            inputs.append(lowering.form(name)[0])
            continue
        inputs.append(_operand_in(lowering, node, name, groups, rank))
    lowering.emit(node, node.op, inputs, node.attributes, groups)


def _operand_in(lowering: _Lowering, node: Node, name: str, groups: Groups, rank: int) -> str:
    """An operand of a broadcast in the output's groups: its own axes grouped alike, broadcast groups of size 1."""
    lead = rank - lowering.rank(name)
    own = tuple(tuple(axis - lead for axis in group if axis >= lead) for group in groups)
    if all(own) and sum(len(group) for group in own) == lowering.rank(name):
        return lowering.held(name, own, node.span, node.scope)
    current, _ = lowering.form(name)
    shape = lowering.shape(name)
    sizes = tuple(lowering._product(shape, group) if group else Dim.of(1) for group in own)
    return lowering.rewriter.add("reshape", [current], {"shape": sizes}, node.span, node.scope)[0]


def _reduction(lowering: _Lowering, node: Node) -> None:
    """Reduced and kept axes in separate runs; the reduction over the reduced runs."""
    name = node.inputs[0]
    rank = lowering.rank(name)
    dim = node.attr("dim")
    axes = set(range(rank)) if dim is None else {axis % rank for axis in (dim if isinstance(dim, tuple) else (dim,))}
    groups = runs([axis in axes for axis in range(rank)])
    reduced = tuple(index for index, group in enumerate(groups) if group[0] in axes)
    keepdim = bool(node.attr("keepdim"))
    attrs = {**node.attributes, "dim": reduced}
    out_groups = _renumbered(groups, axes, keepdim)
    lowering.emit(node, node.op, [lowering.held(name, groups, node.span, node.scope)], attrs, out_groups)


def _renumbered(groups: Groups, reduced: set, keepdim: bool) -> Groups:
    """The output's groups after a reduction: reduced groups vanish, or with keepdim their size-1 axes
    (one per reduced input axis) share the group's one lowered axis."""
    result, position = [], 0
    for group in groups:
        if group[0] in reduced and not keepdim:
            continue
        result.append(tuple(range(position, position + len(group))))
        position += len(group)
    return tuple(result)


def _softmax(lowering: _Lowering, node: Node) -> None:
    """The axes before, the softmax axis, the axes after: three runs at most."""
    name = node.inputs[0]
    rank = lowering.rank(name)
    axis = node.attr("dim") % rank
    groups = runs([(position > axis) - (position < axis) for position in range(rank)])
    index = next(position for position, group in enumerate(groups) if axis in group)
    lowering.emit(node, node.op, [lowering.held(name, groups, node.span, node.scope)],
                  {**node.attributes, "dim": index}, groups)


def _layer_norm(lowering: _Lowering, node: Node) -> None:
    """Normalized over the last axis: everything before it is one run."""
    name = node.inputs[0]
    rank = lowering.rank(name)
    groups = (tuple(range(rank - 1)), (rank - 1,))
    inputs = [lowering.held(name, groups, node.span, node.scope), *(lowering.form(other)[0] if other else ""
                                                                     for other in node.inputs[1:])]
    lowering.emit(node, node.op, inputs, node.attributes, groups)


def _permute(lowering: _Lowering, node: Node) -> None:
    """Runs of input axes that stay neighbours, in order, move together; a permutation of more runs
    than the limit is done as block moves (each one run moved past others: four runs at most)."""
    name = node.inputs[0]
    current, groups = lowering.form(name)
    shape = list(lowering.shape(name))
    for step in _steps(permutation(node, len(shape)), lowering.max_rank):
        current, groups, shape = _permute_step(lowering, node, current, groups, shape, step)
    lowering.forms[node.outputs[0]] = (current, groups)


def _permute_runs(order: list[int]) -> list[list[int]]:
    """The runs of input axes that stay neighbours, in output order."""
    result: list[list[int]] = []
    for axis in order:
        if result and result[-1][-1] + 1 == axis:
            result[-1].append(axis)
        else:
            result.append([axis])
    return result


def _steps(order: list[int], limit: int) -> list[list[int]]:
    """`order` as a sequence of permutations of at most `limit` runs each (one, when it already fits)."""
    if len(_permute_runs(order)) <= limit or limit < 3:
        return [order]
    steps, current = [], list(range(len(order)))
    for position, wanted in enumerate(order):
        found = current.index(wanted)
        if found == position:
            continue
        step = list(range(position)) + [found] + list(range(position, found)) + list(range(found + 1, len(order)))
        steps.append(step)
        current = [current[axis] for axis in step]
    return steps


def _permute_step(lowering: _Lowering, node: Node, current: str, groups: Groups, shape: list, order: list[int]):
    """One permutation of a value held as (current, groups) with full shape `shape`: (name, groups, shape) after it."""
    runs_out = _permute_runs(order)
    by_start = sorted(runs_out, key=lambda run: run[0])
    in_groups = tuple(tuple(run) for run in by_start)
    if len(in_groups) > lowering.max_rank:
        raise CannotLower(f"the permutation {tuple(order)} moves {len(in_groups)} separate runs of axes")
    if in_groups != groups:
        sizes = tuple(lowering._product(shape, group) for group in in_groups)
        current = lowering.rewriter.add("reshape", [current], {"shape": sizes}, node.span, node.scope)[0]
    perm = tuple(by_start.index(run) for run in runs_out)
    current = lowering.rewriter.add("permute", [current], {"dims": perm}, node.span, node.scope)[0]
    out_groups, position = [], 0
    for run in runs_out:
        out_groups.append(tuple(range(position, position + len(run))))
        position += len(run)
    return current, tuple(out_groups), [shape[axis] for axis in order]


def _reshape(lowering: _Lowering, node: Node) -> None:
    """Any form reshapes; the result is full when it fits, else its leading axes merged."""
    current, _ = lowering.form(node.inputs[0])
    rank = lowering.rank(node.outputs[0])
    groups = identity(rank) if rank <= lowering.max_rank else _merged_to(rank, lowering.max_rank)
    shape = lowering.shape(node.outputs[0])
    sizes = tuple(lowering._product(shape, group) for group in groups)
    lowering.emit(node, "reshape", [current], {"shape": sizes}, groups)


def _around(lowering: _Lowering, node: Node, attr: str) -> None:
    """Ops on one axis (select, slice): the axes before it and after it are runs of their own."""
    name = node.inputs[0]
    rank = lowering.rank(name)
    axis = node.attr(attr) % rank
    groups = runs([(position > axis) - (position < axis) for position in range(rank)])
    index = next(position for position, group in enumerate(groups) if axis in group)
    inputs = [lowering.held(name, groups, node.span, node.scope)]
    if node.op == "select":
        out, position = [], 0
        for group in groups:
            if axis in group:
                continue
            out.append(tuple(range(position, position + len(group))))
            position += len(group)
        lowering.emit(node, node.op, inputs, {**node.attributes, attr: index}, tuple(out))
    else:
        lowering.emit(node, node.op, inputs, {**node.attributes, attr: index}, groups)


def _matmul(lowering: _Lowering, node: Node) -> None:
    """The batch axes as one run; operands with equal batch shapes (or a matrix on one side)."""
    a, b = node.inputs
    rank_a, rank_b = lowering.rank(a), lowering.rank(b)
    if rank_a < 2 or rank_b < 2:
        raise CannotLower("a vector operand of a batched matmul")
    batch_a, batch_b = lowering.shape(a)[:-2], lowering.shape(b)[:-2]
    if batch_a and batch_b and (len(batch_a) != len(batch_b) or any(
            not lowering.graph.facts.provably_equal(x, y) for x, y in zip(batch_a, batch_b))):
        raise CannotLower("its batch axes broadcast, so they cannot be merged")

    def grouped(rank: int) -> Groups:
        return ((tuple(range(rank - 2)),) if rank > 2 else ()) + ((rank - 2,), (rank - 1,))

    inputs = [lowering.held(a, grouped(rank_a), node.span, node.scope),
              lowering.held(b, grouped(rank_b), node.span, node.scope)]
    out_rank = lowering.rank(node.outputs[0])
    lowering.emit(node, "matmul", inputs, {}, grouped(out_rank))


def _linear(lowering: _Lowering, node: Node) -> None:
    """All axes but the features as one run: a plain [rows, features] product."""
    name = node.inputs[0]
    rank = lowering.rank(name)
    groups = (tuple(range(rank - 1)), (rank - 1,))
    inputs = [lowering.held(name, groups, node.span, node.scope),
              *(lowering.form(other)[0] if other else "" for other in node.inputs[1:])]
    lowering.emit(node, "linear", inputs, node.attributes, groups)


_RULES: dict[str, Callable] = {
    "linear": _linear,
    "softmax": _softmax, "log_softmax": _softmax, "layer_norm": _layer_norm, "permute": _permute,
    "transpose": _permute, "matmul": _matmul,
    "select": lambda lowering, node: _around(lowering, node, "axis"),
    "slice": lambda lowering, node: _around(lowering, node, "axis"),
}
