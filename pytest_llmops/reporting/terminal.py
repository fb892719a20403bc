"""The ``llmops`` section of pytest's terminal summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from pytest_llmops.redact import known_secrets, redact_text

from pytest_llmops.reporting._common import number, seconds, with_unit
from pytest_llmops.results.collect import INTERRUPTED_REASON
from pytest_llmops.results.finish import EXIT_GATES_FAILED, RunEnd
from pytest_llmops.results.models import GateResult, RunResult, ScoreResult
from pytest_llmops.settings import Settings


#: Unmeasured cases listed with their reasons in the section (with -v: more); the results file has all.
UNMEASURED_SHOWN = 10
UNMEASURED_SHOWN_VERBOSE = 50


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _value(value: float | None, unit: str) -> str:
    """A figure in its unit, four significant digits for plain numbers (more than the reports: a terminal
    reader compares runs by eye)."""
    if value is None:
        return "unmeasured"
    return number(value, 4) if unit == "" else with_unit(value, unit)


class _RedactingTerminal:
    """The terminal reporter, with every line of the summary redacted (``pytest_llmops.redact``)."""

    def __init__(self, terminal: pytest.TerminalReporter) -> None:
        self._terminal = terminal
        self._secrets = known_secrets()

    def write_line(self, line: str, **markup: bool) -> None:
        self._terminal.write_line(redact_text(line, self._secrets), **markup)

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None:
        self._terminal.write_sep(sep, None if title is None else redact_text(title, self._secrets), **markup)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._terminal, name)


def write_summary(terminal: pytest.TerminalReporter, settings: Settings, end: RunEnd, root: Path) -> None:
    """Counts, calls, latency, gates and the baseline comparison, in a few lines (more with -v)."""
    terminal = cast(pytest.TerminalReporter, _RedactingTerminal(terminal))
    run = end.run
    summary = run.summary
    verbose = terminal.config.get_verbosity() > 0
    terminal.write_sep("=", "llmops")
    if run.interrupted:
        _write_interrupted(terminal, run)
    counts = ", ".join(f"{n} {state}" for state, n in summary["counts"].items() if n)
    line = f"cases: {summary['cases']} ({counts or 'none'})"
    if end.tolerated:
        line += f"; {end.tolerated} failing case(s) left to the pass-rate gates"
    terminal.write_line(line)
    _write_known_failures(terminal, summary.get("known_failures") or {})
    terminal.write_line(
        f"model: {settings.model}   judge: {settings.judge or 'none'}   "
        + (f"reward: {settings.reward_model}   " if settings.reward_model else "")
        + f"cache: {settings.record_mode} ({_relative(settings.cache_path, root)})"
    )
    _write_calls(terminal, summary)
    if verbose:
        for group in run.latency:
            terminal.write_line(
                f"  {group.role} {group.model} [{group.group}]: {group.calls} calls ({group.replayed} replayed), "
                f"p50 {seconds(group.p50_s)}, p95 {seconds(group.p95_s)}, p99 {seconds(group.p99_s)}, "
                f"{'-' if group.ms_per_token is None else f'{group.ms_per_token:.1f}'} ms/token, "
                f"slope {'-' if group.slope_ms_per_token is None else f'{group.slope_ms_per_token:.1f}'} ms per extra token"
            )
    for score in run.group_scores:
        terminal.write_line(f"group score: {_describe(score)}", red=score.verdict == "fail",
                            yellow=score.verdict == "unmeasured")
    from pytest_llmops.robust.asr import summary_lines

    for robust_line in summary_lines(run.cases, confidence=settings.gate_confidence, worst=None if verbose else 5):
        terminal.write_line(robust_line)
    _write_matrices(terminal, run)
    _write_gates(terminal, run, verbose)
    if run.shard is not None:
        shard = run.shard
        terminal.write_line(
            f"shard {shard.index}/{shard.count}: {len(shard.selected)} of {shard.cases_total} eval cases "
            f"(split by {shard.balanced_by}); {len(shard.gates)} gate(s) and the corpus scores deferred: "
            "decide them with `llmops results merge` then `llmops gate`"
        )
    _write_comparison(terminal, run, verbose)
    _write_unmeasured(terminal, run, end.results_path and _relative(end.results_path, root), verbose)
    for problem in end.problems:
        terminal.write_line(f"llmops: {problem}", red=True)
    files = [f"results: {_relative(end.results_path, root)}"] if end.results_path else []
    if end.baseline_saved:
        files.append(f"baseline saved: {_relative(end.baseline_saved, root)}")
    files += [f"report: {_relative(path, root)}" for path in end.outputs]
    if end.mlflow_run_id:
        files.append(f"MLflow run: {end.mlflow_run_id}")
    if files:
        terminal.write_line("   ".join(files))
    if end.exit_status == EXIT_GATES_FAILED:
        terminal.write_line(
            f"exit status {EXIT_GATES_FAILED}: the release gates refused this run (failing or unmeasured gates, "
            f"or a significant regression against the baseline)",
            red=True,
            bold=True,
        )


def _write_known_failures(terminal: pytest.TerminalReporter, known: dict) -> None:
    """One line on the documented weaknesses, and which of them passed this time."""
    if not known:
        return
    states = ", ".join(f"{n} {state}" for state, n in sorted(known["by_state"].items()))
    terminal.write_line(f"known weaknesses (llm_known_failure): {known['documented']} documented ({states})")
    for nodeid in known["passed"]:
        terminal.write_line(f"  now passes: {nodeid} (review its documented weakness)", cyan=True)


def _write_interrupted(terminal: pytest.TerminalReporter, run: RunResult) -> None:
    """First thing in the section: what ran is all the results hold, and the run cannot pass."""
    cut = sum(case.state == "unmeasured" and case.reason == INTERRUPTED_REASON for case in run.cases)
    finished = len(run.cases) - cut
    line = f"INTERRUPTED: the run was stopped before its end; {finished} case(s) finished"
    if cut:
        line += f", {cut} cut short (counted unmeasured)"
    terminal.write_line(line + "; these results are partial and the run fails", red=True, bold=True)


def _write_unmeasured(terminal: pytest.TerminalReporter, run: RunResult, results: str | None, verbose: bool) -> None:
    """The unmeasured cases with their reasons: a few here, all of them in the results file."""
    cases = [case for case in run.cases if case.state == "unmeasured"]
    if not cases:
        return
    limit = UNMEASURED_SHOWN_VERBOSE if verbose else UNMEASURED_SHOWN
    for case in cases[:limit]:
        reason = case.reason.strip().splitlines()[0] if case.reason.strip() else "(no reason recorded)"
        terminal.write_line(f"UNMEASURED {case.nodeid} - {reason}", yellow=True)
    if len(cases) > limit:
        where = f"every reason is in {results}" if results else "-v shows more"
        terminal.write_line(f"... and {len(cases) - limit} more unmeasured: {where}", yellow=True)


def _describe(score: ScoreResult) -> str:
    """A stored score as ``Score.describe`` shows a live one."""
    if score.value is None:
        text = f"{score.name}: unmeasured"
    else:
        text = f"{score.name} = {score.value:.4g}"
        if score.threshold is not None:
            op = ">=" if score.higher_is_better else "<="
            text += f" (needs {op} {score.threshold:.4g}: {score.verdict})"
    return f"{text} - {score.reason}" if score.reason else text


def _write_calls(terminal: pytest.TerminalReporter, summary: dict) -> None:
    if not summary["calls"]:
        terminal.write_line("calls: none")
        return
    priced = summary["calls"] - summary["call_errors"] - summary["calls_unknown_cost"]
    if priced == 0:
        cost = "unknown (no known price for the models used)"
    else:
        cost = f"${summary['cost_usd']:.4f}"
        if summary["calls_unknown_cost"]:
            cost += f" + unknown for {summary['calls_unknown_cost']} call(s) with no known price"
    terminal.write_line(
        f"calls: {summary['calls']} ({summary['cache_hits']} cache hits, {summary['call_errors']} failed, "
        f"{summary['attempts']} attempts sent)   tokens: {_tokens(summary)}   cost: {cost}"
    )
    latency = (
        f"latency (model under test): p50 {seconds(summary['latency_p50_s'])}, p95 {seconds(summary['latency_p95_s'])}"
    )
    if summary["ttft_p50_s"] is not None:
        latency += f"   ttft: p50 {seconds(summary['ttft_p50_s'])}, p95 {seconds(summary['ttft_p95_s'])}"
    if summary["cache_hits"]:
        latency += "   (cache hits count with their recorded timings)"
    terminal.write_line(latency)


def _tokens(summary: dict) -> str:
    """``120 in / 45 out``, ``unknown`` when no call said (never 0), and how many calls did not."""
    tokens_in, tokens_out = summary["tokens_in"], summary["tokens_out"]
    if tokens_in is None and tokens_out is None:
        return "unknown"
    text = " / ".join(
        f"{'unknown' if n is None else n} {direction}" for n, direction in ((tokens_in, "in"), (tokens_out, "out"))
    )
    unknown = summary.get("calls_unknown_tokens", 0)
    return text + (f" + unknown for {unknown} call(s)" if unknown else "")


def _write_gates(terminal: pytest.TerminalReporter, run: RunResult, verbose: bool) -> None:
    if not run.gates:
        return
    failed = sum(g.verdict == "fail" for g in run.gates)
    unmeasured = sum(g.verdict == "unmeasured" for g in run.gates)
    head = f"gates: {len(run.gates) - failed - unmeasured} passed"
    head += f", {failed} failed" if failed else ""
    head += f", {unmeasured} unmeasured" if unmeasured else ""
    terminal.write_line(head, bold=True)
    labels = [_label(gate) for gate in run.gates]
    width = max(len(label) for label in labels)
    for gate, label in zip(run.gates, labels):
        verdict = gate.verdict.upper()
        text = f"  {verdict:<10} {label:<{width}}  {_value(gate.value, gate.unit):>12}  {gate.detail}"
        terminal.write_line(text, red=gate.verdict == "fail", yellow=gate.verdict == "unmeasured",
                            green=gate.verdict == "pass")
    if verbose:
        _write_worst(terminal, run)


def _label(gate: GateResult) -> str:
    """The gate as written, with the scope a suite's conftest gave it in front."""
    if gate.scope and not gate.expression.startswith("["):
        return f"[{gate.scope}] {gate.expression}"
    return gate.expression


def _write_worst(terminal: pytest.TerminalReporter, run: RunResult, limit: int = 5) -> None:
    """With -v: the cases with the lowest value of each score a gate looked at."""
    for gate in run.gates:
        if "." not in gate.metric or gate.metric.startswith(("latency", "ttft", "judge.", "tokens", "cost", "calls", "ms_per")):
            continue
        name = gate.metric.rsplit(".", 1)[0]
        values = sorted(
            (score.value, case.nodeid)
            for case in run.cases
            for score in case.scores
            if score.name == name and score.value is not None
        )
        if values:
            worst = ", ".join(f"{nodeid} ({value:.3g})" for value, nodeid in values[:limit])
            terminal.write_line(f"    lowest {name}: {worst}")


def _write_comparison(terminal: pytest.TerminalReporter, run: RunResult, verbose: bool) -> None:
    comparison = run.comparison
    if comparison is None:
        return
    revision = f" ({comparison.baseline_git_revision[:12]})" if comparison.baseline_git_revision else ""
    regressions = [m for m in comparison.metrics if m.verdict == "regression"]
    terminal.write_line(
        f"baseline {comparison.baseline_name!r}{revision}: {len(regressions)} regression(s) "
        f"(alpha {comparison.alpha:g}, tolerance {comparison.tolerance:g})",
        bold=True,
        red=bool(regressions),
    )
    for metric in comparison.metrics:
        if metric.verdict == "no significant change" and not verbose:
            continue
        line = f"  {metric.verdict.upper():<22} {metric.metric}: {_value(metric.baseline, '')} -> {_value(metric.current, '')}"
        if metric.delta is not None:
            line += f" (delta {metric.delta:+.4g}"
            if metric.ci_low is not None and metric.ci_high is not None:
                line += f", CI [{metric.ci_low:+.3g}, {metric.ci_high:+.3g}]"
            if metric.p_value is not None:
                line += f", p={metric.p_value:.3g}"
            line += f", n={metric.n_pairs}; {metric.test})"
        terminal.write_line(line, red=metric.verdict == "regression")
    for warning in comparison.warnings:
        terminal.write_line(f"  WARNING: {warning}", yellow=True, bold=True)
    if comparison.cases_only_in_baseline or comparison.cases_only_in_current:
        terminal.write_line(
            f"  {len(comparison.cases_only_in_current)} new case(s), {len(comparison.cases_only_in_baseline)} case(s) "
            f"of the baseline not run (not compared)"
        )
    if verbose:
        for delta in comparison.worst_cases:
            terminal.write_line(f"    {delta.nodeid} {delta.metric}: {delta.baseline:.3g} -> {delta.current:.3g}")


def _write_matrices(terminal: pytest.TerminalReporter, run: RunResult) -> None:
    """Each matrix's table of cells, its best cell with the paired test, the Pareto front."""
    if not run.matrices:
        return
    from pytest_llmops.matrix.summary import text_lines

    for summary in run.matrices:
        for number, line in enumerate(text_lines(summary)):
            terminal.write_line(line, bold=number == 0 or line.strip().startswith("best:"))
