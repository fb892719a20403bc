"""Adaptive concurrency per provider: back off on rate limits, grow again on success.

Additive increase, multiplicative decrease (as TCP does): each answered
request raises the limit by 1/limit (about +1 per limit's worth of answers),
each 429 or 503 halves it. A burst of throttled requests that were all sent
under the same limit halves it once, not once per request. The limit never
exceeds the configured ``--llmops-concurrency`` nor drops below 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

#: Statuses that mean "slow down" rather than "this request is wrong".
THROTTLE_STATUSES = frozenset({429, 503})


class AdaptiveLimit:
    """An asyncio concurrency limit that adapts to the provider's throttling."""

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"the concurrency limit must be >= 1, got {maximum}")
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_use = 0
        self.decreases = 0
        self._epoch = 0
        self._condition: asyncio.Condition | None = None

    @property
    def current(self) -> int:
        """How many requests may be in flight now."""
        return max(1, int(self.limit))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Hold one slot while a request is out; yields the epoch it was sent in."""
        if self._condition is None:
            self._condition = asyncio.Condition()
        condition = self._condition
        async with condition:
            await condition.wait_for(lambda: self.in_use < self.current)
            self.in_use += 1
        try:
            yield self._epoch
        finally:
            async with condition:
                self.in_use -= 1
                condition.notify_all()

    def throttled(self, epoch: int) -> None:
        """A request sent in ``epoch`` was told to slow down: halve the limit once per epoch."""
        if epoch == self._epoch:
            self.limit = max(1.0, self.limit / 2)
            self._epoch += 1
            self.decreases += 1

    def succeeded(self) -> None:
        """A request was answered: grow the limit a little."""
        self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
