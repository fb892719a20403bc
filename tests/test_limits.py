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


def test_freed_slots_go_to_the_oldest_waiter_not_to_a_newcomer():
    limit = AdaptiveLimit(1)
    order: list[str] = []

    async def two_calls_in_a_row():
        # Like a test whose second call follows its first: it asks again the moment it lets go.
        for name in ("first call", "second call"):
            async with limit.slot():
                order.append(name)
                await asyncio.sleep(0.01)

    async def one_call(name: str):
        async with limit.slot():
            order.append(name)

    async def scenario():
        sequential = asyncio.create_task(two_calls_in_a_row())
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(one_call(f"waiter {i}")) for i in range(3)]
        await asyncio.gather(sequential, *waiters)

    asyncio.run(scenario())
    assert order == ["first call", "waiter 0", "waiter 1", "waiter 2", "second call"]
    assert limit.in_use == 0


def test_a_cancelled_waiter_gives_its_turn_to_the_next_one():
    limit = AdaptiveLimit(1)
    served: list[str] = []

    async def work(name: str):
        async with limit.slot():
            served.append(name)
            await asyncio.sleep(0.01)

    async def scenario():
        holder = asyncio.create_task(work("holder"))
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(work("cancelled"))
        after = asyncio.create_task(work("after"))
        await asyncio.sleep(0.001)
        cancelled.cancel()
        await asyncio.gather(holder, after)
        with pytest.raises(asyncio.CancelledError):
            await cancelled

    asyncio.run(scenario())
    assert served == ["holder", "after"] and limit.in_use == 0


def test_a_grown_limit_lets_a_waiter_in_at_once():
    limit = AdaptiveLimit(2)
    limit.throttled(epoch=0)  # down to 1
    started: list[float] = []

    async def work():
        async with limit.slot():
            started.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.05)

    async def scenario():
        tasks = [asyncio.create_task(work()) for _ in range(2)]
        await asyncio.sleep(0.005)
        limit.limit = 1.99
        limit.succeeded()  # reaches 2: the second request need not wait for the first
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert started[1] - started[0] < 0.04 and limit.in_use == 0


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
