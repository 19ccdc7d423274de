"""What the language server shows on hover: doc comments, signatures and inferred tensor types."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from poseir.syntax import ast
from poseir.compiler import Compilation
from poseir.elaborate.program import Program
from poseir.syntax.source import Span


@dataclass(frozen=True)
class HoverText:
    """Markdown to show and the character offsets (end exclusive) of the word it describes."""

    markdown: str
    start: int
    end: int


def hover(program: Program, compilation: Compilation, offset: int) -> HoverText | None:
    """The hover for the character at `offset` of the program's entry file, if there is one."""
    text = program.sources[program.entry.path].text
    word = word_at(text, offset)
    if word is None:
        return None
    name, start, end = word
    markdown = _local_hover(program, compilation, name, offset)
    if markdown is None:
        markdown = _declaration_hover(program, name)
    return HoverText(markdown, start, end) if markdown else None


def word_at(text: str, offset: int) -> tuple[str, int, int] | None:
    """The identifier touching `offset` as (word, start, end), or None."""
    start = end = offset
    while start > 0 and _is_word(text[start - 1]):
        start -= 1
    while end < len(text) and _is_word(text[end]):
        end += 1
    word = text[start:end]
    if not word or word[0].isdigit():
        return None
    return word, start, end


def _is_word(character: str) -> bool:
    return character.isascii() and (character.isalnum() or character == "_")


# ------------------------------------------------------------------ declarations


def _declaration_hover(program: Program, name: str) -> str | None:
    """Signature and doc comment of the module, model, constant or skeleton called `name`."""
    declaration = _find_declaration(program, name)
    if declaration is None:
        return None
    source = program.sources[declaration.span.path].text
    parts = [_code_block(_signature(declaration, source))]
    if declaration.doc:
        parts.append(declaration.doc)
    return "\n\n".join(parts)


def _find_declaration(program: Program, name: str) -> ast.Node | None:
    """Look in the entry file, then in what its scope sees (imports, prelude), then in every file."""
    found = _declared_in(program.entry.tree, name)
    if found is not None:
        return found
    try:
        value = program.entry.scope.lookup(name)
    except KeyError:
        value = None
    declaration = getattr(value, "declaration", None)
    if isinstance(declaration, ast.ModuleDecl):
        return declaration
    for path in sorted(program.units):
        found = _declared_in(program.units[path].tree, name)
        if found is not None:
            return found
    return None


_DECLARATIONS = (ast.ModuleDecl, ast.ModelDecl, ast.ConstDecl, ast.SkeletonDecl)


def _declared_in(tree: ast.File, name: str) -> ast.Node | None:
    """The top-level declaration of `name` in one file."""
    for item in tree.items:
        if isinstance(item, _DECLARATIONS) and item.name == name:
            return item
    return None


def _signature(declaration: ast.Node, source: str) -> str:
    """The declaration's header as the user wrote it, whitespace tidied."""
    if isinstance(declaration, ast.ModuleDecl):
        hyper = ", ".join(_tidy(_text(source, parameter.span)) for parameter in declaration.hyper_params)
        lines = [f"module {declaration.name}({hyper})"]
        lines.extend("    " + _forward_header(forward, source) for forward in _forwards(declaration))
        return "\n".join(lines)
    if isinstance(declaration, ast.ModelDecl):
        return f"model {declaration.name} = {_tidy(_text(source, declaration.value.span))}"
    if isinstance(declaration, ast.ConstDecl):
        return f"{declaration.name} = {_tidy(_text(source, declaration.value.span))}"
    return f"skeleton {declaration.name}"


def _forwards(module: ast.ModuleDecl) -> list[ast.Forward]:
    """The module's forwards, in source order."""
    return [node for node in walk(module) if isinstance(node, ast.Forward)]


def _forward_header(forward: ast.Forward, source: str) -> str:
    """`forward(x: f32[B, T]) -> (y: f32[B, T])`: the text before the body's brace."""
    brace = source.find("{", forward.span.start, forward.span.end)
    return _tidy(source[forward.span.start:brace if brace >= 0 else forward.span.end])


def _text(source: str, span: Span) -> str:
    return source[span.start:span.end]


def _tidy(text: str) -> str:
    """Collapse line breaks and indentation to single spaces."""
    tidied = " ".join(text.split())
    return tidied.replace("( ", "(").replace(" )", ")").replace("[ ", "[").replace(" ]", "]")


def _code_block(text: str) -> str:
    return f"```pose\n{text}\n```"


# ------------------------------------------------------------------ tensor types in a forward


def _local_hover(program: Program, compilation: Compilation, name: str, offset: int) -> str | None:
    """The tensor type of a forward input, output or local named `name` under the cursor."""
    found = _enclosing_forward(program.entry.tree, offset)
    if found is None:
        return None
    module, forward = found
    source = program.sources[program.entry.path].text
    where = f"`{module.name}.forward`"
    for parameter in forward.params:
        if parameter.name == name and _contains(parameter.span, offset):
            return _format(name, _input_types(compilation, parameter), _declared(source, parameter),
                           f"input of {where}")
    for output in forward.outputs or ():
        if output.name == name and _contains(output.span, offset):
            return _format(name, _output_types(compilation, forward, name), _declared(source, output),
                           f"output of {where}")
    for assign, _ in _assignments(forward.body):
        for index, target in enumerate(assign.targets):
            if target.name == name and not target.on_self and _contains(target.span, offset):
                return _format(name, _assigned_types(compilation, forward, assign, index),
                               _annotation(source, assign), f"local in {where}")
    if not any(isinstance(node, ast.Name) and node.id == name and _contains(node.span, offset)
               for node in walk(forward)):
        return None
    return _reference_hover(compilation, forward, name, offset, (source, where))


def _reference_hover(compilation: Compilation, forward: ast.Forward, name: str, offset: int,
                     context: tuple[str, str]) -> str | None:
    """A use of a name: the types of the assignments that can reach it, or of the input."""
    source, where = context
    bindings = _reaching_assignments(forward, name, offset)
    if bindings:
        types: list[tuple[str, str]] = []
        for assign, index in bindings:
            types.extend(_assigned_types(compilation, forward, assign, index))
        return _format(name, types, None, f"local in {where}")
    for parameter in forward.params:
        if parameter.name == name:
            return _format(name, _input_types(compilation, parameter), _declared(source, parameter),
                           f"input of {where}")
    return None


def _reaching_assignments(forward: ast.Forward, name: str, offset: int) -> list[tuple[ast.Assign, int]]:
    """The last assignment to `name` before `offset`, plus any in a loop around `offset`."""
    before: list[tuple[ast.Assign, int]] = []
    in_loop: list[tuple[ast.Assign, int]] = []
    for assign, loops in _assignments(forward.body):
        for index, target in enumerate(assign.targets):
            if target.name != name or target.on_self:
                continue
            if assign.span.end <= offset:
                before.append((assign, index))
            if any(_contains(loop.span, offset) for loop in loops):
                in_loop.append((assign, index))
    nearest = [max(before, key=lambda binding: binding[0].span.start)] if before else []
    return nearest + [binding for binding in in_loop if binding not in nearest]


def _assigned_types(compilation: Compilation, forward: ast.Forward, assign: ast.Assign, index: int,
                    depth: int = 0) -> list[tuple[str, str]]:
    """Types of the value an assignment gives its target number `index`, one per elaborated instance."""
    value, output = assign.value, index
    if isinstance(value, ast.TupleExpr) and len(value.items) == len(assign.targets):
        value, output = value.items[index], 0
    if isinstance(value, ast.Name) and depth < 8:
        types: list[tuple[str, str]] = []
        for binding, position in _reaching_assignments(forward, value.id, value.span.start):
            types.extend(_assigned_types(compilation, forward, binding, position, depth + 1))
        return types or _input_types_by_name(compilation, forward, value.id)
    return _node_types(compilation, value.span, output)


def _node_types(compilation: Compilation, span: Span, output: int) -> list[tuple[str, str]]:
    """The type of output `output` of each evaluation of the expression at `span`, in every graph."""
    types = []
    for key in sorted(compilation.graphs):
        graph = compilation.graphs[key]
        for node in _last_of_each_run(graph.nodes, span):
            if output < len(node.outputs):
                types.append((str(graph.values[node.outputs[output]].type), node.scope or key[0]))
    return types


def _last_of_each_run(nodes, span: Span) -> Iterator:
    """Nodes made by one evaluation of an expression share its span; the last one holds its result."""
    previous = None
    for node in nodes:
        matches = _same_span(node.span, span)
        if previous is not None and not matches:
            yield previous
        previous = node if matches else None
    if previous is not None:
        yield previous


def _input_types(compilation: Compilation, parameter: ast.ForwardParam) -> list[tuple[str, str]]:
    """A model input's type in every graph it appears in (nothing for inputs of inner modules)."""
    types = []
    for key in sorted(compilation.graphs):
        for value in compilation.graphs[key].inputs:
            if _same_start(value.span, parameter.span):
                types.append((str(value.type), key[0]))
    return types


def _input_types_by_name(compilation: Compilation, forward: ast.Forward, name: str) -> list[tuple[str, str]]:
    for parameter in forward.params:
        if parameter.name == name:
            return _input_types(compilation, parameter)
    return []


def _output_types(compilation: Compilation, forward: ast.Forward, name: str) -> list[tuple[str, str]]:
    """A model output's inferred type, when `forward` is the forward of a model's root module."""
    types = []
    for key in sorted(compilation.graphs):
        graph = compilation.graphs[key]
        is_root = any(_same_start(value.span, parameter.span) for value in graph.inputs for parameter in forward.params)
        if is_root:
            types.extend((str(value.type), key[0]) for value in graph.outputs if value.name == name)
    return types


def _format(name: str, types: list[tuple[str, str]], declared: str | None, role: str) -> str | None:
    """One line per distinct type (with the instance when they differ), or the declared type."""
    distinct = list(dict.fromkeys(type_text for type_text, _ in types))
    if len(distinct) == 1:
        return _code_block(f"{name}: {distinct[0]}") + f"\n\n{role}"
    if distinct:
        lines = list(dict.fromkeys(f"{name}: {type_text}  # {instance}" for type_text, instance in types))
        return _code_block("\n".join(lines)) + f"\n\n{role}, one type per instance"
    if declared:
        return _code_block(f"{name}: {declared}") + f"\n\n{role} (declared; its dims bind at each call)"
    return None


def _annotation(source: str, assign: ast.Assign) -> str | None:
    """The type an assignment declares for its target, as written."""
    return _tidy(_text(source, assign.annotation.span)) if assign.annotation is not None else None


def _declared(source: str, parameter: ast.ForwardParam) -> str | None:
    """The type annotation of a forward input or output, as written."""
    return _tidy(_text(source, parameter.type.span)) if parameter.type is not None else None


# ------------------------------------------------------------------ tree helpers


def walk(node: ast.Node) -> Iterator[ast.Node]:
    """The node and every surface node below it, in field order."""
    yield node
    for field in dataclasses.fields(node):
        yield from _walk_value(getattr(node, field.name))


def _walk_value(value) -> Iterator[ast.Node]:
    if isinstance(value, ast.Node):
        yield from walk(value)
    elif isinstance(value, tuple):
        for item in value:
            yield from _walk_value(item)


def _enclosing_forward(tree: ast.File, offset: int) -> tuple[ast.ModuleDecl, ast.Forward] | None:
    """The module and forward whose text holds `offset`."""
    for item in tree.items:
        if isinstance(item, ast.ModuleDecl) and _contains(item.span, offset):
            for forward in _forwards(item):
                if _contains(forward.span, offset):
                    return item, forward
    return None


def _assignments(body: tuple, loops: tuple = ()) -> Iterator[tuple[ast.Assign, tuple]]:
    """Every assignment in a body with the `for` loops around it, in source order."""
    for statement in body:
        if isinstance(statement, ast.Assign):
            yield statement, loops
        elif isinstance(statement, ast.For):
            yield from _assignments(statement.body, (*loops, statement))
        elif isinstance(statement, ast.ModeBlock):
            yield from _assignments(statement.body, loops)
        elif isinstance(statement, ast.If):
            for _, branch in statement.branches:
                yield from _assignments(branch, loops)
            yield from _assignments(statement.otherwise or (), loops)


def _contains(span: Span, offset: int) -> bool:
    return span.start <= offset <= span.end


def _same_span(left: Span, right: Span) -> bool:
    return left.path == right.path and left.start == right.start and left.end == right.end


def _same_start(left: Span, right: Span) -> bool:
    return left.path == right.path and left.start == right.start
