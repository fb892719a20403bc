"""Gates on a score summary (``llmops score``'s JSON): the gate syntax of results files, per check.

    pii.pass_rate.lower>=0.99     grounded.mean>=0.7     toxicity.pass_rate>=0.98     pii.count>=1000

A summary keeps, per check, the measured count, the pass rate with its Wilson interval and the mean
value, so those are the figures a gate may name (``CHECK.pass_rate``, ``.pass_rate.lower``,
``.pass_rate.upper``, ``CHECK.mean``, ``CHECK.count``). Any other gate (a percentile, a latency, a
suite-wide ``pass_rate``) is a usage error that says so, since no summary could ever measure it.
With windows in the summary, ``each_window`` also decides every gate on every window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_llmops.gates.parse import Gate, GateSyntaxError, parse_gates
from pytest_llmops.results.models import GateResult
from pytest_llmops.results.stats import wilson_interval

#: Statistics a summary can give for a check.
SUMMARY_STATISTICS = ("pass_rate", "pass_rate.lower", "pass_rate.upper", "mean", "count")


def is_summary(data: Any) -> bool:
    """Whether a decoded JSON file is a score summary (not a results file)."""
    return isinstance(data, dict) and "checks" in data and "records" in data and "cases" not in data


def parse_summary_gates(expressions: Sequence[str], *, source: str) -> list[Gate]:
    """Parse gates and refuse those a summary cannot measure (``GateSyntaxError`` pointing at the metric)."""
    gates = parse_gates(list(expressions), source=source)
    for gate in gates:
        if gate.family != "score" or gate.statistic not in SUMMARY_STATISTICS or gate.scope_kind:
            raise GateSyntaxError(
                gate.expression, 0,
                "a score summary gates a check's figures: CHECK.pass_rate, CHECK.pass_rate.lower, "
                "CHECK.pass_rate.upper, CHECK.mean or CHECK.count (e.g. pii.pass_rate.lower>=0.99), "
                "with no [scope]", source,
            )
    return gates


def _measure(gate: Gate, checks: Mapping[str, Any], confidence: float) -> tuple[float | None, int, str]:
    entry = checks.get(gate.metric)
    if entry is None:
        return None, 0, f"no check named {gate.metric!r} in the summary (it has {', '.join(sorted(checks)) or 'none'})"
    measured, passed = int(entry["measured"]), int(entry["passed"])
    note = f"; {entry['unmeasured']} unmeasured not counted" if entry.get("unmeasured") else ""
    if gate.statistic == "count":
        return float(measured), measured, f"{measured} measured records{note}"
    if not measured:
        return None, 0, f"no measured record for {gate.metric!r}{note}"
    if gate.statistic == "mean":
        return float(entry["mean"]), measured, f"mean over {measured} records{note}"
    # Recomputed from the counts, at this gate's confidence (the summary's own may differ).
    low, high = wilson_interval(passed, measured, confidence)
    value = {"pass_rate": passed / measured, "pass_rate.lower": low, "pass_rate.upper": high}[gate.statistic]
    detail = f"{passed}/{measured} passed; Wilson {confidence:.0%} interval [{low:.3f}, {high:.3f}]{note}"
    return value, measured, detail


def _result(gate: Gate, checks: Mapping[str, Any], confidence: float, scope: str | None) -> GateResult:
    value, n, detail = _measure(gate, checks, confidence)
    verdict = "unmeasured" if value is None else ("pass" if gate.holds(value) else "fail")
    return GateResult(
        expression=gate.expression if scope is None else f"[{scope}] {gate.expression}", scope=scope,
        metric=gate.name, op=gate.op, threshold=gate.threshold, unit=gate.unit,  # type: ignore[arg-type]
        value=value, verdict=verdict, n=n, detail=detail, source=gate.source,  # type: ignore[arg-type]
    )


def evaluate_summary_gates(
    gates: Sequence[Gate], summary: Mapping[str, Any], *, confidence: float = 0.95, each_window: bool = False
) -> list[GateResult]:
    """Each gate on the summary's totals, then (``each_window``) on each of its windows."""
    results = [_result(gate, summary["checks"], confidence, None) for gate in gates]
    if each_window:
        windows = (summary.get("windows") or {}).get("windows") or []
        for window in windows:
            results += [_result(gate, window["checks"], confidence, f"window={window['label']}") for gate in gates]
    return results


def print_gates(results: Sequence[GateResult]) -> None:
    """One line a gate, as ``llmops gate`` prints a results file's."""
    for gate in results:
        value = "unmeasured" if gate.value is None else f"{gate.value:.4g}{(' ' + gate.unit) if gate.unit else ''}"
        print(f"{gate.verdict.upper():<10} {gate.expression}  = {value}  ({gate.detail})")
