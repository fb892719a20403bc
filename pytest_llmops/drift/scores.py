"""Drift of scored logs: have the checks' pass rates moved from a baseline summary's?

``llmops drift scores CURRENT.summary.json --baseline BASELINE.summary.json`` compares, for each
check both summaries have, the pass rate of every window of the current summary (its totals when it
has no windows) with the baseline's totals: Fisher's exact test on the 2x2 table of passed and failed
records, two-sided (a pass rate that moves either way is drift). With W windows and C checks each
test runs at alpha / (W x C) (Bonferroni), so the command's false-alarm rate stays at alpha.

Only pass rates are tested: a summary keeps counts, not the spread of the values, so a change of
mean cannot be tested from it (the mean is shown). A check with no measured record on one side is
reported unmeasured, never as "no drift".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmops.drift.result import DriftInputError


@dataclass(frozen=True)
class RateDrift:
    """One check in one window against the baseline."""

    window: str
    check: str
    baseline_passed: int
    baseline_measured: int
    passed: int
    measured: int
    #: Two-sided p-value of Fisher's exact test; None when one side has no measured record.
    p_value: float | None
    #: The level this test ran at (alpha over the number of tests).
    level: float
    mean: float | None = None
    baseline_mean: float | None = None

    @property
    def verdict(self) -> str:
        if self.p_value is None:
            return "unmeasured"
        return "drift" if self.p_value < self.level else "no drift"

    def describe(self) -> str:
        def rate(passed: int, measured: int) -> str:
            return f"{passed}/{measured} = {passed / measured:.3f}" if measured else "no measured record"

        p = "" if self.p_value is None else f"; Fisher p={self.p_value:.3g} at level {self.level:.3g}"
        baseline = rate(self.baseline_passed, self.baseline_measured)
        return (f"{self.verdict.upper():<10} {self.window} {self.check}: pass rate "
                f"{rate(self.passed, self.measured)} vs baseline {baseline}{p}")


def _windows(summary: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    found = (summary.get("windows") or {}).get("windows") or []
    if found:
        return [(f"[window={window['label']}]", window["checks"]) for window in found]
    return [("[all records]", summary["checks"])]


def score_drift(
    current: Mapping[str, Any], baseline: Mapping[str, Any], *, alpha: float = 0.05,
    checks: Sequence[str] | None = None,
) -> list[RateDrift]:
    """Every (window, check) of ``current`` tested against ``baseline``'s totals (see the module docstring)."""
    from pytest_llmops.drift._deps import need

    if not 0 < alpha < 1:
        raise DriftInputError(f"--alpha must be between 0 and 1, got {alpha}")
    shared = sorted(set(current["checks"]) & set(baseline["checks"]))
    if checks:
        missing = sorted(set(checks) - set(shared))
        if missing:
            raise DriftInputError(f"--check {', '.join(missing)}: not in both summaries (both have: "
                                  f"{', '.join(shared) or 'none'})")
        shared = sorted(set(checks))
    if not shared:
        raise DriftInputError(f"the summaries share no check (current: {', '.join(sorted(current['checks']))}; "
                              f"baseline: {', '.join(sorted(baseline['checks']))})")
    stats = need("scipy.stats", "scipy", purpose="the pass-rate drift test")
    windows = _windows(current)
    level = alpha / (len(windows) * len(shared))
    found = []
    for label, figures in windows:
        for name in shared:
            base, now = baseline["checks"][name], figures.get(name) or {"passed": 0, "measured": 0, "mean": None}
            p_value = None
            if base["measured"] and now["measured"]:
                table = [[now["passed"], now["measured"] - now["passed"]],
                         [base["passed"], base["measured"] - base["passed"]]]
                p_value = float(stats.fisher_exact(table, alternative="two-sided").pvalue)
            found.append(RateDrift(label, name, int(base["passed"]), int(base["measured"]), int(now["passed"]),
                                   int(now["measured"]), p_value, level, now.get("mean"), base.get("mean")))
    return found
