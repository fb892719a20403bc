"""The client's own retry policy.

litellm and the OpenAI SDK both retry on their own, with rules we cannot see
(FACTS.md: the SDK makes 3 attempts even with ``litellm.num_retries = 0``).
The client turns those off (``max_retries=0``) and retries here instead, so
every attempt is counted on the ``Call`` record and backoff time is kept apart
from latency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pytest_llmops.models.backend import ProviderError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``Retry-After``.

    ``retries`` is the number of extra attempts after the first. ``deadline_s``
    bounds the whole call, backoff included: no attempt starts that could not
    finish in time, and the client cuts the last one off at the deadline.
    """

    retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    deadline_s: float = 120.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.deadline_s <= 0:
            raise ValueError(f"the per-call deadline must be > 0 seconds, got {self.deadline_s}")

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether to send attempt ``attempt + 1`` after ``error`` ended attempt ``attempt``."""
        return isinstance(error, ProviderError) and error.retryable and attempt < self.max_attempts

    def delay_s(self, error: BaseException, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt.

        A provider's ``Retry-After`` wins (it knows its own limits); otherwise
        full jitter over an exponentially growing cap, which spreads the
        retries of many concurrent cases instead of synchronising them.
        """
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.max_delay_s)
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return (rng or random).uniform(0.0, cap)
