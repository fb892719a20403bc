"""Realistic ``RunResult`` objects for the report tests, built directly from the results models.

A seeded generator makes a run of an eval suite with three test files: scores
with thresholds (one judge-based, so some end unmeasured), chat calls whose
latency grows with the output length, judge calls, cache hits, gates and,
for the regression run, a comparison with a baseline.
"""

from __future__ import annotations

import random
import statistics

from pytest_llmops.results.models import (
    CallResult,
    CaseDelta,
    CaseResult,
    Comparison,
    Environment,
    GateResult,
    LatencyGroup,
    MetricDelta,
    RunResult,
    ScoreResult,
)
from pytest_llmops.results.summary import percentile

MODEL = "openai/gpt-4o-mini"
JUDGE = "openai/gpt-4.1"
STARTED = 1_795_000_000.0
#: A reason a provider or a user could put anything into; the HTML report must show it as text.
INJECTED = "answer was <script>document.title='pwned'</script> & not | grounded"
FILES = ("evalsuites/test_support.py", "evalsuites/test_summaries.py", "evalsuites/test_rag.py")


def _call(rng: random.Random, case_id: str, role: str, model: str, at: float, cache_hit: bool) -> CallResult:
    tokens_out = rng.randint(20, 400) if role == "llm" else rng.randint(5, 40)
    latency = 0.18 + 0.0042 * tokens_out + rng.gauss(0, 0.06)
    return CallResult(
        model=model,
        kind="chat",
        role=role,
        api_base=None,
        params={"temperature": 0.0},
        prompt_hash=f"{rng.getrandbits(64):016x}",
        cache_key=f"{rng.getrandbits(128):032x}",
        started_at=at,
        latency_s=round(max(latency, 0.05), 4),
        ttft_s=round(0.12 + rng.random() * 0.2, 4),
        tokens_in=rng.randint(150, 900),
        tokens_out=tokens_out,
        cost_usd=round(tokens_out * 6e-7 + 2e-5, 8),
        cache_hit=cache_hit,
        nodeid=case_id,
    )


def _score(name: str, value: float | None, threshold: float, reason: str = "") -> ScoreResult:
    if value is None:
        return ScoreResult(name=name, value=None, verdict="unmeasured", threshold=threshold,
                           reason=reason or "judge did not answer after 3 attempts (timeout)")
    verdict = "pass" if value >= threshold else "fail"
    return ScoreResult(
        name=name, value=round(value, 4), verdict=verdict, threshold=threshold,
        reason=reason or ("" if verdict == "pass" else f"{name} {value:.3f} is below {threshold}"),
        signature=f"{name}/v1",
    )


def _cases(rng: random.Random, n_cases: int, failing: bool) -> list[CaseResult]:
    cases = []
    plan = ["passed"] * n_cases
    if failing:
        plan[3] = plan[11] = plan[19] = plan[27] = plan[33] = plan[41] = "failed"
        plan[7] = plan[23] = plan[45] = "unmeasured"
        plan[15] = "error"
        plan[30] = "skipped"
    for i, state in enumerate(plan):
        nodeid = f"{FILES[i % 3]}::test_answer[case-{i:03d}]"
        at = STARTED + i * 1.5
        calls = [_call(rng, nodeid, "llm", MODEL, at, cache_hit=i % 5 == 0)]
        scores: list[ScoreResult] = []
        reason = ""
        if state == "skipped":
            calls = []
            reason = "skipped: needs a GPU"
        elif state == "error":
            calls = []
            reason = "ConnectionError: provider at http://127.0.0.1:9/v1 refused the connection\nTraceback (most recent call last): ..."
        else:
            calls.append(_call(rng, nodeid, "judge", JUDGE, at + 0.5, cache_hit=i % 5 == 0))
            faith = None if state == "unmeasured" else rng.uniform(0.82, 0.99)
            relevance = rng.uniform(0.72, 0.98)
            if state == "failed":
                faith = rng.uniform(0.35, 0.74)
            scores = [
                _score("faithfulness", faith, 0.8),
                _score("answer_relevance", relevance, 0.7),
            ]
            if state == "failed":
                reason = f"faithfulness {faith:.3f} < 0.8: the answer cites a refund window the context does not give"
                if i == 3:
                    reason = INJECTED
            elif state == "unmeasured":
                reason = "faithfulness: judge did not answer after 3 attempts (timeout)"
        cases.append(CaseResult(
            nodeid=nodeid, state=state, reason=reason, duration_s=round(sum(c.latency_s or 0 for c in calls), 3),
            markers=["llm_eval"], scores=scores, calls=calls,
        ))
    return cases


def _latency(cases: list[CaseResult]) -> list[LatencyGroup]:
    groups = []
    for role, model in (("llm", MODEL), ("judge", JUDGE)):
        calls = [call for case in cases for call in case.calls if call.role == role]
        if not calls:
            continue
        points = [(call.tokens_out or 0, call.latency_s or 0.0) for call in calls]
        fit = statistics.linear_regression([p[0] for p in points], [p[1] for p in points])
        latencies = [p[1] for p in points]
        ttfts = [call.ttft_s for call in calls if call.ttft_s is not None]
        tokens_out = sum(p[0] for p in points)
        groups.append(LatencyGroup(
            role=role, model=model, calls=len(calls), replayed=sum(call.cache_hit for call in calls),
            p50_s=percentile(latencies, 50), p95_s=percentile(latencies, 95), p99_s=percentile(latencies, 99),
            ttft_p50_s=percentile(ttfts, 50), ttft_p95_s=percentile(ttfts, 95), ttft_p99_s=percentile(ttfts, 99),
            ms_per_token=1000 * sum(latencies) / max(tokens_out, 1),
            slope_ms_per_token=fit.slope * 1000, intercept_s=fit.intercept,
            tokens_in=sum(call.tokens_in or 0 for call in calls), tokens_out=tokens_out,
            cost_usd=sum(call.cost_usd or 0 for call in calls), points=points,
        ))
    return groups


def _gates(failing: bool, latency_p95: float, cost: float) -> list[GateResult]:
    return [
        GateResult(expression="pass_rate.lower>=0.9", metric="pass_rate.lower", op=">=", threshold=0.9,
                   value=0.812 if failing else 0.941, verdict="fail" if failing else "pass", n=59,
                   detail="Wilson 95% interval [0.812, 0.951]" if failing else "Wilson 95% interval [0.941, 1.0]",
                   source="ini"),
        GateResult(expression="faithfulness.mean>=0.85", metric="faithfulness.mean", op=">=", threshold=0.85,
                   value=0.873, verdict="pass", n=56, detail="mean of 56 scores", source="ini"),
        GateResult(expression="latency.p95<=2s", metric="latency.p95", op="<=", threshold=2.0, unit="s",
                   value=round(latency_p95, 4), verdict="pass" if latency_p95 <= 2 else "fail", n=59, detail="12 of 59 calls replayed",
                   source="command line"),
        GateResult(expression="cost.total<=1.50", metric="cost.total", op="<=", threshold=1.5, unit="usd",
                   value=round(cost, 6), verdict="pass", n=118, source="ini"),
        GateResult(expression="answer_relevance.mean>=0.8", scope="suite=evalsuites/test_rag.py",
                   metric="answer_relevance.mean", op=">=", threshold=0.8, value=None if failing else 0.86,
                   verdict="unmeasured" if failing else "pass", n=0 if failing else 20,
                   detail="no score measured in scope" if failing else "mean of 20 scores", source="ini"),
    ]


def _comparison() -> Comparison:
    return Comparison(
        baseline_name="main",
        baseline_created_at=STARTED - 86_400 * 3,
        baseline_git_revision="4be1c2d9a0f37e51c6d8b2a4f90e1d7c3b5a6e28",
        tolerance=0.02,
        alpha=0.05,
        metrics=[
            MetricDelta(metric="pass_rate", kind="pass_fail", n_pairs=58, baseline=0.966, current=0.862,
                        delta=-0.104, ci_low=-0.172, ci_high=-0.034, p_value=0.0039,
                        test="exact McNemar, one-sided", verdict="regression",
                        reason="6 cases went from pass to fail, none from fail to pass"),
            MetricDelta(metric="faithfulness.mean", kind="score", n_pairs=55, baseline=0.881, current=0.873,
                        delta=-0.008, ci_low=-0.031, ci_high=0.014, p_value=0.41,
                        test="paired bootstrap, 10000 resamples", verdict="no significant change"),
            MetricDelta(metric="answer_relevance.mean", kind="score", n_pairs=58, baseline=0.812, current=0.851,
                        delta=0.039, ci_low=0.018, ci_high=0.061, p_value=0.0004,
                        test="paired bootstrap, 10000 resamples", verdict="improvement"),
        ],
        cases_only_in_baseline=["evalsuites/test_rag.py::test_answer[case-999]"],
        cases_only_in_current=[],
        warnings=[f"the judge changed: the baseline was judged by openai/gpt-4o, this run by {JUDGE}"],
        regressed=True,
        worst_cases=[
            CaseDelta(nodeid="evalsuites/test_support.py::test_answer[case-003]", metric="faithfulness",
                      baseline=0.91, current=0.41, delta=-0.5),
            CaseDelta(nodeid="evalsuites/test_summaries.py::test_answer[case-011]", metric="faithfulness",
                      baseline=0.88, current=0.52, delta=-0.36),
        ],
    )


def make_run(kind: str = "failing", n_cases: int = 60, seed: int = 7) -> RunResult:
    """A run of ``n_cases`` eval cases; ``kind`` is "passing", "failing" or "regression" (failing, with a baseline)."""
    rng = random.Random(seed)
    failing = kind != "passing"
    cases = _cases(rng, n_cases, failing)
    latency = _latency(cases)
    llm = latency[0]
    cost = sum(group.cost_usd or 0 for group in latency)
    counts = {state: sum(case.state == state for case in cases)
              for state in ("passed", "failed", "unmeasured", "error", "skipped", "xfailed")}
    return RunResult(
        started_at=STARTED,
        finished_at=STARTED + n_cases * 1.5 + 4.2,
        exit_status=1 if failing else 0,
        settings={"model": MODEL, "judge": JUDGE, "record_mode": "new", "results": ".llmops/results.json"},
        environment=Environment(python="3.11.9", platform="Linux-6.1-x86_64", packages={"pytest-llmops": "0.1.0"},
                                git_revision="9f3e2a1b7c4d5e6f8a9b0c1d2e3f4a5b6c7d8e9f"),
        summary={"cases": len(cases), "counts": counts},
        cases=cases,
        gates=_gates(failing, llm.p95_s or 0.0, cost),
        comparison=_comparison() if kind == "regression" else None,
        latency=latency,
    )
