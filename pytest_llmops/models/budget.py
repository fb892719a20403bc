"""A run's spending limits: USD and provider calls.

Once a limit is reached no new provider call is sent; the case that wanted
one ends unmeasured with the reason, and the run fails. Calls already in
flight finish. Cache hits and coalesced answers are free and always allowed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pytest_llmops.models.call import Call
from pytest_llmops.verdict import UnmeasuredError


class BudgetExhausted(UnmeasuredError):
    """The run's cost or call budget is spent: this case was not run."""


@dataclass
class Budget:
    """Counts what provider calls cost and refuses new ones past the limits (``None`` = no limit)."""

    max_cost_usd: float | None = None
    max_calls: int | None = None
    spent_usd: float = 0.0
    calls_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def charge(self, call: Call) -> None:
        """Count a call that reached the provider (not a cache hit, not a coalesced answer)."""
        if call.cache_hit or call.attempts == 0:
            return
        with self._lock:
            self.calls_sent += 1
            if call.cost_usd is not None:
                self.spent_usd += call.cost_usd

    def check(self, model: str) -> None:
        """Raise ``BudgetExhausted`` if a new call to ``model`` may not be sent."""
        with self._lock:
            if self.max_calls is not None and self.calls_sent >= self.max_calls:
                raise BudgetExhausted(
                    f"not run: the run's call budget is spent ({self.calls_sent} provider calls, "
                    f"--llmops-max-calls={self.max_calls}); no call to {model} was sent"
                )
            if self.max_cost_usd is not None and self.spent_usd >= self.max_cost_usd:
                raise BudgetExhausted(
                    f"not run: the run's cost budget is spent (${self.spent_usd:.4f} after {self.calls_sent} "
                    f"provider calls, --llmops-max-cost={self.max_cost_usd:g}); no call to {model} was sent"
                )
