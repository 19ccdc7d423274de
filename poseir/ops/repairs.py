"""Candidate repairs shared by the shape rules, including those that edit code away from the call.

A shape rule sees its own call's argument texts; many repairs are elsewhere: the size a layer was
constructed with (`Linear(joints * 3, ...)`), a parameter's declared shape, a forward's `where`
clause, the argument of a layer call (whose op runs inside the prelude). Those are *deferred*: a
function of a `poseir.syntax.index.SourceIndex` that finds the syntax by span and writes the edit.
Every candidate is verified by re-checking the file (`poseir.diagnostics.repair`), so a builder
may offer a repair that turns out not to fit; it must never offer one that checks clean by chance
when another would too without being a candidate (the candidates of one diagnostic are its
repairs, all of them).
"""

from __future__ import annotations

import re
from typing import Callable

from poseir.diagnostics.record import Edit, Fix
from poseir.ir.dims import Dim
from poseir.ir.graph import TensorType
from poseir.ops.common import receiver_text
from poseir.ops.registry import ShapeContext
from poseir.syntax import ast
from poseir.syntax.index import SourceIndex, call_argument
from poseir.syntax.source import Span

NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")  # an integer literal in a size's source text
PRODUCT_TEXT = re.compile(r"^[\w\s]+(?:\*[\w\s]+)*$")  # names and literals joined by single `*`s

Deferred = Callable[[SourceIndex], list]


# --------------------------------------------------------------------------- texts


def with_literal_scaled(text: str, size: Dim, wanted: Dim) -> str | None:
    """`joints * 2` for `joints * 3` when that is `wanted`: the one literal of a product text rewritten."""
    literals = list(NUMBER.finditer(text))
    if len(literals) != 1 or not PRODUCT_TEXT.match(text):
        return None
    literal = literals[0]
    rest = size.exact_div(int(literal.group()))
    replacement = wanted.exact_div(rest) if rest is not None and not rest.is_zero else None
    if replacement is None or not replacement.is_const or replacement.value < 1:
        return None
    return text[:literal.start()] + str(replacement.value) + text[literal.end():]


def size_text(old_text: str, old: Dim, wanted: Dim, names: list[str], in_scope: Callable[[str], bool],
              numbers: bool = True) -> str | None:
    """How to write `wanted` where `old_text` (of value `old`) stood: its literal changed, a name the data uses
    for that axis (when visible there), else (with `numbers`) the number itself."""
    scaled = with_literal_scaled(old_text, old, wanted)
    # `channel * 1` is no one's intent (the literal was not the mistake), so it is not offered.
    if scaled is not None and not (old_text.strip() != scaled.strip() and scaled.replace(" ", "").endswith("*1")
                                   or scaled.replace(" ", "").startswith("1*")):
        return scaled
    for name in names:
        if name and name.isidentifier() and in_scope(name):
            return name
    return str(wanted.value) if wanted.is_const and numbers else None


def end_of(span: Span) -> Span:
    """The empty span just after `span`, where an insertion goes."""
    return Span(span.path, span.end, span.end, span.end_line, span.end_column, span.end_line, span.end_column)


def before_end(span: Span) -> Span:
    """The empty span just before the last character of `span` (inside a call's closing parenthesis)."""
    return Span(span.path, span.end - 1, span.end - 1, span.end_line, max(span.end_column - 1, 1), span.end_line,
                max(span.end_column - 1, 1))


# --------------------------------------------------------------------------- the input of a call


def rewrite_input(ctx: ShapeContext, message: str, rewrite: Callable[[str], str], suffix: str = ""):
    """A candidate replacing input 0's text by `rewrite(text)` and appending `suffix` to the call.

    The op's own texts serve when the user called it directly; for a layer (`self.bn(x)`, whose op
    runs inside the prelude) the argument is found in the user's call.
    """
    text = ctx.text_of(0)
    if text is not None and 0 in ctx.spans:
        edits = [Edit(ctx.span_of(0), rewrite(text))]
        if suffix:
            edits.append(Edit(end_of(ctx.span), suffix))
        return Fix(message, tuple(edits), safe=False)
    call_span = ctx.span

    def build(index: SourceIndex) -> list:
        call = index.at(call_span, ast.Call)
        positional = [argument for argument in call.arguments if argument.name is None] if call else []
        if len(positional) != 1:
            return []
        argument = positional[0].value
        edits = [Edit(argument.span, rewrite(index.text(argument.span)))]
        if suffix:
            edits.append(Edit(end_of(call.span), suffix))
        return [Fix(message, tuple(edits), safe=False)]

    return build


# --------------------------------------------------------------------------- parameters and layers


def parameter_axis(ctx: ShapeContext, type_: TensorType, at: int, axis: int):
    """(parameter, its axis) when axis `axis` of input `at` is an axis of a declared parameter, else None."""
    atoms = ctx.axes(type_, at)[axis]
    if len(atoms) != 1 or atoms[0].key[0] != "born":
        return None
    parameter = ctx.parameters.get(atoms[0].key[1])
    return (parameter, atoms[0].key[2]) if parameter is not None else None


def atom_names(ctx: ShapeContext, type_: TensorType, at: int, axis: int) -> list[str]:
    """The names the data gives axis `axis` of input `at` (`num_joints`, `T`): what a size may be written as."""
    atoms = ctx.axes(type_, at)[axis]
    return [atoms[0].name] if len(atoms) == 1 and atoms[0].key[0] in ("dim", "name") else []


def resize_parameter(parameter, axis: int, old: Dim, wanted: Dim, names: list[str], numbers: bool = True,
                     unless_named: frozenset | set = frozenset()) -> Deferred:
    """A deferred candidate giving axis `axis` of a parameter the size `wanted`: in its declaration when the
    user declared it (`param f32[1, h36m16.J, C]`), else in the constructor of the layer that owns it
    (`Linear(joints * 3, ...)`'s `in_features`). None when the size is written as one of `unless_named`."""

    def build(index: SourceIndex) -> list:
        found = _size_node(index, parameter, axis)
        if found is None or index.text(found[0].span).strip() in unless_named:
            return []
        node, what = found
        text = size_text(index.text(node.span), old, wanted, names, lambda name: visible(index, node.span, name),
                         numbers)
        if text is None:
            return []
        return [Fix(f"{what} `{text}`", (Edit(node.span, text),), safe=False)]

    return build


def swap_parameter_axes(parameter, first: int, second: int) -> Deferred:
    """A deferred candidate exchanging two axes of a parameter the user declared (`f32[2, out, in]` for
    `f32[2, in, out]`): its layout is the program's own choice, so the declaration is what to change."""

    def build(index: SourceIndex) -> list:
        declaration = index.at(parameter.span, ast.ParamExpr)
        if declaration is None or max(first, second) >= len(declaration.type.dims):
            return []
        one, other = declaration.type.dims[first], declaration.type.dims[second]
        texts = index.text(one.span), index.text(other.span)
        return [Fix(f"declare `{parameter.name}` with axes {first} and {second} exchanged",
                    (Edit(one.span, texts[1]), Edit(other.span, texts[0])), safe=False)]

    return build


def set_layer_argument(call_span: Span, layer: str, hyper_parameter: str, text: str, message: str) -> Deferred:
    """A deferred candidate giving hyper-parameter `hyper_parameter` of the layer constructed at `call_span` the
    text `text` (replacing its argument, or adding it as a keyword)."""

    def build(index: SourceIndex) -> list:
        call = index.at(call_span, ast.Call)
        module = index.builtin_module(layer)
        if call is None or module is None:
            return []
        argument = call_argument(call, module, hyper_parameter)
        if argument is not None:
            return [Fix(message, (Edit(argument.value.span, text),), safe=False)]
        return [Fix(message, (Edit(before_end(call.span), f", {hyper_parameter} = {text}"),), safe=False)]

    return build


def renamed_layer(call_span: Span, name: str, message: str) -> Deferred:
    """A deferred candidate constructing another layer with the same arguments (`BatchNorm2d(64)`)."""

    def build(index: SourceIndex) -> list:
        call = index.at(call_span, ast.Call)
        if call is None or not isinstance(call.function, ast.Name):
            return []
        return [Fix(message, (Edit(call.function.span, name),), safe=False)]

    return build


def constructed_at(ctx: ShapeContext) -> tuple[Span, str] | None:
    """(span, layer name) of the constructor of the prelude layer this op runs in, from its `created here` label."""
    for label in ctx.labels:
        match = re.fullmatch(r"`(\w+)` created here", label.message)
        if match:
            return label.span, match.group(1)
    return None


def _size_node(index: SourceIndex, parameter, axis: int):
    """(the syntax node giving the parameter's axis size, what the fix says) in the user's code."""
    declaration = index.at(parameter.span, ast.ParamExpr)
    if declaration is not None:
        if axis >= len(declaration.type.dims):
            return None
        attribute = parameter.name.rsplit(".", 1)[-1]
        return declaration.type.dims[axis], f"give `self.{attribute}` axis {axis} of size"
    call = index.at(parameter.span, ast.Call)
    if call is None or not isinstance(call.function, ast.Name):
        return None
    module = index.builtin_module(call.function.id)
    attribute = parameter.name.rsplit(".", 1)[-1]
    dims = _declared_dims(module, attribute) if module is not None else None
    if dims is None or axis >= len(dims):
        return None
    hyper_parameter = _governing_name(dims[axis], module, call)
    argument = call_argument(call, module, hyper_parameter) if hyper_parameter else None
    if argument is None:
        return None
    return argument.value, f"build the `{call.function.id}` with `{hyper_parameter}`"


def _declared_dims(module: ast.ModuleDecl, attribute: str) -> tuple | None:
    """The dims of `self.<attribute> = param f32[...]` in a layer's body."""
    for statement in _statements(module.body):
        if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.ParamExpr)
                and any(target.on_self and target.name == attribute for target in statement.targets)):
            return statement.value.type.dims
    return None


def _statements(body) -> list:
    """Statements of a body, those inside `if` branches included."""
    found = []
    for statement in body:
        found.append(statement)
        if isinstance(statement, ast.If):
            for _, branch in statement.branches:
                found.extend(_statements(branch))
            found.extend(_statements(statement.otherwise or ()))
    return found


def _governing_name(dim: ast.Node, module: ast.ModuleDecl, call: ast.Call) -> str | None:
    """The hyper-parameter a declared size is: `in_features`, or `in_channels` in `in_channels // groups` when
    the call leaves `groups` at its default."""
    names = {param.name for param in module.hyper_params}
    if isinstance(dim, ast.Name) and dim.id in names:
        return dim.id
    if (isinstance(dim, ast.Binary) and dim.op == "//" and isinstance(dim.left, ast.Name) and dim.left.id in names
            and isinstance(dim.right, ast.Name) and call_argument(call, module, dim.right.id) is None):
        return dim.left.id
    return None


def visible(index: SourceIndex, span: Span, name: str) -> bool:
    """Whether `name` can be used at `span`: a hyper-parameter of the enclosing module, a file-level constant or
    dim, or a skeleton."""
    module = index.enclosing(span, ast.ModuleDecl)
    if module is not None and any(param.name == name for param in module.hyper_params):
        return True
    tree = index.enclosing(span, ast.File)
    for item in tree.items if tree is not None else ():
        if isinstance(item, (ast.ConstDecl, ast.SkeletonDecl)) and item.name == name:
            return True
        if isinstance(item, ast.DimDecl) and any(declared == name for declared, _ in item.names):
            return True
    return False


# --------------------------------------------------------------------------- facts


def add_fact(span: Span, fact: str, message: str | None = None) -> Deferred:
    """A deferred candidate adding `fact` to the `where` clause of the forward containing `span`; a bound it
    strengthens (`N >= 27` for `N >= 243`) is replaced rather than kept beside it."""

    def build(index: SourceIndex) -> list:
        forward = index.enclosing(span, ast.Forward)
        if forward is None:
            return []
        text = index.sources.get(span.path).text
        weaker = _weaker_bound(index, forward, fact)
        if weaker is not None:
            edit = Edit(weaker.span, fact)
            message_text = f"require `{fact}` instead of `{index.text(weaker.span)}`"
        elif forward.facts:
            edit = Edit(end_of(forward.facts[-1].span), f", {fact}")
        else:
            brace = _body_brace(text, forward)
            if brace is None:
                return []
            start = brace
            while start > 0 and text[start - 1] in " \t":
                start -= 1
            edit = Edit(index.span(span.path, start, start), f" where {fact}")
        if weaker is None:
            message_text = f"add `where {fact}` to the forward"
        return [Fix(message or message_text, (edit,), safe=False)]

    return build


def _weaker_bound(index: SourceIndex, forward: ast.Forward, fact: str):
    """The fact of `forward` that `fact` (a lower bound `X >= n`) strengthens: the same left side and operator."""
    match = re.fullmatch(r"(.+?)\s*(>=|>)\s*(-?\d+)", fact.strip())
    if match is None:
        return None
    for relation in forward.facts:
        if relation.op == match.group(2) and index.text(relation.left.span).strip() == match.group(1).strip() \
                and isinstance(relation.right, ast.Literal):
            return relation
    return None


def symbol_candidates(ctx: ShapeContext, at, symbol: str) -> list:
    """A literal standing for a symbol's largest value (`243` for the clip length T): the symbol itself, or a
    value the forward is given untyped (`seqlen`, which MotionBERT passes the clip length in); the program
    decides which one it can see and that checks."""
    span = ctx.span_of(at)

    def build(index: SourceIndex) -> list:
        forward = index.enclosing(span, ast.Forward)
        params = forward.params if forward is not None else ()
        names = [symbol] + [param.name for param in params if param.type is None]
        return [Fix(f"write `{name}`, the size it stands for", (Edit(span, name),), safe=False) for name in names]

    return [build]


def unused_layer_candidates(span: Span, operand: Span) -> Deferred:
    """A layer the module builds but never calls (PoseFormer's `weighted_mean` dropped in a port), applied to
    the operand at `operand`: one candidate per such layer, kept when it makes the program check."""

    def build(index: SourceIndex) -> list:
        module = index.enclosing(span, ast.ModuleDecl)
        if module is None:
            return []
        built = [target.name for statement in _statements(module.body) if isinstance(statement, ast.Assign)
                 and isinstance(statement.value, ast.Call) for target in statement.targets if target.on_self]
        used = {node.name for node, _ in index.nodes() if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.SelfRef) and module.span.start <= node.span.start < module.span.end}
        text = index.text(operand)
        return [Fix(f"apply `self.{name}`, which is built but never called: `self.{name}({text})`",
                    (Edit(operand, f"self.{name}({text})"),), safe=False)
                for name in built if name not in used]

    return build


def product_fact_candidates(span: Span, dividend: Dim, divisor: Dim) -> Deferred:
    """A merged axis of its own size split by another (`N` by `F`): `where N == K * F` for each declared dim `K`
    of the file, as candidates (the rest of the program, such as the declared output, says which one)."""

    def build(index: SourceIndex) -> list:
        tree = index.enclosing(span, ast.File)
        names = [name for item in (tree.items if tree is not None else ()) if isinstance(item, ast.DimDecl)
                 for name, _ in item.names]
        used = dividend.symbols | divisor.symbols
        fixes = []
        for name in names:
            if name not in used:
                fixes.extend(add_fact(span, f"{dividend} == {name} * {divisor}")(index))
        return fixes

    return build


def _body_brace(text: str, forward: ast.Forward) -> int | None:
    """The offset of the `{` opening a forward's body."""
    header = [*forward.params, *(forward.outputs or ())]
    start = max((part.span.end for part in header), default=forward.span.start)
    end = forward.body[0].span.start if forward.body else forward.span.end
    position = text.find("{", start, end)
    return position if position >= 0 else None


# --------------------------------------------------------------------------- a layer's input size


def layer_input_candidates(ctx: ShapeContext, x: TensorType, axis: int, wanted: Dim, weight: TensorType,
                           weight_at: int, weight_axis: int, keeps_shape: bool) -> list:
    """The repairs of a layer whose input axis `axis` is not the `wanted` size its weight expects.

    Either the data is laid out otherwise (another axis has the size: move it there, and back
    afterwards for a layer that keeps the shape), or the layer was built for another size (give its
    weight the size found), or the input's producer put the axis elsewhere (see `producer_candidates`).
    """
    target = axis % x.rank
    found = x.shape[target]
    candidates, features = [], False
    for other, dim in enumerate(x.shape):
        if other != target and ctx.provably_equal(dim, wanted):
            suffix = f".transpose({other}, {target})" if keeps_shape else ""
            where = "and back" if keeps_shape else ""
            candidates.append(rewrite_input(
                ctx, f"move axis {other} of the input (size {wanted}) to axis {target} {where}".rstrip(),
                lambda text, first=other: moved_axes(text, x.rank, first, target), suffix))
            features = features or (keeps_shape and parameter_axis(ctx, x, 0, other) is not None
                                    and atom_names(ctx, x, 0, target) != [])
    owner = parameter_axis(ctx, weight, weight_at, weight_axis)
    # A norm sized for the features a layer made (BatchNorm1d(C) after Linear(..., C)) meeting them on another
    # axis than the one it normalizes was built for them: rebuilding it for a named axis of the data (the
    # joints) would normalize something else, so only moving the features is a repair then.
    if owner is not None and not features:
        candidates.append(resize_parameter(owner[0], owner[1], wanted, found, atom_names(ctx, x, 0, target)))
    candidates.extend(producer_candidates(ctx, x, target, wanted))
    return candidates


def moved_axes(text: str, rank: int, first: int, second: int) -> str:
    """`text.transpose(first, second)`, or `text` without a trailing permute that this transpose undoes."""
    base, order = trailing_permutation(text, rank)
    if order is not None:
        composed = list(order)
        composed[first], composed[second] = composed[second], composed[first]
        if composed == list(range(rank)):
            return base
    return f"{receiver_text(text)}.transpose({first}, {second})"


def trailing_permutation(text: str, rank: int) -> tuple[str, list[int] | None]:
    """(`x`, [0, 2, 1]) for `x.permute(0, 2, 1)` or `x.transpose(1, 2)` of a rank-3 value; (text, None) otherwise."""
    match = re.fullmatch(r"(.+)\.(permute|transpose)\(\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*\)", text.strip(), re.S)
    if match is None:
        return text, None
    numbers = [int(number) % rank for number in re.findall(r"-?\d+", match.group(3))]
    if match.group(2) == "transpose":
        if len(numbers) != 2:
            return text, None
        order = list(range(rank))
        order[numbers[0]], order[numbers[1]] = order[numbers[1]], order[numbers[0]]
        return match.group(1), order
    return (match.group(1), numbers) if sorted(numbers) == list(range(rank)) else (text, None)


def producer_candidates(ctx: ShapeContext, x: TensorType, axis: int, wanted: Dim) -> list:
    """Repairs at the op that made input 0, when it put the wanted size elsewhere: a concat along another
    axis (`concat([a, b, c], 1)` whose axis 2 would hold the `wanted` channels), a rearrange whose output
    holds the wanted axis at another place (`b f (j c)` for `b (j c) f`)."""
    producer = ctx.producer(0)
    if producer is None:
        return []
    if producer.op == "concat":
        return _concat_axis_candidates(ctx, producer, x, axis, wanted)
    if producer.op == "rearrange":
        return _rearrange_order_candidates(ctx, producer, x, axis, wanted)
    return []


def _concat_axis_candidates(ctx: ShapeContext, node, x: TensorType, axis: int, wanted: Dim) -> list:
    """Concatenating the same tensors along the axis that then holds `wanted` at `axis`."""
    types = [ctx.values[name].type for name in node.inputs if name in ctx.values]
    arguments = {key: (span, text) for key, span, text in node.arguments}
    if len(types) != len(node.inputs) or any(type_.rank != x.rank for type_ in types):
        return []
    total = sum((type_.shape[axis] for type_ in types), Dim.of(0))
    same = all(ctx.provably_equal(type_.shape[other], types[0].shape[other])
               for type_ in types for other in range(x.rank) if other != axis)
    if not same or not ctx.provably_equal(total, wanted):
        return []
    old = arguments.get("dim")
    text = str(axis - x.rank) if old is not None and old[1].strip().startswith("-") else str(axis)
    message = f"concatenate along axis {text}, which then holds the {wanted} the layer expects"
    if old is not None:
        return [Fix(message, (Edit(old[0], text),), safe=False)]
    return [Fix(message, (Edit(before_end(node.span), f", {text}"),), safe=False)]


def _rearrange_order_candidates(ctx: ShapeContext, node, x: TensorType, axis: int, wanted: Dim) -> list:
    """The rearrange's output groups reordered so that the one of size `wanted` lands at `axis`."""
    from poseir.ops.rearrange import PatternError, group_text, parse_pattern

    arguments = {key: (span, text) for key, span, text in node.arguments}
    if "pattern" not in arguments:
        return []
    span, quoted = arguments["pattern"]
    try:
        pattern = parse_pattern(quoted.strip()[1:-1])
    except PatternError:
        return []
    candidates = []
    for group, size in enumerate(x.shape):
        if group == axis or not ctx.provably_equal(size, wanted) or len(pattern.right) != x.rank:
            continue
        order = [index for index in range(x.rank) if index != group]
        order.insert(axis, group)
        right = " ".join(group_text(pattern.right[index]) for index in order)
        left = quoted.strip()[1:-1].split("->")[0].strip()
        quote = quoted.strip()[0]
        text = f"{quote}{left} -> {right}{quote}"
        candidates.append(Fix(f"rearrange to `{left} -> {right}`, which puts the {wanted} at axis {axis}",
                              (Edit(span, text),), safe=False))
    return candidates


# --------------------------------------------------------------------------- texts at a span


def rewrite_at(span: Span, message: str, rewrite: Callable[[str], str | None]) -> Deferred:
    """A deferred candidate replacing the text at `span` by `rewrite(text)` (no candidate when that is None)."""

    def build(index: SourceIndex) -> list:
        text = index.text(span)
        replacement = rewrite(text) if text is not None else None
        if replacement is None or replacement == text:
            return []
        return [Fix(message.format(replacement=replacement), (Edit(span, replacement),), safe=False)]

    return build


def text_candidate(ctx: ShapeContext, at, message: str, rewrite: Callable[[str], str | None]):
    """A candidate rewriting argument `at`: directly from its recorded text, else read at its span."""
    if at not in ctx.spans:
        return None
    text = ctx.text_of(at)
    if text is None:
        return rewrite_at(ctx.span_of(at), message, rewrite)
    replacement = rewrite(text)
    if replacement is None or replacement == text:
        return None
    return ctx.fix(message.format(replacement=replacement), replacement, at=at, safe=False)


def plus_one(text: str) -> str:
    """`text + 1`, folding a trailing `- 1` or a literal."""
    stripped = text.strip()
    if stripped.isdigit():
        return str(int(stripped) + 1)
    if re.fullmatch(r".+\s-\s*1", stripped):
        return re.sub(r"\s*-\s*1$", "", stripped)
    return f"{stripped} + 1"


def minus_one(text: str) -> str:
    """`text - 1`, folding a trailing `+ 1` or a literal."""
    stripped = text.strip()
    if stripped.isdigit():
        return str(int(stripped) - 1)
    if re.fullmatch(r".+\s\+\s*1", stripped):
        return re.sub(r"\s*\+\s*1$", "", stripped)
    return f"{stripped} - 1"
