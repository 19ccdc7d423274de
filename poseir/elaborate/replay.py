"""Replay of repeated elaboration: a module built again with the same hyper-parameters, or a forward run
again on the same module configuration and input types, reuses what its first run made.

A transformer's `depth` blocks, SemGCN's ten graph convolutions and ResNet's bottlenecks are each
elaborated the same way every time; only the names differ (`blocks.3.attn.qkv.weight`, `linear_41`).
The first run is recorded as a template; a later run with an equal key copies it, renaming what
belongs to the call (its arguments, its instance's parameters, the values its nodes make) so that
the graph, the types with their atoms, and the editor bindings are exactly those a real run makes.

Only a run that reported nothing, left the facts unchanged and read nothing outside its key is
recorded; a replay that would pass a limit runs for real instead, so the limit is reported where
the real run reports it. `ENABLED = False` turns replay off (the tests compare both).
"""

from __future__ import annotations

from dataclasses import dataclass

from poseir.elaborate.scope import Binding, Scope
from poseir.syntax import ast
from poseir.elaborate.values import (
    Builtin, ModuleDef, ModuleInstance, ModuleList, Namespace, OpRef, ParamSpec, Skeleton, Tensor,
)
from poseir.ir.axes import Atom
from poseir.ir.dims import Dim
from poseir.ir.facts import Facts, Queries, answers_hold, holds_by_definition, note_queries
from poseir.ir.graph import Node, TensorType, Value

ENABLED = True


class Unreplayable(Exception):
    """A value or a run that replay cannot reproduce exactly; it is then elaborated for real."""


# --------------------------------------------------------------------------- fingerprints


def fingerprint(value):
    """A hashable stand-in for a compile-time value: equal exactly when the values elaborate alike.

    The type is part of it because `1`, `1.0`, `True` and a constant Dim compare equal in Python.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    if isinstance(value, Dim):
        return ("Dim", value)
    if isinstance(value, tuple):
        return ("tuple", tuple(fingerprint(item) for item in value))
    if isinstance(value, Skeleton):
        return ("Skeleton", value)
    if isinstance(value, (ModuleDef, Builtin, OpRef, Namespace)):
        return (type(value).__name__, id(value))  # program-lifetime objects: identity is exact
    raise Unreplayable(type(value).__name__)


def hyper_fingerprint(hyper: dict) -> tuple:
    """The fingerprint of a module's hyper-parameter values."""
    return tuple((name, fingerprint(value)) for name, value in hyper.items())


# --------------------------------------------------------------------------- the memo


@dataclass
class Mark:
    """How much of each record of one flow existed when a recorded run started."""

    diagnostics: int
    builder_diagnostics: int
    bindings: int
    nodes: int
    iterations: int
    facts: object
    mutations: int
    mode_reads: int


class ReplayMemo:
    """Templates of one program (shared by its flows): module instances and forward runs, by key."""

    def __init__(self, logs_queries: bool = False):
        # Logging every question a run asks of its facts costs a few per cent of a check; it pays only
        # when the flows run under different facts (`where train T >= 2`), which it lets share templates.
        self.logs_queries = logs_queries
        self.modules: dict = {}
        self.forwards: dict = {}
        self.verdicts: dict = {}  # whether a set of facts answers a query log alike (facts.answers_hold)
        self.mutations = 0  # `.append` calls so far: a structure fingerprint is valid between two
        self._structures: dict[int, tuple] = {}
        self._numbers: dict[tuple, int] = {}

    def mark(self, state) -> Mark:
        """The current extent of a flow's records, to tell later what a run added."""
        return Mark(len(state.diagnostics), len(state.builder.diagnostics), len(state.bindings),
                    len(state.builder.nodes), state.budget.iterations, state.builder.facts, self.mutations,
                    state.mode_reads)

    def clean_since(self, state, mark: Mark) -> bool:
        """True when a run since `mark` reported nothing, kept the facts and appended to no module list."""
        return (len(state.diagnostics) == mark.diagnostics and len(state.builder.diagnostics) ==
                mark.builder_diagnostics and state.builder.facts is mark.facts and self.mutations == mark.mutations)

    def structure(self, instance: ModuleInstance) -> int:
        """A number for an instance's whole configuration (definition, hyper-parameters, submodules):
        equal numbers, equal configurations."""
        entry = self._structures.get(id(instance))
        if entry is not None and entry[0] is instance and entry[1] == self.mutations:
            return entry[2]
        attributes = tuple((name, self._attribute(value)) for name, value in instance.attributes.items())
        found = ("M", id(instance.definition), hyper_fingerprint(instance.hyper), instance.broken, attributes)
        number = self._numbers.setdefault(found, len(self._numbers))  # small keys hash fast in later lookups
        self._structures[id(instance)] = (instance, self.mutations, number)
        return number

    def find_forward(self, key: tuple, mode: str, facts: Facts):
        """The template of a forward call: one recorded in either mode if it never read the mode, else in this
        one, whose questions to its facts these facts answer alike."""
        for template in (*self.forwards.get((None, key), ()), *self.forwards.get((mode, key), ())):
            if template.holds(facts, self.verdicts):
                return template
        return None

    def keep_forward(self, key: tuple, mode: str | None, template, queries: Queries | None, facts: Facts) -> None:
        """Remember a template that ran under `facts` and asked them `queries` (None: not logged); `mode` is None
        when the run did not depend on the mode."""
        template.reads_mode = mode is not None
        template.asked(queries, facts, self.verdicts)
        self.forwards.setdefault((mode, key), []).append(template)

    def find_module(self, key: tuple, facts: Facts):
        """The template of a module instantiation whose questions to its facts these facts answer alike."""
        return next((template for template in self.modules.get(key, ()) if template.holds(facts, self.verdicts)),
                    None)

    def keep_module(self, key: tuple, template, queries: Queries | None, facts: Facts) -> None:
        """Remember a module template that ran under `facts` and asked them `queries` (None: not logged)."""
        template.asked(queries, facts, self.verdicts)
        self.modules.setdefault(key, []).append(template)

    def _attribute(self, value):
        """The fingerprint of one attribute of an instance."""
        if isinstance(value, ModuleInstance):
            return ("S", self.structure(value))
        if isinstance(value, ModuleList):
            return ("L", value.sequential, tuple(self._attribute(item) for item in value.items))
        if isinstance(value, ParamSpec):
            return ("P", value.kind, value.type.dtype, value.type.shape, fingerprint(value.init))
        return fingerprint(value)


def memo_of(program) -> ReplayMemo:
    """The program's memo, made on first use (both flows of a check share it)."""
    memo = getattr(program, "replay_memo", None)
    if memo is None:
        memo = program.replay_memo = ReplayMemo(logs_queries=flows_differ_in_facts(program))
    return memo


def flows_differ_in_facts(program) -> bool:
    """Whether a forward of the program declares a fact for one flow only (`where train T >= 2`)."""
    return any(isinstance(item, ast.ModuleDecl) and
               any(isinstance(node, ast.Forward) and any(fact.mode is not None for fact in node.facts)
                   for node in item.body)
               for unit in program.units.values() for item in unit.tree.items)


# --------------------------------------------------------------------------- module instances


def module_key(definition: ModuleDef, hyper: dict, span) -> tuple | None:
    """The key of a module instantiation, or None when its hyper-parameters cannot be fingerprinted.

    A built-in layer's body runs at its user's call site (its submodules are created there), so
    the site is part of its key.
    """
    try:
        return (id(definition), hyper_fingerprint(hyper), span if definition.builtin else None)
    except Unreplayable:
        return None


class _AsksFacts:
    """A template that holds under the facts that answer its run's questions (`queries`) as they were answered,
    or, when its run kept no log (`queries` None), under facts equal to those it ran under."""

    queries: Queries | None
    recorded_under: Facts | None  # the facts it ran under

    def asked(self, queries: Queries | None, facts: Facts, verdicts: dict) -> None:
        """Set the facts the recorded run ran under and the questions it asked of them, if logged."""
        self.queries, self.recorded_under = queries, facts
        if queries is not None:
            holds_by_definition(facts, queries, verdicts)

    def holds(self, facts: Facts, verdicts: dict) -> bool:
        """Whether the template applies under `facts`; a run recorded around its replay depends on them too."""
        if self.queries is None:
            return facts is self.recorded_under or facts == self.recorded_under
        if not answers_hold(facts, self.queries, verdicts):
            return False
        note_queries(self.queries)
        return True


@dataclass
class ModuleTemplate(_AsksFacts):
    """A module instance as its body built it, with the bindings the body made and the budget it spent."""

    instance: ModuleInstance
    bindings: tuple
    iterations: int
    depth: int  # how many levels of modules the body instantiated below itself
    queries: Queries | None = None  # what the body asked of its facts (see _AsksFacts)
    recorded_under: Facts | None = None

    @staticmethod
    def record(instance: ModuleInstance, bindings, iterations: int, depth: int) -> ModuleTemplate | None:
        """A snapshot of a freshly built instance (None when something in it cannot be copied)."""
        copier = _Copier()
        try:
            snapshot = copier.instance(instance)
            copied = tuple(Binding(binding.span, binding.name, copier.value(binding.value),
                                   copier.instance(binding.instance)) for binding in bindings)
        except Unreplayable:
            return None
        return ModuleTemplate(snapshot, copied, iterations, depth)

    def replay(self, state, span) -> ModuleInstance:
        """A new instance equal to the template, with its bindings recorded and its loops counted."""
        state.budget.iterations += self.iterations
        state.budget.check_time(span)
        copier = _Copier()
        instance = copier.instance(self.instance)
        instance.span = span
        state.bindings.extend(Binding(binding.span, binding.name, copier.value(binding.value),
                                      copier.instance(binding.instance)) for binding in self.bindings)
        return instance


def _plain(value: tuple) -> bool:
    """Whether a tuple holds only immutable values (no module, at any depth)."""
    return all(isinstance(item, _Copier._SHARED) or (isinstance(item, tuple) and _plain(item)) for item in value)


class _Copier:
    """Copies module trees (instances, lists, the scopes their forwards close over), each object once."""

    _SHARED = (type(None), bool, int, float, str, Dim, Skeleton, ModuleDef, ParamSpec, Builtin, OpRef, Namespace)

    def __init__(self):
        self.copies: dict[int, object] = {}

    def value(self, value):
        """A copy of a compile-time value; immutable values are shared."""
        if isinstance(value, self._SHARED):
            return value
        if isinstance(value, tuple):
            # Lists of numbers (an adjacency, a mask) are common and immutable: shared, not rebuilt.
            return value if _plain(value) else tuple(self.value(item) for item in value)
        if isinstance(value, ModuleInstance):
            return self.instance(value)
        if isinstance(value, ModuleList):
            return self._list(value)
        raise Unreplayable(type(value).__name__)

    def instance(self, old: ModuleInstance | None) -> ModuleInstance | None:
        """A copy of an instance with its attributes and forwards."""
        if old is None:
            return None
        if id(old) in self.copies:
            return self.copies[id(old)]
        new = ModuleInstance(old.definition, dict(old.hyper), old.span, path=old.path, broken=old.broken)
        self.copies[id(old)] = new
        new.attributes = {name: self.value(value) for name, value in old.attributes.items()}
        new.forwards = {mode: (decl, self._scope(scope, old)) for mode, (decl, scope) in old.forwards.items()}
        return new

    def _list(self, old: ModuleList) -> ModuleList:
        """A copy of a module list."""
        if id(old) in self.copies:
            return self.copies[id(old)]
        new = ModuleList([], old.span, old.sequential, old.path)
        self.copies[id(old)] = new
        new.items = [self.value(item) for item in old.items]
        return new

    def _scope(self, old: Scope, owner: ModuleInstance) -> Scope:
        """A copy of the scopes a forward closes over, up to the (shared) file scope of its module."""
        if id(old) in self.copies:
            return self.copies[id(old)]
        if old is owner.definition.scope:
            return old
        if old.parent is None:
            raise Unreplayable("a forward outside its module's file scope")
        new = Scope(self._scope(old.parent, owner))
        self.copies[id(old)] = new
        new.names = {name: self.value(value) for name, value in old.names.items()}
        return new


# --------------------------------------------------------------------------- forward runs


class _Canonical:
    """Atoms of argument types with the ones born elsewhere numbered in order of appearance.

    A block's input carries atoms born in the block before it; the block elaborates the same way
    for any atoms with the same pattern of sameness. Declared dims and named axes are the same
    everywhere, so they stay as they are.
    """

    def __init__(self):
        self.index: dict[tuple, int] = {}
        self.external: list[tuple] = []

    def axes(self, axes) -> tuple | None:
        """The canonical form of a type's atoms."""
        if axes is None:
            return None
        return tuple(tuple((self.key(atom.key), atom.size, atom.name) for atom in axis) for axis in axes)

    def key(self, key: tuple) -> tuple:
        """The canonical form of one atom key."""
        if key[0] in ("dim", "name"):
            return key
        if key[0] == "split":
            return ("split", self.key(key[1]), key[2], key[3])
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.external)
            self.external.append(key)
        return ("external", found)


def _under(name: str, prefix: str) -> bool:
    """Whether a value name or scope belongs to the module at path `prefix` (or is it)."""
    return name == prefix or name.startswith(prefix + ".")


def _root_of(name: str, roots: tuple) -> int | None:
    """Which of the (disjoint) module paths `roots` a value name or scope belongs to, if any."""
    for index, root in enumerate(roots):
        if _under(name, root):
            return index
    return None


def forward_key(memo: ReplayMemo, state, callee: ModuleInstance, decl, frame, arguments: list):
    """(key, external atom keys) of a forward call, or (None, None) when it cannot be replayed.

    The key holds everything the run reads but its facts and mode: the forward, the callee's whole configuration,
    the call site a built-in layer reports at, and the arguments (tensor types with their atoms in
    canonical form, which argument repeats another, which belongs to the callee or to a module
    argument; a module argument by its configuration). The mode is added by the memo only for the
    runs that asked for it, and the facts are checked by asking the recorded questions again
    (`ReplayMemo.find_forward`).
    """
    roots = _roots(callee, arguments)
    if roots is None:
        return None, None
    canonical = _Canonical()
    parts, seen = [], {}
    try:
        for index, argument in enumerate(arguments):
            if isinstance(argument, Tensor):
                owner = _root_of(argument.name, roots)
                owned = None if owner is None else (owner, argument.name[len(roots[owner]):])
                parts.append(("T", argument.type.dtype, argument.type.shape, canonical.axes(argument.type.atoms),
                              seen.setdefault(argument.name, index), owned))
            elif isinstance(argument, ModuleInstance):
                parts.append(("module", memo.structure(argument)))
            else:
                parts.append(fingerprint(argument))
        structure = memo.structure(callee)
    except Unreplayable:
        return None, None
    site = frame.site.span if frame.site is not None else None
    key = (id(decl), structure, site, frame.builtin, tuple(parts))
    return key, tuple(canonical.external)


def _roots(callee: ModuleInstance, arguments: list) -> tuple | None:
    """The paths of the modules a call runs: the callee's, then each module argument's (None when they
    are not disjoint named subtrees, which translating by path needs)."""
    roots = (callee.path, *(argument.path for argument in arguments if isinstance(argument, ModuleInstance)))
    for index, root in enumerate(roots):
        if not root or any(_under(root, other) or _under(other, root) for other in roots[index + 1:]):
            return None
    return roots


@dataclass(frozen=True)
class _TensorRef:
    """A tensor of a template's run, by its name there."""

    name: str


@dataclass(frozen=True)
class _ModuleRef:
    """An instance or module list of a template's modules, by which root it is under and its route from it."""

    where: tuple


@dataclass
class ForwardTemplate(_AsksFacts):
    """One recorded forward run: its nodes and their types, its result and bindings, in the names of that run."""

    roots: tuple  # the paths of the callee and of each module argument in that run
    arguments: tuple  # the argument tensors' names (None for other arguments)
    external: tuple  # the atom keys the arguments brought, by canonical index
    nodes: tuple
    values: dict  # output name -> Value
    result: object
    bindings: tuple  # (span, name, value, instance) with refs in place of tensors and modules
    iterations: int
    reads_mode: bool = True  # replaying it is a read of the mode too (for the runs that enclose it)
    queries: Queries | None = None  # what the run asked of its facts (see _AsksFacts)
    recorded_under: Facts | None = None

    @staticmethod
    def record(state, callee: ModuleInstance, arguments: list, external: tuple, mark: Mark,
               result) -> ForwardTemplate | None:
        """The template of a run that just ended (None when it touched something outside its key)."""
        builder = state.builder
        nodes = tuple(builder.nodes[mark.nodes:])
        names = tuple(argument.name if isinstance(argument, Tensor) else None for argument in arguments)
        modules = _modules_of(callee, arguments)
        template = ForwardTemplate(tuple(module.path for module in modules), names, external, nodes, {}, None, (), 0)
        try:
            template._check_nodes(set(names))
            template.values = {name: builder.values[name] for node in nodes for name in node.outputs}
            for value in template.values.values():
                template._check_atoms(value.type)
            routes = _Routes(modules)
            template.result = template._ref(result, routes)
            template.bindings = tuple((binding.span, binding.name, template._ref(binding.value, routes),
                                       routes.route(binding.instance)) for binding in state.bindings[mark.bindings:])
        except Unreplayable:
            return None
        template.iterations = state.budget.iterations - mark.iterations
        return template

    def _check_nodes(self, known: set) -> None:
        """Every node reads arguments, the parameters of its modules or earlier nodes, in a scope of its modules."""
        for node in self.nodes:
            if _root_of(node.scope, self.roots) is None:
                raise Unreplayable("a node outside the call's modules")
            for name in node.inputs:
                if name and name not in known and _root_of(name, self.roots) is None:
                    raise Unreplayable(f"a node reads {name}")
            known.update(node.outputs)

    def _check_atoms(self, type_: TensorType) -> None:
        """Every atom of a type is translatable to another run."""
        for axis in type_.atoms or ():
            for atom in axis:
                self._check_key(atom.key)

    def _check_key(self, key: tuple) -> None:
        """An atom key is a declared dim, an argument's atom, or born at a value of the run or a parameter."""
        if key in self.external or key[0] in ("dim", "name"):
            return
        if key[0] == "split":
            self._check_key(key[1])
            return
        owner = key[1].split("<", 1)[0] if key[0] == "born" else None
        if owner is None or not (owner in self.values or owner in self.arguments or
                                 _root_of(owner, self.roots) is not None):
            raise Unreplayable(f"atom {key}")

    def _ref(self, value, routes: _Routes):
        """A value of the run with its tensors and modules replaced by references."""
        if isinstance(value, Tensor):
            if value.name not in self.arguments and value.name not in self.values and \
                    _root_of(value.name, self.roots) is None:
                raise Unreplayable("a tensor from outside the run")
            return _TensorRef(value.name)
        if isinstance(value, tuple):
            return tuple(self._ref(item, routes) for item in value)
        if isinstance(value, (ModuleInstance, ModuleList)):
            return _ModuleRef(routes.route(value))
        if isinstance(value, _Copier._SHARED):
            return value
        raise Unreplayable(type(value).__name__)

    def fits(self, state) -> bool:
        """Whether replaying stays within the limits (else the run is made for real, to report where)."""
        limits = state.budget.limits
        return (state.budget.iterations + self.iterations <= limits.loop_iterations and
                len(state.builder.nodes) + len(self.nodes) <= limits.graph_nodes)

    def replay(self, state, callee: ModuleInstance, arguments: list, external: tuple):
        """Emit the template's nodes again for this call, and return its result in this call's values."""
        run = _Translation(self, _modules_of(callee, arguments), arguments, external, state.builder)
        builder = state.builder
        for node in self.nodes:
            builder.budget.nodes(len(builder.nodes) + 1, node.span)
            outputs = tuple(builder.fresh_name(node.op) for _ in node.outputs)
            run.names.update(zip(node.outputs, outputs))
            copy = Node(node.op, tuple(run.name(name) if name else "" for name in node.inputs), outputs,
                        node.attrs, node.span, run.path(node.scope), node.arguments)
            builder.nodes.append(copy)
            for old, new in zip(node.outputs, outputs):
                value = self.values[old]
                builder.values[new] = Value(new, run.type(value.type), value.span)
                builder.producers[new] = copy
        state.budget.iterations += self.iterations
        state.mode_reads += self.reads_mode
        state.bindings.extend(Binding(span, name, run.value(value), run.module(where))
                              for span, name, value, where in self.bindings)
        return run.value(self.result)


def _modules_of(callee: ModuleInstance, arguments: list) -> tuple:
    """The callee and the module arguments of a call: the trees whose names a template translates."""
    return (callee, *(argument for argument in arguments if isinstance(argument, ModuleInstance)))


class _Routes:
    """Where each instance and module list of a call's modules is: which module, then attribute names and
    list indices."""

    def __init__(self, modules: tuple):
        self.modules = modules
        self.found: dict[int, tuple] | None = None

    def route(self, value) -> tuple | None:
        """The route to `value` (Unreplayable when it is not in the call's modules)."""
        if value is None:
            return None
        if self.found is None:
            self.found = {}
            for index, module in enumerate(self.modules):
                self._walk(module, (index,))
        if id(value) not in self.found:
            raise Unreplayable("a module outside the call")
        return self.found[id(value)]

    def _walk(self, value, route: tuple) -> None:
        """Record the routes of a value and everything below it (the first route to each wins)."""
        if id(value) in self.found:
            return
        if isinstance(value, ModuleInstance):
            self.found[id(value)] = route
            for name, attribute in value.attributes.items():
                self._walk(attribute, (*route, name))
        elif isinstance(value, ModuleList):
            self.found[id(value)] = route
            for index, item in enumerate(value.items):
                self._walk(item, (*route, index))


class _Translation:
    """One replay: template names, atoms, tensors and modules to those of the new call."""

    def __init__(self, template: ForwardTemplate, modules: tuple, arguments: list, external: tuple, builder):
        self.template = template
        self.modules = modules
        self.paths = tuple((old, new.path) for old, new in zip(template.roots, modules))
        self.arguments = {old: new for old, new in zip(template.arguments, arguments) if old is not None}
        self.names = {old: new.name for old, new in self.arguments.items()}
        self.external = dict(zip(template.external, external))
        self.builder = builder
        self.atoms: dict[tuple, Atom] = {}
        self.axes: dict[int, tuple] = {}  # by identity: the template keeps every axis alive

    def name(self, old: str) -> str:
        """The new call's name of a template value (an argument, a node output or a parameter)."""
        found = self.names.get(old)
        return found if found is not None else self.path(old)

    def path(self, old: str) -> str:
        """A parameter name or scope under one of the template's modules, under the same module of this call."""
        for template_path, path in self.paths:
            if _under(old, template_path):
                return path + old[len(template_path):]
        raise AssertionError(f"internal compiler error: replay cannot translate {old!r}")

    def type(self, type_: TensorType) -> TensorType:
        """A template type with its atoms translated."""
        if type_.atoms is None:
            return type_
        return TensorType(type_.dtype, type_.shape, tuple(self.axis(axis) for axis in type_.atoms))

    def axis(self, axis: tuple) -> tuple:
        """A template axis with its atoms translated (types share axis tuples, so each is done once)."""
        found = self.axes.get(id(axis))
        if found is None:
            found = self.axes[id(axis)] = tuple(self.atom(atom) for atom in axis)
        return found

    def atom(self, atom: Atom) -> Atom:
        """The new call's atom for a template atom."""
        found = self.atoms.get(atom.key)
        if found is None:
            key = self.key(atom.key)
            found = self.atoms[atom.key] = atom if key == atom.key else Atom(key, atom.size, atom.name)
        return found

    def key(self, key: tuple) -> tuple:
        """A translated atom key."""
        found = self.external.get(key)
        if found is not None:
            return found
        if key[0] in ("dim", "name"):
            return key
        if key[0] == "split":
            return ("split", self.key(key[1]), key[2], key[3])
        base, mark, rest = key[1].partition("<")
        return ("born", self.name(base) + mark + rest, *key[2:])

    def value(self, value):
        """A template value (result or binding) in the new call's tensors and modules."""
        if isinstance(value, _TensorRef):
            if value.name in self.arguments:
                return self.arguments[value.name]
            found = self.builder.values[self.name(value.name)]
            return Tensor(found.name, found.type, found.span)
        if isinstance(value, _ModuleRef):
            return self.module(value.where)
        if isinstance(value, tuple):
            return tuple(self.value(item) for item in value)
        return value

    def module(self, where: tuple | None):
        """The new call's instance or module list at a route."""
        if where is None:
            return None
        found = self.modules[where[0]]
        for step in where[1:]:
            found = found.items[step] if isinstance(step, int) else found.attributes[step]
        return found
