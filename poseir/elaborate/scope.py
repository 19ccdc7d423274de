"""Lexical scopes and the frame the elaborator runs statements in."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from poseir.elaborate.builder import CallSite
from poseir.syntax.source import Span
from poseir.elaborate.values import ModuleInstance


class Scope:
    """A chain of name tables: local, then module, then file, then built-ins."""

    def __init__(self, parent: Scope | None = None, names: dict | None = None):
        self.parent = parent
        self.names: dict = dict(names or {})

    def lookup(self, name: str):
        """The value bound to `name`, searching outwards; KeyError when unbound."""
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        try:
            self.lookup(name)
        except KeyError:
            return False
        return True

    def define(self, name: str, value) -> None:
        """Bind `name` in this (innermost) scope."""
        self.names[name] = value

    def child(self, names: dict | None = None) -> Scope:
        """A new inner scope."""
        return Scope(self, names)

    def visible_names(self) -> list[str]:
        """Every name visible from here, for "did you mean" suggestions."""
        seen: list[str] = []
        scope = self
        while scope is not None:
            seen.extend(name for name in scope.names if name not in seen)
            scope = scope.parent
        return seen


def suggest(name: str, candidates) -> str | None:
    """The closest candidate to a misspelled name, if one is close enough."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return matches[0] if matches else None


@dataclass
class Frame:
    """Where statements run: a scope, `self`, the kind of body, and the user-facing call site."""

    scope: Scope
    kind: str  # "file", "module", "forward" or "skeleton"
    instance: ModuleInstance | None = None
    builtin: bool = False  # running prelude code: spans are replaced by the user's call site
    site: CallSite | None = None
    dims: dict = field(default_factory=dict)  # pattern dim name -> bound Dim, in a forward
    usage: Usage | None = None  # in a user forward: what was assigned and read, for W302

    def span_of(self, node) -> Span:
        """The span a diagnostic about `node` points at: the user's call site inside prelude code."""
        return self.site.span if self.builtin and self.site else node.span


@dataclass
class Usage:
    """Locals assigned and read in one forward, and names that exist only in the other mode."""

    assigned: dict = field(default_factory=dict)  # name -> (target span, value)
    read: set = field(default_factory=set)
    other_mode: dict = field(default_factory=dict)  # name -> the mode it exists in


@dataclass(frozen=True)
class Binding:
    """A name the user's code bound, for tools (hover, inlay hints): where, to what, in which instance."""

    span: Span
    name: str
    value: object  # a Tensor, a number, a dim, a module instance, a ParamSpec, ...
    instance: ModuleInstance | None  # the instance running the code

    @property
    def path(self) -> str:
        """The instance's module path (its state_dict prefix), known once parameters are named."""
        return self.instance.path if self.instance is not None else ""
