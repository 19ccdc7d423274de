"""A pickle reader that runs no code from the file: only admitted globals are built, anything else is refused.

Python's pickle format lets a file name any importable function or class and call it while it is
read (`os.system`, `builtins.exec`, a class's `__reduce__`). This reader resolves every global the
file names through a table of admitted constructors of our own, each of which checks its arguments
before building anything: plain containers, numbers, strings, numpy arrays and dtypes (whose sizes
must agree with the bytes actually present in the file), plus whatever a caller adds (the PyTorch
reader adds tensor and storage rebuilding). A global outside the table stops reading at once with a
diagnostic naming it, before anything later in the file is looked at.
"""

from __future__ import annotations

import _compat_pickle
import collections
import math
import pickle
import re
import struct
from collections.abc import Callable, Mapping

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError

Admitted = Mapping[tuple[str, str], Callable]


class RefusedGlobal(Exception):
    """The file names a global that is not admitted; nothing it names was called."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.module = module
        self.name = name

    @property
    def qualified(self) -> str:
        """The global's dotted name, as the file spells it."""
        return f"{self.module}.{self.name}"


class MalformedPickle(ValueError):
    """The pickle is well-formed bytes but its content is inconsistent (sizes, types)."""


class Sealed:
    """Base for objects this reader builds that a pickle's BUILD opcode must never modify."""

    __slots__ = ()

    def __setstate__(self, state) -> None:
        raise MalformedPickle(f"the file tries to modify a {type(self).__name__} after building it")


class _Marker(Sealed):
    """Stands for a class the file names only as an argument (numpy.ndarray); calling it is refused."""

    __slots__ = ("qualified",)

    def __init__(self, qualified: str) -> None:
        object.__setattr__(self, "qualified", qualified)

    def __call__(self, *arguments):
        raise MalformedPickle(f"the file calls `{self.qualified}` directly")

    def __repr__(self) -> str:
        return self.qualified


NDARRAY = _Marker("numpy.ndarray")


class UnpickledArray(np.ndarray):
    """A numpy array being rebuilt from a pickle; its state is checked against its declared size first."""

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise MalformedPickle("a numpy array's state is not a 4- or 5-tuple")
        version, shape, dtype, fortran, raw = state if len(state) == 5 else (1, *state)
        if not isinstance(version, int) or not isinstance(fortran, bool) or not isinstance(dtype, np.dtype):
            raise MalformedPickle("a numpy array's state has the wrong types")
        count = element_count(shape)
        if dtype.hasobject:
            if not isinstance(raw, list) or len(raw) != count:
                raise MalformedPickle(f"an object array of {count} elements does not hold {count} objects")
        elif not isinstance(raw, (bytes, bytearray)) or len(raw) != count * dtype.itemsize:
            raise MalformedPickle(f"a numpy array declares {count} x {dtype.itemsize} bytes but holds "
                                  f"{len(raw) if isinstance(raw, (bytes, bytearray)) else 'no'} bytes")
        super().__setstate__(state)


def element_count(shape) -> int:
    """The element count of a shape read from a file, which must be a tuple of non-negative ints."""
    if not isinstance(shape, tuple) or not all(_is_int(size) and size >= 0 for size in shape):
        raise MalformedPickle(f"`{shape!r}` is not a shape")
    return math.prod(shape)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_plain_array(value) -> np.ndarray:
    """An array rebuilt by this reader as a plain `np.ndarray` (no copy)."""
    return np.asarray(value).view(np.ndarray)


# ---------------------------------------------------------------- admitted constructors


def _reconstruct(subtype, shape, typecode) -> UnpickledArray:
    """numpy's `_reconstruct`: an empty array whose content arrives by BUILD (checked there)."""
    if subtype is not NDARRAY:
        raise MalformedPickle("numpy `_reconstruct` is asked for something other than numpy.ndarray")
    if element_count(shape) != 0 or not isinstance(typecode, (bytes, str)):
        raise MalformedPickle("numpy `_reconstruct` is asked for a non-empty array")
    return np.empty(0, np.int8).view(UnpickledArray)


_DTYPE_SPEC = re.compile(r"[A-Za-z?][0-9]{0,6}")


def _dtype(spec, align=False, copy=False) -> np.dtype:
    """numpy's dtype from its short string (`f4`, `u4`, `O8`, `V16`); numpy checks the state BUILD gives it."""
    if not isinstance(spec, str) or not _DTYPE_SPEC.fullmatch(spec):
        raise MalformedPickle(f"`{spec!r}` is not a numpy dtype code")
    return np.dtype(spec, bool(align), bool(copy))


def _scalar(dtype, data):
    """A numpy scalar from its dtype and raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise MalformedPickle("a numpy scalar has no plain dtype")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise MalformedPickle(f"a numpy {dtype} scalar does not hold {dtype.itemsize} bytes")
    return np.frombuffer(bytes(data), dtype)[0]


def _frombuffer(buffer, dtype, shape, order) -> np.ndarray:
    """numpy's protocol-5 array: raw bytes of a declared dtype and shape."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise MalformedPickle("a numpy buffer array has no plain dtype or order")
    count = element_count(shape)
    if not isinstance(buffer, (bytes, bytearray)) or len(buffer) != count * dtype.itemsize:
        raise MalformedPickle(f"a numpy buffer array declares {count} x {dtype.itemsize} bytes but holds others")
    return np.frombuffer(bytearray(buffer), dtype).reshape(shape, order=order)


def _latin1_encode(text, encoding="utf-8") -> bytes:
    """`_codecs.encode(text, 'latin1')`: how protocol 2 spells a bytes object."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise MalformedPickle("`_codecs.encode` is only admitted for latin-1 text")
    return text.encode("latin-1")


def _bytes(*arguments) -> bytes:
    """`bytes()`: protocol 2's empty bytes object."""
    if arguments:
        raise MalformedPickle("`bytes` is only admitted without arguments")
    return b""


def _bytearray(*arguments) -> bytearray:
    """`bytearray(bytes)` (protocols 3-4) or `bytearray(text, 'latin-1')` (protocol 2)."""
    if len(arguments) == 1 and isinstance(arguments[0], bytes):
        return bytearray(arguments[0])
    return bytearray(_latin1_encode(*arguments)) if arguments else bytearray()


def _collection(kind):
    """`set(items)` / `frozenset(items)` from a list the file built."""
    def build(items=()):
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise MalformedPickle(f"`{kind.__name__}` is only admitted over a list")
        return kind(items)
    return build


def _complex(real=0.0, imag=0.0) -> complex:
    """A complex number from two real numbers."""
    if not all(isinstance(part, (int, float)) for part in (real, imag)):
        raise MalformedPickle("`complex` is only admitted over two numbers")
    return complex(real, imag)


def _ordered_dict(*arguments) -> collections.OrderedDict:
    """An OrderedDict, empty or from a list of pairs (items arrive by SETITEMS)."""
    if len(arguments) > 1 or (arguments and not isinstance(arguments[0], (list, tuple, dict))):
        raise MalformedPickle("`collections.OrderedDict` is only admitted over a list of pairs")
    return collections.OrderedDict(*arguments)


def _numpy_names(name: str, function) -> dict:
    """numpy 1.x and 2.x spell the module of their pickle helpers differently."""
    return {(module, name): function for module in ("numpy.core.multiarray", "numpy._core.multiarray")}


BASE_GLOBALS: dict[tuple[str, str], Callable] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("builtins", "set"): _collection(set),
    ("builtins", "frozenset"): _collection(frozenset),
    ("builtins", "complex"): _complex,
    ("builtins", "bytes"): _bytes,
    ("builtins", "bytearray"): _bytearray,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): NDARRAY,
    ("numpy", "dtype"): _dtype,
    **_numpy_names("_reconstruct", _reconstruct),
    **_numpy_names("scalar", _scalar),
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


# ---------------------------------------------------------------- the reader


class Source:
    """Bytes (or an mmap) read from a position; a read never returns (or allocates) more than exists."""

    def __init__(self, buffer, position: int = 0) -> None:
        self.buffer = buffer
        self.position = position

    def read(self, size: int = -1) -> bytes:
        end = len(self.buffer) if size < 0 else min(len(self.buffer), self.position + size)
        chunk = bytes(self.buffer[self.position:end])
        self.position = end
        return chunk

    def readline(self) -> bytes:
        end = self.buffer.find(b"\n", self.position)
        return self.read(-1 if end < 0 else end + 1 - self.position)


class RestrictedUnpickler(pickle._Unpickler):  # noqa: SLF001  (the pure-Python unpickler, see below)
    """An unpickler whose globals come only from an admitted table, and persistent ids from a callback.

    It is the pure-Python unpickler on purpose: the C one sizes buffers from numbers in the file
    before checking them (a memo index of 2**31 makes it allocate and zero gigabytes), while the
    Python one keeps its memo in a dict and reads only the bytes that exist. The one opcode that
    still allocates a declared size, BYTEARRAY8, reads the bytes first and checks their count.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: SLF001

    def __init__(self, source: Source, admitted: Admitted = BASE_GLOBALS,
                 persistent: Callable[[object], object] | None = None) -> None:
        super().__init__(source)
        self._admitted = admitted
        self._persistent = persistent

    def find_class(self, module: str, name: str):
        """The admitted constructor for `module.name`; RefusedGlobal for anything else."""
        module, name = _python3_name(module, name)
        try:
            return self._admitted[(module, name)]
        except (KeyError, TypeError):
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid):
        """Persistent ids (PyTorch storages) go to the caller's callback; without one they are an error."""
        if self._persistent is None:
            raise MalformedPickle("the file refers to external data (a persistent id) where none is allowed")
        return self._persistent(pid)

    def _load_bytearray8(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        data = self.read(size)  # at most the bytes that exist, unlike bytearray(size)
        if len(data) != size:
            raise MalformedPickle(f"a bytearray declares {size} bytes, more than the file has left")
        self.append(bytearray(data))

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 spellings (`__builtin__`, `copy_reg`) as Python 3 names them, as pickle's own loader maps them."""
    if not isinstance(module, str) or not isinstance(name, str):
        return str(module), str(name)
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def restricted_load(source, *, admitted: Admitted = BASE_GLOBALS, persistent=None) -> object:
    """Read one pickle from bytes or a `Source`; raises RefusedGlobal or MalformedPickle."""
    stream = source if isinstance(source, Source) else Source(source)
    try:
        return RestrictedUnpickler(stream, admitted, persistent).load()
    except (RefusedGlobal, MalformedPickle):
        raise
    except Exception as error:  # noqa: BLE001  (any failure inside a hostile or damaged pickle is the file's)
        raise MalformedPickle(_pickle_error_text(error)) from None


def _pickle_error_text(error: Exception) -> str:
    """A short reason for a pickle that could not be read."""
    if isinstance(error, EOFError):
        return "the pickle ends early (truncated file)"
    if isinstance(error, RecursionError):
        return "the pickle nests too deeply"
    if isinstance(error, MemoryError):
        return "the pickle asks for more memory than is available"
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def refused(error: RefusedGlobal, path: str, what: str, helps: tuple[str, ...]) -> DiagnosticError:
    """E411 for a file that names a global poseir does not admit."""
    return DiagnosticError(Diagnostic.make(
        "E411", f"`{path}` refers to `{error.qualified}`, which poseir does not load", None,
        notes=(f"a pickled {what} may name any Python function or class and have it called while it is read; "
               "poseir admits only tensors, storages, numpy arrays, numbers, strings and plain containers, "
               f"and stopped reading at `{error.qualified}` without calling anything",),
        helps=helps))
