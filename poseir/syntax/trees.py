"""Parsed trees of source files, remembered: in the process by (path, text), and across processes on disk.

Parsing (`poseir.syntax.parser`, with lark) is only imported and run for a text not seen before: a
`poseir check` of an unchanged file, or of the prelude, loads its tree from the user's cache
(`poseir.syntax.cache`). The surface tree is immutable, so sharing it is safe.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from poseir.diagnostics.record import Diagnostic
from poseir.syntax import ast, cache, chunks
from poseir.syntax.source import SourceFile

DEFAULT_NESTING = 100  # poseir.limits.Limits.nesting; repeated to keep parsing free of the limits module


def parse(source: SourceFile, max_depth: int = DEFAULT_NESTING, *,
          on_disk: bool = True) -> tuple[ast.File | None, list[Diagnostic]]:
    """Parse one file; on a syntax error (or nesting deeper than `max_depth`) return None and one diagnostic.

    A file whose text has not changed (the prelude, an import, an editor buffer re-checked after
    an edit elsewhere) is parsed once. `on_disk=False` keeps the tree out of the disk cache: an
    editor's buffer changes at every keystroke, and its texts would only crowd out the files'.
    """
    tree, found = _remembered(source.path, source.text, max_depth, on_disk)
    return tree, list(found)


@functools.lru_cache(maxsize=128)
def _remembered(path: str, text: str, max_depth: int,
                on_disk: bool = True) -> tuple[ast.File | None, tuple[Diagnostic, ...]]:
    """The parse of one (path, text): from the disk cache, else parsed (and stored when it parsed cleanly)."""
    name = cache.key(_syntax_version(), path, text, str(max_depth)) + ".tree" if on_disk else None
    stored = cache.load(name) if name is not None else None
    if isinstance(stored, ast.File):
        return stored, ()
    from poseir.syntax import parser  # lark, and building its parser, only when something must be parsed

    if not on_disk:  # an editor's buffer: an edit re-parses only the top-level item it touches
        tree, found = chunks.parse_by_pieces(SourceFile(path, text), max_depth, parser.parse_text)
        return tree, tuple(found)
    tree, found = parser.parse_text(SourceFile(path, text), max_depth)
    if name is not None and tree is not None and not found:
        cache.store(name, tree)
    return tree, tuple(found)


@functools.cache
def _syntax_version() -> str:
    """What decides the tree of a text besides the text: the grammar and the code that builds the tree."""
    here = Path(__file__).parent
    texts = [resources.files("poseir.grammar").joinpath("poseir.lark").read_text()]
    texts += [(here / name).read_text() for name in ("parser.py", "ast.py", "source.py")]
    return cache.key(*texts)
