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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

#: A timer this late (seconds) means the loop was held up, not that the answer is late.
STALL_S = 0.05


@dataclass
class StallClock:
    """What the timer saw: seconds it extended the limit by because the loop was stalled."""

    extended_s: float = 0.0


@asynccontextmanager
async def stall_tolerant_timeout(seconds: float, *, max_extension_s: float | None = None) -> AsyncIterator[StallClock]:
    """Like ``asyncio.timeout(seconds)`` (raises ``TimeoutError``), but forgiving of loop stalls.

    ``max_extension_s`` bounds the extra time in all (``seconds`` by default), so a
    request that really hangs still ends within ``seconds + max_extension_s``.
    """
    loop = asyncio.get_running_loop()
    most = seconds if max_extension_s is None else max_extension_s
    clock = StallClock()
    timeout = asyncio.timeout(None)
    deadline = loop.time() + seconds
    handle: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal deadline, handle
        late = loop.time() - deadline
        if late > STALL_S and clock.extended_s < most:
            extra = min(late, most - clock.extended_s)
            clock.extended_s += extra
            deadline = loop.time() + extra
            handle = loop.call_at(deadline, check)
        else:
            timeout.reschedule(loop.time())  # expire now: the block is cancelled, TimeoutError at its end

    async with timeout:
        handle = loop.call_at(deadline, check)
        try:
            yield clock
        finally:
            handle.cancel()
