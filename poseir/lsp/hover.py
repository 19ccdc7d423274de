"""What the language server shows on hover: inferred types of locals, docs of declarations and ops, dims."""

from __future__ import annotations

from dataclasses import dataclass

from poseir.elaborate.builtins import FUNCTIONS, SKELETONS
from poseir.elaborate.program import PRELUDE_PATH
from poseir.ir.dims import Dim
from poseir.lsp import symbols as kinds
from poseir.lsp.documents import CheckedDocument
from poseir.lsp.render import describe
from poseir.lsp.signatures import op_signature
from poseir.ops.registry import lookup
from poseir.syntax import ast
from poseir.syntax.source import Span


@dataclass(frozen=True)
class HoverText:
    """Markdown to show and the character offsets (end exclusive) of the word it describes."""

    markdown: str
    start: int
    end: int


def hover(document: CheckedDocument, offset: int) -> HoverText | None:
    """The hover for the name at `offset` of the document, if there is one."""
    occurrence = document.index.at(document.path, offset)
    if occurrence is None:
        return None
    symbol = occurrence.symbol
    handler = _HANDLERS.get(symbol.kind)
    markdown = handler(document, occurrence) if handler else None
    return HoverText(markdown, occurrence.span.start, occurrence.span.end) if markdown else None


# ------------------------------------------------------------------ locals and inputs


def _local(document: CheckedDocument, occurrence) -> str | None:
    """A forward input or local: its type in every model, flow and instance that ran the code."""
    symbol = occurrence.symbol
    definitions = [occurrence] if occurrence.definition else document.index.definitions(occurrence)
    lines: list[tuple[str, str]] = []
    for found in definitions:
        for binding, (model, mode) in document.bindings(_binding_span(document, found.span), symbol.name):
            text = describe(binding.value)
            if text is not None:
                lines.append((text, binding.path or model))
    role = "in the signature" if symbol.kind == kinds.PARAMETER else "local"
    where = _enclosing(document, occurrence.span)
    role = f"{role} of `{where}`" if where else role
    if not lines:
        declared = _declared_type(document, definitions)
        if declared:
            return _code(f"{symbol.name}: {declared}") + f"\n\n{role} (declared; not run by any model)"
        return _code(symbol.name) + f"\n\n{role}; no model runs this code"
    return _typed(symbol.name, lines, role)


def _binding_span(document: CheckedDocument, name: Span) -> Span:
    """Where the elaborator keyed a name's bindings: its target, or the `for` loop of a loop variable."""
    if document.bindings(name):
        return name
    loops = [node for node in _nodes_at(document, name) if isinstance(node, ast.For)]
    return loops[-1].span if loops else name


def _typed(name: str, lines: list[tuple[str, str]], role: str) -> str:
    """One line per distinct type, with the instance when they differ."""
    distinct = list(dict.fromkeys(text for text, _ in lines))
    if len(distinct) == 1:
        return _code(f"{name}: {distinct[0]}") + f"\n\n{role}"
    shown = list(dict.fromkeys(f"{name}: {text}  # {instance}" for text, instance in lines))
    more = f"\n\n…and {len(shown) - 12} more" if len(shown) > 12 else ""
    return _code("\n".join(shown[:12])) + f"\n\n{role}, one type per instance or iteration{more}"


def _declared_type(document: CheckedDocument, definitions) -> str | None:
    """The type annotation written on a forward input, if any."""
    for found in definitions:
        for node in _nodes_at(document, found.span):
            if isinstance(node, ast.ForwardParam) and node.type is not None:
                return _tidy(document.text[node.type.span.start:node.type.span.end])
    return None


def _enclosing(document: CheckedDocument, span: Span) -> str | None:
    """`Module.forward` or `Module` around a span of the document."""
    if span.path != document.path:
        return None
    for item in document.compilation.program.entry.tree.items:
        if isinstance(item, ast.ModuleDecl) and item.span.start <= span.start <= item.span.end:
            for node in walk(item):
                if isinstance(node, ast.Forward) and node.span.start <= span.start <= node.span.end:
                    return f"{item.name}.forward" + (f" {node.mode}" if node.mode else "")
            return item.name
    return None


# ------------------------------------------------------------------ attributes, hyper-parameters


def _attribute(document: CheckedDocument, occurrence) -> str | None:
    """`self.x`: how the body defines it and what it holds in each instance."""
    definitions = document.index.definitions(occurrence)
    if not definitions:
        return None
    found = definitions[0]
    lines = [(describe(binding.value), binding.path or model)
             for binding, (model, _) in document.bindings(_target_span(document, found.span), occurrence.symbol.name)]
    statement = _statement_text(document, found.span)
    parts = [_code(statement)] if statement else []
    distinct = list(dict.fromkeys(text for text, _ in lines if text))
    if distinct and not (len(distinct) == 1 and distinct[0].endswith("(...)")):
        parts.append(_typed(f"self.{occurrence.symbol.name}", [line for line in lines if line[0]], "attribute"))
    return "\n\n".join(parts) or None


def _target_span(document: CheckedDocument, name: Span) -> Span:
    """The span of the `self.x` target whose name is at `name` (bindings are keyed by target)."""
    for node in _nodes_at(document, name):
        if isinstance(node, ast.Target):
            return node.span
    return name


def _statement_text(document: CheckedDocument, name: Span) -> str | None:
    """The assignment that defines `self.x`, on one line."""
    source = document.source(name.path)
    for node in _nodes_at(document, name):
        if isinstance(node, ast.Assign):
            return _tidy(source.text[node.span.start:node.span.end])
    return None


def _hyper(document: CheckedDocument, occurrence) -> str | None:
    """A hyper-parameter: its declaration."""
    definitions = document.index.definitions(occurrence)
    for found in definitions:
        for node in _nodes_at(document, found.span):
            if isinstance(node, ast.HyperParam):
                source = document.source(found.span.path)
                return _code(_tidy(source.text[node.span.start:node.span.end])) + "\n\nhyper-parameter"
    return None


# ------------------------------------------------------------------ dims


def _dim(document: CheckedDocument, occurrence) -> str | None:
    """A dim: where it is declared, where each model binds it, its facts, its value at each call."""
    name = occurrence.symbol.name
    parts = [_code(f"dim {name}")]
    graphs = document.compilation.graphs
    bound = sorted({(str(span), key[0]) for key, graph in graphs.items() for symbol, span in graph.symbols
                    if symbol == name})
    if bound:
        parts.append("bound by the model input at " + ", ".join(f"`{span}` ({model})" for span, model in bound))
    facts = sorted({fact for graph in graphs.values() for fact in graph.facts.describe() if _mentions(fact, name)})
    if facts:
        parts.append("facts: " + ", ".join(f"`{fact}`" for fact in facts))
    calls = _pattern_bindings(document, occurrence.span, name)
    if calls:
        values = list(dict.fromkeys(f"{name} = {text}  # {instance}" for text, instance in calls))
        parts.append("bound at each call of this forward:\n" + _code("\n".join(values[:12])))
    if len(parts) == 1:
        parts.append("a symbolic dim; in a module's forward it is bound at each call")
    return "\n\n".join(parts)


def _pattern_bindings(document: CheckedDocument, span: Span, name: str) -> list[tuple[str, str]]:
    """The values a pattern dim took in the forward around `span`, per instance."""
    if span.path != document.path:
        return []
    found = []
    for node in walk(document.compilation.program.entry.tree):
        if isinstance(node, ast.Forward) and node.span.start <= span.start <= node.span.end:
            for binding, (model, _) in document.bindings(node.span, name):
                if isinstance(binding.value, (Dim, int)):
                    found.append((str(binding.value), binding.path or model))
    return found


def _mentions(fact: str, name: str) -> bool:
    """Whether a fact's text names the dim."""
    import re

    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", fact) is not None


# ------------------------------------------------------------------ ops, built-ins, declarations


def _op(document: CheckedDocument, occurrence) -> str | None:
    """An op of the registry: its signature, doc and train/inference behaviour."""
    op = lookup(occurrence.symbol.name)
    if op is None:
        return None
    parts = [_code(op_signature(op, occurrence.symbol.name)), op.doc or ""]
    if op.behaviour != "same in both modes":
        parts.append(f"modes: {op.behaviour}")
    if op.modes != ("train", "infer"):
        parts.append(f"only in {' and '.join(op.modes)}")
    return "\n\n".join(part for part in parts if part)


def _function(document: CheckedDocument, occurrence) -> str | None:
    """A compile-time built-in function."""
    name = occurrence.symbol.name
    doc = FUNCTIONS[name][1] if name in FUNCTIONS else "Sequential(m1, m2, ...): apply modules in order"
    return _code(name) + f"\n\ncompile-time built-in: {doc}"


def _joint(document: CheckedDocument, occurrence) -> str | None:
    """A skeleton joint: its index."""
    symbol = occurrence.symbol
    skeleton_key = symbol.key[1]
    skeleton = SKELETONS.get(skeleton_key[2]) if skeleton_key[1] == "<builtin>" else None
    if skeleton is not None and symbol.name in skeleton.joints:
        return _code(f"{skeleton.name}.{symbol.name} = {skeleton.joints.index(symbol.name)}") + "\n\njoint index"
    joints = [found for found in document.index.of(symbol.key) if found.definition]
    for found in joints:
        names = [other.symbol.name for other in document.index.occurrences[found.span.path]
                 if other.definition and other.symbol.kind == kinds.JOINT and other.symbol.key[1] == skeleton_key]
        return _code(f"{skeleton_key[2]}.{symbol.name} = {names.index(symbol.name)}") + "\n\njoint index"
    return None


def _skeleton_field(document: CheckedDocument, occurrence) -> str | None:
    """`h36m.J`, `h36m.flip` and friends."""
    meaning = {"J": "the joint count", "flip": "the left/right exchange permutation", "left": "left joint indices",
               "right": "right joint indices", "edges": "(child, parent) pairs", "parents": "parent of each joint",
               "joints": "joint names"}
    return _code(occurrence.symbol.name) + f"\n\nskeleton field: {meaning[occurrence.symbol.name]}"


def _declaration(document: CheckedDocument, occurrence) -> str | None:
    """Signature and doc comment of a module, model, constant or skeleton."""
    _, path, name = occurrence.symbol.key
    if path == "<builtin>":
        skeleton = SKELETONS[name]
        return _code(f"skeleton {name}") + f"\n\nbuilt-in skeleton, {skeleton.J} joints: " + ", ".join(skeleton.joints)
    tree = _tree(document, path)
    declaration = next((item for item in tree.items if getattr(item, "name", None) == name), None) if tree else None
    if declaration is None:
        return None
    source = document.source(path).text
    parts = [_code(_signature(declaration, source))]
    if declaration.doc:
        parts.append(declaration.doc)
    if path == PRELUDE_PATH:
        parts.append("built-in layer")
    return "\n\n".join(parts)


def _tree(document: CheckedDocument, path: str) -> ast.File | None:
    """The surface tree of a file of the program (the prelude's included)."""
    program = document.compilation.program
    if path in program.units:
        return program.units[path].tree
    from poseir.lsp.resolve import prelude_unit

    unit = prelude_unit(program)
    return unit.tree if unit is not None and path == PRELUDE_PATH else None


def _signature(declaration: ast.Node, source: str) -> str:
    """The declaration's header as the user wrote it, whitespace tidied."""
    if isinstance(declaration, ast.ModuleDecl):
        hyper = ", ".join(_tidy(source[parameter.span.start:parameter.span.end]) for parameter in declaration.hyper_params)
        lines = [f"module {declaration.name}({hyper})"]
        for node in walk(declaration):
            if isinstance(node, ast.Forward):
                brace = source.find("{", node.span.start, node.span.end)
                lines.append("    " + _tidy(source[node.span.start:brace if brace >= 0 else node.span.end]))
        return "\n".join(lines)
    if isinstance(declaration, ast.ModelDecl):
        return f"model {declaration.name} = {_tidy(source[declaration.value.span.start:declaration.value.span.end])}"
    if isinstance(declaration, ast.ConstDecl):
        return f"{declaration.name} = {_tidy(source[declaration.value.span.start:declaration.value.span.end])}"
    return f"skeleton {declaration.name}"


_HANDLERS = {
    kinds.LOCAL: _local, kinds.PARAMETER: _local, kinds.ATTRIBUTE: _attribute, kinds.HYPER: _hyper,
    kinds.DIM: _dim, kinds.OP: _op, kinds.FUNCTION: _function, kinds.JOINT: _joint,
    kinds.SKELETON_FIELD: _skeleton_field, kinds.MODULE: _declaration, kinds.MODEL: _declaration,
    kinds.CONSTANT: _declaration, kinds.SKELETON: _declaration,
}


# ------------------------------------------------------------------ tree helpers


def walk(node):
    """The node and every surface node below it, in field order."""
    yield node
    for name in getattr(node, "__dataclass_fields__", {}):
        if name != "span":
            yield from _walk_value(getattr(node, name))





def _walk_value(value):
    if isinstance(value, ast.Node):
        yield from walk(value)
    elif isinstance(value, tuple):
        for item in value:
            yield from _walk_value(item)


def _nodes_at(document: CheckedDocument, span: Span):
    """Surface nodes of the span's file that contain the span, outermost first."""
    tree = _tree(document, span.path)
    if tree is None:
        return []
    return [node for node in walk(tree) if node.span.path == span.path
            and node.span.start <= span.start and span.end <= node.span.end]


def _tidy(text: str) -> str:
    """Collapse line breaks and indentation to single spaces."""
    tidied = " ".join(text.split())
    return tidied.replace("( ", "(").replace(" )", ")").replace("[ ", "[").replace(" ]", "]")


def _code(text: str) -> str:
    return f"```pose\n{text}\n```"
