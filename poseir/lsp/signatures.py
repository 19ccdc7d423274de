"""Signatures of ops, modules and forwards as editors show them (hover, completion, signature help)."""

from __future__ import annotations

from dataclasses import dataclass

from poseir.ops.registry import ATTR, KEYWORDS, OPTIONAL_TENSOR, REQUIRED, TENSORS, VARIADIC, OpDef
from poseir.syntax import ast


@dataclass(frozen=True)
class Signature:
    """A callable's label, its parameters' labels and its documentation."""

    label: str
    parameters: tuple[str, ...]
    doc: str = ""


def op_parameters(op: OpDef) -> tuple[str, ...]:
    """Each parameter of an op as written in a call: `x`, `dim = -1`, `*shape`, `**sizes`."""
    labels = []
    for param in op.signature:
        if param.kind == VARIADIC:
            labels.append(f"*{param.name}")
        elif param.kind == KEYWORDS:
            labels.append(f"**{param.name}")
        elif param.kind == OPTIONAL_TENSOR:
            labels.append(f"{param.name} = none")
        elif param.kind == TENSORS:
            labels.append(f"{param.name}: list")
        elif param.kind == ATTR and param.default is not REQUIRED:
            labels.append(f"{param.name} = {_literal(param.default)}")
        else:
            labels.append(param.name)
    return tuple(labels)


def op_signature(op: OpDef, name: str | None = None, method: bool = False) -> str:
    """`softmax(x, dim = -1)`, or `x.softmax(dim = -1)` for a method call."""
    parameters = op_parameters(op)
    if method:
        return f"{op.signature[0].name}.{name or op.name}({', '.join(parameters[1:])})"
    return f"{name or op.name}({', '.join(parameters)})"


def op_help(op: OpDef, name: str, method: bool) -> Signature:
    """Signature help for an op called as a function or as a method."""
    parameters = op_parameters(op)[1:] if method else op_parameters(op)
    return Signature(op_signature(op, name, method), parameters, op.doc)


def module_help(module: ast.ModuleDecl, source: str) -> Signature:
    """Signature help for creating a module: its hyper-parameters."""
    parameters = tuple(_tidy(source[parameter.span.start:parameter.span.end]) for parameter in module.hyper_params)
    return Signature(f"{module.name}({', '.join(parameters)})", parameters, module.doc or "")


def forward_help(module: ast.ModuleDecl, source: str, attribute: str) -> Signature | None:
    """Signature help for calling a module instance (`self.block(x)`): its first forward's inputs."""
    for statement in module.body:
        if isinstance(statement, ast.Forward):
            parameters = tuple(_tidy(source[parameter.span.start:parameter.span.end]) for parameter in statement.params)
            outputs = ""
            if statement.outputs:
                outputs = " -> (" + ", ".join(_tidy(source[output.span.start:output.span.end])
                                              for output in statement.outputs) + ")"
            return Signature(f"self.{attribute}({', '.join(parameters)}){outputs}", parameters,
                             f"forward of `{module.name}`" + (f"\n\n{module.doc}" if module.doc else ""))
    return None


def _literal(value) -> str:
    """A default value as the language spells it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return str(value)


def _tidy(text: str) -> str:
    """Collapse line breaks and indentation to single spaces."""
    return " ".join(text.split())
