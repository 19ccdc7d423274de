"""PyTorch checkpoints read without torch: torch.save's zip archive and legacy stream, and their state_dict.

A zip checkpoint (`torch.save` since 1.6) holds `<dir>/data.pkl`, one member `<dir>/data/<key>` of
raw bytes per storage and `<dir>/byteorder`; the legacy stream (`_use_new_zipfile_serialization=False`)
is five pickles in a row (magic number, protocol, system info, the object, the storage keys) followed
by each storage as an int64 element count and its bytes. Both pickles are read by the restricted
unpickler, with tensor and storage rebuilding admitted as lazy references: no storage is read until
the state_dict is chosen, and each is checked against the bytes the file really holds first.
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poseir.diagnostics.record import Diagnostic, DiagnosticError
from poseir.limits import DEFAULT_LIMITS
from poseir.weights.unpickler import (BASE_GLOBALS, MalformedPickle, RefusedGlobal, Sealed, Source,
                                      as_plain_array, element_count, refused, restricted_load)

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
# Entries that usually hold the model's state_dict, in the order they are preferred when several do.
PREFERRED_KEYS = ("state_dict", "model_state_dict", "model_pos", "model", "net", "network")
# Wrappers that prefix every key: DataParallel / DistributedDataParallel, and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# DEFLATE cannot expand data more than about 1032 times; a member claiming more is lying.
MAX_DEFLATE_RATIO = 1032


@dataclass(frozen=True)
class StorageType(Sealed):
    """A `torch.<Kind>Storage` class named by the file: the element dtype of a storage."""

    name: str
    dtype: np.dtype  # as stored on disk; bfloat16 is read as uint16 and widened

    def __call__(self, *arguments):
        raise MalformedPickle(f"the file calls `torch.{self.name}` directly")


_STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?", "ComplexFloatStorage": "c8", "ComplexDoubleStorage": "c16", "UntypedStorage": "u1",
}
STORAGE_TYPES = {name: StorageType(name, np.dtype(code)) for name, code in _STORAGE_DTYPES.items()}


@dataclass(frozen=True)
class StorageRef(Sealed):
    """One storage of the file, not yet read: its key, element type and declared element count."""

    key: str
    kind: StorageType
    numel: int


@dataclass(frozen=True)
class TensorRef(Sealed):
    """A tensor as a view of a storage (offset, sizes and strides in elements), not yet read."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, shape, stride, *unused) -> TensorRef:
    """`torch._utils._rebuild_tensor(_v2)`: a lazy view; requires_grad, hooks and metadata are dropped."""
    if not isinstance(storage, StorageRef):
        raise MalformedPickle("a tensor is rebuilt from something that is not a storage")
    element_count(shape)
    element_count(stride)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 or len(stride) != len(shape):
        raise MalformedPickle("a tensor's offset or strides are malformed")
    return TensorRef(storage, offset, shape, stride)


def _rebuild_parameter(data, *unused):
    """`torch._utils._rebuild_parameter(_with_state)`: a Parameter is its data."""
    if not isinstance(data, TensorRef):
        raise MalformedPickle("a parameter is rebuilt from something that is not a tensor")
    return data


def _torch_size(sizes=()) -> tuple:
    """`torch.Size(...)`: a tuple of ints."""
    if not isinstance(sizes, (list, tuple)):
        raise MalformedPickle("`torch.Size` is only admitted over a list of sizes")
    element_count(tuple(sizes))
    return tuple(sizes)


TORCH_GLOBALS = {
    **BASE_GLOBALS,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    **{("torch", name): kind for name, kind in STORAGE_TYPES.items()},
    **{("torch.storage", name): kind for name, kind in STORAGE_TYPES.items() if name == "UntypedStorage"},
}

_HELPS = ("if the file holds a whole model object, load it with torch in an environment you trust and save "
          "`model.state_dict()` instead",)


def corrupt(path: str, reason: str) -> DiagnosticError:
    """E403 for a checkpoint that is damaged or not what its name says."""
    return DiagnosticError(Diagnostic.make("E403", f"cannot read weights from `{path}`: {reason}", None))


# ---------------------------------------------------------------- the two archive formats


class ZipCheckpoint:
    """A torch.save zip archive: `<dir>/data.pkl`, `<dir>/data/<key>`, `<dir>/byteorder`."""

    def __init__(self, path: str, archive: zipfile.ZipFile) -> None:
        self.path = path
        self.archive = archive
        self.members = {info.filename: info for info in archive.infolist()}
        pickles = sorted(name for name in self.members if name.endswith("data.pkl") and name.count("/") <= 1)
        if len(pickles) != 1:
            raise corrupt(path, "a zip archive without exactly one `data.pkl`, so not a torch.save checkpoint")
        self.prefix = pickles[0][: -len("data.pkl")]
        self.byteorder = self._byteorder()
        self.declared: dict[str, StorageRef] = {}

    def _byteorder(self) -> str:
        name = self.prefix + "byteorder"
        if name not in self.members:
            return "little"  # archives from torch < 1.9 have no byteorder record and are little-endian
        order = self._read_member(name).decode("ascii", "replace").strip()
        if order not in ("little", "big"):
            raise MalformedPickle(f"unknown byte order `{order[:16]}`")
        return order

    def _read_member(self, name: str) -> bytes:
        info = self.members[name]
        check_member_size(info)
        with self.archive.open(info) as member:
            return member.read()

    def load_tree(self):
        """The unpickled object of `data.pkl`, with tensors as lazy references."""
        data = self._read_member(self.prefix + "data.pkl")
        return restricted_load(data, admitted=TORCH_GLOBALS, persistent=self.persistent)

    def persistent(self, pid) -> StorageRef:
        """('storage', type, key, location, numel) -> a storage reference checked against its member."""
        kind, key, numel = _storage_id(pid, 5)
        name = f"{self.prefix}data/{key}"
        if name not in self.members:
            raise MalformedPickle(f"storage `{key}` is missing from the archive")
        size = self.members[name].file_size
        if size != numel * kind.dtype.itemsize:
            raise MalformedPickle(f"storage `{key}` declares {numel} x {kind.dtype.itemsize} bytes, "
                                  f"the archive holds {size}")
        return _declare(self.declared, StorageRef(key, kind, numel))

    def read_storage(self, storage: StorageRef) -> np.ndarray:
        """A storage's elements as a 1-D array in native byte order."""
        info = self.members[f"{self.prefix}data/{storage.key}"]
        check_member_size(info)
        raw = np.empty(info.file_size, np.uint8)
        with self.archive.open(info) as member:
            if member.readinto(memoryview(raw)) != info.file_size:
                raise MalformedPickle(f"storage `{storage.key}` is truncated")
        return _typed(raw, storage.kind, self.byteorder)


class LegacyCheckpoint:
    """The pre-1.6 stream: five pickles, then each storage as an int64 count and its bytes."""

    def __init__(self, path: str, data: mmap.mmap) -> None:
        self.path = path
        self.data = data
        self.stream = Source(data)
        self.byteorder = "little"
        self.declared: dict[str, StorageRef] = {}
        self.offsets: dict[str, int] = {}

    def load_tree(self):
        """Check the header pickles, read the object, then locate every storage record."""
        if restricted_load(self.stream) != LEGACY_MAGIC:
            raise MalformedPickle("the legacy magic number is wrong")
        if restricted_load(self.stream) != LEGACY_PROTOCOL:
            raise MalformedPickle("the legacy protocol version is not 1001")
        info = restricted_load(self.stream)
        if isinstance(info, dict) and info.get("little_endian") is False:
            self.byteorder = "big"
        tree = restricted_load(self.stream, admitted=TORCH_GLOBALS, persistent=self.persistent)
        keys = restricted_load(self.stream)
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise MalformedPickle("the list of storage keys is malformed")
        self._locate(keys, self.stream.position)
        return tree

    def persistent(self, pid) -> StorageRef:
        """('storage', type, key, location, numel, view) -> a storage reference (views of torch < 1.0 refused)."""
        kind, key, numel = _storage_id(pid, 6)
        if pid[5] is not None:
            raise MalformedPickle("storage views (written by torch < 1.0) are not supported")
        return _declare(self.declared, StorageRef(key, kind, numel))

    def _locate(self, keys: list[str], offset: int) -> None:
        """Walk the storage records; each must match its declared size and lie inside the file."""
        order = "<" if self.byteorder == "little" else ">"
        for key in keys:
            if key not in self.declared:
                raise MalformedPickle(f"storage `{key}` is stored but never used")
            if offset + 8 > len(self.data):
                raise MalformedPickle(f"storage `{key}` lies beyond the end of the file")
            (count,) = struct.unpack(order + "q", self.data[offset:offset + 8])
            storage = self.declared[key]
            if count != storage.numel:
                raise MalformedPickle(f"storage `{key}` declares {storage.numel} elements, its record {count}")
            offset += 8
            end = offset + count * storage.kind.dtype.itemsize
            if end > len(self.data):
                raise MalformedPickle(f"storage `{key}` ({count} elements) runs past the end of the file")
            self.offsets[key] = offset
            offset = end

    def read_storage(self, storage: StorageRef) -> np.ndarray:
        """A storage's elements as a 1-D array in native byte order."""
        if storage.key not in self.offsets:
            raise MalformedPickle(f"storage `{storage.key}` has no record in the file")
        start = self.offsets[storage.key]
        raw = np.frombuffer(self.data, np.uint8, storage.numel * storage.kind.dtype.itemsize, start).copy()
        return _typed(raw, storage.kind, self.byteorder)


def check_member_size(info: zipfile.ZipInfo) -> None:
    """A member may claim no more than its compressed bytes can hold (bounded memory before any allocation)."""
    stored = info.compress_type == zipfile.ZIP_STORED
    bound = info.compress_size if stored else info.compress_size * MAX_DEFLATE_RATIO + 1024
    if info.file_size > bound:
        raise MalformedPickle(f"member `{info.filename}` claims {info.file_size} bytes, "
                              f"more than its {info.compress_size} stored bytes can hold")


def _storage_id(pid, length: int) -> tuple[StorageType, str, int]:
    """Check a storage's persistent id: ('storage', type, key, location, numel[, view])."""
    if not isinstance(pid, tuple) or len(pid) != length or pid[0] not in ("storage", b"storage"):
        raise MalformedPickle(f"a persistent id is not a storage: {str(pid)[:80]}")
    kind, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(kind, StorageType) or not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
        raise MalformedPickle("a storage's type, key or size is malformed")
    return kind, key, numel


def _declare(declared: dict, storage: StorageRef) -> StorageRef:
    """One storage per key; a key re-declared with another type or size is corrupt."""
    known = declared.setdefault(storage.key, storage)
    if known != storage:
        raise MalformedPickle(f"storage `{storage.key}` is declared twice with different types or sizes")
    return known


def _typed(raw: np.ndarray, kind: StorageType, byteorder: str) -> np.ndarray:
    """Raw bytes as the storage's elements in native order; bfloat16 widened exactly to float32."""
    stored = kind.dtype.newbyteorder("<" if byteorder == "little" else ">")
    values = raw.view(stored).astype(kind.dtype.newbyteorder("="), copy=False)
    if kind.name == "BFloat16Storage":
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values


# ---------------------------------------------------------------- reading and choosing the state_dict

# What zipfile, zlib, mmap and struct raise on a damaged file (MalformedPickle is handled before).
_DAMAGED = (OSError, EOFError, ValueError, OverflowError, NotImplementedError, RuntimeError, zipfile.BadZipFile,
            zlib.error, struct.error)


@contextlib.contextmanager
def _reader(path: str):
    """The zip or legacy reader of a checkpoint, open for the duration of the block."""
    with open(path, "rb") as handle:
        if zipfile.is_zipfile(handle):
            with zipfile.ZipFile(handle) as archive:
                yield ZipCheckpoint(path, archive)
            return
        handle.seek(0)
        start = handle.read(4)
        if start == b"PK\x03\x04":
            raise corrupt(path, "a damaged or truncated zip archive (its directory at the end is missing)")
        if start[:1] != b"\x80":
            kind = "a tar archive (torch < 0.4 checkpoints are not supported)" if tarfile.is_tarfile(path) else \
                "neither a zip archive nor a pickle stream"
            raise corrupt(path, f"not a PyTorch checkpoint: {kind}")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield LegacyCheckpoint(path, data)


def read_checkpoint(path: str, key: str | None = None, max_bytes: int = DEFAULT_LIMITS.array_bytes
                    ) -> tuple[dict[str, np.ndarray], str | None]:
    """The state_dict of a PyTorch checkpoint as numpy arrays, and the entry it came from (None: the top level).

    At most `max_bytes` are allocated for the arrays together (the `array_bytes` limit).
    """
    try:
        with _reader(path) as reader:
            tree = reader.load_tree()
            entry, state = find_state_dict(tree, key, path)
            budget = _Budget(max_bytes)
            cache: dict[str, np.ndarray] = {}
            weights = {name: _materialize(value, reader, cache, budget) for name, value in state.items()}
    except OverBudget as error:
        raise corrupt(path, str(error)) from None
    except RefusedGlobal as error:
        raise refused(error, path, "checkpoint", _HELPS) from None
    except MalformedPickle as error:
        raise corrupt(path, str(error)) from None
    except _DAMAGED as error:
        raise corrupt(path, _damage_text(error)) from None
    return strip_wrapper_prefixes(weights), entry


def _damage_text(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class OverBudget(Exception):
    """Reading the state_dict would allocate more than the `array_bytes` limit."""


class _Budget:
    """Bytes the arrays of one checkpoint may still take, spent before each allocation."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, size: int) -> None:
        self.spent += size
        if self.spent > self.limit:
            raise OverBudget(f"its state_dict needs more than the `array_bytes` limit ({self.limit:,} bytes); "
                             "raise it with `--limit array_bytes=...`")


def _materialize(value, reader, cache: dict, budget: _Budget) -> np.ndarray:
    """A tensor reference read from its storage (each storage read once), or an array as it is."""
    if not isinstance(value, TensorRef):
        return as_plain_array(value)
    storage = value.storage
    if storage.key not in cache:
        budget.spend(storage.numel * storage.kind.dtype.itemsize)
        cache[storage.key] = reader.read_storage(storage)
    elements = cache[storage.key]
    if not _contiguous(value):
        budget.spend(element_count(value.shape) * elements.itemsize)
    return tensor_view(elements, value)


def _contiguous(tensor: TensorRef) -> bool:
    """Whether the strides are those of a C-ordered array of the shape (then no copy is needed)."""
    expected = 1
    for size, step in zip(reversed(tensor.shape), reversed(tensor.stride)):
        if size != 1 and step != expected:
            return False
        expected *= size
    return True


def tensor_view(elements: np.ndarray, tensor: TensorRef) -> np.ndarray:
    """The tensor's elements: a view of a contiguous block, else a copy; it must lie inside the storage."""
    count = element_count(tensor.shape)
    if count == 0:
        return np.zeros(tensor.shape, elements.dtype)
    last = tensor.offset + sum((size - 1) * step for size, step in zip(tensor.shape, tensor.stride))
    if last >= elements.size or count > elements.size:
        raise MalformedPickle(f"a tensor of shape {tensor.shape} reaches past the end of storage "
                              f"`{tensor.storage.key}` ({elements.size} elements)")
    if _contiguous(tensor):
        return elements[tensor.offset:tensor.offset + count].reshape(tensor.shape)
    strides = tuple(step * elements.itemsize for step in tensor.stride)
    view = np.lib.stride_tricks.as_strided(elements[tensor.offset:], tensor.shape, strides, writeable=False)
    return np.array(view)


def is_state_dict(value) -> bool:
    """A non-empty dict from strings to tensors or numeric arrays."""
    return (isinstance(value, dict) and bool(value) and all(isinstance(key, str) for key in value)
            and all(_is_tensor(item) for item in value.values()))


def _is_tensor(value) -> bool:
    return isinstance(value, TensorRef) or (isinstance(value, np.ndarray) and value.dtype.kind in "biufc")


def find_state_dict(tree, key: str | None, path: str) -> tuple[str | None, dict]:
    """The state_dict in a checkpoint: the top level, the entry `key`, or the one entry holding one."""
    if key is not None:
        if not isinstance(tree, dict) or key not in tree:
            raise _no_state_dict(path, tree, f"`{path}` has no entry `{key}`")
        if not is_state_dict(tree[key]):
            raise _no_state_dict(path, tree, f"the entry `{key}` of `{path}` is not a state_dict")
        return key, tree[key]
    if is_state_dict(tree):
        return None, tree
    candidates = [name for name, value in tree.items() if is_state_dict(value)] if isinstance(tree, dict) else []
    if len(candidates) == 1:
        return candidates[0], tree[candidates[0]]
    preferred = [name for name in PREFERRED_KEYS if name in candidates]
    if preferred:
        return preferred[0], tree[preferred[0]]
    if candidates:
        raise DiagnosticError(Diagnostic.make(
            "E412", f"`{path}` holds several state_dicts: {', '.join(f'`{name}`' for name in candidates)}", None,
            notes=_entry_notes(tree), helps=(f"choose one with `--weights-key {candidates[0]}`",)))
    raise _no_state_dict(path, tree, f"`{path}` holds no state_dict")


def _no_state_dict(path: str, tree, message: str) -> DiagnosticError:
    candidates = [name for name, value in tree.items() if is_state_dict(value)] if isinstance(tree, dict) else []
    helps = (f"choose one with `--weights-key {candidates[0]}`",) if candidates else ()
    return DiagnosticError(Diagnostic.make("E412", message, None, notes=_entry_notes(tree), helps=helps))


def _entry_notes(tree) -> tuple[str, ...]:
    """What the checkpoint's top level holds, one short description per entry."""
    if not isinstance(tree, dict):
        return (f"the file holds {_describe(tree)}",)
    entries = ", ".join(f"`{name}`: {_describe(value)}" for name, value in list(tree.items())[:20])
    return (f"its entries: {entries}" + (", ..." if len(tree) > 20 else ""),)


def _describe(value) -> str:
    if is_state_dict(value):
        return f"state_dict of {len(value)} tensors"
    if isinstance(value, TensorRef):
        return f"tensor {value.shape}"
    if isinstance(value, np.ndarray):
        return f"array {value.shape}"
    if isinstance(value, (dict, list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def strip_wrapper_prefixes(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the `module.` (DataParallel) and `_orig_mod.` (torch.compile) prefixes every key carries."""
    changed = True
    while weights and changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(name.startswith(prefix) for name in weights):
                weights = collections.OrderedDict((name[len(prefix):], value) for name, value in weights.items())
                changed = True
    return dict(weights)
