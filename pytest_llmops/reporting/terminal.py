"""The ``llmops`` section of pytest's terminal summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_llmops.results.collect import CaseOutcome
from pytest_llmops.results.summary import RunSummary
from pytest_llmops.settings import Settings
from pytest_llmops.verdict import Score


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def write_summary(
    terminal: pytest.TerminalReporter,
    settings: Settings,
    summary: RunSummary,
    cases: Sequence[CaseOutcome],
    group_scores: Sequence[Score],
    results_path: Path | None,
    root: Path,
) -> None:
    """Counts by verdict, calls, tokens, cost, latency and cache use, in a few lines."""
    terminal.write_sep("=", "llmops")
    counts = ", ".join(f"{n} {state}" for state, n in summary.counts.items() if n)
    terminal.write_line(f"cases: {summary.cases} ({counts or 'none'})")
    terminal.write_line(
        f"model: {settings.model}   judge: {settings.judge or 'none'}   "
        f"cache: {settings.record_mode} ({_relative(settings.cache_path, root)})"
    )
    if summary.calls:
        priced = summary.calls - summary.call_errors - summary.calls_unknown_cost
        if priced == 0:
            cost = "unknown (no known price for the models used)"
        else:
            cost = f"${summary.cost_usd:.4f}"
            if summary.calls_unknown_cost:
                cost += f" + unknown for {summary.calls_unknown_cost} call(s) with no known price"
        terminal.write_line(
            f"calls: {summary.calls} ({summary.cache_hits} cache hits, {summary.call_errors} failed, "
            f"{summary.attempts} attempts sent)   tokens: {summary.tokens_in} in / {summary.tokens_out} out   "
            f"cost: {cost}"
        )
        latency = f"latency (model under test): p50 {_seconds(summary.latency_p50_s)}, p95 {_seconds(summary.latency_p95_s)}"
        if summary.ttft_p50_s is not None:
            latency += f"   ttft: p50 {_seconds(summary.ttft_p50_s)}, p95 {_seconds(summary.ttft_p95_s)}"
        if summary.cache_hits:
            latency += "   (cache hits count with their recorded timings)"
        terminal.write_line(latency)
    else:
        terminal.write_line("calls: none")
    for score in group_scores:
        terminal.write_line(f"group score: {score.describe()}", red=score.verdict.value == "fail", yellow=score.verdict.value == "unmeasured")
    for case in cases:
        if case.state == "unmeasured":
            terminal.write_line(f"UNMEASURED {case.nodeid} - {case.reason.splitlines()[0] if case.reason else ''}", yellow=True)
    if results_path is not None:
        terminal.write_line(f"results: {_relative(results_path, root)}")
