"""Run-level figures computed from the cases: verdict counts, calls, tokens, cost, latency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmops.results.collect import CASE_STATES, CaseOutcome
from pytest_llmops.results.stats import percentile


@dataclass
class RunSummary:
    """What the terminal section and the results file show about a whole run."""

    cases: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    cache_hits: int = 0
    call_errors: int = 0
    attempts: int = 0
    #: Sums over the calls that reported them; None when no call did (unknown, not 0).
    tokens_in: int | None = 0
    tokens_out: int | None = 0
    #: Successful calls whose provider did not say how many tokens they used.
    calls_unknown_tokens: int = 0
    cost_usd: float = 0.0
    calls_unknown_cost: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p95_s: float | None = None
    by_role: dict[str, int] = field(default_factory=dict)
    #: Cases marked ``llm_known_failure``: how many, and by state (they are counted in ``counts`` too).
    known_failures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(cases: Iterable[CaseOutcome]) -> RunSummary:
    """Fold the cases' verdicts and ``Call`` records into one ``RunSummary``.

    Latency percentiles cover successful calls of the model under test; cache
    hits count with the timings recorded when the answer was first obtained.
    """
    cases = list(cases)
    counts = Counter(case.state for case in cases)
    summary = RunSummary(cases=len(cases), counts={state: counts.get(state, 0) for state in CASE_STATES})
    latencies: list[float] = []
    ttfts: list[float] = []
    roles: Counter[str] = Counter()
    counted = Counter[str]()
    for case in cases:
        for call in case.calls:
            summary.calls += 1
            roles[call.get("role", "other")] += 1
            summary.attempts += int(call.get("attempts") or 0)
            if call.get("cache_hit"):
                summary.cache_hits += 1
            if call.get("error"):
                summary.call_errors += 1
                continue
            for direction in ("tokens_in", "tokens_out"):
                if call.get(direction) is not None:
                    counted[direction] += 1
                    setattr(summary, direction, getattr(summary, direction) + int(call[direction]))
            if call.get("tokens_in") is None or call.get("tokens_out") is None:
                summary.calls_unknown_tokens += 1
            if call.get("cost_usd") is None:
                summary.calls_unknown_cost += 1
            else:
                summary.cost_usd += float(call["cost_usd"])
            if call.get("role") == "llm" and call.get("kind") == "chat":
                if call.get("latency_s") is not None:
                    latencies.append(float(call["latency_s"]))
                if call.get("ttft_s") is not None:
                    ttfts.append(float(call["ttft_s"]))
    summary.by_role = dict(roles)
    succeeded = summary.calls - summary.call_errors
    for direction in ("tokens_in", "tokens_out"):
        if succeeded and not counted[direction]:
            setattr(summary, direction, None)
    summary.known_failures = known_failure_summary(cases)
    summary.latency_p50_s = percentile(latencies, 50)
    summary.latency_p95_s = percentile(latencies, 95)
    summary.ttft_p50_s = percentile(ttfts, 50)
    summary.ttft_p95_s = percentile(ttfts, 95)
    return summary


def known_failure_summary(cases: Iterable[CaseOutcome]) -> dict[str, Any]:
    """Documented weaknesses: their count, count by state, and the ones that passed this time."""
    known = [case for case in cases if case.metadata.get("known_failure")]
    if not known:
        return {}
    return {
        "documented": len(known),
        "by_state": dict(Counter(case.state for case in known)),
        "passed": [case.nodeid for case in known if case.state == "passed"],
    }


def suite_errors_problem(cases: Sequence[Any], limit: int = 10) -> str | None:
    """The summary's word on cases (``CaseResult``) that ended on an error of the suite, or None when there are none.

    Such cases are never excused by a gate; the terminal summary and ``llmops gate`` both say so.
    """
    errors = [case for case in cases if case.state == "error"]
    if not errors:
        return None
    many = len(errors) > 1
    lines = [
        f"{len(errors)} case{'s' if many else ''} ended on {'errors' if many else 'an error'} of the test suite, "
        f"not {'failures' if many else 'a failure'} of the model; no gate excuses {'them' if many else 'it'}:"
    ]
    for case in errors[:limit]:
        lines.append(f"  ERROR {case.nodeid} - {case.reason.splitlines()[0] if case.reason else case.error_type}")
    if len(errors) > limit:
        lines.append(f"  ... and {len(errors) - limit} more (llmops results show lists them all)")
    return "\n".join(lines)
