"""Adaptive concurrency: halve on throttling (once per burst), grow back on success."""

from __future__ import annotations

import asyncio

import pytest

from pytest_llmops.models.limits import AdaptiveLimit
from pytest_llmops.testing import Fault


def test_a_throttle_halves_the_limit_once_per_burst_and_success_grows_it_back():
    limit = AdaptiveLimit(16)
    limit.throttled(epoch=0)
    limit.throttled(epoch=0)  # same burst: sent under the old limit
    assert limit.current == 8 and limit.decreases == 1
    limit.throttled(epoch=1)
    assert limit.current == 4
    for _ in range(40):
        limit.succeeded()
    assert 8 <= limit.current <= 16
    for _ in range(1000):
        limit.succeeded()
    assert limit.current == 16


def test_the_limit_never_drops_below_one():
    limit = AdaptiveLimit(2)
    for epoch in range(5):
        limit.throttled(epoch)
    assert limit.current == 1


def test_slots_hold_back_requests_over_the_limit():
    limit = AdaptiveLimit(2)
    peak = 0

    async def work():
        nonlocal peak
        async with limit.slot():
            peak = max(peak, limit.in_use)
            await asyncio.sleep(0.01)

    async def many():
        await asyncio.gather(*(work() for _ in range(10)))

    asyncio.run(many())
    assert peak == 2 and limit.in_use == 0


def test_rate_limits_from_the_provider_shrink_the_clients_concurrency(make_client, server):
    server.latency = 0.05
    server.inject(Fault.rate_limit(retry_after=0.05), times=8)
    client = make_client(record_mode="off", retries=5)

    async def burst():
        return await asyncio.gather(*(client.complete(f"q{i}") for i in range(16)))

    answers = client.runtime.run(burst())
    assert len(answers) == 16 and all(a.call.error is None for a in answers)
    [limit] = client.runtime._limits.values()
    assert limit.decreases >= 1
    assert sum(a.call.backoff_s for a in answers) == pytest.approx(0.05 * sum(a.call.attempts - 1 for a in answers), abs=1e-6)
