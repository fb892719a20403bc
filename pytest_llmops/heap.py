"""Keep the cyclic garbage collector off what a run keeps for its whole length.

A run holds every collected item, module and fixture definition, plus what each
reported case leaves behind. Every full (oldest-generation) collection walks
all of it: at 2,000 cases those took 40-90 ms each, with the event loop (and
every answer in flight) waiting, and about a tenth of the run's CPU.
``frozen_heap`` moves the objects alive when it is entered (and again at each
``refreeze``, e.g. a batch boundary) to the collector's permanent generation,
so collections walk only what was made since; leaving it hands them back, so
garbage among them is collected as usual afterwards.

Standard library only.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze what is alive now (``gc.freeze``) for the block; unfreeze at its end, however it ends."""
    if not gc.isenabled() or gc.get_freeze_count():
        # The collector is off, or something else froze objects (its own ``unfreeze`` to come): leave it alone.
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def refreeze() -> None:
    """Inside ``frozen_heap``: add what survived since to the frozen objects (cheap, no collection)."""
    if gc.isenabled() and gc.get_freeze_count():
        gc.freeze()
