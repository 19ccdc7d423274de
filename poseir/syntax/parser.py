"""Parse `.pose` text into the spanned surface tree; syntax errors become diagnostics."""

from __future__ import annotations

import difflib
import functools
from importlib import resources

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from poseir.syntax import ast, cache, trees
from poseir.syntax.trees import DEFAULT_NESTING
from poseir.diagnostics.record import Diagnostic, Edit, Fix, Label
from poseir.syntax.source import SourceFile, Span

_BRACKETS = {"LPAR": 1, "LSQB": 1, "RPAR": -1, "RSQB": -1}

# Token names lark gives to punctuation, shown to users as the text they would type.
_TOKEN_TEXT = {
    "_NL": "newline", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`",
    "LBRACE": "`{`", "RBRACE": "`}`", "COMMA": "`,`", "COLON": "`:`", "EQUAL": "`=`",
    "DOT": "`.`", "NAME": "a name", "INT": "an integer", "FLOAT": "a number",
    "STRING": "a string", "ADD_OP": "`+` or `-`", "MUL_OP": "an operator",
    "COMP_OP": "a comparison", "MORETHAN": "`>`", "__ANON_0": "`->`", "$END": "end of file",
}


class NewlineFilter:
    """Drop newlines inside parentheses and brackets, so calls may span lines."""

    always_accept = ("_NL",)

    def process(self, stream):
        """Yield tokens, skipping `_NL` while any ( or [ is open."""
        depth = 0
        for token in stream:
            depth = max(0, depth + _BRACKETS.get(token.type, 0))
            if token.type == "_NL" and depth > 0:
                continue
            yield token


@functools.cache
def _parser() -> Lark:
    """Build the LALR parser once per process."""
    grammar = resources.files("poseir.grammar").joinpath("poseir.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=NewlineFilter(),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=_cache_path(grammar),
    )


def _cache_path(grammar: str) -> str | bool:
    """lark's parser-table cache (building the LALR tables takes ~0.2 s) in the user's private cache directory,
    or False without one (a pickle in a shared directory such as /tmp could be another user's)."""
    import lark

    found = cache.path_of(f"lark-{lark.__version__}-{cache.key(grammar)}.lark")
    return found if found is not None else False


def parse(source: SourceFile, max_depth: int = DEFAULT_NESTING) -> tuple[ast.File | None, list[Diagnostic]]:
    """Parse one file, remembered (`poseir.syntax.trees.parse`)."""
    return trees.parse(source, max_depth)


def parse_text(source: SourceFile, max_depth: int = DEFAULT_NESTING) -> tuple[ast.File | None, list[Diagnostic]]:
    """Parse one file with lark, without any cache; a syntax error or too deep a nesting gives one diagnostic."""
    return _parse(source, max_depth)


def _parse(source: SourceFile, max_depth: int) -> tuple[ast.File | None, list[Diagnostic]]:
    """Parse without the cache."""
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        return None, [_syntax_diagnostic(source, error)]
    too_deep = _deeper_than(tree, max_depth)
    if too_deep is not None:
        return None, [_nesting_diagnostic(source, too_deep, max_depth)]
    try:
        return _Builder(source).transform(tree), []
    except VisitError as error:
        if not isinstance(error.orig_exc, TargetError):
            raise
        span = error.orig_exc.span
        target = source.text[span.start:span.end]
        return None, [Diagnostic.make("E001", f"cannot assign to `{target}`", span,
                                      labels=(Label(span, "not a name or `self.name`"),),
                                      helps=("assign to a local name (`x = ...`) or, in a module body, to "
                                             "`self.name = ...`",),
                                      candidates=_misspelled_self(source, span, target))]


def _deeper_than(tree: Tree, limit: int) -> Tree | None:
    """The first subtree nested more than `limit` levels deep, found without recursion.

    The tree is converted recursively afterwards (and evaluated recursively later), so depth
    is bounded here, long before Python's recursion limit.
    """
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return node
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return None


def _nesting_diagnostic(source: SourceFile, node: Tree, limit: int) -> Diagnostic:
    """E109 at the start of the too-deep expression."""
    start = min(getattr(node.meta, "start_pos", 0) or 0, len(source.text))
    line_end = source.text.find("\n", start)
    end = min(getattr(node.meta, "end_pos", start) or start, len(source.text) if line_end < 0 else line_end)
    span = source.span(start, max(start, end))
    return Diagnostic.make("E109", f"this code is nested more than {limit} levels deep", span,
                           labels=(Label(span, f"exceeds the `nesting` limit ({limit})"),),
                           notes=("brackets, operators and blocks each add a level; a chain of n binary "
                                  "operators nests n levels",),
                           helps=("if this is intended, raise the limit with `--limit nesting=...`",))


def _syntax_diagnostic(source: SourceFile, error: UnexpectedInput) -> Diagnostic:
    """Turn a lark error into an E001 pointing at the offending character or token."""
    offset = min(getattr(error, "pos_in_stream", None) or 0, len(source.text))
    if isinstance(error, UnexpectedToken):
        token = error.token
        offset = min(token.start_pos or offset, len(source.text)) if token.type != "$END" else len(source.text)
        length = max(1, len(str(token))) if token.type != "$END" else 0
        word = _whole_word(source.text, offset) if str(token).isidentifier() else str(token)
        length = max(length, len(word))
        found = "end of file" if token.type == "$END" else (
            "end of line" if token.type == "_NL" else f"`{word}`")
        expected = _describe_expected(error.expected)
        message = f"unexpected {found}"
        helps = (f"expected {expected}",) if expected else ()
    else:
        assert isinstance(error, UnexpectedCharacters)
        length = 1
        character = source.text[offset] if offset < len(source.text) else ""
        message = f"unexpected character `{character}`"
        helps = ()
    length = min(length, max(0, len(source.text) - offset))
    span = source.span(offset, offset + length)
    labels = [Label(span, "not expected here")]
    unclosed = _unclosed_bracket(source.text, offset)
    candidates = ()
    if unclosed is not None and source.position(unclosed)[0] < span.line:
        opener = source.text[unclosed]
        labels.append(Label(source.span(unclosed, unclosed + 1), f"this `{opener}` is never closed"))
        helps = (f"close it with `{_CLOSERS[opener]}` before the end of the line",) + tuple(helps)
        candidates = (_closed_at_line_end(source, unclosed),)
    return Diagnostic.make("E001", message, span, labels=tuple(labels), helps=helps, candidates=candidates)


def _closed_at_line_end(source: SourceFile, opener: int) -> Fix:
    """The closing bracket inserted at the end of the opener's line (before a trailing comment)."""
    line_end = source.text.find("\n", opener)
    line_end = len(source.text) if line_end < 0 else line_end
    comment = _comment_between(source.text, opener, line_end)
    end = comment if comment is not None else line_end
    while end > opener + 1 and source.text[end - 1] in " \t\r":
        end -= 1
    closer = _CLOSERS[source.text[opener]]
    return Fix(f"close the `{source.text[opener]}` with `{closer}` at the end of its line",
               (Edit(source.span(end, end), closer),), safe=False)


def _comment_between(text: str, start: int, end: int) -> int | None:
    """The offset of a `#` comment between `start` and `end`, outside strings."""
    inside = False
    for index in range(start, end):
        if text[index] == '"':
            inside = not inside
        elif text[index] == "#" and not inside:
            return index
    return None


def _misspelled_self(source: SourceFile, span, target: str) -> tuple:
    """`sefl.fc = ...`: the target with its first name respelled `self`, when that is the close spelling."""
    head, dot, _ = target.partition(".")
    if not dot or head == "self" or not difflib.get_close_matches(head, ["self"], n=1, cutoff=0.6):
        return ()
    return (Fix("write `self`", (Edit(source.span(span.start, span.start + len(head)), "self"),), safe=False),)


_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def _whole_word(text: str, offset: int) -> str:
    """The identifier starting at `offset`: a keyword token may be the prefix of a longer name."""
    end = offset
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[offset:end]


def _unclosed_bracket(text: str, end: int) -> int | None:
    """Offset of the innermost ( or [ still open at `end`, skipping strings and comments."""
    stack: list[int] = []
    index = 0
    while index < end:
        character = text[index]
        if character == "#":
            index = text.find("\n", index, end) if "\n" in text[index:end] else end
            continue
        if character == '"':
            closing = text.find('"', index + 1, end)
            index = end if closing < 0 else closing + 1
            continue
        if character in "([":
            stack.append(index)
        elif character in ")]" and stack:
            stack.pop()
        index += 1
    return stack[-1] if stack else None


def _describe_expected(expected) -> str:
    """List the expected tokens the way a user would type them, briefly."""
    names = sorted({_TOKEN_TEXT.get(name, _keyword_text(name)) for name in expected})
    names = [name for name in names if name]
    if not names or len(names) > 6:
        return ""
    return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def _keyword_text(name: str) -> str:
    """`RETURN` -> "`return`"; unknown internal names are hidden."""
    if name.isalpha() and name.isupper():
        return f"`{name.lower()}`"
    return ""


def _trimmed_end(text: str, start: int, end: int) -> int:
    """The end of a node without the newline, blanks and comment a statement's span swallows."""
    end = min(end, len(text))  # the parser saw one extra newline at the end of the file
    start = min(start, end)
    while end > start and text[end - 1] in " \t\r\n":
        end -= 1
    line_start = max(start, text.rfind("\n", start, end) + 1)
    comment = _comment_start(text[line_start:end])
    if comment is not None:
        end = line_start + comment
        while end > start and text[end - 1] in " \t":
            end -= 1
    return end


def _comment_start(line: str) -> int | None:
    """Offset of a `#` comment in a line, ignoring `#` inside string literals."""
    quoted = False
    for index, character in enumerate(line):
        if character == '"' and (index == 0 or line[index - 1] != "\\"):
            quoted = not quoted
        elif character == "#" and not quoted:
            return index
    return None


def _doc_comment(source: SourceFile, offset: int) -> str | None:
    """The `##` lines directly above the line holding `offset`, joined."""
    line, _ = source.position(offset)
    lines: list[str] = []
    for number in range(line - 1, 0, -1):
        text = source.line_text(number).strip()
        if not text.startswith("##"):
            break
        lines.append(text[2:].strip())
    return "\n".join(reversed(lines)) if lines else None


class _Builder(Transformer):
    """Bottom-up conversion of the lark tree into `poseir.syntax.ast` nodes."""

    def __init__(self, source: SourceFile):
        super().__init__(visit_tokens=False)
        self.source = source

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return self.source.span(0, 0)
        start = min(meta.start_pos, len(self.source.text))
        return self.source.span(start, _trimmed_end(self.source.text, start, meta.end_pos))

    def _token_span(self, token: Token) -> Span:
        return self.source.span(token.start_pos, token.end_pos)

    # -------------------------------------------------------------- top level
    @v_args(meta=True)
    def start(self, meta, items):
        return ast.File(self._span(meta), self.source.path, tuple(items))

    @v_args(meta=True)
    def import_decl(self, meta, children):
        path, alias = children
        # A path is taken as written: `"layers\blocks.pose"` from Windows names a folder, not an escape.
        return ast.Import(self._span(meta), str(path)[1:-1], str(alias) if alias else None)

    @v_args(meta=True)
    def dim_decl(self, meta, children):
        names, facts = children
        return ast.DimDecl(self._span(meta), names, facts or ())

    def dim_names(self, children):
        return tuple((str(token), self._token_span(token)) for token in children)

    @v_args(meta=True)
    def const_decl(self, meta, children):
        name, value = children
        return ast.ConstDecl(self._span(meta), str(name), value, _doc_comment(self.source, meta.start_pos))

    @v_args(meta=True)
    def model_decl(self, meta, children):
        name, value = children
        return ast.ModelDecl(self._span(meta), str(name), value, _doc_comment(self.source, meta.start_pos))

    @v_args(meta=True)
    def module_decl(self, meta, children):
        name, params, body = children
        return ast.ModuleDecl(self._span(meta), str(name), params or (), body, _doc_comment(self.source, meta.start_pos))

    def hparams(self, children):
        return tuple(children)

    @v_args(meta=True)
    def hparam(self, meta, children):
        name, kind, default = children
        return ast.HyperParam(self._span(meta), str(name), kind, default)

    def type_name(self, children):
        (child,) = children
        return str(child)

    @v_args(meta=True)
    def skeleton_decl(self, meta, children):
        name, body = children
        return ast.SkeletonDecl(self._span(meta), str(name), body, _doc_comment(self.source, meta.start_pos))

    # -------------------------------------------------------------- statements
    def block(self, children):
        return tuple(children)

    @v_args(meta=True)
    def assign(self, meta, children):
        targets, annotation, value = children
        return ast.Assign(self._span(meta), targets, annotation, value)

    @v_args(meta=True)
    def assign_value(self, meta, children):
        if len(children) == 1:
            return children[0]
        return ast.TupleExpr(self._span(meta), tuple(children))

    def target_list(self, children):
        return tuple(_as_target(child) for child in children)

    @v_args(meta=True)
    def aug_assign(self, meta, children):
        target, operator, value = children
        return ast.AugAssign(self._span(meta), _as_target(target), str(operator)[:-1], value)

    def loop_names(self, children):
        return tuple(str(child) for child in children)

    @v_args(meta=True)
    def expr_stmt(self, meta, children):
        return ast.ExprStatement(self._span(meta), children[0])

    @v_args(meta=True)
    def assert_type(self, meta, children):
        expr, type_ = children
        return ast.AssertType(self._span(meta), expr, type_)

    @v_args(meta=True)
    def assert_cond(self, meta, children):
        condition, message = children
        return ast.AssertCondition(self._span(meta), condition, _unquote(message) if message else None)

    @v_args(meta=True)
    def return_stmt(self, meta, children):
        return ast.Return(self._span(meta), tuple(children))

    @v_args(meta=True)
    def for_stmt(self, meta, children):
        names, iterable, body = children
        return ast.For(self._span(meta), names, iterable, body)

    @v_args(meta=True)
    def range_iter(self, meta, children):
        start, stop = children
        return ast.RangeExpr(self._span(meta), start, stop)

    @v_args(meta=True)
    def if_stmt(self, meta, children):
        condition, body, *rest = children
        branches = [(condition, body)]
        otherwise = None
        for clause in rest:
            if clause[0] == "elif":
                branches.append((clause[1], clause[2]))
            else:
                otherwise = clause[1]
        return ast.If(self._span(meta), tuple(branches), otherwise)

    def elif_clause(self, children):
        return ("elif", children[0], children[1])

    def else_clause(self, children):
        return ("else", children[0])

    @v_args(meta=True)
    def mode_block(self, meta, children):
        mode, body = children
        return ast.ModeBlock(self._span(meta), mode, body)

    def mode(self, children):
        return str(children[0])

    def dtype(self, children):
        return str(children[0])

    @v_args(meta=True)
    def forward_decl(self, meta, children):
        mode, params, outputs, facts, body = children
        return ast.Forward(self._span(meta), mode, params or (), outputs, facts or (), body)

    def fparams(self, children):
        return tuple(children)

    @v_args(meta=True)
    def fparam(self, meta, children):
        mode, name, type_ = children
        return ast.ForwardParam(self._span(meta), str(name), type_, mode)

    def outputs(self, children):
        return tuple(children)

    @v_args(meta=True)
    def output(self, meta, children):
        mode, name, type_ = children
        return ast.ForwardParam(self._span(meta), str(name), type_, mode)

    def where_clause(self, children):
        return tuple(children)

    @v_args(meta=True)
    def relation(self, meta, children):
        mode, left, op, right = children
        return ast.Relation(self._span(meta), str(op), left, right, mode)

    # -------------------------------------------------------------- types
    @v_args(meta=True)
    def tensor_type(self, meta, children):
        dtype, dims = children
        return ast.TensorTypeExpr(self._span(meta), dtype, dims or ())

    def type_dims(self, children):
        return tuple(children)

    @v_args(meta=True)
    def ellipsis(self, meta, children):
        return ast.EllipsisItem(self._span(meta))

    # -------------------------------------------------------------- expressions
    @v_args(meta=True)
    def if_expr(self, meta, children):
        then, condition, otherwise = children
        return ast.IfExpr(self._span(meta), condition, then, otherwise)

    @v_args(meta=True)
    def param_expr(self, meta, children):
        return ast.ParamExpr(self._span(meta), "param", children[0], children[1])

    @v_args(meta=True)
    def buffer_expr(self, meta, children):
        return ast.ParamExpr(self._span(meta), "buffer", children[0], children[1])

    @v_args(meta=True)
    def or_op(self, meta, children):
        return ast.Binary(self._span(meta), "or", children[0], children[1])

    @v_args(meta=True)
    def and_op(self, meta, children):
        return ast.Binary(self._span(meta), "and", children[0], children[1])

    @v_args(meta=True)
    def not_op(self, meta, children):
        return ast.Unary(self._span(meta), "not", children[0])

    @v_args(meta=True)
    def compare(self, meta, children):
        left, op, right = children
        return ast.Binary(self._span(meta), str(op), left, right)

    @v_args(meta=True)
    def binary(self, meta, children):
        left, op, right = children
        return ast.Binary(self._span(meta), str(op), left, right)

    @v_args(meta=True)
    def unary(self, meta, children):
        op, operand = children
        return ast.Unary(self._span(meta), str(op), operand)

    @v_args(meta=True)
    def power_op(self, meta, children):
        return ast.Binary(self._span(meta), "**", children[0], children[2])

    @v_args(meta=True)
    def attribute(self, meta, children):
        value, name = children
        return ast.Attribute(self._span(meta), value, str(name), self._token_span(name))

    @v_args(meta=True)
    def call(self, meta, children):
        function, arguments = children
        return ast.Call(self._span(meta), function, arguments or ())

    def args(self, children):
        return tuple(children)

    def exprs(self, children):
        return tuple(children)

    @v_args(meta=True)
    def arg(self, meta, children):
        return ast.Argument(self._span(meta), None, children[0])

    @v_args(meta=True)
    def keyword_arg(self, meta, children):
        name, value = children
        return ast.Argument(self._span(meta), str(name), value)

    @v_args(meta=True)
    def subscript(self, meta, children):
        value, *items = children
        return ast.Subscript(self._span(meta), value, tuple(items))

    @v_args(meta=True)
    def slice2(self, meta, children):
        start, stop = children
        return ast.Slice(self._span(meta), start, stop, None)

    @v_args(meta=True)
    def slice3(self, meta, children):
        start, stop, step = children
        return ast.Slice(self._span(meta), start, stop, step)

    @v_args(meta=True)
    def name(self, meta, children):
        return ast.Name(self._span(meta), str(children[0]))

    @v_args(meta=True)
    def self_ref(self, meta, children):
        return ast.SelfRef(self._span(meta))

    @v_args(meta=True)
    def int_lit(self, meta, children):
        return ast.Literal(self._span(meta), int(children[0]))

    @v_args(meta=True)
    def float_lit(self, meta, children):
        return ast.Literal(self._span(meta), float(children[0]))

    @v_args(meta=True)
    def string_lit(self, meta, children):
        return ast.Literal(self._span(meta), _unquote(children[0]))

    @v_args(meta=True)
    def true_lit(self, meta, children):
        return ast.Literal(self._span(meta), True)

    @v_args(meta=True)
    def false_lit(self, meta, children):
        return ast.Literal(self._span(meta), False)

    @v_args(meta=True)
    def none_lit(self, meta, children):
        return ast.Literal(self._span(meta), None)

    @v_args(meta=True)
    def tuple_lit(self, meta, children):
        first, rest = children
        return ast.TupleExpr(self._span(meta), (first, *(rest or ())))

    @v_args(meta=True)
    def list_lit(self, meta, children):
        return ast.ListExpr(self._span(meta), children[0] or ())

    @v_args(meta=True)
    def list_comp(self, meta, children):
        element, names, iterable, condition = children
        return ast.ListComp(self._span(meta), element, names, iterable, condition)


def _as_target(node: ast.Node) -> ast.Target:
    """Accept `name` or `self.name` on the left of `=`; anything else is a syntax error."""
    if isinstance(node, ast.Name):
        return ast.Target(node.span, node.id, False)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.SelfRef):
        return ast.Target(node.span, node.name, True)
    raise TargetError(node.span)


class TargetError(Exception):
    """An assignment to something that is not a name or `self.name`."""

    def __init__(self, span: Span):
        super().__init__("invalid assignment target")
        self.span = span


def _unquote(token) -> str:
    """Strip quotes and resolve backslash escapes of a STRING token."""
    text = str(token)[1:-1]
    return text.encode("utf-8").decode("unicode_escape") if "\\" in text else text
