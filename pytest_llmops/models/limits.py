"""Adaptive concurrency per provider: back off on rate limits, grow again on success.

Additive increase, multiplicative decrease (as TCP does): each answered
request raises the limit by 1/limit (about +1 per limit's worth of answers),
each 429 or 503 halves it. A burst of throttled requests that were all sent
under the same limit halves it once, not once per request. The limit never
exceeds the configured ``--llmops-concurrency`` nor drops below 1.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

#: Statuses that mean "slow down" rather than "this request is wrong".
THROTTLE_STATUSES = frozenset({429, 503})


class AdaptiveLimit:
    """An asyncio concurrency limit that adapts to the provider's throttling.

    Waiters get slots strictly in arrival order (a freed slot is handed to the
    oldest waiter, not to whoever asks next), so a test's first call is never
    overtaken again and again by other tests' later calls.
    """

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"the concurrency limit must be >= 1, got {maximum}")
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_use = 0
        self.decreases = 0
        self._epoch = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def current(self) -> int:
        """How many requests may be in flight now."""
        return max(1, int(self.limit))

    def slot(self) -> _Slot:
        """Hold one slot while a request is out (``async with limit.slot() as epoch``); gives the epoch it was sent in."""
        return _Slot(self)

    def _release(self) -> None:
        self.in_use -= 1
        self._wake()

    async def _acquire(self) -> None:
        if not self._waiters and self.in_use < self.current:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the slot is counted as ours once the future is resolved
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted and cancelled in the same turn: give the slot to the next waiter.
                self.in_use -= 1
                self._wake()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _wake(self) -> None:
        """Hand free slots to the oldest waiters."""
        while self._waiters and self.in_use < self.current:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    def throttled(self, epoch: int) -> None:
        """A request sent in ``epoch`` was told to slow down: halve the limit once per epoch."""
        if epoch == self._epoch:
            self.limit = max(1.0, self.limit / 2)
            self._epoch += 1
            self.decreases += 1

    def succeeded(self) -> None:
        """A request was answered: grow the limit a little (and let a waiter in if it grew a slot)."""
        self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
        self._wake()


class _Slot:
    """``AdaptiveLimit.slot()``: an async context manager of its own, not an ``asynccontextmanager``
    generator (one is entered for every attempt; a generator costs a loop registration and frames)."""

    __slots__ = ("_limit",)

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit

    async def __aenter__(self) -> int:
        await self._limit._acquire()
        return self._limit._epoch

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._limit._release()
