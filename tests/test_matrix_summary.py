"""The matrix's statistics and cells on hand-made cases: ids, pairing keys, best, McNemar, Pareto, scores."""

from __future__ import annotations

import re

import pytest

from pytest_llmops.matrix.cells import Cell, MatrixError, build_cells, case_key, parse_ini
from pytest_llmops.matrix.summary import mcnemar, summarize_matrices
from pytest_llmops.results.models import CallResult, CaseResult, MatrixCellRef, ScoreResult


def case(cell: str, index: int, passed: bool, *, cost: float | None = 0.001, latency: float = 0.2,
         score: float | None = None) -> CaseResult:
    call = CallResult(model="m", kind="chat", role="llm", api_base=None, params={}, prompt_hash="h", cache_key="k",
                      started_at=0.0, latency_s=latency, tokens_in=10, tokens_out=2, cost_usd=cost)
    scores = [] if score is None else [ScoreResult(name="rougeL", value=score, verdict="pass")]
    return CaseResult(nodeid=f"t.py::test[{cell}-c{index}]", state="passed" if passed else "failed", calls=[call],
                      scores=scores, matrix=MatrixCellRef(matrix="qa", cell=cell, case=f"t.py::test[c{index}]", prompt=cell))


def test_cell_ids_name_only_the_axes_the_matrix_has():
    cells = build_cells([("marker", {"prompt": ["qa@2"], "temperature": [0, 0.7], "shots": [3]})], default_name="t")
    assert [c.id for c in cells] == ["qa@2-t0-3shot", "qa@2-t0.7-3shot"]
    assert cells[0].prompt_name == "qa" and cells[0].prompt_version == "2"
    assert Cell(matrix="m", model="openai/gpt-4o-mini").id == "openai/gpt-4o-mini"


def test_later_layers_replace_an_axis_and_the_ini_lines_parse():
    ini = parse_ini(["temperature = 0, 0.7", "# a comment", "shots = 0 2"])
    cells = build_cells([("ini", ini), ("marker", {"shots": [1]})], default_name="t")
    assert [c.id for c in cells] == ["t0-1shot", "t0.7-1shot"]
    with pytest.raises(MatrixError, match="is not 'axis = value, value'"):
        parse_ini(["temperature 0"])
    with pytest.raises(MatrixError, match="listed twice"):
        build_cells([("marker", {"temperature": [0, 0.0]})], default_name="t")
    with pytest.raises(MatrixError, match="the matrix has no axis"):
        build_cells([("marker", {"name": "qa"})], default_name="t")


def test_the_case_key_drops_the_cell_wherever_pytest_put_it():
    assert case_key("t.py::test[qa-t0-c1]", "qa-t0-c1", "qa-t0") == "t.py::test[c1]"
    assert case_key("t.py::test[c1-qa-t0]", "c1-qa-t0", "qa-t0") == "t.py::test[c1]"
    assert case_key("t.py::test[a-qa-t0-b]", "a-qa-t0-b", "qa-t0") == "t.py::test[a-b]"
    assert case_key("t.py::test[qa-t0]", "qa-t0", "qa-t0") == "t.py::test"


def test_mcnemar_counts_only_discordant_pairs():
    best = [case("a", i, True) for i in range(10)]
    other = [case("b", i, i >= 3) for i in range(10)]
    p, pairs, only_best, only_other = mcnemar(best, other)
    assert (pairs, only_best, only_other) == (10, 3, 0)
    assert p == pytest.approx(2 * 0.5**3)  # two-sided exact: 0.25


def test_the_best_cell_has_the_highest_lower_bound_not_the_highest_rate():
    few_perfect = [case("few", i, True) for i in range(3)]
    many_good = [case("many", i, i < 38) for i in range(40)]
    [summary] = summarize_matrices(few_perfect + many_good)
    assert summary.best == "many" and summary.runner_up == "few"
    assert summary.n_pairs == 3  # paired on the cases both ran


def test_pareto_front_weighs_quality_cost_and_latency_and_leaves_out_unknown_cost():
    cells = (
        [case("cheap", i, i < 5, cost=0.001) for i in range(10)]
        + [case("good", i, i < 9, cost=0.01) for i in range(10)]
        + [case("worse_and_dear", i, i < 4, cost=0.02) for i in range(10)]
    )
    [summary] = summarize_matrices(cells)
    assert {c.cell for c in summary.cells if c.pareto} == {"cheap", "good"}
    assert summary.pareto_axes == ["pass rate", "cost", "latency p50"]
    unpriced = [case("cheap", i, i < 5, cost=None) for i in range(10)] + [case("good", i, i < 9) for i in range(10)]
    [summary] = summarize_matrices(unpriced)
    assert summary.pareto_axes == ["pass rate", "latency p50"]
    assert next(c for c in summary.cells if c.cell == "cheap").cost_usd is None


def test_each_score_mean_gets_a_bootstrap_interval():
    cells = [case("a", i, True, score=v) for i, v in enumerate([0.2, 0.4, 0.6, 0.8])]
    [summary] = summarize_matrices(cells)
    rouge = summary.cells[0].scores["rougeL"]
    assert rouge.value == pytest.approx(0.5) and rouge.n == 4
    assert 0.2 <= rouge.low < 0.5 < rouge.high <= 0.8
    assert summary.verdict == "only one cell"


def _pareto_chart(cases: list[CaseResult]) -> str:
    from reporting_runs import make_run

    from pytest_llmops.reporting.html import render_html

    run = make_run("passing").model_copy(update={"matrices": summarize_matrices(cases)})
    html = render_html(run)
    chart = html[html.index('<svg class="chart pareto"'):]
    return chart[:chart.index("</svg>")]


def test_the_report_plots_cost_when_it_differs_and_latency_when_every_cell_costs_the_same():
    priced = [case("cheap", i, i < 5, cost=0.001, latency=0.3) for i in range(10)] + [
        case("good", i, i < 9, cost=0.01, latency=0.1) for i in range(10)]
    assert "pass rate against cost" in _pareto_chart(priced)
    # A local model's cells all cost $0: a cost axis would stack every cell on one line.
    free = [case("slow", i, i < 9, cost=0.0, latency=0.5) for i in range(10)] + [
        case("fast", i, i < 5, cost=0.0, latency=0.1) for i in range(10)]
    chart = _pareto_chart(free)
    assert "pass rate against latency p50" in chart
    assert re.search(r'<title>fast: pass rate 0\.500, latency p50 \(s\) 0\.1', chart)
