"""Semantic tokens: names coloured by what they are (dims, layers, ops, locals), plus keywords and literals."""

from __future__ import annotations

import re

from poseir.lsp import symbols as kinds
from poseir.lsp.documents import CheckedDocument, code_units

TOKEN_TYPES = ("keyword", "type", "typeParameter", "class", "function", "method", "variable", "parameter",
               "property", "enumMember", "namespace", "number", "string", "comment")
TOKEN_MODIFIERS = ("declaration", "readonly", "defaultLibrary")
_TYPES = {name: index for index, name in enumerate(TOKEN_TYPES)}
_KINDS = {
    kinds.MODULE: "class", kinds.MODEL: "variable", kinds.CONSTANT: "variable", kinds.SKELETON: "namespace",
    kinds.DIM: "typeParameter", kinds.JOINT: "enumMember", kinds.HYPER: "parameter", kinds.ATTRIBUTE: "property",
    kinds.PARAMETER: "parameter", kinds.LOCAL: "variable", kinds.ALIAS: "namespace", kinds.OP: "function",
    kinds.FUNCTION: "function", kinds.SKELETON_FIELD: "property",
}
_LEXICAL = re.compile(r'(?P<comment>#[^\n]*)|(?P<string>"[^"\\\n]*(?:\\.[^"\\\n]*)*")|'
                      r'(?P<number>(?<![A-Za-z_0-9])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|'
                      r'(?P<keyword>(?<![A-Za-z_0-9.])(?:dim|model|module|import|as|skeleton|forward|return|for|in|if|'
                      r'elif|else|train|infer|param|buffer|assert|where|self|true|false|none|and|or|not)(?![A-Za-z_0-9]))|'
                      r'(?P<type>(?<![A-Za-z_0-9.])(?:f32|f16|f64|i64|i32|bool)(?=\[))')


def semantic_tokens(document: CheckedDocument, encoding: str) -> list[int]:
    """The LSP-encoded token list (relative lines and starts) for the whole document."""
    text = document.text
    tokens: dict[int, tuple[int, int, int]] = {}  # start -> (end, type, modifiers)
    for match in _LEXICAL.finditer(text):
        tokens[match.start()] = (match.end(), _TYPES[match.lastgroup], 0)
    for occurrence in document.index.occurrences.get(document.path, ()) if document.index else ():
        symbol = occurrence.symbol
        token_type = _KINDS.get(symbol.kind)
        if token_type is None or symbol.kind == kinds.FILE:
            continue
        if symbol.kind == kinds.OP and text[occurrence.span.start - 1:occurrence.span.start] == ".":
            token_type = "method"
        modifiers = (1 if occurrence.definition else 0) | (2 if symbol.kind in (kinds.CONSTANT, kinds.DIM) else 0) \
            | (4 if symbol.kind in (kinds.OP, kinds.FUNCTION) or symbol.key[1:2] == ("<prelude>",) else 0)
        tokens[occurrence.span.start] = (occurrence.span.end, _TYPES[token_type], modifiers)
        quoted = tokens.get(occurrence.span.start - 1)
        if quoted is not None and quoted[1] == _TYPES["string"]:
            del tokens[occurrence.span.start - 1]  # a joint name: coloured as a joint, not as text
    return _encode(text, tokens, encoding)


def _encode(text: str, tokens: dict, encoding: str) -> list[int]:
    """Relative (line, start, length, type, modifiers) quintuples, single-line pieces only."""
    data: list[int] = []
    previous_line, previous_start, covered = 0, 0, 0
    line_starts = [0] + [index + 1 for index, character in enumerate(text) if character == "\n"]
    import bisect

    for start in sorted(tokens):
        end, token_type, modifiers = tokens[start]
        if start < covered:
            continue  # inside a comment or string already emitted
        covered = end
        line = bisect.bisect_right(line_starts, start) - 1
        line_end = text.find("\n", start)
        end = min(end, line_end if line_end >= 0 else len(text))
        column = code_units(text[line_starts[line]:start], encoding)
        length = code_units(text[start:end], encoding)
        delta_line = line - previous_line
        delta_start = column - previous_start if delta_line == 0 else column
        data += [delta_line, delta_start, length, token_type, modifiers]
        previous_line, previous_start = line, column
    return data
