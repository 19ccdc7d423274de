"""`.pose` files on disk: read safely (regular files only, bounded size, UTF-8, inside the root), written back atomically.

The compiler sees text with `\\n` line ends and no BOM; `Encoding` remembers what the file had,
so `poseir fix --write` writes it back the same way, and never loses the user's file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

BOM = "\ufeff"
ROOT_MARKERS = ("pyproject.toml", ".git")


@dataclass(frozen=True)
class Encoding:
    """How a file's text was stored: a leading BOM, and `\\r\\n` or `\\n` line ends."""

    bom: bool = False
    newline: str = "\n"

    def encode(self, text: str) -> bytes:
        """`text` (with `\\n` line ends) in this encoding."""
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return ((BOM if self.bom else "") + text).encode("utf-8")


class SourceReadError(Exception):
    """A file that cannot be read as `.pose` source; the message never quotes its contents.

    `content` tells a file that exists but is no source text (too large, binary, a device) from
    one that cannot be opened at all (missing, unreadable).
    """

    def __init__(self, message: str, content: bool = True):
        super().__init__(message)
        self.content = content


def decode(data: bytes, path: str = "") -> tuple[str, Encoding]:
    """UTF-8 bytes to compiler text and the encoding they had."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceReadError(f"it is not UTF-8 text (byte {error.start} cannot be decoded)") from None
    bom = text.startswith(BOM)
    if bom:
        text = text[1:]
    if "\x00" in text:
        raise SourceReadError("it is a binary file (it contains NUL bytes)")
    newline = "\r\n" if "\r\n" in text else "\n"
    if newline != "\n":
        text = text.replace("\r\n", "\n")
    return text, Encoding(bom, newline)


def normalize_text(text: str) -> str:
    """Text handed over by an editor or a caller, as the compiler sees files: no BOM, `\n` line ends."""
    return (text[1:] if text.startswith(BOM) else text).replace("\r\n", "\n")


def read_source(path: str | os.PathLike, max_bytes: int) -> tuple[str, Encoding]:
    """The text of a regular file of at most `max_bytes`; SourceReadError otherwise.

    The file is opened without blocking (a named pipe would otherwise hang the open) and checked
    with `fstat` on the open descriptor, so it cannot be swapped between the check and the read.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise SourceReadError(error.strerror or str(error), content=False) from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise SourceReadError("it is a directory", content=False)
        if not stat.S_ISREG(info.st_mode):
            raise SourceReadError("it is not a regular file (a device, pipe or socket)")
        if info.st_size > max_bytes:
            raise SourceReadError(f"it is {info.st_size:,} bytes, above the `file_bytes` limit ({max_bytes:,}); "
                                  f"raise it with `--limit file_bytes=...`")
        data = _read_at_most(descriptor, max_bytes + 1)
    except OSError as error:
        raise SourceReadError(error.strerror or str(error)) from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:  # the file grew, or its size was not what fstat said
        raise SourceReadError(f"it is larger than the `file_bytes` limit ({max_bytes:,})")
    return decode(data, str(path))


def _read_at_most(descriptor: int, count: int) -> bytes:
    """Up to `count` bytes from an open file."""
    chunks, remaining = [], count
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def project_root(path: str | os.PathLike) -> Path:
    """The nearest directory above `path` that holds `pyproject.toml` or `.git`, else `path`'s directory."""
    start = Path(os.path.realpath(Path(path).parent if Path(path).name else path))
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in ROOT_MARKERS):
            return directory
    return start


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether `path`, with every symbolic link resolved, lies inside `root`."""
    resolved = Path(os.path.realpath(path))
    base = Path(os.path.realpath(root))
    return resolved == base or base in resolved.parents


class SourceWriteError(Exception):
    """A file that must not or cannot be replaced (read-only, changed since it was read)."""


@dataclass(frozen=True)
class Snapshot:
    """What a file was when it was read, to notice a change before writing over it."""

    size: int
    modified: int  # st_mtime_ns

    @classmethod
    def of(cls, path: str | os.PathLike) -> Snapshot:
        """The snapshot of `path` now (links followed)."""
        info = os.stat(path)
        return cls(info.st_size, info.st_mtime_ns)


def write_back(path: str | os.PathLike, text: str, encoding: Encoding, snapshot: Snapshot | None = None) -> None:
    """Replace the file at `path` with `text`, atomically, keeping everything but the text.

    A symbolic link is followed, so the link stays a link and its target gets the new text. The
    new text goes to a temporary file created exclusively (an unpredictable name, never an
    existing file or a planted link) in the target's directory, is fsynced, takes the target's
    mode and owner, and then replaces the target in one rename. A read-only file is refused.
    """
    target = Path(os.path.realpath(path))
    info = os.stat(target)
    if not stat.S_ISREG(info.st_mode):
        raise SourceWriteError("it is not a regular file")
    if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise SourceWriteError("it is read-only; make it writable first to apply fixes")
    if snapshot is not None and Snapshot.of(target) != snapshot:
        raise SourceWriteError("it changed since it was read; run the command again")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".poseir-fix", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(encoding.encode(text))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(info.st_mode))
        _keep_owner(temporary, info)
        os.replace(temporary, target)
    except BaseException:
        _remove_quietly(temporary)
        raise
    _sync_directory(target.parent)


def _keep_owner(path: str, info: os.stat_result) -> None:
    """Give the new file the old one's owner and group where we may (as root, or our own group)."""
    try:
        os.chown(path, info.st_uid, info.st_gid)
    except (PermissionError, AttributeError):
        pass  # a user may not give files away; the file is then theirs, as an editor's save would make it


def _remove_quietly(path: str) -> None:
    """Delete a temporary file that did not make it into place."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (where the platform allows opening a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_output(path: str | os.PathLike, data: bytes) -> None:
    """Write a file the user asked for (`-o PATH`) at exactly `path`; OSError when it cannot be written.

    A regular file (new or old) is written through a temporary file and a rename, so a failed
    write never leaves a truncated file where the old one was; a device or pipe (`/dev/stdout`,
    `/dev/full`) is written directly, and its errors are reported like any other.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        with open(path, "wb") as handle:
            handle.write(data)
        return
    target = Path(os.path.realpath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        _remove_quietly(temporary)
        raise


def _umask() -> int:
    """The process's file creation mask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
