"""Evaluate parsed gates on a run's cases.

Works on the results file's models, so the same code gates a run at session
end and a stored ``results.json`` later (``llmops gate``). A gate with nothing
to measure (no cases in scope, no score of that name, no timed call) is
*unmeasured*, and an unmeasured gate fails the run: a release is never let
through on a figure that was not measured.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence

from pytest_llmops.gates.parse import Gate
from pytest_llmops.gates.scope import scope_holds
from pytest_llmops.results.models import CallResult, CaseResult, GateResult
from pytest_llmops.results.stats import percentile, wilson_interval

_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
#: Case states that count towards a pass rate (unmeasured, skipped and xfailed do not).
_PASSED = ("passed",)
_FAILED = ("failed", "error")


def in_scope(gate: Gate, case: CaseResult) -> bool:
    """Whether ``case`` is one of the cases ``gate`` looks at."""
    return scope_holds(gate, case.nodeid, case.markers, case.matrix)


def statistic(values: Sequence[float], name: str) -> float:
    """``mean``, ``median``, ``min``, ``max``, ``std``, ``count``, ``sum`` or ``pNN`` of ``values`` (non-empty)."""
    if name == "count":
        return float(len(values))
    if name == "sum":
        return float(math.fsum(values))
    if name == "mean":
        return float(statistics.fmean(values))
    if name == "median":
        return float(statistics.median(values))
    if name == "min":
        return float(min(values))
    if name == "max":
        return float(max(values))
    if name == "std":
        return float(statistics.stdev(values)) if len(values) > 1 else 0.0
    match = _PERCENTILE.match(name)
    if match is None:  # pragma: no cover - the parser only lets known statistics through
        raise ValueError(f"unknown statistic {name!r}")
    value = percentile(values, float(match.group(1)))
    assert value is not None
    return value


def evaluate_gates(gates: Sequence[Gate], cases: Sequence[CaseResult], *, confidence: float = 0.95) -> list[GateResult]:
    """Each gate's value, verdict and how it was computed."""
    return [evaluate_gate(gate, cases, confidence=confidence) for gate in gates]


def evaluate_gate(gate: Gate, cases: Sequence[CaseResult], *, confidence: float = 0.95) -> GateResult:
    scoped = [case for case in cases if in_scope(gate, case)]
    measure = _MEASURES[gate.family]
    prefix = ""
    if gate.best and scoped:
        scoped, prefix = _best_cell(scoped, confidence)
    value, n, detail = measure(gate, scoped, confidence)
    detail = prefix + detail
    if value is None:
        verdict = "unmeasured"
    else:
        verdict = "pass" if gate.holds(value) else "fail"
    return GateResult(
        expression=gate.expression,
        scope=gate.scope,
        within=gate.within,
        metric=gate.name,
        op=gate.op,  # type: ignore[arg-type]
        threshold=gate.threshold,
        unit=gate.unit,
        value=value,
        verdict=verdict,  # type: ignore[arg-type]
        n=n,
        detail=detail if scoped or value is not None else f"no cases in scope {gate.scope}",
        source=gate.source,
    )


Measured = tuple["float | None", int, str]


def _best_cell(cases: Sequence[CaseResult], confidence: float) -> tuple[list[CaseResult], str]:
    """The cases of the best cell among ``cases`` (highest Wilson lower bound), and a note naming it."""
    from collections import defaultdict

    from pytest_llmops.matrix.summary import cell_summary, rank

    cells: dict[str, list[CaseResult]] = defaultdict(list)
    for case in cases:
        if case.matrix is not None:
            cells[case.matrix.cell].append(case)
    ranked = rank([cell_summary(cell, found, confidence) for cell, found in cells.items()])
    if not ranked:
        return [], "no cell with a measured pass rate; "
    return cells[ranked[0].cell], f"best cell {ranked[0].cell} of {len(cells)}: "


def _rate(gate: Gate, hits: int, trials: int, what: str, confidence: float, note: str) -> Measured:
    if trials == 0:
        return None, 0, f"no {what} to count{note}"
    low, high = wilson_interval(hits, trials, confidence)
    value = {"value": hits / trials, "lower": low, "upper": high}[gate.statistic]
    detail = f"{hits}/{trials} {what}; Wilson {confidence:.0%} interval [{low:.3f}, {high:.3f}]{note}"
    return value, trials, detail


def _pass_rate(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    passed = sum(case.state in _PASSED for case in cases)
    failed = sum(case.state in _FAILED for case in cases)
    unmeasured = sum(case.state == "unmeasured" for case in cases)
    note = f"; {unmeasured} unmeasured not counted" if unmeasured else ""
    return _rate(gate, passed, passed + failed, "passed", confidence, note)


def _unmeasured_rate(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    unmeasured = sum(case.state == "unmeasured" for case in cases)
    counted = sum(case.state in (*_PASSED, *_FAILED, "unmeasured") for case in cases)
    return _rate(gate, unmeasured, counted, "unmeasured", confidence, "")


def _asr(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    """Attack success rate pooled over the cases' ``robust.asr`` scores (their ``successes`` / ``trials``)."""
    scores = [score for case in cases for score in case.scores if score.name == gate.metric]
    counted = [score for score in scores if score.verdict != "unmeasured" and "trials" in score.details]
    unmeasured = len(scores) - len(counted)
    note = f" over {len(counted)} llm_robust case(s)" + (f"; {unmeasured} unmeasured not counted" if unmeasured else "")
    if not counted:
        return None, 0, f"no {gate.metric} score in scope (an llm_robust test records it){note}"
    hits = sum(int(score.details["successes"]) for score in counted)
    trials = sum(int(score.details["trials"]) for score in counted)
    return _rate(gate, hits, trials, "examples broke the model", confidence, note)


def timed_calls(cases: Sequence[CaseResult], role: str) -> list[CallResult]:
    """Successful chat calls of ``role`` that were really sent (coalesced followers shared a leader's)."""
    return [
        call
        for case in cases
        for call in case.calls
        if call.role == role and call.kind == "chat" and not call.error and not call.extra.get("coalesced")
    ]


def _replayed_note(calls: Sequence[CallResult]) -> str:
    replayed = sum(call.cache_hit for call in calls)
    return f"; {replayed} of {len(calls)} replayed from the cache with their recorded timings" if replayed else ""


def _from_calls(
    gate: Gate, calls: Sequence[CallResult], pick: Callable[[CallResult], float | None], what: str
) -> Measured:
    values = [v for v in (pick(call) for call in calls) if v is not None]
    if not values:
        return None, 0, f"no {what} recorded"
    return statistic(values, gate.statistic), len(values), f"{gate.statistic} over {len(values)} calls{_replayed_note(calls)}"


def _time(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    role = "judge" if gate.metric.startswith("judge.") else "llm"
    field = gate.metric.rsplit(".", 1)[-1]
    calls = timed_calls(cases, role)
    if field == "latency":
        return _from_calls(gate, calls, lambda c: c.latency_s, f"{role} latency")
    return _from_calls(gate, calls, lambda c: c.ttft_s, f"{role} time to first token (streamed calls only)")


def _ms_per_token(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    def pick(call: CallResult) -> float | None:
        if call.latency_s is None or not call.tokens_out:
            return None
        return call.latency_s * 1000 / call.tokens_out

    return _from_calls(gate, timed_calls(cases, "llm"), pick, "calls with latency and output tokens")


def _tokens(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    direction = gate.metric.split(".")[1]

    def pick(call: CallResult) -> float | None:
        if direction == "total":
            if call.tokens_in is None and call.tokens_out is None:
                return None
            return float((call.tokens_in or 0) + (call.tokens_out or 0))
        value = call.tokens_in if direction == "in" else call.tokens_out
        return None if value is None else float(value)

    calls = [c for case in cases for c in case.calls if c.role == "llm" and c.kind == "chat" and not c.error]
    return _from_calls(gate, calls, pick, f"tokens {direction}")


def _cost(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    calls = [call for case in cases for call in case.calls if not call.error]
    unknown = sum(call.cost_usd is None for call in calls)
    if not calls:
        return None, 0, "no provider calls"
    if unknown:
        # A total that leaves out unpriced calls would understate the spend.
        return None, len(calls), f"{unknown} of {len(calls)} calls have no known price, so the cost is unknown"
    if gate.statistic == "total":
        return math.fsum(call.cost_usd or 0.0 for call in calls), len(calls), f"sum over {len(calls)} calls"
    per_case = [math.fsum(c.cost_usd or 0.0 for c in case.calls if not c.error) for case in cases if case.calls]
    return statistic(per_case, gate.statistic), len(per_case), f"{gate.statistic} per case over {len(per_case)} cases"


def _calls(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    calls = [call for case in cases for call in case.calls]
    hits = sum(call.cache_hit for call in calls)
    return float(len(calls)), len(calls), f"{len(calls)} calls ({hits} cache hits)"


def _score(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    scores = [score for case in cases for score in case.scores if score.name == gate.metric]
    measured = [score for score in scores if score.verdict != "unmeasured" and score.value is not None]
    unmeasured = len(scores) - len(measured)
    note = f"; {unmeasured} unmeasured not counted" if unmeasured else ""
    if not measured:
        found = "no score" if not scores else f"only unmeasured scores ({unmeasured})"
        return None, 0, f"{found} named {gate.metric!r} in scope"
    if gate.statistic.startswith("pass_rate"):
        passed = sum(score.verdict == "pass" for score in measured)
        low, high = wilson_interval(passed, len(measured), confidence)
        value = {"pass_rate": passed / len(measured), "pass_rate.lower": low, "pass_rate.upper": high}[gate.statistic]
        return value, len(measured), f"{passed}/{len(measured)} met their threshold; Wilson {confidence:.0%} [{low:.3f}, {high:.3f}]{note}"
    values = [float(score.value) for score in measured]  # type: ignore[arg-type]
    return statistic(values, gate.statistic), len(values), f"{gate.statistic} over {len(values)} scores{note}"


def _steps(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    from pytest_llmops.tracing.view import steps

    traced = [case for case in cases if case.spans]
    if not traced:
        return None, 0, "no case recorded a trace"
    counts = [float(len(steps(case.spans))) for case in traced]
    return statistic(counts, gate.statistic), len(counts), f"{gate.statistic} over {len(counts)} traced cases"


def _span_latency(gate: Gate, cases: Sequence[CaseResult], confidence: float) -> Measured:
    wanted = dict(gate.span_filter)
    durations = [
        span.duration_s for case in cases for span in case.spans
        if span.duration_s is not None and all(getattr(span, key) == value for key, value in wanted.items())
    ]
    if not durations:
        return None, 0, f"no span matched {gate.metric.split('.latency')[0]}"
    return statistic(durations, gate.statistic), len(durations), f"{gate.statistic} over {len(durations)} spans"


_MEASURES: dict[str, Callable[[Gate, Sequence[CaseResult], float], Measured]] = {
    "pass_rate": _pass_rate,
    "unmeasured_rate": _unmeasured_rate,
    "asr": _asr,
    "time": _time,
    "ms_per_token": _ms_per_token,
    "tokens": _tokens,
    "cost": _cost,
    "calls": _calls,
    "score": _score,
    "steps": _steps,
    "span": _span_latency,
}
