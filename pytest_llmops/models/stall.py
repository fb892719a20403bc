"""An attempt's time limit that a busy event loop does not turn into a spurious timeout.

asyncio runs a due timer in the same loop turn as the socket reads that became
ready while the loop was busy, but the test waiting for that answer resumes
only a turn later, after the timer has cancelled it. So when pytest's own work,
a slow import or another process on the machine holds the loop up for a second,
an answer that arrived in time is thrown away and sent again.
``stall_tolerant_timeout`` notices that its timer ran late (the loop was
stalled) and looks again after as long as the stall, up to ``max_extension_s``
in all, so what arrived meanwhile is read first; a timer that runs on time
expires as ``asyncio.timeout`` would.

Standard library only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

#: A timer this late (seconds) means the loop was held up, not that the answer is late.
STALL_S = 0.05


@dataclass
class StallClock:
    """What the timer saw: seconds it extended the limit by because the loop was stalled."""

    extended_s: float = 0.0


class stall_tolerant_timeout:  # noqa: N801 - used as ``async with stall_tolerant_timeout(...)``, like asyncio.timeout
    """Like ``asyncio.timeout(seconds)`` (raises ``TimeoutError``), but forgiving of loop stalls.

    ``max_extension_s`` bounds the extra time in all (``seconds`` by default), so a
    request that really hangs still ends within ``seconds + max_extension_s``.

    An async context manager of its own (not an ``asynccontextmanager`` generator):
    one is entered for every attempt, and a generator costs a registration with the
    loop and two more frames each time.
    """

    __slots__ = ("_seconds", "_most", "_clock", "_timeout", "_loop", "_deadline", "_handle")

    def __init__(self, seconds: float, *, max_extension_s: float | None = None) -> None:
        self._seconds = seconds
        self._most = seconds if max_extension_s is None else max_extension_s
        self._clock = StallClock()
        self._timeout = asyncio.timeout(None)
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> StallClock:
        loop = self._loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._seconds
        await self._timeout.__aenter__()
        self._handle = loop.call_at(self._deadline, self._check)
        return self._clock

    def _check(self) -> None:
        loop, clock = self._loop, self._clock
        late = loop.time() - self._deadline
        if late > STALL_S and clock.extended_s < self._most:
            extra = min(late, self._most - clock.extended_s)
            clock.extended_s += extra
            self._deadline = loop.time() + extra
            self._handle = loop.call_at(self._deadline, self._check)
        else:
            self._timeout.reschedule(loop.time())  # expire now: the block is cancelled, TimeoutError at its end

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        if self._handle is not None:
            self._handle.cancel()
        return await self._timeout.__aexit__(exc_type, exc, tb)
