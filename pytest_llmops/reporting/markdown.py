"""The run as GitHub-flavoured Markdown, for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pytest_llmops.reporting import _common as c

if TYPE_CHECKING:
    from pytest_llmops.results.models import Comparison, RunResult

#: Longest reason shown in a table cell; the HTML report has the full text.
REASON_CHARS = 200


class Raw(str):
    """Markdown already formatted (inline code): a table keeps it as is, bar ``|`` and newlines."""


#: Characters that would start emphasis, links, HTML, entities or strike-through; "|" ends a cell.
_SPECIAL = set("\\`*_[]<>&|~")


def text(value: object) -> str:
    """Plain text on one line, with every Markdown special character backslash-escaped."""
    flat = " ".join(str(value).split())
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in flat)


def cell(value: object) -> str:
    """A table cell: ``Raw`` markup kept (``|`` escaped), anything else as escaped plain text."""
    if isinstance(value, Raw):
        return " ".join(value.split()).replace("|", "\\|") or " "
    return text(value) or " "


def code(value: str) -> Raw:
    """Inline code that survives backticks inside ``value``; nothing inside it is markup."""
    flat = " ".join(value.split())
    fence = "``" if "`" in flat else "`"
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return Raw(f"{fence}{pad}{flat}{pad}{fence}")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> list[str]:
    """A GFM table; ``align`` has one letter per column, ``l`` or ``r`` (left by default)."""
    marks = ["---:" if (align[i:i + 1] == "r") else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _verdict_mark(verdict: str) -> str:
    return {"pass": "✅ pass", "fail": "❌ fail", "unmeasured": "⚠️ unmeasured"}.get(verdict, verdict)


def _gates(run: RunResult) -> list[str]:
    if not run.gates:
        return []
    rows = [
        (
            code(c.gate_label(g)),
            c.with_unit(g.value, g.unit),
            f"{g.op} {c.with_unit(g.threshold, g.unit)}",
            _verdict_mark(g.verdict),
            g.n,
            g.detail,
        )
        for g in run.gates
    ]
    return ["## Gates", "", *table(("gate", "value", "threshold", "verdict", "n", "how"), rows, "lrrlrl"), ""]


def _counts(run: RunResult) -> list[str]:
    counts = c.counts(run)
    measured = ("passed", "failed", "error")
    rows = [(state, counts[state]) for state in measured]
    lines = ["## Cases", "", *table(("state", "cases"), rows, "lr")]
    apart = [f"**{counts['unmeasured']} unmeasured**"] if counts["unmeasured"] else ["0 unmeasured"]
    apart += [f"{counts[s]} {s}" for s in ("skipped", "xfailed") if counts[s]]
    lines += ["", f"Apart from these: {', '.join(apart)} (unmeasured is never counted as a pass).", ""]
    if run.group_scores:
        rows = [
            (s.name, c.number(s.value), c.number(s.threshold), _verdict_mark(s.verdict), c.truncate(s.reason, REASON_CHARS))
            for s in run.group_scores
        ]
        lines += ["Group scores:", "", *table(("score", "value", "threshold", "verdict", "reason"), rows, "lrrll"), ""]
    return lines


def _comparison(comparison: Comparison) -> list[str]:
    lines = [f"## Against baseline {code(comparison.baseline_name)}", ""]
    for warning in comparison.warnings:
        # GitHub renders this as a yellow alert box: a different judge or model must not go unnoticed.
        lines += ["> [!WARNING]", f"> **{text(warning)}**", ""]
    rows = []
    for m in comparison.metrics:
        percent = m.kind == "pass_fail"
        ci = (
            f"[{c.signed(m.ci_low, percent=percent)}, {c.signed(m.ci_high, percent=percent)}]"
            if m.ci_low is not None and m.ci_high is not None
            else "-"
        )
        verdict = {"regression": "❌ regression", "improvement": "✅ improvement", "unmeasured": "⚠️ unmeasured"}.get(
            m.verdict, m.verdict
        )
        rows.append((
            m.metric,
            c.rate_or_number(m.baseline, percent=percent),
            c.rate_or_number(m.current, percent=percent),
            c.signed(m.delta, percent=percent),
            ci,
            c.p_value(m.p_value),
            m.n_pairs,
            verdict,
        ))
    lines += table(("metric", "baseline", "current", "delta", "95% CI", "p", "pairs", "verdict"), rows, "lrrrrrrl")
    tests = sorted({m.test for m in comparison.metrics if m.test})
    lines += ["", f"Tolerance {c.number(comparison.tolerance)}, alpha {c.number(comparison.alpha)}"
              + (f"; tests: {text('; '.join(tests))}" if tests else "") + "."]
    if comparison.cases_only_in_baseline or comparison.cases_only_in_current:
        lines += [
            "",
            f"Not paired: {len(comparison.cases_only_in_baseline)} case(s) only in the baseline, "
            f"{len(comparison.cases_only_in_current)} only in this run.",
        ]
    if comparison.worst_cases:
        rows = [(code(d.nodeid), d.metric, c.number(d.baseline), c.number(d.current), c.signed(d.delta))
                for d in comparison.worst_cases]
        lines += ["", "Cases that moved most:", "", *table(("case", "metric", "baseline", "current", "delta"), rows, "llrrr")]
    return lines + [""]


def _latency(run: RunResult) -> list[str]:
    if not run.latency:
        return []
    rows = [
        (
            g.role,
            g.model,
            g.group,
            f"{g.calls} ({g.replayed} replayed)" if g.replayed else g.calls,
            c.seconds(g.p50_s),
            c.seconds(g.p95_s),
            c.seconds(g.p99_s),
            f"{c.seconds(g.ttft_p50_s)} / {c.seconds(g.ttft_p95_s)}" if g.ttft_p50_s is not None else "-",
            f"{g.ms_per_token:.1f}" if g.ms_per_token is not None else "-",
            c.tokens(g.tokens_in, g.tokens_out, g.calls_unknown_tokens),
            c.usd(g.cost_usd) if g.cost_usd is not None else "unknown",
        )
        for g in run.latency
    ]
    headers = ("role", "model", "group", "calls", "p50", "p95", "p99", "ttft p50 / p95", "ms/token", "tokens in / out", "cost")
    lines = ["## Latency, tokens and cost", "", *table(headers, rows, "lllrrrrrrrr")]
    if any(g.replayed for g in run.latency):
        lines += ["", "Replayed calls count with the timings recorded when they were first made."]
    return lines + [""]


def _cases(run: RunResult, max_cases: int) -> list[str]:
    problems = c.problem_cases(run)
    if not problems:
        return []
    shown = problems[:max_cases]
    rows = []
    for case in shown:
        bad = [s for s in case.scores if s.verdict != "pass"]
        scores = ", ".join(
            f"{s.name} {c.number(s.value) if s.value is not None else 'unmeasured'}"
            + (f" (threshold {c.number(s.threshold)})" if s.threshold is not None else "")
            for s in bad
        )
        rows.append((code(case.nodeid), case.state, scores or "-", c.truncate(c.case_reason(case), REASON_CHARS)))
    title = "## Failing and unmeasured cases"
    if len(problems) > len(shown):
        title += f" (worst {len(shown)} of {len(problems)})"
    return [title, "", *table(("case", "state", "scores", "reason"), rows), ""]


def _matrices(run: RunResult) -> list[str]:
    """Each matrix: the table of cells, the best cell and its paired test, the Pareto front."""
    if not run.matrices:
        return []
    from pytest_llmops.matrix.summary import table_rows

    lines: list[str] = []
    for summary in run.matrices:
        rows = table_rows(summary)
        lines += [f"## Matrix {code(summary.name)}", "", f"**{text(summary.statement)}**", ""]
        lines += table(rows[0], rows[1:], "lrr" + "r" * (len(rows[0]) - 3))
        front = [cell.cell for cell in summary.cells if cell.pareto]
        lines += ["", f"Pareto front ({text(' / '.join(summary.pareto_axes))}): " + ", ".join(code(c) for c in front), ""]
        saved = sum(cell.repetitions_saved for cell in summary.cells)
        if saved:
            lines += [f"Early stopping saved {saved} repetitions.", ""]
    return lines


def _provenance(run: RunResult) -> list[str]:
    rows = [(key, code(value) if key == "git revision" else value) for key, value in c.provenance(run)]
    return ["<details><summary>Provenance</summary>", "", *table(("", ""), rows), "", "</details>", ""]


def render_markdown(run: RunResult, *, max_cases: int = 10) -> str:
    """The run as a GitHub step summary: verdict line, gates, counts, baseline deltas, latency, worst cases, provenance."""
    verdict = c.run_verdict(run)
    icon = "✅" if verdict.passed else "❌"
    model = run.settings.get("model") or "-"
    lines = [
        f"# {icon} pytest-llmops: {text(verdict.sentence())}",
        "",
        f"Model under test {code(str(model))}, judge {code(str(run.settings.get('judge') or 'none'))}, "
        f"revision {code(run.environment.git_revision or 'unknown')}.",
        "",
    ]
    lines += _gates(run)
    lines += _counts(run)
    from pytest_llmops.robust.asr import summary_lines

    robust = summary_lines(run.cases, worst=None)
    if robust:
        lines += ["**" + text(robust[0]) + "**", "", *[f"- {text(line.strip())}" for line in robust[1:]], ""]
    lines += _matrices(run)
    if run.comparison is not None:
        lines += _comparison(run.comparison)
    lines += _latency(run)
    lines += _cases(run, max_cases)
    lines += _provenance(run)
    return "\n".join(lines)
