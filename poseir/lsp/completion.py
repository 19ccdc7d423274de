"""Completion (ops, layers, tensor methods, `self.` members, dims, keywords) and signature help.

Both read the text before the cursor as it is now (it rarely parses mid-word) and the names of
the last check that parsed, found through `Context`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types

from poseir.elaborate.builtins import FUNCTIONS, SKELETONS
from poseir.lsp import symbols as kinds
from poseir.lsp.documents import CheckedDocument
from poseir.lsp.hover import _tree
from poseir.lsp.signatures import Signature, forward_help, module_help, op_help, op_signature
from poseir.ops.registry import all_ops, lookup
from poseir.syntax import ast

KEYWORDS = ("dim", "model", "module", "import", "as", "skeleton", "forward", "return", "for", "in", "if", "elif",
            "else", "train", "infer", "param", "buffer", "assert", "where", "self", "true", "false", "none", "and",
            "or", "not", "f32", "f16", "f64", "i64", "i32", "bool")
_ITEM_KINDS = {
    kinds.MODULE: types.CompletionItemKind.Class, kinds.MODEL: types.CompletionItemKind.Variable,
    kinds.CONSTANT: types.CompletionItemKind.Constant, kinds.SKELETON: types.CompletionItemKind.Struct,
    kinds.DIM: types.CompletionItemKind.TypeParameter, kinds.HYPER: types.CompletionItemKind.Property,
    kinds.LOCAL: types.CompletionItemKind.Variable, kinds.PARAMETER: types.CompletionItemKind.Variable,
    kinds.ALIAS: types.CompletionItemKind.Module, kinds.ATTRIBUTE: types.CompletionItemKind.Field,
}
_SKELETON_FIELDS = ("J", "flip", "left", "right", "edges", "parents", "joints")


@dataclass(frozen=True)
class Context:
    """Where the cursor is: the text before it, and the same place in the checked document."""

    text: str  # the current text up to the cursor
    document: CheckedDocument  # the last check that parsed
    offset: int  # the cursor's offset in that check's text (nearest unchanged line)


# ------------------------------------------------------------------ completion


def complete(context: Context) -> list[types.CompletionItem]:
    """Completion items for the word being typed at the cursor."""
    prefix = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", context.text)
    before = context.text[:prefix.start()] if prefix else context.text
    if before.endswith("."):
        receiver = re.search(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\.$", before)
        return _members(context, receiver.group(1) if receiver else None)
    return _names(context)


def _members(context: Context, receiver: str | None) -> list[types.CompletionItem]:
    """After a dot: `self.` members, a skeleton's joints and fields, an import's names, or tensor methods."""
    document = context.document
    scope = _scope_symbols(context)
    if receiver == "self":
        return _attributes(context)
    symbol = scope.get(receiver) if receiver else None
    if symbol is not None and symbol.kind == kinds.SKELETON:
        joints = _joints(document, symbol)
        return ([_item(name, types.CompletionItemKind.Property, "skeleton field") for name in _SKELETON_FIELDS]
                + [_item(name, types.CompletionItemKind.EnumMember, f"joint {index}") for index, name in enumerate(joints)])
    if symbol is not None and symbol.kind == kinds.ALIAS:
        names = {other.symbol.name: other.symbol for other in _all_definitions(document)
                 if other.symbol.key[0] == "decl" and other.symbol.key[1] != document.path}
        return [_item(name, _ITEM_KINDS.get(found.kind, types.CompletionItemKind.Text), found.kind)
                for name, found in sorted(names.items())]
    items = [_op_item(op, method=True) for op in all_ops() if op.method]
    items.append(_item("shape", types.CompletionItemKind.Property, "the list of dims, e.g. `x.shape[2]`"))
    items.append(_item("ndim", types.CompletionItemKind.Property, "the rank"))
    items.append(_item("contiguous", types.CompletionItemKind.Method, "`x.contiguous()`: x itself (a no-op)"))
    return items


def _attributes(context: Context) -> list[types.CompletionItem]:
    """The enclosing module's `self.` attributes with the value each is given."""
    module = _enclosing_module(context)
    if module is None:
        return []
    document = context.document
    items = {}
    for occurrence in _all_definitions(document):
        key = occurrence.symbol.key
        if key[0] == kinds.ATTRIBUTE and key[1] == document.path and key[2] == module.name:
            items.setdefault(key[3], _item(key[3], types.CompletionItemKind.Field, _assigned_text(context, occurrence.span)))
    return [items[name] for name in sorted(items)]


def _names(context: Context) -> list[types.CompletionItem]:
    """Keywords, ops, layers and modules, dims, constants, skeletons, functions and the locals in scope."""
    items: dict[str, types.CompletionItem] = {}
    for name, symbol in sorted(_scope_symbols(context).items()):
        items[name] = _symbol_item(context, symbol)
    for op in all_ops():
        items.setdefault(op.name, _op_item(op, method=False))
    for name, (_, doc) in FUNCTIONS.items():
        items.setdefault(name, _item(name, types.CompletionItemKind.Function, doc))
    for name in SKELETONS:
        items.setdefault(name, _item(name, types.CompletionItemKind.Struct, f"built-in skeleton ({SKELETONS[name].J} joints)"))
    for keyword in KEYWORDS:
        items.setdefault(keyword, _item(keyword, types.CompletionItemKind.Keyword, "keyword"))
    return list(items.values())


def _scope_symbols(context: Context) -> dict:
    """Names visible at the cursor: file-level declarations, imports, prelude layers, dims, locals."""
    document = context.document
    module = _enclosing_module(context)
    forward = _enclosing_forward(module, context.offset) if module else None
    visible = {}
    for occurrence in _all_definitions(document):
        symbol, key = occurrence.symbol, occurrence.symbol.key
        if key[0] == "decl" and (key[1] in (document.path, "<prelude>") or key[1] in document.compilation.program.units):
            visible.setdefault(symbol.name, symbol)
        elif key[0] in (kinds.DIM, kinds.ALIAS):
            visible.setdefault(symbol.name, symbol)
        elif module is not None and key[0] == kinds.HYPER and key[1:3] == (document.path, module.name):
            visible[symbol.name] = symbol
        elif module is not None and key[0] == kinds.LOCAL and key[1:3] == (document.path, module.name) \
                and key[3] in (None, forward.span.start if forward else None):
            visible[symbol.name] = symbol
    return visible


def _symbol_item(context: Context, symbol) -> types.CompletionItem:
    """A completion item for a declared symbol; modules carry their signature and doc."""
    kind = _ITEM_KINDS.get(symbol.kind, types.CompletionItemKind.Text)
    if symbol.kind == kinds.MODULE:
        declaration = _declaration(context.document, symbol)
        if declaration is not None:
            signature = module_help(declaration, context.document.source(symbol.key[1]).text)
            return _item(symbol.name, kind, signature.label, signature.doc)
    return _item(symbol.name, kind, symbol.kind)


def _op_item(op, method: bool) -> types.CompletionItem:
    """An op as a function (`relu(x)`) or a tensor method (`x.relu()`), with its signature and doc."""
    kind = types.CompletionItemKind.Method if method else types.CompletionItemKind.Function
    return _item(op.name, kind, op_signature(op, method=method), op.doc)


def _item(label: str, kind, detail: str = "", doc: str = "") -> types.CompletionItem:
    return types.CompletionItem(label=label, kind=kind, detail=detail or None,
                                documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if doc else None)


# ------------------------------------------------------------------ signature help


def signature_help(context: Context) -> types.SignatureHelp | None:
    """The signature of the call around the cursor, with the argument being typed active."""
    call = _open_call(context.text)
    if call is None:
        return None
    callee, active = call
    signature = _callee_signature(context, callee)
    if signature is None:
        return None
    information = types.SignatureInformation(
        label=signature.label, documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=signature.doc)
        if signature.doc else None,
        parameters=[types.ParameterInformation(label=parameter) for parameter in signature.parameters])
    return types.SignatureHelp(signatures=[information], active_signature=0,
                               active_parameter=min(active, max(len(signature.parameters) - 1, 0)))


def _open_call(text: str) -> tuple[str, int] | None:
    """The callee text and argument number of the innermost call still open at the end of `text`."""
    depth, commas = 0, 0
    index = len(text) - 1
    while index >= 0:
        character = text[index]
        if character in ")]":
            depth += 1
        elif character in "([":
            if depth == 0:
                if character == "[":
                    return None
                callee = re.search(r"([A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*$", text[:index])
                return (re.sub(r"\s+", "", callee.group(1)), commas) if callee else None
            depth -= 1
        elif character == "," and depth == 0:
            commas += 1
        elif character in "{}":
            return None
        index -= 1
    return None


def _callee_signature(context: Context, callee: str) -> Signature | None:
    """The signature of an op, a module's creation, or a `self.` layer's forward."""
    *path, name = callee.split(".")
    document = context.document
    if path == ["self"]:
        return _layer_forward(context, name)
    if path:
        op = lookup(name)
        return op_help(op, name, method=True) if op is not None and op.method else None
    symbol = _scope_symbols(context).get(name)
    if symbol is not None and symbol.kind == kinds.MODULE:
        declaration = _declaration(document, symbol)
        return module_help(declaration, document.source(symbol.key[1]).text) if declaration else None
    op = lookup(name)
    if op is not None:
        return op_help(op, name, method=False)
    if name in FUNCTIONS:
        return Signature(f"{name}(...)", (), FUNCTIONS[name][1])
    return None


def _layer_forward(context: Context, attribute: str) -> Signature | None:
    """`self.x(...)`: the forward of the module that `self.x = Module(...)` created."""
    document = context.document
    module = _enclosing_module(context)
    if module is None:
        return None
    for occurrence in _all_definitions(document):
        if occurrence.symbol.key == (kinds.ATTRIBUTE, document.path, module.name, attribute):
            value = _assigned_value(context, occurrence.span)
            if isinstance(value, ast.Call):
                # `Block(...)` or `lib.Block(...)`: the index knows which module the name ends in.
                called = document.index.at(document.path, value.function.span.end)
                symbol = called.symbol if called is not None and called.symbol.kind == kinds.MODULE else None
                declaration = _declaration(document, symbol) if symbol is not None else None
                if declaration is not None:
                    return forward_help(declaration, document.source(symbol.key[1]).text, attribute)
    return None


# ------------------------------------------------------------------ helpers


def _all_definitions(document: CheckedDocument):
    """Every definition occurrence of the document's program."""
    for occurrences in document.index.occurrences.values():
        for occurrence in occurrences:
            if occurrence.definition:
                yield occurrence


def _enclosing_module(context: Context) -> ast.ModuleDecl | None:
    """The module declaration around the cursor."""
    for item in context.document.compilation.program.entry.tree.items:
        if isinstance(item, ast.ModuleDecl) and item.span.start <= context.offset <= item.span.end:
            return item
    return None


def _enclosing_forward(module: ast.ModuleDecl, offset: int) -> ast.Forward | None:
    """The forward around an offset of a module."""
    for statement in module.body:
        if isinstance(statement, ast.Forward) and statement.span.start <= offset <= statement.span.end:
            return statement
    return None


def _declaration(document: CheckedDocument, symbol) -> ast.ModuleDecl | None:
    """The module declaration a MODULE symbol names."""
    tree = _tree(document, symbol.key[1])
    for item in tree.items if tree else ():
        if isinstance(item, ast.ModuleDecl) and item.name == symbol.name:
            return item
    return None


def _assigned_value(context: Context, name_span) -> ast.Node | None:
    """The value of the assignment whose target name is at `name_span`."""
    from poseir.lsp.hover import _nodes_at

    for node in _nodes_at(context.document, name_span):
        if isinstance(node, ast.Assign):
            return node.value
    return None


def _assigned_text(context: Context, name_span) -> str:
    """The value text of an attribute's assignment, on one line."""
    value = _assigned_value(context, name_span)
    if value is None:
        return "attribute"
    return " ".join(context.document.text[value.span.start:value.span.end].split())


def _joints(document: CheckedDocument, skeleton) -> list[str]:
    """The joint names of a built-in or declared skeleton, in order."""
    if skeleton.key[1] == "<builtin>":
        return list(SKELETONS[skeleton.name].joints)
    return [occurrence.symbol.name for occurrence in _all_definitions(document)
            if occurrence.symbol.kind == kinds.JOINT and occurrence.symbol.key[1] == skeleton.key]
