"""Parameter folding: once the weights are known, compute the nodes that read only parameters and constants.

Batch-norm folding leaves nodes such as `W * γ / sqrt(σ² + ε)` that depend on the weights but
never on the inputs. A backend binding weights evaluates them once here: their results become
parameters of their own (named by the value they replace), and the parameters nothing reads any
more are dropped, so an exported file holds the folded weights instead of both. This needs the
weights, so it is not one of the pipeline's graph-only passes; the ONNX backend runs it when it
writes initializers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from poseir.ir.graph import Graph, Parameter, freeze_values
from poseir.ops.registry import RunContext, lookup
from poseir.passes.rewrite import concrete_attributes, has_symbolic_attribute


def fold_parameters(graph: Graph, weights: dict[str, np.ndarray]) -> tuple[Graph, dict[str, np.ndarray]]:
    """The graph without its parameter-only nodes, and its weights: the ones it still reads and the folded values.

    Weights only folded nodes read are left out, so a caller that keeps the result and drops its own
    dict holds each weight once (the folded convolution, not also the one it came from).
    """
    known = {parameter.name: np.asarray(weights[parameter.name]) for parameter in graph.parameters}
    computed: dict[str, np.ndarray] = {}
    context = RunContext(graph.mode, np.random.default_rng(0))
    nodes = []
    for node in graph.nodes:
        if _parameter_only(node, known, computed):
            results = [np.asarray(result) for result in lookup(node.op).run(
                context, [known.get(name, computed.get(name)) if name else None for name in node.inputs],
                concrete_attributes(node))]
            if _as_declared(graph, node, results):
                computed.update(zip(node.outputs, results))
                if node.op != "constant":
                    continue  # a constant stays a constant where inputs read it; the rest become weights
        nodes.append(node)
    if all(node.op == "constant" for node in graph.nodes if node not in nodes):
        if len(nodes) == len(graph.nodes):
            return graph, weights
    nodes = _without_unread_constants(nodes, graph)
    folded = {name: value for name, value in computed.items() if name not in _made(nodes)}
    names = _folded_names(graph, folded, _weight_sources(graph, folded))
    rebuilt = _rebuilt(graph, nodes, folded, names)
    values = {**weights, **{names[name]: value for name, value in folded.items()}}
    return rebuilt, {parameter.name: values[parameter.name] for parameter in rebuilt.parameters}


def _weight_sources(graph: Graph, folded: dict) -> dict:
    """For each folded value, the first weight it was computed from."""
    parameters = {parameter.name for parameter in graph.parameters}
    sources: dict = {}
    for node in graph.nodes:
        for output in node.outputs:
            if output in folded:
                origin = next((sources.get(name, name) for name in node.inputs
                               if name in parameters or name in sources), None)
                if origin is not None:
                    sources[output] = origin
    return sources


def _made(nodes: list) -> set[str]:
    """The values the kept nodes define."""
    return {name for node in nodes for name in node.outputs}


def _without_unread_constants(nodes: list, graph: Graph) -> list:
    """Drop constants that only fed folded nodes."""
    read = {name for node in nodes for name in node.inputs} | {value.name for value in graph.outputs}
    return [node for node in nodes if node.op != "constant" or any(name in read for name in node.outputs)]


def _as_declared(graph: Graph, node, results: list) -> bool:
    """Whether the computed arrays have the node's declared shapes (weights of another configuration do not)."""
    return all(tuple(array.shape) == tuple(size.value for size in graph.values[name].type.shape)
               for name, array in zip(node.outputs, results))


def _parameter_only(node, known: dict, computed: dict) -> bool:
    """A deterministic node whose every input is a parameter or an already folded value (or a constant)."""
    if node.op in ("dropout", "drop_path") or has_symbolic_attribute(node):
        return False
    if node.op == "constant":
        return True
    return bool(node.inputs) and all(not name or name in known or name in computed for name in node.inputs)


def _rebuilt(graph: Graph, nodes: list, computed: dict, names: dict) -> Graph:
    """New parameters for the folded values that nodes still read (named by `names`); unread parameters dropped."""
    nodes = [replace(node, inputs=tuple(names.get(name, name) for name in node.inputs)) for node in nodes]
    read = {name for node in nodes for name in node.inputs} | {value.name for value in graph.outputs}
    kept = [parameter for parameter in graph.parameters if parameter.name in read]
    folded = [Parameter(names[name], graph.values[name].type, "buffer", ("folded",), graph.values[name].span)
              for name in computed if names[name] in read]
    parameters = tuple(kept + folded)
    defined = {value.name for value in graph.inputs} | {parameter.name for parameter in kept}
    defined |= {name for node in nodes for name in node.outputs}
    values = {name: value for name, value in graph.values.items() if name in defined}
    values.update({parameter.name: replace(graph.values[old], name=parameter.name)
                   for old, parameter in zip([name for name in computed if names[name] in read], folded)})
    return replace(graph, nodes=tuple(nodes), parameters=parameters, values=freeze_values(values))


def _folded_names(graph: Graph, computed: dict, sources: dict) -> dict:
    """`gconv.W/select`: each folded value named after the weight it comes from and the op that made it."""
    names: dict = {}
    used = {parameter.name for parameter in graph.parameters}
    for name in computed:
        base = f"{sources.get(name, 'folded')}/{name.split('_')[0].split('.')[0]}"
        candidate, number = base, 1
        while candidate in used:
            candidate, number = f"{base}_{number}", number + 1
        used.add(candidate)
        names[name] = candidate
    return names
