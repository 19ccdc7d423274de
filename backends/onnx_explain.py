"""Map an ONNX node that poseir wrote back to the `.pose` line it came from (`poseir explain-node`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import onnx

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.diagnostics.render import render_location
from poseir.syntax.source import SourceFile, SourceMap

# The doc_string every exported node carries: `poseir <op> at <path>:<line>:<column>-<line>:<column>`.
_ORIGIN = re.compile(r"poseir (?P<op>\S+) at (?P<path>.+):(?P<line>\d+):(?P<column>\d+)"
                     r"(?:-(?P<end_line>\d+):(?P<end_column>\d+))?$")


@dataclass(frozen=True)
class Origin:
    """Where an ONNX node came from: the poseir op and its DSL position."""

    node: str
    op_type: str
    op: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    sizes_only: bool  # a size computation made for that op, rather than the op itself


def load_model(path: str) -> onnx.ModelProto:
    """The model's graph without its weights; E405 when the file is not a readable ONNX model."""
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as error:  # noqa: BLE001  (any unreadable file is reported, not raised)
        raise DiagnosticError(Diagnostic.make("E405", f"cannot read ONNX model `{path}`: {error}", None))


def find_origin(model: onnx.ModelProto, name: str) -> Origin:
    """The origin of the node called `name` (or producing a value called `name`); E407 when none."""
    for node in model.graph.node:
        if node.name == name or name in node.output:
            match = _ORIGIN.search(node.doc_string)
            if match is None:
                raise DiagnosticError(Diagnostic.make(
                    "E407", f"the node `{node.name}` records no `.pose` location", None,
                    notes=(f"its doc_string is `{node.doc_string}`" if node.doc_string else "it has no doc_string",)))
            line, column = int(match["line"]), int(match["column"])
            end_line = int(match["end_line"] or line)
            end_column = int(match["end_column"] or column + 1)
            return Origin(node.name, node.op_type, match["op"], match["path"], line, column, end_line, end_column,
                          node.doc_string.startswith("size computation"))
    raise DiagnosticError(Diagnostic.make(
        "E407", f"the model has no node `{name}` written by poseir", None,
        helps=("node names look like `expand_conv/Conv_0`; list them with `python -c \"import onnx; "
               "print([n.name for n in onnx.load('MODEL').graph.node])\"`",)))


def explain_node(model_path: str, name: str) -> str:
    """The text `poseir explain-node` prints: the node, its poseir op, and the `.pose` span underlined."""
    origin = find_origin(load_model(model_path), name)
    role = "a size computation for" if origin.sizes_only else "lowered from"
    title = f"{origin.node}: ONNX {origin.op_type}, {role} poseir `{origin.op}`"
    source = _source_file(origin.path, model_path)
    if source is None or origin.line > source.line_count:
        return (f"{title}\n  --> {origin.path}:{origin.line}:{origin.column}\n"
                f"  = note: `{origin.path}` is not readable from here, so its line is not shown\n")
    start = source.line_starts[origin.line - 1] + origin.column - 1
    end_line = min(origin.end_line, source.line_count)
    end = source.line_starts[end_line - 1] + origin.end_column - 1
    span = source.span(start, max(start, min(end, len(source.text))))
    return render_location(title, span, "", SourceMap([source]))


def _source_file(path: str, model_path: str) -> SourceFile | None:
    """The `.pose` file, found as recorded or next to the model file."""
    for candidate in (Path(path), Path(model_path).parent / path):
        try:
            return SourceFile(path, candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return None
