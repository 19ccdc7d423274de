"""Draw a model as Graphviz DOT: one box per op, tensor types on the edges, mode-only parts marked.

Both flows of a model are drawn in one picture: nodes are matched between the train and infer
graphs by (op, span); a node only the training flow has is drawn dashed red, one only the
inference flow has dashed blue.
"""

from __future__ import annotations

import shutil
import subprocess

from poseir.ir.graph import Graph, Node

_STYLES = {
    "both": 'shape=box, style="rounded"',
    "train": 'shape=box, style="rounded,dashed", color="#c0392b", fontcolor="#c0392b"',
    "infer": 'shape=box, style="rounded,dashed", color="#2471a3", fontcolor="#2471a3"',
}


def node_key(node: Node) -> tuple:
    """What identifies "the same node" in the two flows."""
    return (node.op, node.span.path, node.span.start, node.span.end, node.scope)


def to_dot(graphs: dict[str, Graph]) -> str:
    """DOT text for one or both flows of a model (`graphs` maps mode to graph)."""
    keys = {mode: {node_key(node) for node in graph.nodes} for mode, graph in graphs.items()}
    name = next(iter(graphs.values())).name
    lines = [f'digraph "{_escape(name)}" {{', "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']
    drawn: set[str] = set()
    for mode, graph in graphs.items():
        lines += _graph_lines(graph, mode, keys, drawn)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graph_lines(graph: Graph, mode: str, keys: dict, drawn: set[str]) -> list[str]:
    """Vertices and edges of one flow, skipping what the other flow already drew."""
    lines: list[str] = []
    producers: dict[str, str] = {}
    parameters = {parameter.name for parameter in graph.parameters}
    for value in graph.inputs:
        identifier = f"input:{value.name}"
        producers[value.name] = identifier
        if identifier not in drawn:
            drawn.add(identifier)
            lines.append(f'  "{_escape(identifier)}" [shape=ellipse, label="{_escape(value.name)}"];')
    for node in graph.nodes:
        identifier = _node_identifier(node)
        for name in node.outputs:
            producers[name] = identifier
        if identifier in drawn:
            continue
        drawn.add(identifier)
        lines.append(f'  "{_escape(identifier)}" [{_STYLES[_presence(node, keys)]}, label="{_label(node, parameters)}"];')
        for name in node.inputs:
            if name in producers:
                type_ = graph.values[name].type
                lines.append(f'  "{_escape(producers[name])}" -> "{_escape(identifier)}" [label="{_escape(str(type_))}"];')
    for value in graph.outputs:
        identifier = f"output:{mode}:{value.name}"
        lines.append(f'  "{_escape(identifier)}" [shape=ellipse, label="{_escape(value.name)}", '
                     f'{"" if len(keys) == 1 else _STYLES[mode].split(", ", 1)[1]}];'.replace(", ];", "];"))
        lines.append(f'  "{_escape(producers.get(value.name, value.name))}" -> "{_escape(identifier)}" '
                     f'[label="{_escape(str(value.type))}"];')
    return lines


def _node_identifier(node: Node) -> str:
    """A stable vertex name shared by both flows for the same op application."""
    op, path, start, end, scope = node_key(node)
    return f"{scope}/{op}@{start}-{end}"


def _presence(node: Node, keys: dict) -> str:
    """`both`, `train` or `infer`: the flows the node appears in."""
    present = [mode for mode, seen in keys.items() if node_key(node) in seen]
    return present[0] if len(present) == 1 and len(keys) > 1 else "both"


def _label(node: Node, parameters: set[str]) -> str:
    """The op, its module path and line, and the parameters it reads."""
    weights = [name.rsplit(".", 1)[-1] for name in node.inputs if name in parameters]
    text = node.op + (f"\\n{node.scope}" if node.scope else "") + f"\\nline {node.span.line}"
    return _escape(text).replace("\\\\n", "\\n") + (f"\\n({_escape(', '.join(weights))})" if weights else "")


def _escape(text: str) -> str:
    """Quote-safe DOT string content."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_svg(dot: str) -> bytes | None:
    """SVG from Graphviz's `dot`, or None when Graphviz is not installed."""
    executable = shutil.which("dot")
    if executable is None:
        return None
    return subprocess.run([executable, "-Tsvg"], input=dot.encode(), capture_output=True, check=True).stdout
