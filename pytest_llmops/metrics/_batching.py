"""Group-commit batching of model calls made by concurrent callers.

A caller hands one item to :meth:`GroupBatcher.submit` and blocks until its
result is ready. When no batch is running, the caller runs one at once with
every item waiting (at first just its own), so a lone caller never waits for
company. While a batch runs, new items queue; when it ends, one of their
callers runs them all as the next batch. Concurrent cases (threads, or async
tests that score through ``asyncio.to_thread``) thus share model calls, and
the model only ever runs one batch at a time, which is also what a CPU model
on a shared runner wants.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Request(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


class GroupBatcher(Generic[T, R]):
    """Coalesces :meth:`submit` calls into calls of ``run_batch(items) -> results``.

    ``run_batch`` must return one result per item, in order. An exception in
    it is raised to every caller of that batch.
    """

    def __init__(self, run_batch: Callable[[Sequence[T]], Sequence[R]], *, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queue: list[_Request[T, R]] = []
        self._busy = False
        self._cond = threading.Condition()
        #: Sizes of the batches run so far (for tests and benchmarks).
        self.batch_sizes: list[int] = []

    def pending(self) -> int:
        """How many submitted items wait for the next batch."""
        with self._cond:
            return len(self._queue)

    def submit(self, item: T) -> R:
        """Compute ``item``, sharing a batch with concurrent callers; return its result."""
        request: _Request[T, R] = _Request(item)
        with self._cond:
            self._queue.append(request)
            while not request.done:
                if self._busy:
                    self._cond.wait()
                    continue
                # Lead the next batch: everything queued, up to max_batch. Our
                # own item may not fit; then the loop leads another one.
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._busy = True
                self._cond.release()
                try:
                    self._compute(batch)
                finally:
                    self._cond.acquire()
                    for done in batch:
                        done.done = True
                    self.batch_sizes.append(len(batch))
                    self._busy = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]

    def _compute(self, batch: list[_Request[T, R]]) -> None:
        try:
            results = list(self._run_batch([r.item for r in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
            for request, result in zip(batch, results):
                request.result = result
        except Exception as error:  # handed to every caller of the batch
            for request in batch:
                request.error = error


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A thread-safe least-recently-used cache holding at most ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
