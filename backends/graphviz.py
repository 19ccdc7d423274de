"""Draw a model as Graphviz DOT: one vertex per IR node, modules as nested clusters, types on edges.

A drawing is built as data first (`Drawing`), so tests compare it with the IR, and only then
written as DOT. Within one flow a vertex is one IR node (named by its first output value), so
loop iterations never merge. Both flows of a model can share one picture: the k-th application
of an op at one call site in one module instance is the same vertex in both flows; a vertex only
the training flow has is drawn dashed red, one only the inference flow has dashed blue.

`depth` N draws every module call at nesting depth N (1: the model's own submodules) as one box
labelled with the types that enter and leave it; shallower calls stay clusters.
"""

from __future__ import annotations

import re
import shutil
import textwrap
import subprocess
from dataclasses import dataclass, field

from poseir.ir.graph import Graph, Node

_STYLES = {
    "both": 'style="rounded"',
    "train": 'style="rounded,dashed", color="#c0392b", fontcolor="#c0392b"',
    "infer": 'style="rounded,dashed", color="#2471a3", fontcolor="#2471a3"',
}
_SHAPES = {"op": "box", "module": "box3d", "input": "ellipse", "output": "ellipse"}


@dataclass(frozen=True)
class Vertex:
    """One drawn vertex: an op, a collapsed module call, a graph input or a graph output."""

    id: str
    kind: str  # "op", "module", "input" or "output"
    label: str
    cluster: str | None  # the id of the innermost module call drawn around it
    presence: str = "both"  # "both", "train" or "infer"


@dataclass(frozen=True)
class Edge:
    """A value flowing from one vertex into an input slot of another, labelled with its type."""

    source: str
    target: str
    port: int | str  # the input slot of an op; the value's name for a collapsed module
    label: str
    presence: str = "both"


@dataclass(frozen=True)
class Cluster:
    """One call of a module, drawn as a box around its ops (nested in its caller's)."""

    id: str
    label: str
    parent: str | None


@dataclass
class Drawing:
    """Vertices, edges and clusters of a picture, plus which vertex stands for each IR element."""

    name: str
    vertices: dict[str, Vertex] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    members: dict[str, dict[str, str]] = field(default_factory=dict)  # mode -> IR name -> vertex id
    compact: bool = False  # a collapsed overview: types on the boxes, not on every edge


# ------------------------------------------------------------------ module calls


def module_chain(scope: str) -> list[str]:
    """The module paths enclosing a node, outermost first (`blocks.0`, `blocks.0.attn`).

    A path followed by a numeric segment names a module list, not a module, so it is skipped.
    """
    if not scope:
        return []
    parts = scope.split(".")
    chain = []
    for index in range(len(parts)):
        following = parts[index + 1] if index + 1 < len(parts) else None
        if following is None or not following.isdigit():
            chain.append(".".join(parts[:index + 1]))
    return chain


def module_calls(graph: Graph) -> list[list[str]]:
    """For each node, the call ids of the module calls around it, outermost first.

    A submodule's forward is inlined, so one call is a run of consecutive nodes; a module
    called twice (a shared dropout) gives two calls, `drop#0` and `drop#1`.
    """
    counts: dict[str, int] = {}
    open_calls: list[tuple[str, str]] = []  # (module path, call id)
    result = []
    for node in graph.nodes:
        chain = module_chain(node.scope)
        keep = 0
        while keep < len(open_calls) and keep < len(chain) and open_calls[keep][0] == chain[keep]:
            keep += 1
        del open_calls[keep:]
        for path in chain[keep:]:
            number = counts.get(path, 0)
            counts[path] = number + 1
            open_calls.append((path, f"{path}#{number}"))
        result.append([call for _, call in open_calls])
    return result


# ------------------------------------------------------------------ one flow


@dataclass
class _Flow:
    """One flow drawn alone, with vertices named by match keys shared across flows."""

    vertices: dict = field(default_factory=dict)  # key -> (kind, label, cluster key)
    edges: dict = field(default_factory=dict)  # (source key, target key, port) -> label
    clusters: dict = field(default_factory=dict)  # cluster key -> (label, parent key)
    members: dict = field(default_factory=dict)  # IR name -> key


def _draw_flow(graph: Graph, depth: int | None) -> _Flow:
    """Vertices and edges of one flow; module calls at nesting depth `depth` become boxes."""
    flow = _Flow()
    producer: dict[str, tuple] = {}
    parameters = {parameter.name for parameter in graph.parameters}
    for value in graph.inputs:
        key = ("input", value.name)
        flow.vertices[key] = ("input", value.name, None)
        flow.members[value.name] = key
        producer[value.name] = key
    calls = module_calls(graph)
    boxes = _boxes(graph, calls, depth)
    occurrences: dict[tuple, int] = {}
    statement = _Statements()
    for node, around in zip(graph.nodes, calls):
        shown = around if depth is None else around[:depth - 1]
        for outer, call in zip([None, *shown], shown):
            flow.clusters.setdefault(("call", call), (call.split("#")[0], ("call", outer) if outer else None))
        cluster = ("call", shown[-1]) if shown else None
        if depth is not None and len(around) >= depth:
            key = ("call", around[depth - 1], "box")
            flow.vertices[key] = ("module", boxes[around[depth - 1]], cluster)
            statement.interrupt()
        elif depth is not None:
            # A collapsed picture shows the ops between two boxes as one vertex, with their lines.
            key = statement.key(node, cluster)
            statement.add(key, node)
            flow.vertices[key] = ("op", statement.label(key), cluster)
        else:
            site = (node.op, node.scope, node.span.path, node.span.start, node.span.end)
            number = occurrences.get(site, 0)
            occurrences[site] = number + 1
            key = ("op", *site, number)
            flow.vertices[key] = ("op", _label(node, parameters), cluster)
        for name in node.outputs:
            flow.members[name] = key
        for slot, name in enumerate(node.inputs):
            source = producer.get(name)
            if source is not None and source != key:
                # A box reads each outside value once, however many of its ops read it.
                port = name if key[0] == "call" else slot
                flow.edges[(source, key, port)] = str(graph.values[name].type)
        for name in node.outputs:
            producer[name] = key
    for value in graph.outputs:
        key = ("output", value.name)
        flow.vertices[key] = ("output", value.name, None)
        flow.edges[(producer.get(value.name, ("input", value.name)), key, 0)] = str(value.type)
    return _fold_repeats(flow) if depth is not None else flow


def _signature(key: tuple, vertex: tuple) -> tuple:
    """What a vertex is, apart from which repetition of a loop it belongs to (indices stripped)."""
    kind, label, cluster = vertex
    return (kind, re.sub(r"\.\d+\b", ".i", label), cluster)


def _fold_repeats(flow: _Flow) -> _Flow:
    """A collapsed picture shows a loop's body once: the longest run of vertices repeated back to back
    (MotionBERT's five dual-stream layers) is drawn as its first copy, labelled `×k`."""
    keys = list(flow.vertices)
    signatures = [_signature(key, flow.vertices[key]) for key in keys]
    best = None
    for period in range(2, len(keys) // 2 + 1):
        for start in range(len(keys) - 2 * period + 1):
            count = 1
            while signatures[start + count * period:start + (count + 1) * period] == signatures[start:start + period]:
                count += 1
            if count > 1 and (best is None or period * (count - 1) > best[1] * (best[2] - 1)):
                best = (start, period, count)
    if best is None:
        return flow
    start, period, count = best
    copy_of = {keys[start + repeat * period + offset]: keys[start + offset]
               for repeat in range(1, count) for offset in range(period)}
    folded = _Flow(clusters=flow.clusters)
    for key, (kind, label, cluster) in flow.vertices.items():
        if key in copy_of:
            continue
        if start <= keys.index(key) < start + period:
            label = f"{label}\n×{count}"
        folded.vertices[key] = (kind, label, cluster)
    body = {key: offset for offset, key in enumerate(keys[start:start + period])}
    drawn: set = set()
    for (source, target, port), label in flow.edges.items():
        source, target = copy_of.get(source, source), copy_of.get(target, target)
        backwards = source in body and target in body and body[source] >= body[target]
        if source == target or backwards or (source, target) in drawn:
            continue  # one edge per pair; the loop's way back is the `×k` on its body
        drawn.add((source, target))
        folded.edges[(source, target, port)] = label
    folded.members = {name: copy_of.get(key, key) for name, key in flow.members.items()}
    return folded


class _Statements:
    """Runs of consecutive ops between module boxes, each drawn as one vertex naming its lines and ops."""

    def __init__(self):
        self.current: tuple | None = None
        self.runs = 0
        self.contents: dict[tuple, tuple[list[int], list[str]]] = {}

    def key(self, node: Node, cluster) -> tuple:
        """The run `node` belongs to (a new one after a box, or in another cluster or scope)."""
        place = (cluster, node.scope)
        if self.current is None or self.current[1:3] != place:
            self.runs += 1
            self.current = ("line", *place, self.runs)
        return self.current

    def add(self, key: tuple, node: Node) -> None:
        lines, ops = self.contents.setdefault(key, ([], []))
        lines.append(node.span.line)
        ops.append(node.op)

    def label(self, key: tuple) -> str:
        """`lines 135-137: reshape, add, slice`."""
        lines, ops = self.contents[key]
        where = f"line {lines[0]}" if min(lines) == max(lines) else f"lines {min(lines)}-{max(lines)}"
        return textwrap.fill(f"{where}: {', '.join(ops)}", width=36)

    def interrupt(self) -> None:
        """A box came between: the next op starts a new run."""
        self.current = None


def _boxes(graph: Graph, calls: list[list[str]], depth: int | None) -> dict[str, str]:
    """The label of each collapsed call: its module path and the types entering and leaving it."""
    if depth is None:
        return {}
    inside: dict[str, list[Node]] = {}
    for node, around in zip(graph.nodes, calls):
        if len(around) >= depth:
            inside.setdefault(around[depth - 1], []).append(node)
    parameters = {parameter.name for parameter in graph.parameters}
    used_after = _uses(graph)
    labels = {}
    for call, nodes in inside.items():
        made = {name for node in nodes for name in node.outputs}
        entering = list(dict.fromkeys(name for node in nodes for name in node.inputs
                                      if name and name not in made and name not in parameters))
        leaving = [name for name in dict.fromkeys(made) if used_after.get(name, set()) - {id(node) for node in nodes}]
        types_in = ", ".join(str(graph.values[name].type) for name in entering) or "()"
        types_out = ", ".join(str(graph.values[name].type) for name in leaving) or "()"
        labels[call] = f"{call.split('#')[0]} ({len(nodes)} ops)\n{types_in} -> {types_out}"
    return labels


def _uses(graph: Graph) -> dict[str, set]:
    """Which nodes (by identity) read each value; graph outputs count as a reader of their own."""
    uses: dict[str, set] = {}
    for node in graph.nodes:
        for name in node.inputs:
            uses.setdefault(name, set()).add(id(node))
    for value in graph.outputs:
        uses.setdefault(value.name, set()).add(("output", value.name))
    return uses


def _label(node: Node, parameters: set[str]) -> str:
    """The op, its line and the parameters it reads (the cluster around it names its module)."""
    weights = [name.rsplit(".", 1)[-1] for name in node.inputs if name in parameters]
    return f"{node.op} :{node.span.line}" + (f"\n({', '.join(weights)})" if weights else "")


# ------------------------------------------------------------------ both flows


def build_drawing(graphs: dict[str, Graph], depth: int | None = None) -> Drawing:
    """The picture of one or both flows (`graphs` maps mode to graph), as data."""
    flows = {mode: _draw_flow(graph, depth) for mode, graph in graphs.items()}
    drawing = Drawing(next(iter(graphs.values())).name, compact=depth is not None)
    ids: dict[tuple, str] = {}

    def vertex_id(key: tuple) -> str:
        if key not in ids:
            ids[key] = f"{key[0]}{len(ids)}" if key[0] in ("op", "call", "line") else f"{key[0]}:{key[1]}"
        return ids[key]

    single = len(flows) == 1
    for mode, flow in flows.items():
        for key, (label, parent) in flow.clusters.items():
            drawing.clusters.setdefault(vertex_id(key), Cluster(vertex_id(key), label,
                                                                vertex_id(parent) if parent else None))
        for key, (kind, label, cluster) in flow.vertices.items():
            identifier = vertex_id(key)
            if identifier not in drawing.vertices:
                presence = "both" if single else _presence(key, flows, "vertices")
                drawing.vertices[identifier] = Vertex(identifier, kind, label, vertex_id(cluster) if cluster else None,
                                                      presence)
        drawing.members[mode] = {name: vertex_id(key) for name, key in flow.members.items()}
    seen: set = set()
    for mode, flow in flows.items():
        for (source, target, port), label in flow.edges.items():
            if (source, target, port) in seen:
                continue
            seen.add((source, target, port))
            presence = "both" if single else _presence((source, target, port), flows, "edges")
            drawing.edges.append(Edge(vertex_id(source), vertex_id(target), port, label, presence))
    return drawing


def _presence(key: tuple, flows: dict, attribute: str) -> str:
    """`both`, or the one flow that has the vertex or edge."""
    present = [mode for mode, flow in flows.items() if key in getattr(flow, attribute)]
    return present[0] if len(present) == 1 else "both"


# ------------------------------------------------------------------ DOT


def to_dot(graphs: dict[str, Graph], depth: int | None = None) -> str:
    """DOT text for one or both flows of a model (`graphs` maps mode to graph)."""
    return write_dot(build_drawing(graphs, depth))


def write_dot(drawing: Drawing) -> str:
    """The drawing as deterministic DOT text, clusters nested as the module calls are."""
    lines = [f'digraph "{_escape(drawing.name)}" {{', "  rankdir=TB;", "  ranksep=0.25;", "  nodesep=0.2;",
             '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    children: dict[str | None, list[str]] = {}
    for cluster in drawing.clusters.values():
        children.setdefault(cluster.parent, []).append(cluster.id)
    members: dict[str | None, list[Vertex]] = {}
    for vertex in drawing.vertices.values():
        members.setdefault(vertex.cluster, []).append(vertex)
    lines += _cluster_lines(drawing, None, children, members, "  ")
    for edge in drawing.edges:
        style = "" if edge.presence == "both" else ", " + _STYLES[edge.presence].split(", ", 1)[1]
        label = "" if drawing.compact else f'label="{_escape(edge.label)}"'
        lines.append(f'  "{edge.source}" -> "{edge.target}" [{label}{style.lstrip(", ") if not label else style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster_lines(drawing: Drawing, cluster: str | None, children: dict, members: dict, indent: str) -> list[str]:
    """The vertices of one cluster, then its sub-clusters, recursively."""
    lines = []
    for vertex in members.get(cluster, []):
        lines.append(f'{indent}"{vertex.id}" [shape={_SHAPES[vertex.kind]}, {_STYLES[vertex.presence]}, '
                     f'label="{_escape(vertex.label)}"];')
    for child in children.get(cluster, []):
        label = drawing.clusters[child].label
        lines.append(f'{indent}subgraph "cluster_{child}" {{')
        lines.append(f'{indent}  label="{_escape(label)}"; style="rounded"; color="#888888"; fontname="Helvetica";')
        lines += _cluster_lines(drawing, child, children, members, indent + "  ")
        lines.append(f"{indent}}}")
    return lines


def _escape(text: str) -> str:
    """Quote-safe DOT string content; line breaks become DOT's centred `\\n`."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_svg(dot: str) -> bytes | None:
    """SVG from Graphviz's `dot`, or None when Graphviz is not installed."""
    executable = shutil.which("dot")
    if executable is None:
        return None
    return subprocess.run([executable, "-Tsvg"], input=dot.encode(), capture_output=True, check=True).stdout
