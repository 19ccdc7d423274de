"""A private per-user directory for what is slow to rebuild in every process: lark's parser tables and parsed trees.

Both are pickles, and unpickling runs code named in the file, so the directory must be ours alone:
`$POSEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/poseir`, else `~/.cache/poseir`, created with mode 0700
and used only when it is owned by this user and writable by no one else. Anything else (no home, a
read-only or foreign directory, `POSEIR_CACHE_DIR=""`) means no cache: slower, never unsafe. Entries
are keyed by a hash of everything that decides their content, and written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import stat
import tempfile
from pathlib import Path

_MAX_ENTRIES = 256  # parsed trees kept; past it the older half is removed


@functools.cache
def directory() -> Path | None:
    """The cache directory, made if needed, or None when there is no safe one."""
    configured = os.environ.get("POSEIR_CACHE_DIR")
    if configured is not None:
        path = Path(configured) if configured else None
    else:
        base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.path.expanduser("~"), ".cache"))
        path = Path(base) / "poseir" if os.path.isabs(base) else None
    if path is None:
        return None
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path if _private(path) else None
    except OSError:
        return None


def _private(path: Path) -> bool:
    """Whether a directory is owned by this user and writable by nobody else (so its pickles are ours)."""
    info = os.stat(path, follow_symlinks=False)
    owner = getattr(os, "getuid", None)
    if not stat.S_ISDIR(info.st_mode) or (info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        return False
    return owner is None or info.st_uid == owner()


def key(*parts: str) -> str:
    """A file name for an entry whose content is decided by `parts`."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def path_of(name: str) -> str | None:
    """The path of an entry (for lark's own `cache=`), or None without a cache directory."""
    found = directory()
    return str(found / name) if found is not None else None


def load(name: str):
    """The object stored under `name`, or None (absent, unreadable or not a pickle of ours)."""
    found = directory()
    if found is None:
        return None
    try:
        with open(found / name, "rb") as stream:
            return pickle.load(stream)
    except Exception:  # noqa: BLE001  (a damaged entry is a miss; it is rewritten)
        return None


def store(name: str, value) -> None:
    """Write `value` under `name` atomically (best effort: a failure only costs the next process time)."""
    found = directory()
    if found is None:
        return
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".entry.", dir=found)
        with os.fdopen(descriptor, "wb") as stream:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, found / name)
        _prune(found)
    except Exception:  # noqa: BLE001  (a full disk or a value that does not pickle: no entry)
        try:
            os.unlink(temporary)
        except (OSError, UnboundLocalError):
            pass


def _prune(found: Path) -> None:
    """Keep the directory bounded: past `_MAX_ENTRIES` parsed trees, remove the older half."""
    entries = [entry for entry in os.scandir(found) if entry.name.endswith(".tree")]
    if len(entries) <= _MAX_ENTRIES:
        return
    entries.sort(key=lambda entry: entry.stat().st_mtime)
    for entry in entries[:len(entries) // 2]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass
