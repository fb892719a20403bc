"""Gate expressions: parsing (with errors that point at the mistake) and evaluation on results."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmops.gates.evaluate import evaluate_gate
from pytest_llmops.gates.parse import GateSyntaxError, parse_gate
from pytest_llmops.results.models import CallResult, CaseResult, ScoreResult


def call(role: str = "llm", latency: float | None = 1.0, **fields: Any) -> CallResult:
    values: dict[str, Any] = dict(model="openai/m", kind="chat", role=role, api_base=None, params={}, prompt_hash="h",
                                  cache_key="k", started_at=0.0, latency_s=latency, tokens_in=10, tokens_out=20,
                                  cost_usd=0.001)
    values.update(fields)
    return CallResult(**values)


def case(nodeid: str, state: str = "passed", scores: tuple[tuple[str, float | None], ...] = (), calls=(), markers=()) -> CaseResult:
    return CaseResult(
        nodeid=nodeid,
        state=state,  # type: ignore[arg-type]
        scores=[
            ScoreResult(name=name, value=value, verdict="unmeasured" if value is None else ("pass" if value >= 0.5 else "fail"),
                        threshold=0.5)
            for name, value in scores
        ],
        calls=list(calls),
        markers=list(markers),
    )


def gate(expression: str, cases: list[CaseResult]):
    return evaluate_gate(parse_gate(expression), cases)


@pytest.mark.parametrize(
    ("expression", "metric", "threshold", "unit"),
    [
        ("pass_rate>=0.95", "pass_rate", 0.95, ""),
        ("pass_rate.lower >= 90%", "pass_rate.lower", 0.9, ""),
        ("unmeasured_rate<=0.05", "unmeasured_rate", 0.05, ""),
        ("faithfulness.mean>=0.85", "faithfulness.mean", 0.85, ""),
        ("rougeL.p10>=0.3", "rougeL.p10", 0.3, ""),
        ("latency.p95<=2s", "latency.p95", 2.0, "s"),
        ("ttft.p95<=500ms", "ttft.p95", 0.5, "s"),
        ("judge.latency.p99<3", "judge.latency.p99", 3.0, "s"),
        ("tokens.out.mean<=400", "tokens.out.mean", 400.0, "tokens"),
        ("cost.total<=$1.50", "cost.total", 1.5, "usd"),
        ("ms_per_token.median<=40", "ms_per_token.median", 40.0, "ms/token"),
        ("calls.total<=500", "calls.total", 500.0, ""),
        ("recall@5.mean>=0.9", "recall@5.mean", 0.9, ""),
    ],
)
def test_gate_expressions_parse_to_typed_checks(expression, metric, threshold, unit):
    parsed = parse_gate(expression)
    assert (parsed.name, parsed.threshold, parsed.unit) == (metric, pytest.approx(threshold), unit)


def test_a_gate_can_be_scoped_to_a_suite_a_test_or_a_marker():
    assert parse_gate("[suite=evalsuites/rag_qa] recall.mean>=0.8").scope == "suite=evalsuites/rag_qa"
    assert parse_gate("[test=test_answer] pass_rate>=1").scope == "test=test_answer"
    assert parse_gate("[marker=smoke]pass_rate>=0.5").scope == "marker=smoke"


@pytest.mark.parametrize(
    ("expression", "position", "problem"),
    [
        ("latency<=2s", 0, "needs a statistic"),
        ("pass_rate>=1.5", 11, "between 0 and 1"),
        ("foo.bar=>3", 7, "expected a comparison"),
        ("[sweet=x] a.mean>1", 1, "unknown scope"),
        ("latency.p95<=2kg", 14, "s or ms"),
        ("cost.total<=", 12, "expected a number"),
        ("rougeL>=0.3", 0, "needs a statistic"),
        ("rougeL.average>=0.3", 0, "percentile such as p95"),
    ],
)
def test_a_malformed_gate_points_at_the_mistake_and_shows_valid_examples(expression, position, problem):
    with pytest.raises(GateSyntaxError) as caught:
        parse_gate(expression, source="--llmops-gate")
    error = caught.value
    assert error.position == position
    assert problem in error.problem
    message = str(error)
    assert message.startswith("--llmops-gate: bad gate")
    assert f"    {expression}\n    {' ' * position}^" in message
    assert "latency.p95<=2s" in message  # a valid example


def test_pass_rate_counts_passed_over_passed_and_failed_and_leaves_unmeasured_apart():
    cases = [case(f"t.py::c{i}") for i in range(8)] + [case("t.py::f1", "failed"), case("t.py::e1", "error"),
                                                        case("t.py::u1", "unmeasured"), case("t.py::s1", "skipped")]
    result = gate("pass_rate>=0.8", cases)
    assert result.value == pytest.approx(0.8) and result.n == 10 and result.verdict == "pass"
    assert "1 unmeasured not counted" in result.detail
    lower = gate("pass_rate.lower>=0.8", cases)
    assert lower.value == pytest.approx(0.49016, abs=1e-5) and lower.verdict == "fail"
    assert "Wilson 95% interval [0.490, 0.943]" in lower.detail
    unmeasured = gate("unmeasured_rate<=0.05", cases)
    assert unmeasured.value == pytest.approx(1 / 11) and unmeasured.verdict == "fail"


def test_score_statistics_use_measured_values_only():
    cases = [case(f"t.py::c{i}", scores=(("rougeL", v),)) for i, v in enumerate([0.1, 0.2, 0.3, 0.4, 0.9])]
    cases.append(case("t.py::u", scores=(("rougeL", None),)))
    assert gate("rougeL.mean>=0.3", cases).value == pytest.approx(0.38)
    assert gate("rougeL.p10>=0.1", cases).value == pytest.approx(0.14)  # numpy's linear p10 of the five
    assert gate("rougeL.min>=0.1", cases).value == pytest.approx(0.1)
    assert gate("rougeL.count>=5", cases).value == 5
    assert gate("rougeL.pass_rate>=0.2", cases).value == pytest.approx(0.2)
    assert "1 unmeasured not counted" in gate("rougeL.mean>=0.3", cases).detail


def test_a_gate_with_nothing_to_measure_is_unmeasured_never_passed():
    cases = [case("t.py::a", scores=(("bleu", 0.4),))]
    missing = gate("faithfulness.mean>=0.85", cases)
    assert missing.verdict == "unmeasured" and missing.value is None
    assert "no score named 'faithfulness'" in missing.detail
    assert gate("latency.p95<=2s", cases).verdict == "unmeasured"
    only_unmeasured = gate("bleu.mean>=0.1", [case("t.py::b", scores=(("bleu", None),))])
    assert only_unmeasured.verdict == "unmeasured" and "only unmeasured" in only_unmeasured.detail


def test_latency_gates_see_the_model_under_test_apart_from_the_judge_and_say_what_was_replayed():
    calls = [call(latency=v) for v in (0.5, 1.0, 1.5, 2.0)] + [call(latency=9.0, cache_hit=True)]
    judge_calls = [call(role="judge", latency=4.0)]
    cases = [case("t.py::a", calls=calls + judge_calls)]
    p50 = gate("latency.p50<=2s", cases)
    assert p50.value == pytest.approx(1.5) and p50.n == 5
    assert "1 of 5 replayed from the cache" in p50.detail
    assert gate("judge.latency.max<=3s", cases).verdict == "fail"
    # Failed calls and coalesced followers are not latencies of a request.
    extra = [call(latency=None, error="boom"), call(latency=0.1, extra={"coalesced": True})]
    assert gate("latency.count>=1", [case("t.py::b", calls=calls + extra)]).value == 5


def test_token_cost_and_call_gates():
    cases = [case("t.py::a", calls=[call(tokens_out=100), call(tokens_out=300, cost_usd=0.002)]),
             case("t.py::b", calls=[call(role="judge", tokens_out=5, cost_usd=0.01)])]
    assert gate("tokens.out.mean<=400", cases).value == pytest.approx(200)  # the judge's tokens are not the model's
    assert gate("cost.total<=1", cases).value == pytest.approx(0.013)
    assert gate("cost.max<=1", cases).value == pytest.approx(0.01)
    assert gate("calls.total<=2", cases).verdict == "fail"
    unknown = gate("cost.total<=1", [case("t.py::c", calls=[call(cost_usd=None)])])
    assert unknown.verdict == "unmeasured" and "no known price" in unknown.detail


def test_scopes_pick_their_cases():
    cases = [
        case("evalsuites/rag/test_a.py::test_answer[1]", "failed", markers=("smoke",)),
        case("evalsuites/rag/test_a.py::test_answer[2]"),
        case("evalsuites/ragged/test_b.py::test_other"),
    ]
    assert gate("[suite=evalsuites/rag] pass_rate>=0.5", cases).n == 2
    assert gate("[suite=evalsuites/rag/] pass_rate>=0.5", cases).n == 2
    assert gate("[test=test_answer] pass_rate>=0.5", cases).value == 0.5
    assert gate("[marker=smoke] pass_rate>=0.5", cases).value == 0.0
    empty = gate("[marker=nightly] pass_rate>=0.5", cases)
    assert empty.verdict == "unmeasured" and "no cases in scope marker=nightly" in empty.detail
