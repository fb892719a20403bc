"""Latency, token and cost figures from the ``Call`` records, per role, model and test file.

Latency is the time from sending a request to its answer: time spent waiting
for a concurrency slot and backing off between retries is already left out by
the client. Cache hits keep the timings recorded when the answer was first
obtained, so budgets still mean something on an offline replay; the figures
say how many calls were replayed. Coalesced followers (identical requests that
shared one in-flight answer) are left out: they were not separate requests.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

from pytest_llmops.results.models import CallResult, CaseResult, LatencyGroup
from pytest_llmops.results.stats import linear_fit, percentile

#: At most this many (tokens, latency) points are kept per group for the plot.
MAX_POINTS = 500


def _group_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def latency_groups(cases: Sequence[CaseResult]) -> list[LatencyGroup]:
    """One group per (role, model) over the whole run, and per test file when there are several files."""
    buckets: dict[tuple[str, str, str], list[CallResult]] = defaultdict(list)
    files: set[str] = set()
    for case in cases:
        group = _group_of(case.nodeid)
        for call in case.calls:
            if call.kind != "chat" or call.error or call.extra.get("coalesced"):
                continue
            files.add(group)
            buckets[(call.role, call.model, "all")].append(call)
            buckets[(call.role, call.model, group)].append(call)
    groups = []
    for (role, model, group), calls in sorted(buckets.items(), key=lambda item: (item[0][0] != "llm", item[0])):
        if group != "all" and len(files) < 2:
            continue
        groups.append(_figures(role, model, group, calls))
    return groups


def _figures(role: str, model: str, group: str, calls: Sequence[CallResult]) -> LatencyGroup:
    latencies = [c.latency_s for c in calls if c.latency_s is not None]
    ttfts = [c.ttft_s for c in calls if c.ttft_s is not None]
    points = [(int(c.tokens_out), float(c.latency_s)) for c in calls if c.latency_s is not None and c.tokens_out]
    per_token = [latency * 1000 / tokens for tokens, latency in points]
    fit = linear_fit([p[0] for p in points], [p[1] for p in points])
    costs = [c.cost_usd for c in calls]
    return LatencyGroup(
        role=role,
        model=model,
        group=group,
        calls=len(calls),
        replayed=sum(c.cache_hit for c in calls),
        p50_s=percentile(latencies, 50),
        p95_s=percentile(latencies, 95),
        p99_s=percentile(latencies, 99),
        ttft_p50_s=percentile(ttfts, 50),
        ttft_p95_s=percentile(ttfts, 95),
        ttft_p99_s=percentile(ttfts, 99),
        ms_per_token=float(statistics.median(per_token)) if per_token else None,
        slope_ms_per_token=fit[0] * 1000 if fit else None,
        intercept_s=fit[1] if fit else None,
        tokens_in=_known_sum([c.tokens_in for c in calls]),
        tokens_out=_known_sum([c.tokens_out for c in calls]),
        calls_unknown_tokens=sum(c.tokens_in is None or c.tokens_out is None for c in calls),
        # Unknown when any call has no known price: a partial sum would understate the spend.
        cost_usd=None if any(c is None for c in costs) else math.fsum(costs),  # type: ignore[arg-type]
        points=points[:MAX_POINTS],
    )


def _known_sum(counts: Sequence[int | None]) -> int | None:
    """The sum of the known token counts; None when no call reported one (unknown, not 0)."""
    known = [n for n in counts if n is not None]
    return sum(known) if known else None
