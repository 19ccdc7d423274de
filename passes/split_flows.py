"""The split between a model's training and inference flows, shown and checked (`poseir split`).

Both flows are elaborated from one instance tree, so they name the same parameters; what differs
is which ops run. This analysis compares the training graph with the inference graph after its
cleanup: the parameters each flow reads (one read by only one flow is W315 at its declaration),
the ops that exist in only one flow (dropout, drop-path, losses and what reads the targets;
flip TTA), the parameters two flows read through differently configured ops (VideoPose3D's strided
training convolutions vs its dilated inference ones), and the ops whose meaning depends on the
mode (batch norm). An op that may only run in training yet feeds an inference output is E110.
A pure function of the two graphs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from poseir.diagnostics.record import Diagnostic, Label
from poseir.ir.graph import Graph, Node
from poseir.ops.registry import lookup
from poseir.passes.inference_cleanup import inference_cleanup
from poseir.syntax.source import Span


@dataclass(frozen=True)
class OpSite:
    """Ops of one kind at one call site, and how many times the flow runs them there."""

    op: str
    span: Span
    count: int
    detail: str = ""


@dataclass
class FlowSplit:
    """What the two flows share and where they differ."""

    model: str
    shared: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # (state_dict key, shape)
    train_only_parameters: list[str] = field(default_factory=list)
    infer_only_parameters: list[str] = field(default_factory=list)
    train_only_ops: list[OpSite] = field(default_factory=list)
    infer_only_ops: list[OpSite] = field(default_factory=list)
    read_differently: list[tuple[str, str, str]] = field(default_factory=list)  # (key, in training, in inference)
    mode_dependent: list[OpSite] = field(default_factory=list)


def split_flows(train: Graph, infer: Graph) -> tuple[FlowSplit, list[Diagnostic]]:
    """Compare the flows of one model; the report and its diagnostics (W315, E110)."""
    infer, _, _ = inference_cleanup(infer)
    split = FlowSplit(train.name)
    diagnostics = _parameters(split, train, infer)
    split.train_only_ops = _only_in(train, infer)
    split.infer_only_ops = _only_in(infer, train)
    split.read_differently = _read_differently(train, infer)
    split.mode_dependent = [site for site in _sites(infer) if _behaviour(site.op) != "same in both modes"]
    diagnostics.extend(_train_only_in_inference(infer))
    return split, diagnostics


def _readers(graph: Graph) -> dict[str, list[Node]]:
    """For each parameter, the nodes that read it."""
    names = {parameter.name for parameter in graph.parameters}
    readers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            if name in names:
                readers.setdefault(name, []).append(node)
    return readers


def _parameters(split: FlowSplit, train: Graph, infer: Graph) -> list[Diagnostic]:
    """Shared parameters with shapes; W315 for one read by only one flow."""
    in_train, in_infer = set(_readers(train)), set(_readers(infer))
    diagnostics = []
    for parameter in train.parameters:
        name = parameter.name
        if name in in_train and name in in_infer:
            split.shared.append((name, parameter.shape))
        elif name in in_train or name in in_infer:
            only = "training" if name in in_train else "inference"
            (split.train_only_parameters if only == "training" else split.infer_only_parameters).append(name)
            diagnostics.append(Diagnostic.make(
                "W315", f"`{name}` is used only in {only}", parameter.span,
                labels=(Label(parameter.span, f"{parameter.kind} {parameter.type} declared here"),),
                notes=(f"the {'inference' if only == 'training' else 'training'} flow never reads it, so "
                       f"{'it is trained but never used' if only == 'training' else 'it is never trained'}",)))
    return diagnostics


def _sites(graph: Graph, nodes=None) -> list[OpSite]:
    """Each (op, call site) of some nodes of a flow with how often it runs there, in order of first appearance."""
    nodes = graph.nodes if nodes is None else nodes
    counts = Counter((node.op, node.span) for node in nodes)
    seen, sites = set(), []
    for node in nodes:
        key = (node.op, node.span)
        if key not in seen:
            seen.add(key)
            sites.append(OpSite(node.op, node.span, counts[key]))
    return sites


# Ops that pass their input through in one flow and are absent from the other: they do not make the
# ops reading them different.
_PASS_THROUGH = ("dropout", "drop_path", "identity")


def _signatures(graph: Graph, table: dict) -> list[int]:
    """A structural signature per node: its op and its inputs' signatures, attributes ignored.

    Two flows written as separate forwards (VideoPose3D's strided training and dilated inference)
    compute the same things through differently configured ops; signatures match them anyway, so
    what remains unmatched is what one flow really has and the other has not. Signatures are
    interned as ints, so deep graphs never nest tuples.
    """
    of_value: dict[str, int] = {}
    for value in graph.inputs:
        of_value[value.name] = table.setdefault(("input", value.name), len(table))
    for parameter in graph.parameters:
        of_value[parameter.name] = table.setdefault(("parameter", parameter.name), len(table))
    signatures = []
    for node in graph.nodes:
        inputs = tuple(of_value.get(name, -1) for name in node.inputs)
        if node.op in _PASS_THROUGH and inputs:
            signature = inputs[0]
        else:
            signature = table.setdefault((node.op, inputs), len(table))
        signatures.append(signature)
        for index, name in enumerate(node.outputs):
            of_value[name] = signature if node.op in _PASS_THROUGH else \
                table.setdefault(("output", signature, index), len(table))
    return signatures


def _only_in(graph: Graph, other: Graph) -> list[OpSite]:
    """The ops of `graph` that `other` does not compute (matched by structure, counted)."""
    table: dict = {}
    mine, theirs = _signatures(graph, table), Counter(_signatures(other, table))
    unmatched = []
    for node, signature in zip(graph.nodes, mine):
        if theirs[signature] > 0 and node.op not in ("dropout", "drop_path"):
            theirs[signature] -= 1
        elif node.op != "identity":
            unmatched.append(node)
    return _sites(graph, unmatched)


def _read_differently(train: Graph, infer: Graph) -> list[tuple[str, str, str]]:
    """Parameters both flows read, but through ops configured differently (strided vs dilated)."""
    train_readers, infer_readers = _readers(train), _readers(infer)
    found = []
    for name in sorted(set(train_readers) & set(infer_readers)):
        train_uses = sorted({_use(node) for node in train_readers[name]})
        infer_uses = sorted({_use(node) for node in infer_readers[name]})
        if train_uses != infer_uses:
            found.append((name, "; ".join(train_uses), "; ".join(infer_uses)))
    return found


def _use(node: Node) -> str:
    """`conv1d(stride=3)`: an op with the attributes that differ from its defaults."""
    op = lookup(node.op)
    defaults = {param.name: param.default for param in op.signature} if op else {}
    attrs = [f"{key}={value}" for key, value in node.attrs if defaults.get(key, object()) != value]
    return f"{node.op}({', '.join(attrs)})"


def _behaviour(op: str) -> str:
    """How an op differs between the modes, from its registry entry."""
    definition = lookup(op)
    return definition.behaviour if definition else "same in both modes"


def _train_only_in_inference(infer: Graph) -> list[Diagnostic]:
    """E110 for an op that may run only in training but remains in the cleaned inference graph."""
    return [Diagnostic.make("E110", f"`{node.op}` exists only in training, but an inference output depends on it",
                            node.span, labels=(Label(node.span, "only in training"),),
                            helps=("move it into a `train { ... }` block, or make the inference output not use it",))
            for node in infer.nodes if "infer" not in lookup(node.op).modes]
