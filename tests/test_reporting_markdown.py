"""The Markdown step summary: verdict line, gate rows, counts, baseline deltas, worst cases, provenance."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt
from reporting_runs import make_run

from pytest_llmops.reporting._common import seconds
from pytest_llmops.reporting.markdown import cell, code, render_markdown, table
from pytest_llmops.results.models import CaseResult, ScoreResult


def gfm(markdown: str) -> str:
    """Render as GitHub does for tables and inline HTML (CommonMark with the table extension)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def cells(line: str) -> list[str]:
    """The cells of a table row, split on the pipes that are not escaped."""
    return [part.strip() for part in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_a_failing_run_says_failed_and_why_on_its_first_line():
    first = render_markdown(make_run("failing")).splitlines()[0]

    assert first.startswith("# ❌ pytest-llmops: FAILED: 1 gate failed (pass\\_rate.lower\\>=0.9)")
    assert "1 gate unmeasured (answer\\_relevance.mean\\>=0.8)" in first
    assert "6 cases failed; 1 case errored; 3 cases unmeasured" in first


def test_gate_rows_show_value_with_unit_threshold_and_verdict():
    run = make_run("failing")
    lines = render_markdown(run).splitlines()
    p95 = next(g for g in run.gates if g.metric == "latency.p95").value

    assert "| gate | value | threshold | verdict | n | how |" in lines
    assert "| `pass_rate.lower>=0.9` | 0.812 | \\>= 0.9 | ❌ fail | 59 | Wilson 95% interval \\[0.812, 0.951\\] |" in lines
    assert "| `faithfulness.mean>=0.85` | 0.873 | \\>= 0.85 | ✅ pass | 56 | mean of 56 scores |" in lines
    assert f"| `latency.p95<=2s` | {seconds(p95)} | \\<= 2.00 s | ✅ pass | 59 | 12 of 59 calls replayed |" in lines
    assert any(line.startswith("| `cost.total<=1.50` | $0.0") and "| \\<= $1.50 | ✅ pass | 118 |" in line for line in lines)
    assert (
        "| `answer_relevance.mean>=0.8 [suite=evalsuites/test_rag.py]` | - | \\>= 0.8 | ⚠️ unmeasured | 0 "
        "| no score measured in scope |"
    ) in lines


def test_a_passing_run_has_no_baseline_or_failing_cases_section():
    markdown = render_markdown(make_run("passing"))

    assert markdown.splitlines()[0] == "# ✅ pytest-llmops: PASSED: 60 cases passed, 5 gates passed"
    assert "| `pass_rate.lower>=0.9` | 0.941 | \\>= 0.9 | ✅ pass |" in markdown
    assert "Against baseline" not in markdown
    assert "## Failing and unmeasured cases" not in markdown
    assert "Apart from these: 0 unmeasured" in markdown


def test_unmeasured_cases_are_counted_apart_from_passed_and_failed():
    lines = render_markdown(make_run("failing")).splitlines()
    start = lines.index("## Cases")

    assert lines[start + 2 : start + 7] == [
        "| state | cases |",
        "| --- | ---: |",
        "| passed | 49 |",
        "| failed | 6 |",
        "| error | 1 |",
    ]
    assert lines[start + 8] == (
        "Apart from these: **3 unmeasured**, 1 skipped (unmeasured is never counted as a pass)."
    )


def test_a_regression_shows_deltas_with_ci_and_p_and_the_warnings_loudly():
    markdown = render_markdown(make_run("regression"))
    lines = markdown.splitlines()

    assert "regression against baseline 'main' (pass\\_rate)" in lines[0]
    assert "## Against baseline `main`" in lines
    warning = lines.index("> [!WARNING]")
    assert lines[warning + 1] == (
        "> **the judge changed: the baseline was judged by openai/gpt-4o, this run by openai/gpt-4.1**"
    )
    assert "| metric | baseline | current | delta | 95% CI | p | pairs | verdict |" in lines
    assert "| pass\\_rate | 96.6% | 86.2% | -10.4 pp | \\[-17.2 pp, -3.4 pp\\] | 0.004 | 58 | ❌ regression |" in lines
    assert "| faithfulness.mean | 0.881 | 0.873 | -0.008 | \\[-0.031, +0.014\\] | 0.410 | 55 | no significant change |" in lines
    assert "| answer\\_relevance.mean | 0.812 | 0.851 | +0.039 | \\[+0.018, +0.061\\] | \\<0.001 | 58 | ✅ improvement |" in lines
    assert "Not paired: 1 case(s) only in the baseline, 0 only in this run." in lines
    assert "| `evalsuites/test_support.py::test_answer[case-003]` | faithfulness | 0.91 | 0.41 | -0.500 |" in lines


def test_the_worst_cases_come_first_and_are_capped():
    lines = render_markdown(make_run("failing"), max_cases=3).splitlines()
    start = lines.index("## Failing and unmeasured cases (worst 3 of 10)")
    rows = [cells(line) for line in lines[start + 4 : start + 7]]

    # The error first, then the failures with the largest shortfall below their threshold.
    assert [row[1] for row in rows] == ["error", "failed", "failed"]
    assert rows[0][0] == "`evalsuites/test_support.py::test_answer[case-015]`"
    shortfalls = [float(re.search(r"faithfulness (\d\.\d+)", row[2]).group(1)) for row in rows[1:]]
    assert shortfalls == sorted(shortfalls) and shortfalls[0] < 0.8
    assert lines[start + 7] == ""


def test_long_reasons_are_truncated_and_newlines_never_break_a_row():
    run = make_run("failing")
    long_reason = "the answer was wrong\nbecause " + "x" * 400
    case = CaseResult(nodeid="evalsuites/test_x.py::test_long", state="failed", reason=long_reason,
                      scores=[ScoreResult(name="faithfulness", value=0.1, verdict="fail", threshold=0.8)])
    markdown = render_markdown(run.model_copy(update={"cases": [case]}))
    row = next(line for line in markdown.splitlines() if "test_long" in line)

    assert "the answer was wrong because xxx" in row
    assert row.endswith("…|") or row.endswith("… |")
    assert len(cells(row)[3]) <= 201


def test_every_table_row_has_as_many_cells_as_its_header_even_with_pipes_in_text():
    markdown = render_markdown(make_run("regression"), max_cases=20)
    tables = re.findall(r"((?:^\|.*\|$\n?)+)", markdown, flags=re.M)

    assert len(tables) >= 6
    for block in tables:
        widths = {len(cells(line)) for line in block.strip().splitlines()}
        assert len(widths) == 1, block


def test_rendered_as_github_would_the_injected_script_stays_text():
    html = gfm(render_markdown(make_run("failing"), max_cases=20))

    assert "<script>" not in html
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt; &amp; not | grounded" in html
    # The gate table is a real table with a header cell per column.
    assert html.count("<table>") >= 4
    assert "<th>gate</th>" in html and "<th style=\"text-align:right\">value</th>" in html


def test_provenance_names_model_judge_and_revision():
    markdown = render_markdown(make_run("regression"))

    assert "| model under test | openai/gpt-4o-mini |" in markdown
    assert "| judge | openai/gpt-4.1 |" in markdown
    assert "| git revision | `9f3e2a1b7c4d5e6f8a9b0c1d2e3f4a5b6c7d8e9f` |" in markdown
    assert "| baseline | main (2026-11-15 11:06:40 UTC, revision 4be1c2d9a0f37e51c6d8b2a4f90e1d7c3b5a6e28) |" in markdown


def test_latency_table_lists_each_role_with_percentiles_tokens_and_cost():
    run = make_run("passing")
    llm = run.latency[0]
    row = next(line for line in render_markdown(run).splitlines() if line.startswith("| llm |"))

    assert cells(row)[:7] == ["llm", "openai/gpt-4o-mini", "all", f"{llm.calls} ({llm.replayed} replayed)",
                              seconds(llm.p50_s), seconds(llm.p95_s), seconds(llm.p99_s)]
    assert cells(row)[9] == f"{llm.tokens_in:,} / {llm.tokens_out:,}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a|b", "a\\|b"), ("two\nlines", "two lines"), ("<b>x</b>", "\\<b\\>x\\</b\\>"), ("", " "),
     ("*not* _emphasis_", "\\*not\\* \\_emphasis\\_")],
)
def test_a_cell_is_one_line_of_plain_text(value, expected):
    assert cell(value) == expected


def test_code_cells_keep_backticks_and_escape_only_pipes():
    assert table(["case"], [[code("a`b|c")]])[-1] == "| ``a`b\\|c`` |"


def test_an_interrupted_run_with_nothing_failing_is_still_failed():
    run = make_run("passing").model_copy(update={"interrupted": True})

    assert render_markdown(run).splitlines()[0] == "# ❌ pytest-llmops: FAILED: the run was interrupted"


def test_failed_cases_within_the_gates_pass_when_pytest_exited_zero():
    run = make_run("failing")
    gates = [g.model_copy(update={"verdict": "pass"}) for g in run.gates]
    first = render_markdown(run.model_copy(update={"gates": gates, "exit_status": 0})).splitlines()[0]

    assert first == "# ✅ pytest-llmops: PASSED: 6 cases failed, 1 case errored, 3 cases unmeasured, within the gates"


def test_an_unmeasured_score_is_named_unmeasured_never_given_a_number():
    row = next(line for line in render_markdown(make_run("failing")).splitlines() if "case-023" in line)

    assert cells(row)[1:3] == ["unmeasured", "faithfulness unmeasured (threshold 0.8)"]
    assert cells(row)[3] == "faithfulness: judge did not answer after 3 attempts (timeout)"


def test_a_gate_label_shows_its_scope_once():
    from pytest_llmops.reporting._common import gate_label
    from pytest_llmops.results.models import GateResult

    def gate(expression: str, scope: str | None) -> GateResult:
        return GateResult(expression=expression, scope=scope, metric="pass_rate", op=">=", threshold=0.5,
                          value=0.6, verdict="pass")

    assert gate_label(gate("[test=test_qa] pass_rate>=0.5", "test=test_qa")) == "[test=test_qa] pass_rate>=0.5"
    assert gate_label(gate("pass_rate>=0.5", "suite=evalsuites/qa")) == "pass_rate>=0.5 [suite=evalsuites/qa]"
    assert gate_label(gate("pass_rate>=0.5", None)) == "pass_rate>=0.5"
