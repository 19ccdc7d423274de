"""Load a `.pose` file with its imports and the prelude into file scopes of declarations."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from poseir.syntax import ast, trees as syntax
from poseir.elaborate.builtins import builtin_names
from poseir.diagnostics.record import Diagnostic, DiagnosticError, Label
from poseir.elaborate.scope import Scope
from poseir.limits import DEFAULT_LIMITS, Limits
from poseir.syntax.files import SourceReadError, inside, normalize_text, project_root, read_source
from poseir.syntax.source import SourceFile, SourceMap, Span
from poseir.elaborate.values import POISON, ModuleDef, Namespace

PRELUDE_PATH = "<prelude>"


@dataclass
class FileUnit:
    """One parsed file: its tree and the scope holding its top-level names."""

    path: str
    tree: ast.File
    scope: Scope
    builtin: bool = False
    imports: list = field(default_factory=list)  # (alias or None, FileUnit) per import, in order


@dataclass
class Program:
    """The entry file, everything it imports, declared dims and models."""

    entry: FileUnit
    sources: SourceMap
    units: dict = field(default_factory=dict)  # path -> FileUnit
    dims: dict = field(default_factory=dict)  # dim name -> declaration span
    dim_facts: list = field(default_factory=list)  # (ast.Relation, FileUnit)
    models: dict = field(default_factory=dict)  # model name -> (ast.ModelDecl, FileUnit)


@functools.cache
def _prelude_source() -> SourceFile:
    """The built-in layers, written in poseir itself."""
    text = resources.files("poseir.elaborate").joinpath("prelude.pose").read_text()
    return SourceFile(PRELUDE_PATH, text)


def load(path: str, text: str | None = None, sources: SourceMap | None = None, *, root: str | None = None,
         limits: Limits = DEFAULT_LIMITS) -> tuple[Program | None, list[Diagnostic]]:
    """Parse `path` (or the given text) and its imports; declarations go into file scopes.

    Imports are contained in `root` (by default the project holding `path`, see
    `poseir.syntax.files.project_root`); every file is read within the `limits`.
    """
    sources = sources if sources is not None else SourceMap()
    loader = _Loader(sources, Path(root) if root is not None else project_root(path), limits)
    prelude = loader.load_prelude()
    if prelude is None:
        raise RuntimeError("internal compiler error: the prelude does not parse")
    entry = loader.load_file(path, normalize_text(text) if text is not None else None, prelude.scope,
                             importer=None, stack=())
    if entry is None:
        return None, loader.diagnostics
    program = Program(entry, sources, loader.units)
    for unit in loader.units.values():
        _collect_program_facts(program, unit, loader.diagnostics)
    return program, loader.diagnostics


class _Loader:
    """Parses files once each, follows imports, and reports cycles and missing files."""

    def __init__(self, sources: SourceMap, root: Path, limits: Limits):
        self.sources = sources
        self.root = root
        self.limits = limits
        self.units: dict[str, FileUnit] = {}
        self.diagnostics: list[Diagnostic] = []
        self.prelude: FileUnit | None = None

    def load_prelude(self) -> FileUnit | None:
        """Parse the prelude into a scope just inside the built-ins."""
        source = _prelude_source()
        self.sources.add(source)
        tree, found = syntax.parse(source)
        if tree is None:
            self.diagnostics.extend(found)
            return None
        unit = FileUnit(PRELUDE_PATH, tree, Scope(Scope(None, builtin_names())), builtin=True)
        self._declare(unit, builtin=True)
        self.prelude = unit
        return unit

    def load_file(self, path: str, text: str | None, outer: Scope, importer: Span | None, stack: tuple) -> FileUnit | None:
        """Parse one file (once) and declare its names; imports are loaded first."""
        key = str(Path(path))
        if key in stack:
            cycle = " -> ".join([*stack[stack.index(key):], key])
            self.diagnostics.append(Diagnostic.make("E002", f"import cycle: {cycle}", importer,
                                                    labels=(Label(importer, "this import closes the cycle"),)))
            return None
        if key in self.units:
            return self.units[key]
        source = self._read(key, text, importer)
        if source is None:
            return None
        # A text given by the caller is an editor's buffer (or a repair being tried): not worth a disk entry.
        tree, found = syntax.parse(source, self.limits.nesting, on_disk=text is None)
        self.diagnostics.extend(found)
        if tree is None:
            return None
        unit = FileUnit(key, tree, Scope(outer))
        self.units[key] = unit
        self._load_imports(unit, outer, (*stack, key))
        self._declare(unit, builtin=False)
        return unit

    def _read(self, path: str, text: str | None, importer: Span | None) -> SourceFile | None:
        """The file's text, or a diagnostic that never quotes the file (E002/E003 for imports, E405 for the entry)."""
        if text is None:
            problem = self._containment(path, importer)
            if problem is not None:
                self.diagnostics.append(problem)
                return None
            try:
                text, _ = read_source(path, self.limits.file_bytes)
            except SourceReadError as error:
                code = "E004" if error.content else "E002" if importer is not None else "E405"
                self.diagnostics.append(Diagnostic.make(code, f"cannot read `{path}`: {error}", importer))
                return None
        source = SourceFile(path, text)
        self.sources.add(source)
        return source

    def _containment(self, path: str, importer: Span | None) -> Diagnostic | None:
        """E002 for an import that is not a `.pose` file; E003 for a file outside the project root."""
        if importer is not None and Path(path).suffix != ".pose":
            return Diagnostic.make("E002", f"cannot import `{path}`: imports name `.pose` files", importer,
                                   labels=(Label(importer, "not a `.pose` file"),))
        if inside(path, self.root):
            return None
        link = " (through a symbolic link)" if os.path.realpath(path) != os.path.abspath(path) else ""
        return Diagnostic.make("E003", f"`{path}` is outside the project root{link}", importer,
                               labels=(Label(importer, "this import leaves the project"),) if importer else (),
                               notes=(f"the project root is `{self.root}`",),
                               helps=("move the file into the project, or choose another root with `--root DIR`",))

    def _load_imports(self, unit: FileUnit, outer: Scope, stack: tuple) -> None:
        """Load each import and bind its names (or the alias) in the importing file."""
        for item in unit.tree.items:
            if not isinstance(item, ast.Import):
                continue
            target = imported_path(unit.path, item.path)
            imported = self.load_file(target, None, outer, item.span, stack)
            if imported is None:
                continue
            unit.imports.append((item.alias, imported))
            if item.alias:
                unit.scope.define(item.alias, Namespace(item.alias, imported.scope.names))
            else:
                for name, value in imported.scope.names.items():
                    unit.scope.define(name, value)

    def _declare(self, unit: FileUnit, builtin: bool) -> None:
        """Bind modules of a file in its scope, reporting duplicates (E104)."""
        seen: dict[str, Span] = {}
        for item in unit.tree.items:
            if isinstance(item, ast.ModuleDecl):
                self._check_duplicate(item.name, item.span, seen)
                parameters: dict[str, Span] = {}
                for parameter in item.hyper_params:
                    self._check_duplicate(parameter.name, parameter.span, parameters)
                unit.scope.define(item.name, ModuleDef.declared(item, unit.scope, builtin))
            elif isinstance(item, ast.DimDecl):
                for name, span in item.names:
                    self._check_duplicate(name, span, seen)
            elif isinstance(item, (ast.ModelDecl, ast.ConstDecl, ast.SkeletonDecl)):
                self._check_duplicate(item.name, item.span, seen)

    def _check_duplicate(self, name: str, span: Span, seen: dict) -> None:
        """E104 when a file declares the same name twice."""
        if name in seen:
            self.diagnostics.append(Diagnostic.make(
                "E104", f"`{name}` is defined more than once", span,
                labels=(Label(span, "redefined here"), Label(seen[name], "first defined here"))))
        else:
            seen[name] = span


def imported_path(importer: str, written: str) -> str:
    """The file `import "written"` in `importer` names: relative to the importer, `\\` read as `/`."""
    return str(Path(importer).parent / written.replace("\\", "/"))


def _collect_program_facts(program: Program, unit: FileUnit, diagnostics: list) -> None:
    """Record dims, dim facts and models declared in one file."""
    for item in unit.tree.items:
        if isinstance(item, ast.DimDecl):
            for name, span in item.names:
                program.dims.setdefault(name, span)
            program.dim_facts.extend((fact, unit) for fact in item.facts)
        elif isinstance(item, ast.ModelDecl) and unit is program.entry:
            program.models[item.name] = (item, unit)


def library_models(program: Program) -> dict:
    """For a file without a `model`: a model per module that can be checked on its own.

    That is every module of the entry file whose hyper-parameters all have defaults and whose
    forwards type every input without `...`; its undeclared dim names become symbols.
    """
    models = {}
    for item in program.entry.tree.items:
        if isinstance(item, ast.ModuleDecl) and _checkable_alone(item):
            call = ast.Call(item.span, ast.Name(item.span, item.name), ())
            models[item.name] = (ast.ModelDecl(item.span, item.name, call, None), program.entry)
    return models


def _checkable_alone(module: ast.ModuleDecl) -> bool:
    """Defaults for every hyper-parameter and at least one forward, every input fully typed."""
    forwards = [statement for statement in module.body if isinstance(statement, ast.Forward)]
    if not forwards or any(parameter.default is None for parameter in module.hyper_params):
        return False
    return all(param.type is not None and not any(isinstance(dim, ast.EllipsisItem) for dim in param.type.dims)
               for forward in forwards for param in forward.params)


def evaluate_constants(program: Program, evaluator, warnings: list[Diagnostic]) -> list[Diagnostic]:
    """Evaluate file-level constants and skeletons in order, in every file, once; returns the errors.

    Imported files come first, and their constants and skeletons are then visible in the files
    importing them (directly or through other imports), as their modules are from loading on.
    `evaluator` evaluates each declaration's expression; skeleton warnings go to `warnings`.
    """
    from poseir.elaborate.scope import Frame
    from poseir.elaborate.skeletons import build_skeleton

    diagnostics: list[Diagnostic] = []
    for unit in _imports_first(program.entry):
        _bind_imported_values(unit)
        frame = Frame(unit.scope, "file")
        for item in unit.tree.items:
            try:
                if isinstance(item, ast.ConstDecl):
                    unit.scope.define(item.name, evaluator.evaluate(item.value, frame))
                elif isinstance(item, ast.SkeletonDecl):
                    unit.scope.define(item.name, build_skeleton(evaluator, item, frame, warnings))
            except DiagnosticError as error:
                diagnostics.append(error.diagnostic)
                unit.scope.define(item.name, POISON)  # uses of a broken declaration report nothing more
    return diagnostics


def _imports_first(entry: FileUnit) -> list[FileUnit]:
    """Every file reachable from `entry`, each after the files it imports."""
    ordered: list[FileUnit] = []
    _visit_imports(entry, set(), ordered)
    return ordered


def _visit_imports(unit: FileUnit, seen: set[str], ordered: list[FileUnit]) -> None:
    """Append `unit` to `ordered` after the files it imports (a module-level function: a nested one would
    be a reference cycle through its own closure, left for the cycle collector)."""
    if unit.path in seen:
        return
    seen.add(unit.path)
    for _, imported in unit.imports:
        _visit_imports(imported, seen, ordered)
    ordered.append(unit)


def _bind_imported_values(unit: FileUnit) -> None:
    """Bind what each plain import brings (constants and skeletons included), unless the file declares it."""
    own = {item.name for item in unit.tree.items
           if isinstance(item, (ast.ModuleDecl, ast.ConstDecl, ast.SkeletonDecl, ast.ModelDecl))}
    for alias, imported in unit.imports:
        if alias:
            continue  # a Namespace shares the imported file's table: its values are already visible
        for name, value in imported.scope.names.items():
            if name not in own:
                unit.scope.define(name, value)
