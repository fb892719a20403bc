"""Per-cell figures of a matrix, its best cell, the paired test behind the pick, the Pareto front.

Works on the results file's models, so the same code runs at the end of a
run, in ``llmops matrix show`` and in gates over cells. The best cell is the
one with the highest lower bound of its pass rate's Wilson interval (a high
rate on few cases does not win by luck); best and runner-up are compared on
the cases both ran with the exact McNemar test (scipy's binomial test on the
discordant pairs, two-sided).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from pytest_llmops.results.models import CaseResult, Interval, MatrixCellSummary, MatrixSummary
from pytest_llmops.results.stats import paired_bootstrap, percentile, wilson_interval

#: Resamples of the bootstrap interval of each score's mean.
BOOTSTRAP_RESAMPLES = 2000
_PASSED = ("passed",)
_FAILED = ("failed", "error")


def summarize_matrices(cases: Sequence[CaseResult], *, confidence: float = 0.95, alpha: float = 0.05) -> list[MatrixSummary]:
    """One ``MatrixSummary`` per matrix among ``cases``, cells in the order they first ran."""
    by_matrix: dict[str, dict[str, list[CaseResult]]] = defaultdict(lambda: defaultdict(list))
    for case in cases:
        if case.matrix is not None:
            by_matrix[case.matrix.matrix][case.matrix.cell].append(case)
    return [summarize_matrix(name, cells, confidence=confidence, alpha=alpha) for name, cells in by_matrix.items()]


def cell_summary(cell: str, cases: Sequence[CaseResult], confidence: float) -> MatrixCellSummary:
    """The figures of one cell's cases."""
    ref = cases[0].matrix
    assert ref is not None
    axes = {axis: getattr(ref, axis) for axis in ("model", "prompt", "temperature", "shots") if getattr(ref, axis) is not None}
    passed = sum(case.state in _PASSED for case in cases)
    failed = sum(case.state in _FAILED for case in cases)
    unmeasured = sum(case.state == "unmeasured" for case in cases)
    rate = None
    if passed + failed:
        low, high = wilson_interval(passed, passed + failed, confidence)
        rate = Interval(value=passed / (passed + failed), low=low, high=high, n=passed + failed,
                        method=f"Wilson {confidence:.0%}")
    values: dict[str, list[float]] = defaultdict(list)
    for case in cases:
        for score in case.scores:
            if score.verdict != "unmeasured" and score.value is not None and math.isfinite(score.value):
                values[score.name].append(float(score.value))
    scores = {}
    for name, found in values.items():
        boot = paired_bootstrap(found, confidence=confidence, resamples=BOOTSTRAP_RESAMPLES)
        scores[name] = Interval(value=boot.mean, low=boot.low, high=boot.high, n=len(found),
                                method=f"bootstrap {confidence:.0%}, {BOOTSTRAP_RESAMPLES} resamples")
    calls = [call for case in cases for call in case.calls if not call.error]
    llm_calls = [c for c in calls if c.role == "llm" and c.kind == "chat" and not c.extra.get("coalesced")]
    latencies = [c.latency_s for c in llm_calls if c.latency_s is not None]
    costs = [c.cost_usd for c in calls]
    tokens_in = [c.tokens_in for c in calls if c.tokens_in is not None]
    tokens_out = [c.tokens_out for c in calls if c.tokens_out is not None]
    repeats = [s.details for case in cases for s in case.scores if s.name == "repeat_pass_rate" and s.details]
    pass_at = pass_hat = k = None
    if repeats:
        k = max(int(d.get("repeat", 0)) for d in repeats)
        measured = [d for d in repeats if int(d.get("passed", 0)) + int(d.get("failed", 0))]
        if measured:
            pass_at = sum(int(d["passed"]) > 0 for d in measured) / len(measured)
            pass_hat = sum(int(d["failed"]) == 0 for d in measured) / len(measured)
    return MatrixCellSummary(
        cell=cell, axes=axes, cases=len(cases), passed=passed, failed=failed, unmeasured=unmeasured,
        pass_rate=rate, scores=scores,
        cost_usd=None if not calls or None in costs else math.fsum(costs),  # type: ignore[arg-type]
        tokens_in=sum(tokens_in) if tokens_in else None, tokens_out=sum(tokens_out) if tokens_out else None,
        calls=len(calls), latency_p50_s=percentile(latencies, 50), latency_p95_s=percentile(latencies, 95),
        repeat_k=k, pass_at_k=pass_at, pass_hat_k=pass_hat,
        repetitions_saved=sum(int(d.get("saved", 0)) for d in repeats),
    )


def rank(cells: Sequence[MatrixCellSummary]) -> list[MatrixCellSummary]:
    """Measured cells, best first: highest Wilson lower bound, then pass rate, then lower cost."""
    measured = [cell for cell in cells if cell.pass_rate is not None]
    return sorted(measured, key=lambda c: (-c.pass_rate.low, -c.pass_rate.value,  # type: ignore[union-attr]
                                           c.cost_usd if c.cost_usd is not None else math.inf))


def mcnemar(best: Sequence[CaseResult], other: Sequence[CaseResult]) -> tuple[float, int, int, int]:
    """Two-sided exact McNemar p-value on the cases both cells measured; (p, pairs, best-only, other-only)."""
    from scipy.stats import binomtest

    def verdicts(cases: Sequence[CaseResult]) -> dict[str, bool]:
        return {c.matrix.case: c.state in _PASSED for c in cases if c.matrix and c.state in (*_PASSED, *_FAILED)}

    mine, theirs = verdicts(best), verdicts(other)
    shared = mine.keys() & theirs.keys()
    only_best = sum(mine[k] and not theirs[k] for k in shared)
    only_other = sum(theirs[k] and not mine[k] for k in shared)
    if only_best + only_other == 0:
        return 1.0, len(shared), 0, 0
    p = float(binomtest(only_best, only_best + only_other, 0.5, alternative="two-sided").pvalue)
    return min(1.0, p), len(shared), only_best, only_other


def pareto_front(cells: Sequence[MatrixCellSummary]) -> tuple[set[str], list[str]]:
    """Cells no other cell beats on quality, cost and latency at once; and the axes that were weighed.

    A figure unknown for some cell (an unpriced model's cost) is left out of
    the comparison rather than guessed.
    """
    measured = [c for c in cells if c.pass_rate is not None]
    dims = [("pass rate", lambda c: -c.pass_rate.value)]
    if measured and all(c.cost_usd is not None for c in measured):
        dims.append(("cost", lambda c: c.cost_usd))
    if measured and all(c.latency_p50_s is not None for c in measured):
        dims.append(("latency p50", lambda c: c.latency_p50_s))
    front = set()
    for cell in measured:
        mine = [f(cell) for _, f in dims]
        dominated = False
        for other in measured:
            if other is cell:
                continue
            theirs = [f(other) for _, f in dims]
            if all(t <= m for t, m in zip(theirs, mine)) and any(t < m for t, m in zip(theirs, mine)):
                dominated = True
                break
        if not dominated:
            front.add(cell.cell)
    return front, [name for name, _ in dims]


def summarize_matrix(name: str, cells: dict[str, list[CaseResult]], *, confidence: float = 0.95,
                     alpha: float = 0.05) -> MatrixSummary:
    """The summary of one matrix from its cases grouped by cell."""
    summaries = [cell_summary(cell, cases, confidence) for cell, cases in cells.items()]
    front, axes = pareto_front(summaries)
    summaries = [s.model_copy(update={"pareto": s.cell in front}) for s in summaries]
    early = any(s.repetitions_saved for s in summaries)
    ranked = rank(summaries)
    base = dict(name=name, confidence=confidence, cells=summaries, pareto_axes=axes, early_stop=early)
    if not ranked:
        return MatrixSummary(**base, verdict="unmeasured", statement=f"no cell of matrix {name} was measured")
    best = ranked[0]
    if len(ranked) == 1:
        return MatrixSummary(**base, best=best.cell, verdict="only one cell",
                             statement=f"best: {best.cell} (the only measured cell)")
    runner = ranked[1]
    try:
        p, pairs, only_best, only_other = mcnemar(cells[best.cell], cells[runner.cell])
    except ImportError:
        return MatrixSummary(**base, best=best.cell, runner_up=runner.cell, verdict="unmeasured",
                             statement=f"best: {best.cell}; the paired test against {runner.cell} is unmeasured: "
                                       "scipy is not installed (pip install 'pytest-llmops[matrix]')")
    counts = f"{only_best} vs {only_other} discordant of {pairs} paired cases"
    if p < alpha:
        verdict = "significantly better"
        statement = f"best: {best.cell}; significantly better than {runner.cell} (p={p:.3g}, {counts})"
    else:
        verdict = "tied within noise"
        statement = f"best: {best.cell}; tied within noise with {runner.cell} (p={p:.3g}, {counts})"
    return MatrixSummary(**base, best=best.cell, runner_up=runner.cell, p_value=p, n_pairs=pairs,
                         discordant=(only_best, only_other), verdict=verdict, statement=statement)


def fmt(value: float | None, spec: str = ".3f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def table_rows(summary: MatrixSummary) -> list[list[str]]:
    """The cells as rows of text (header first), for the terminal, Markdown and ``llmops matrix show``."""
    score_names = sorted({name for cell in summary.cells for name in cell.scores if name != "repeat_pass_rate"})
    repeat = any(cell.repeat_k for cell in summary.cells)
    header = ["cell", "pass rate [CI]", "n"] + [f"{n} mean [CI]" for n in score_names]
    if repeat:
        header += ["pass@k", "pass^k"]
    header += ["cost", "tokens in/out", "p50 / p95", "pareto"]
    rows = [header]
    for cell in summary.cells:
        mark = " (best)" if cell.cell == summary.best else ""
        rate = cell.pass_rate
        row = [cell.cell + mark,
               "unmeasured" if rate is None else f"{rate.value:.3f} [{rate.low:.3f}, {rate.high:.3f}]",
               str(cell.passed + cell.failed)]
        for name in score_names:
            score = cell.scores.get(name)
            row.append("-" if score is None else f"{score.value:.3f} [{score.low:.3f}, {score.high:.3f}]")
        if repeat:
            k = f"k={cell.repeat_k}" if cell.repeat_k else ""
            row += [f"{fmt(cell.pass_at_k, '.2f')} {k}".strip(), fmt(cell.pass_hat_k, ".2f")]
        row += ["unknown" if cell.cost_usd is None else f"${cell.cost_usd:.6f}",
                f"{cell.tokens_in if cell.tokens_in is not None else '?'}/{cell.tokens_out if cell.tokens_out is not None else '?'}",
                f"{fmt(cell.latency_p50_s, '.3f')}s / {fmt(cell.latency_p95_s, '.3f')}s",
                "yes" if cell.pareto else ""]
        rows.append(row)
    return rows


def text_lines(summary: MatrixSummary) -> list[str]:
    """The matrix as aligned text: a heading, the table, the verdict, the Pareto front and savings."""
    rows = table_rows(summary)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"matrix {summary.name}: {len(summary.cells)} cells"]
    for row in rows:
        lines.append("  " + "  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
    lines.append(f"  {summary.statement}")
    front = [cell.cell for cell in summary.cells if cell.pareto]
    if front:
        lines.append(f"  Pareto front ({' / '.join(summary.pareto_axes)}): {', '.join(front)}")
    saved = sum(cell.repetitions_saved for cell in summary.cells)
    if saved:
        lines.append(f"  early stopping saved {saved} repetitions: "
                     + ", ".join(f"{c.cell} {c.repetitions_saved}" for c in summary.cells if c.repetitions_saved))
    return lines
