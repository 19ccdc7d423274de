"""The walk behind the symbol index: surface trees resolved with the language's scoping.

Forward locals first, then the module's hyper-parameters and body, then pattern dims, then the
file with its imports, the prelude and the built-ins.
"""

from __future__ import annotations


from poseir.elaborate.builtins import FUNCTIONS, SKELETONS
from poseir.elaborate.program import PRELUDE_PATH, FileUnit, Program, imported_path
from poseir.lsp.symbols import (
    ALIAS, ATTRIBUTE, CONSTANT, DIM, FILE, FUNCTION, HYPER, JOINT, LOCAL, MODEL, MODULE, OP, PARAMETER, SKELETON,
    SKELETON_FIELD, Index, Occurrence, Symbol, name_span, sub_span,
)
from poseir.ops.registry import ALIASES, REGISTRY
from poseir.syntax import ast
from poseir.syntax.source import Span

_SKELETON_FIELDS = ("J", "flip", "left", "right", "edges", "parents", "joints")


class _Scope:
    """One lexical level of names; `parent` is the next level out."""

    def __init__(self, parent: _Scope | None, names: dict | None = None, context: tuple = ()):
        self.parent = parent
        self.names: dict[str, Symbol] = dict(names or {})
        self.context = context  # (unit path, module name, forward start) for local symbol keys

    def lookup(self, name: str) -> Symbol | None:
        """The innermost symbol called `name`."""
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None


class Indexer:
    """Walks surface trees and fills an `Index`."""

    def __init__(self, program: Program):
        self.program = program
        self.index = Index()
        self.prelude: FileUnit | None = prelude_unit(program)
        self.file_scopes: dict[str, dict[str, Symbol]] = {}
        self.dims = self._dims()
        self.builtins = _builtin_symbols()
        self.loop_stack: list[Span] = []

    # -------------------------------------------------------------- declarations
    def _dims(self) -> dict[str, Symbol]:
        """Program-wide dims, each declared where it first appears."""
        dims: dict[str, Symbol] = {}
        for path in sorted(self.program.units):
            for item in self.program.units[path].tree.items:
                if isinstance(item, ast.DimDecl):
                    for name, span in item.names:
                        dims.setdefault(name, Symbol(DIM, name, (DIM, name), span))
        return dims

    def declarations(self, unit: FileUnit) -> dict[str, Symbol]:
        """The top-level names a file declares itself."""
        text = self.text(unit.path)
        names: dict[str, Symbol] = {}
        for item in unit.tree.items:
            kind = {ast.ModuleDecl: MODULE, ast.ModelDecl: MODEL, ast.ConstDecl: CONSTANT,
                    ast.SkeletonDecl: SKELETON}.get(type(item))
            if kind is None:
                continue
            keyword = {MODULE: "module", MODEL: "model", SKELETON: "skeleton"}.get(kind, "")
            span = name_span(text, item.span, item.name, keyword)
            names.setdefault(item.name, Symbol(kind, item.name, ("decl", unit.path, item.name), span))
        return names

    def file_scope(self, unit: FileUnit, stack: tuple = ()) -> dict[str, Symbol]:
        """What a file sees at top level: its imports' names, aliases, then its own declarations."""
        if unit.path in self.file_scopes:
            return self.file_scopes[unit.path]
        names: dict[str, Symbol] = {}
        for item in unit.tree.items:
            imported = self.imported_unit(unit, item)
            if imported is None or imported.path in stack:
                continue
            if item.alias:
                span = name_span(self.text(unit.path), item.span, item.alias, "as")
                names[item.alias] = Symbol(ALIAS, item.alias, (ALIAS, unit.path, item.alias), span)
            else:
                names.update(self.file_scope(imported, (*stack, unit.path)))
        names.update(self.declarations(unit))
        self.file_scopes[unit.path] = names
        return names

    def imported_unit(self, unit: FileUnit, item) -> FileUnit | None:
        """The unit an `import` item loaded, if it loaded."""
        if not isinstance(item, ast.Import):
            return None
        return self.program.units.get(imported_path(unit.path, item.path))

    def text(self, path: str) -> str:
        """The text of a file of the program."""
        return self.program.sources[path].text

    def add(self, span: Span | None, symbol: Symbol | None, definition: bool = False) -> None:
        """Record one occurrence."""
        if span is None or symbol is None or not span.is_known:
            return
        self.index.occurrences.setdefault(span.path, []).append(Occurrence(span, symbol, definition))
        if definition and symbol.key[0] == LOCAL and self.loop_stack:
            self.index.loops[(span.path, span.start)] = list(self.loop_stack)

    # -------------------------------------------------------------- files
    def index_unit(self, unit: FileUnit) -> None:
        """Every occurrence in one file."""
        top = self.file_scope(unit) if not unit.builtin else self.declarations(unit)
        outer = _Scope(None, {**self.builtins, **(self.declarations(self.prelude) if self.prelude else {})})
        scope = _Scope(_Scope(outer, self.dims), top, (unit.path, None, None))
        text = self.text(unit.path)
        for item in unit.tree.items:
            self.index_item(unit, item, scope, text)

    def index_item(self, unit: FileUnit, item, scope: _Scope, text: str) -> None:
        """One top-level declaration."""
        if isinstance(item, ast.Import):
            imported = self.imported_unit(unit, item)
            if imported is not None:
                quoted = sub_span(text, item.span, *_string_bounds(text, item.span))
                self.add(quoted, Symbol(FILE, imported.path, (FILE, imported.path), Span(imported.path, 0, 0, 1, 1, 1, 1)))
            if item.alias:
                self.add(name_span(text, item.span, item.alias, "as"), scope.lookup(item.alias), True)
        elif isinstance(item, ast.DimDecl):
            for name, span in item.names:
                self.add(span, self.dims.get(name), True)
            for fact in item.facts:
                self.expression(fact, scope)
        elif isinstance(item, (ast.ConstDecl, ast.ModelDecl)):
            self.add(scope.names[item.name].span, scope.names[item.name], True)
            self.expression(item.value, scope)
        elif isinstance(item, ast.SkeletonDecl):
            self.add(scope.names[item.name].span, scope.names[item.name], True)
            self.skeleton(item, scope.names[item.name])
        elif isinstance(item, ast.ModuleDecl):
            self.module(unit, item, scope, text)

    def skeleton(self, item: ast.SkeletonDecl, symbol: Symbol) -> None:
        """Joint names: the `joints` list defines them, `parents` and `pairs` use them."""
        for statement in item.body:
            if not isinstance(statement, ast.Assign):
                continue
            is_joints = statement.targets[0].name == "joints"
            for literal in _string_literals(statement.value):
                joint = Symbol(JOINT, literal.value, (JOINT, symbol.key, literal.value),
                               None)
                span = Span(literal.span.path, literal.span.start + 1, literal.span.end - 1, literal.span.line,
                            literal.span.column + 1, literal.span.end_line, literal.span.end_column - 1)
                self.add(span, joint, is_joints)

    # -------------------------------------------------------------- modules
    def module(self, unit: FileUnit, item: ast.ModuleDecl, scope: _Scope, text: str) -> None:
        """Hyper-parameters, the body's attributes and locals, and each forward."""
        self.add(scope.names[item.name].span, scope.names[item.name], True)
        body = _Scope(scope, {}, (unit.path, item.name, None))
        for parameter in item.hyper_params:
            symbol = Symbol(HYPER, parameter.name, (HYPER, unit.path, item.name, parameter.name),
                            name_span(text, parameter.span, parameter.name))
            if parameter.default is not None:
                self.expression(parameter.default, body)
            body.names[parameter.name] = symbol
            self.add(symbol.span, symbol, True)
        self.statements(item.body, body, text)

    def forward(self, forward: ast.Forward, scope: _Scope, text: str) -> None:
        """A forward's inputs, outputs, facts and body, in a scope of its own."""
        unit, module, _ = scope.context
        inner = _Scope(scope, {}, (unit, module, forward.span.start))
        for parameter in (*forward.params, *(forward.outputs or ())):
            if parameter.type is not None:
                self.expression(parameter.type, inner)
            span = name_span(text, parameter.span, parameter.name)
            symbol = inner.names.get(parameter.name) or self.local(inner, parameter.name, span, PARAMETER)
            inner.names[parameter.name] = symbol
            self.add(span, symbol, True)
        for fact in forward.facts:
            self.expression(fact, inner)
        self.statements(forward.body, inner, text)

    def local(self, scope: _Scope, name: str, span: Span | None, kind: str = LOCAL) -> Symbol:
        """A new local (or forward input) symbol of the scope's forward or module body."""
        return Symbol(kind if kind == PARAMETER else LOCAL, name, (LOCAL, *scope.context, name), span)

    # -------------------------------------------------------------- statements
    def statements(self, statements, scope: _Scope, text: str) -> None:
        """Each statement in order; assignments define names for the statements after them."""
        for statement in statements:
            self.statement(statement, scope, text)

    def statement(self, statement, scope: _Scope, text: str) -> None:
        """One statement of a module body or forward."""
        if isinstance(statement, ast.Assign):
            self.expression(statement.value, scope)
            if statement.annotation is not None:
                self.expression(statement.annotation, scope)
            for target in statement.targets:
                self.target(target, scope, text)
                # `x = f(x)`: the `x` read on the right is the previous one.
                self.index.bound_after[(target.span.path, target.span.start)] = statement.span.end
        elif isinstance(statement, ast.Forward):
            self.forward(statement, scope, text)
        elif isinstance(statement, ast.AugAssign):
            self.expression(statement.value, scope)
            self.target(statement.target, scope, text)  # the same local: `x += y` rebinds x
            self.index.bound_after[(statement.target.span.path, statement.target.span.start)] = statement.span.end
        elif isinstance(statement, ast.For):
            self.expression(statement.iterable, scope)
            for name in statement.names:
                span = name_span(text, statement.span, name, "for")
                symbol = self.defined_local(scope, name, span)
                self.add(span, symbol, True)
            self.loop_stack.append(statement.span)
            self.statements(statement.body, scope, text)
            self.loop_stack.pop()
        elif isinstance(statement, ast.If):
            for condition, body in statement.branches:
                self.expression(condition, scope)
                self.statements(body, scope, text)
            self.statements(statement.otherwise or (), scope, text)
        elif isinstance(statement, ast.ModeBlock):
            self.statements(statement.body, scope, text)
        else:
            for child in _children(statement):
                self.expression(child, scope)

    def target(self, target: ast.Target, scope: _Scope, text: str) -> None:
        """`x = ...` defines (or redefines) a local; `self.x = ...` an attribute of the module."""
        if target.on_self:
            unit, module, _ = scope.context
            span = name_span(text, target.span, target.name, "self")
            key = (ATTRIBUTE, unit, module, target.name)
            self.add(span, Symbol(ATTRIBUTE, target.name, key, span), True)
            return
        symbol = self.defined_local(scope, target.name, target.span)
        self.add(target.span, symbol, True)

    def defined_local(self, scope: _Scope, name: str, span: Span | None) -> Symbol:
        """The local a target names: the forward input or earlier local of that name, else a new one."""
        existing = scope.names.get(name)
        if existing is not None and existing.kind in (LOCAL, PARAMETER):
            return existing
        symbol = self.local(scope, name, span)
        scope.names[name] = symbol
        return symbol

    # -------------------------------------------------------------- expressions
    def expression(self, node, scope: _Scope) -> None:
        """Every name used in an expression (or type, or fact)."""
        if isinstance(node, ast.Name):
            self.add(node.span, scope.lookup(node.id))
        elif isinstance(node, ast.Attribute):
            self.attribute(node, scope)
        elif isinstance(node, ast.ListComp):
            inner = _Scope(scope, {}, scope.context)
            self.expression(node.iterable, scope)
            text = self.text(node.span.path)
            for name in node.names:
                span = name_span(text, node.span, name, "for")
                symbol = Symbol(LOCAL, name, (LOCAL, "comprehension", node.span.path, node.span.start, name), span)
                inner.names[name] = symbol
                self.add(span, symbol, True)
            self.expression(node.element, inner)
            if node.condition is not None:
                self.expression(node.condition, inner)
        elif isinstance(node, ast.Node):
            for child in _children(node):
                self.expression(child, scope)

    def attribute(self, node: ast.Attribute, scope: _Scope) -> None:
        """`self.x`, `alias.Name`, `skeleton.Joint` or `tensor.method`."""
        unit, module, _ = scope.context
        if isinstance(node.value, ast.SelfRef):
            key = (ATTRIBUTE, unit, module, node.name)
            self.add(node.name_span, Symbol(ATTRIBUTE, node.name, key, None))
            return
        self.expression(node.value, scope)
        owner = scope.lookup(node.value.id) if isinstance(node.value, ast.Name) else None
        if owner is not None and owner.kind == ALIAS:
            imported = self._alias_unit(owner)
            symbol = self.file_scope(imported).get(node.name) if imported is not None else None
            self.add(node.name_span, symbol)
        elif owner is not None and owner.kind == SKELETON:
            kind = SKELETON_FIELD if node.name in _SKELETON_FIELDS else JOINT
            self.add(node.name_span, Symbol(kind, node.name, (kind, owner.key, node.name) if kind == JOINT
                                            else (kind, node.name), None))
        elif node.name in REGISTRY or node.name in ALIASES:
            self.add(node.name_span, self.builtins.get(node.name))

    def _alias_unit(self, alias: Symbol) -> FileUnit | None:
        """The file an `import ... as alias` names."""
        _, path, name = alias.key
        unit = self.program.units.get(path)
        for item in unit.tree.items if unit else ():
            if isinstance(item, ast.Import) and item.alias == name:
                return self.imported_unit(unit, item)
        return None


# ------------------------------------------------------------------ helpers


_PRELUDE_TREES: dict = {}


def prelude_unit(program: Program) -> FileUnit | None:
    """The prelude as a unit (the loader keeps only its scope); parsed once per process."""
    source = program.sources.get(PRELUDE_PATH)
    if source is None:
        return None
    if source.text not in _PRELUDE_TREES:
        from poseir.syntax.parser import parse

        _PRELUDE_TREES[source.text] = parse(source)[0]
    tree = _PRELUDE_TREES[source.text]
    return FileUnit(PRELUDE_PATH, tree, None, builtin=True) if tree is not None else None


def _builtin_symbols() -> dict[str, Symbol]:
    """Ops, compile-time functions and built-in skeletons."""
    names: dict[str, Symbol] = {}
    for name in (*REGISTRY, *ALIASES):
        names[name] = Symbol(OP, name, (OP, ALIASES.get(name, name)))
    for name in (*FUNCTIONS, "Sequential"):
        names[name] = Symbol(FUNCTION, name, (FUNCTION, name))
    for name in SKELETONS:
        names[name] = Symbol(SKELETON, name, ("decl", "<builtin>", name))
    return names


def _children(node) -> Iterator:
    """The surface nodes directly below a node (through tuples and branch pairs)."""
    for name in getattr(node, "__dataclass_fields__", {}):
        if name == "span":
            continue
        yield from _flatten(getattr(node, name))


def _flatten(value) -> Iterator:
    if isinstance(value, ast.Node):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _flatten(item)


def _string_literals(node) -> Iterator[ast.Literal]:
    """String literals anywhere in an expression (joint names in a skeleton)."""
    if isinstance(node, ast.Literal) and isinstance(node.value, str):
        yield node
    for child in _children(node):
        yield from _string_literals(child)


def _string_bounds(text: str, span: Span) -> tuple[int, int]:
    """The offsets of the quoted path in an `import "..."` line."""
    start = text.find('"', span.start, span.end)
    end = text.find('"', start + 1, span.end)
    return (start, end + 1) if start >= 0 and end >= 0 else (span.start, span.start)
