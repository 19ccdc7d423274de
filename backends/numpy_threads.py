"""The planned backend's threads: a small pool that shares tasks with the caller, BLAS kept single-threaded.

numpy releases the GIL inside BLAS calls and ufunc loops, so a run facet can split a large
product or an elementwise pass into tasks (`RunContext.parallel`). The pool has as many threads
as BLAS was given (OPENBLAS_NUM_THREADS, threadpoolctl) and, while a plan runs, BLAS itself is
limited to one thread: its own threads wait for each other at every call, which costs several
times the work on a shared machine when another process holds one of the cores. Tasks are taken
from a shared queue, the caller included, so a slowed thread simply takes fewer of them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_CONTROLLER = None
_POOLS: dict[int, "Workers"] = {}


class Workers:
    """`count` threads (the caller and count - 1 pool threads) that drain one list of tasks together."""

    def __init__(self, count: int):
        self.count = count
        self._executor = ThreadPoolExecutor(count - 1, thread_name_prefix="poseir") if count > 1 else None

    def run(self, tasks: list) -> None:
        """Run every task; the first exception is raised once all threads have stopped."""
        if self._executor is None:
            for task in tasks:
                task()
            return
        queue, lock = iter(tasks), threading.Lock()

        def drain() -> None:
            while True:
                with lock:
                    task = next(queue, None)
                if task is None:
                    return
                task()

        helpers = [self._executor.submit(drain) for _ in range(min(self.count - 1, len(tasks) - 1))]
        try:
            drain()
        finally:
            for helper in helpers:
                helper.result()


def _controller():
    """threadpoolctl's view of the loaded BLAS libraries (None when threadpoolctl is missing)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a dependency; without it BLAS keeps its own threads
            return None
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def blas_threads() -> int:
    """The thread count BLAS is configured with (what the user pinned), at most the CPU count."""
    controller = _controller()
    counts = [library.num_threads for library in controller.lib_controllers
              if library.user_api == "blas"] if controller is not None else []
    return max(1, min(max(counts, default=1), os.cpu_count() or 1))


def workers() -> Workers | None:
    """The pool sized like BLAS's thread count, or None when that is one thread or BLAS cannot be limited."""
    count = blas_threads()
    if count < 2 or _controller() is None:
        return None
    if count not in _POOLS:
        _POOLS[count] = Workers(count)
    return _POOLS[count]


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS limited to one thread inside the block (the pool supplies the parallelism)."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
