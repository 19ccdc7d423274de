"""Memory of a plan run: live bytes per owning buffer, donation, and recycling of released buffers.

Fresh large numpy arrays come from mmap, so every new array pays a page fault per 4 KB when it is
first written (measured: most of a 151 MB softmax's time on a machine under memory pressure).
A run therefore keeps released buffers and hands them out again for outputs of the same size, as
onnxruntime's arena does; the plan keeps them for its next run (at most RECYCLED_LIMIT bytes).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

RECYCLED_LIMIT = 512 * 2**20  # bytes of released buffers a plan keeps for reuse
RECYCLED_PER_SIZE = 4  # released buffers kept per size
_ONLY_LOCAL = 2  # sys.getrefcount of an array that only one local name refers to (the call adds one)


def root_of(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory a view looks at."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


@dataclass
class LiveMemory:
    """Bytes of the arrays a run holds, counted once per owning buffer, with a count of holders.

    The caller's inputs and weights are external: never counted, donated or recycled.
    """

    live: int = 0
    recycled: int = 0
    holders: dict = field(default_factory=dict)  # id(root) -> [root, number of slots holding it]
    external: dict = field(default_factory=dict)  # id(root) -> root (kept so that ids stay unique)
    free: dict = field(default_factory=dict)  # nbytes -> released roots ready for reuse

    @property
    def held(self) -> int:
        """Live bytes plus the released buffers kept for reuse."""
        return self.live + self.recycled

    def load(self, given: np.ndarray, dtype) -> np.ndarray:
        """An input or weight in its declared dtype; a cast copy is the run's own, the rest is external."""
        root = root_of(given)
        self.external[id(root)] = root
        array = given.astype(dtype, copy=False)
        if array is not given:
            self.add(array)
        return array

    def keep(self, array: np.ndarray) -> None:
        """Treat `array` like a caller's array: a cached constant that no op may overwrite or recycle."""
        root = root_of(array)
        self.external[id(root)] = root

    def add(self, array: np.ndarray) -> None:
        """One more slot holds `array`."""
        root = root_of(array)
        if id(root) in self.external:
            return
        entry = self.holders.get(id(root))
        if entry is None:
            self.holders[id(root)] = [root, 1]
            self.live += root.nbytes
        else:
            entry[1] += 1

    def release(self, slots: list, slot: int) -> None:
        """Empty a slot; when no slot holds its buffer any more, keep the buffer for reuse or let it go."""
        array, slots[slot] = slots[slot], None
        if array is None:
            return
        root = root_of(array)
        del array  # (a view would keep the root referenced)
        entry = self.holders.get(id(root))
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del self.holders[id(root)], entry
        self.live -= root.nbytes
        if sys.getrefcount(root) == _ONLY_LOCAL and self._recyclable(root):
            self.free.setdefault(root.nbytes, []).append(root)
            self.recycled += root.nbytes

    def _recyclable(self, root: np.ndarray) -> bool:
        """A writable C-ordered owner, within the per-size and total limits."""
        return (root.base is None and root.flags.c_contiguous and root.flags.writeable and root.nbytes >= 4096
                and len(self.free.get(root.nbytes, ())) < RECYCLED_PER_SIZE
                and self.recycled + root.nbytes <= RECYCLED_LIMIT)

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        """An uninitialized array: a recycled buffer of exactly this size when there is one, else a new one."""
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        kept = self.free.get(size)
        if not kept:
            return np.empty(shape, dtype)
        root = kept.pop()
        self.recycled -= size
        return root.reshape(-1).view(np.uint8).view(dtype).reshape(shape)

    def donatable(self, step, operands: list) -> dict:
        """The step's last-read inputs that are whole, writable, contiguous buffers nothing else holds."""
        donated = {}
        for position in step.last_reads:
            array = operands[position]
            if array is None or not array.flags.c_contiguous or not array.flags.writeable:
                continue
            root = root_of(array)
            entry = self.holders.get(id(root))
            if entry is not None and entry[1] == 1 and root.nbytes == array.nbytes:
                donated[position] = array
        return donated
