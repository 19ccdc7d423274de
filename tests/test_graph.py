"""`poseir graph`: DOT with types on edges and the train-only parts marked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from poseir.compiler import build
from poseir.backends.graphviz import to_dot

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "simplebaseline.pose")


def test_dot_marks_train_only_nodes_and_types_edges():
    graphs = {mode: build(EXAMPLE, mode=mode)[0] for mode in ("infer", "train")}
    dot = to_dot(graphs)
    assert dot.startswith('digraph "simplebaseline" {') and dot.endswith("}\n")
    train_only = [line for line in dot.splitlines() if "#c0392b" in line and "label=" in line]
    assert any('label="mean' in line for line in train_only), "the loss is drawn as train-only"
    assert not any('label="linear' in line for line in train_only), "shared layers are not"
    assert '[label="f32[B, 1024]"]' in dot
    assert dot == to_dot({mode: build(EXAMPLE, mode=mode)[0] for mode in ("infer", "train")})


def test_cli_writes_dot_and_svg_or_explains(tmp_path):
    dot_path = tmp_path / "model.dot"
    result = subprocess.run([sys.executable, "-m", "poseir", "graph", EXAMPLE, "-o", str(dot_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and dot_path.read_text().startswith("digraph")
    svg = subprocess.run([sys.executable, "-m", "poseir", "graph", EXAMPLE, "-o", str(tmp_path / "m.svg")],
                         capture_output=True, text=True)
    if shutil.which("dot"):
        assert svg.returncode == 0 and "<svg" in (tmp_path / "m.svg").read_text()
    else:
        assert svg.returncode == 2 and "Graphviz" in svg.stderr


# ------------------------------------------------------------------ the drawing equals the IR

import functools
import re

import pytest

from poseir.backends.graphviz import build_drawing, module_calls, write_dot

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.pose"))
_VERTEX = re.compile(r'^\s*"([^"]+)" \[shape=')
_EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" ')


@functools.cache
def _graphs(path: Path) -> dict:
    """Both flows of an example, built once per test session."""
    return {mode: build(str(path), mode=mode)[0] for mode in ("infer", "train")}


def _ir_edges(graph) -> list[tuple[str, str]]:
    """(producer, consumer) for every tensor a node or an output reads that is not a parameter."""
    parameters = {parameter.name for parameter in graph.parameters}
    producer = {value.name: f"input:{value.name}" for value in graph.inputs}
    edges = []
    for node in graph.nodes:
        edges += [(producer[name], node.outputs[0]) for name in node.inputs if name and name not in parameters]
        producer.update({name: node.outputs[0] for name in node.outputs})
    edges += [(producer[value.name], f"output:{value.name}") for value in graph.outputs]
    return edges


def _parse_dot(dot: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The vertex names and edges a DOT file of ours declares."""
    vertices = {match[1] for line in dot.splitlines() if (match := _VERTEX.match(line))}
    edges = [(match[1], match[2]) for line in dot.splitlines() if (match := _EDGE.match(line))]
    return vertices, edges


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_each_flow_draws_exactly_the_ir(path):
    for mode, graph in _graphs(path).items():
        drawing = build_drawing({mode: graph})
        members = drawing.members[mode]
        # One vertex per node (named by its first output), per input and per output: loops never merge.
        vertex_of = {node.outputs[0]: members[node.outputs[0]] for node in graph.nodes}
        assert len(set(vertex_of.values())) == len(graph.nodes)
        terminals = {f"input:{value.name}" for value in graph.inputs} | {f"output:{value.name}" for value in graph.outputs}
        assert set(drawing.vertices) == set(vertex_of.values()) | terminals
        assert all(members[name] == members[node.outputs[0]] for node in graph.nodes for name in node.outputs)
        expected = sorted((vertex_of.get(source, source), vertex_of.get(target, target))
                          for source, target in _ir_edges(graph))
        assert sorted((edge.source, edge.target) for edge in drawing.edges) == expected
        vertices, edges = _parse_dot(write_dot(drawing))
        assert vertices == set(drawing.vertices) and sorted(edges) == expected


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_both_flows_share_matching_nodes_and_keep_the_rest(path):
    graphs = _graphs(path)
    drawing = build_drawing(graphs)
    for mode, graph in graphs.items():
        drawn = {drawing.members[mode][node.outputs[0]] for node in graph.nodes}
        assert len(drawn) == len(graph.nodes), f"two {mode} nodes share a vertex"
        assert all(drawing.vertices[vertex].presence in ("both", mode) for vertex in drawn)
    ops = [vertex for vertex in drawing.vertices.values() if vertex.kind == "op"]
    shared = sum(vertex.presence == "both" for vertex in ops)
    assert len(ops) == len(graphs["infer"].nodes) + len(graphs["train"].nodes) - shared
    vertices, edges = _parse_dot(write_dot(drawing))
    assert vertices == set(drawing.vertices) and len(edges) == len(drawing.edges)


def test_videopose3d_draws_every_loop_iteration_and_every_call_of_a_shared_dropout():
    graph = _graphs(EXAMPLES[[path.stem for path in EXAMPLES].index("videopose3d")])["train"]
    drawing = build_drawing({"train": graph})
    dropouts = [vertex for vertex in drawing.vertices.values() if vertex.label.startswith("dropout")]
    assert len(dropouts) == sum(node.op == "dropout" for node in graph.nodes) > 1
    clusters = {cluster.label for cluster in drawing.clusters.values()}
    assert {"drop", "expand_bn", "layers_bn.3"} <= clusters
    # `self.drop` is one module called after each block: one cluster per call, none nested in another.
    drops = [cluster for cluster in drawing.clusters.values() if cluster.label == "drop"]
    assert len(drops) == len(dropouts) and all(cluster.parent is None for cluster in drops)


def test_module_calls_nest_and_count_repeated_calls():
    from poseir.backends.graphviz import module_chain

    assert module_chain("blocks.0.attn.qkv") == ["blocks.0", "blocks.0.attn", "blocks.0.attn.qkv"]
    assert module_chain("layers.1.0") == ["layers.1.0"] and module_chain("") == []
    graph = _graphs(EXAMPLES[[path.stem for path in EXAMPLES].index("motionbert")])["infer"]
    calls = module_calls(graph)
    qkv = next(around for node, around in zip(graph.nodes, calls) if node.scope == "blocks_st.1.attn_s.qkv")
    assert qkv == ["blocks_st.1#0", "blocks_st.1.attn_s#0", "blocks_st.1.attn_s.qkv#0"]


def test_depth_one_collapses_motionbert_into_boxes_typed_at_their_borders():
    graph = _graphs(EXAMPLES[[path.stem for path in EXAMPLES].index("motionbert")])["infer"]
    drawing = build_drawing({"infer": graph}, depth=1)
    boxes = {vertex.label.split(" ")[0]: vertex for vertex in drawing.vertices.values() if vertex.kind == "module"}
    # The five dual-stream layers are one loop body, drawn once with its count.
    assert {"blocks_st.0", "blocks_ts.0", "ts_attn.0"} <= set(boxes) and "blocks_st.1" not in boxes
    assert not drawing.clusters
    assert boxes["blocks_st.0"].label == "blocks_st.0 (62 ops)\nf32[B*T, 17, 512] -> f32[B*T, 17, 512]\n×5"
    assert boxes["head"].label.endswith("f32[B, T, 17, 512] -> f32[B, T, 17, 3]")
    assert len(drawing.vertices) < 20 < len(graph.nodes)
    # Every IR node is inside exactly one drawn vertex, and no edge runs from a box to itself.
    assert {drawing.members["infer"][node.outputs[0]] for node in graph.nodes} <= set(drawing.vertices)
    assert all(edge.source != edge.target for edge in drawing.edges)
    two = build_drawing({"infer": graph}, depth=2)
    assert {cluster.label for cluster in two.clusters.values()} >= {"blocks_st.0", "blocks_ts.4"}


def test_cli_graph_depth_and_mode(tmp_path):
    output = tmp_path / "mb.dot"
    result = subprocess.run([sys.executable, "-m", "poseir", "graph", str(EXAMPLES[0].parent / "videopose3d.pose"),
                             "--mode", "infer", "--depth", "1", "-o", str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "IR nodes: infer 49" in result.stderr and "#c0392b" not in output.read_text()
    bad = subprocess.run([sys.executable, "-m", "poseir", "graph", str(EXAMPLES[0]), "--depth", "0", "-o",
                          str(output)], capture_output=True, text=True)
    assert bad.returncode == 2 and "positive integer" in bad.stderr
