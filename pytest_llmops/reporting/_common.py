"""What the Markdown and HTML reports both say: the run's verdict, formatted values, problem cases.

Standard library only: the reports read a ``RunResult`` but never import
pydantic themselves, so this package stays light to import.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_llmops.results.models import CaseResult, GateResult, RunResult, ScoreResult

#: Case states in the order the reports list them; unmeasured stands apart from failed.
STATES = ("passed", "failed", "error", "unmeasured", "skipped", "xfailed")
#: States of a case the reports list with its reason, worst first.
PROBLEM_STATES = ("error", "failed", "unmeasured")


@dataclass(frozen=True)
class RunVerdict:
    """PASSED or FAILED, with the reasons in the order a reader should fix them."""

    passed: bool
    reasons: tuple[str, ...]

    @property
    def word(self) -> str:
        return "PASSED" if self.passed else "FAILED"

    def sentence(self) -> str:
        """``FAILED: 2 gates failed (...); 3 cases failed`` on one line."""
        return f"{self.word}: {'; '.join(self.reasons)}" if self.reasons else self.word


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def counts(run: RunResult) -> dict[str, int]:
    """Cases by state, every state present (zero when none)."""
    found = Counter(case.state for case in run.cases)
    return {state: found.get(state, 0) for state in STATES}


def _listed(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def run_verdict(run: RunResult) -> RunVerdict:
    """The release verdict and why.

    Gates that did not pass (failed or unmeasured), a significant regression
    against the baseline, a failing or unmeasured group score and an
    interrupted run always fail it. Failed, erroring and unmeasured cases fail
    it too, unless pytest itself exited 0 (the user's gates allowed them);
    then they are still named.
    """
    hard: list[str] = []
    if run.interrupted:
        hard.append("the run was interrupted")
    failed_gates = [g.expression for g in run.gates if g.verdict == "fail"]
    unmeasured_gates = [g.expression for g in run.gates if g.verdict == "unmeasured"]
    if failed_gates:
        hard.append(f"{plural(len(failed_gates), 'gate')} failed ({_listed(failed_gates)})")
    if unmeasured_gates:
        hard.append(f"{plural(len(unmeasured_gates), 'gate')} unmeasured ({_listed(unmeasured_gates)})")
    if run.comparison is not None and run.comparison.regressed:
        regressed = [m.metric for m in run.comparison.metrics if m.verdict == "regression"]
        hard.append(
            f"regression against baseline '{run.comparison.baseline_name}'"
            + (f" ({_listed(regressed)})" if regressed else "")
        )
    bad_groups = [s.name for s in run.group_scores if s.verdict != "pass"]
    if bad_groups:
        hard.append(f"{plural(len(bad_groups), 'group score')} not passing ({_listed(bad_groups)})")

    state_counts = counts(run)
    soft = [
        f"{plural(state_counts[state], 'case')} {label}"
        for state, label in (("failed", "failed"), ("error", "errored"), ("unmeasured", "unmeasured"))
        if state_counts[state]
    ]
    if hard:
        return RunVerdict(False, tuple(hard + soft))
    if soft and run.exit_status == 0:
        return RunVerdict(True, (f"{', '.join(soft)}, within the gates",))
    if soft:
        return RunVerdict(False, tuple(soft))
    if run.exit_status not in (None, 0):
        return RunVerdict(False, (f"pytest exited with status {run.exit_status}",))
    if not run.cases:
        return RunVerdict(False, ("no eval case ran",))
    gates = f", {plural(len(run.gates), 'gate')} passed" if run.gates else ""
    return RunVerdict(True, (f"{plural(state_counts['passed'], 'case')} passed{gates}",))


def number(value: float | None, digits: int = 3) -> str:
    """A plain number: integers without decimals, others with ``digits`` significant places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def seconds(value: float | None) -> str:
    """``840 ms`` under a second, ``1.84 s`` from one second on."""
    if value is None:
        return "-"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def tokens(tokens_in: int | None, tokens_out: int | None, unknown_calls: int = 0) -> str:
    """``1,200 / 340`` in / out; ``unknown`` when no call said, never 0; a count of the calls left out."""
    if tokens_in is None and tokens_out is None:
        return "unknown"
    text = " / ".join("unknown" if n is None else f"{n:,}" for n in (tokens_in, tokens_out))
    return f"{text} (+ {unknown_calls} unknown)" if unknown_calls else text


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        # Single calls cost fractions of a cent; four decimals would show them as zero.
        return f"${value:.6f}".rstrip("0")
    return f"${value:.4f}" if abs(value) < 1 else f"${value:,.2f}"


def with_unit(value: float | None, unit: str) -> str:
    """A gate's value or threshold in its unit: "s", "usd", "tokens", "ms/token" or "" (plain)."""
    if value is None:
        return "-"
    if unit == "s":
        return seconds(value)
    if unit == "usd":
        return usd(value)
    if unit == "tokens":
        return f"{number(value)} tokens"
    if unit == "ms/token":
        return f"{value:.1f} ms/token"
    return number(value) if not unit else f"{number(value)} {unit}"


def signed(value: float | None, *, percent: bool = False) -> str:
    """A delta with its sign: ``+0.012`` or, for rates, ``-5.0 pp``."""
    if value is None:
        return "-"
    if percent:
        return f"{value * 100:+.1f} pp"
    return f"{value:+.3f}"


def rate_or_number(value: float | None, *, percent: bool) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if percent else number(value)


def p_value(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def truncate(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text`` on one line, with an ellipsis when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def provenance(run: RunResult) -> list[tuple[str, str]]:
    """Where the results came from: model, judge, revision, when, how long, environment."""
    settings = run.settings
    env = run.environment
    rows = [
        ("model under test", str(settings.get("model") or "-")),
        ("judge", str(settings.get("judge") or "none")),
        ("git revision", env.git_revision or "unknown (not a git work tree)"),
        ("started", when(run.started_at)),
        ("duration", seconds(max(0.0, run.finished_at - run.started_at))),
        ("cache", str(settings.get("record_mode") or "-")),
        ("python", env.python),
        ("platform", env.platform),
    ]
    if "pytest-llmops" in env.packages:
        rows.append(("pytest-llmops", env.packages["pytest-llmops"]))
    if run.comparison is not None:
        base = run.comparison
        rows.append((
            "baseline",
            f"{base.baseline_name} ({when(base.baseline_created_at)}, revision {base.baseline_git_revision or 'unknown'})",
        ))
    return rows


def score_shortfall(score: ScoreResult) -> float:
    """How far a score is past its threshold on the wrong side (0 when passing or unknown)."""
    if score.value is None or score.threshold is None:
        return 0.0
    gap = score.value - score.threshold if score.higher_is_better else score.threshold - score.value
    return min(gap, 0.0)


def problem_cases(run: RunResult) -> list[CaseResult]:
    """Errored, failed and unmeasured cases, worst first: by state, then by the largest score shortfall."""
    rank = {state: i for i, state in enumerate(PROBLEM_STATES)}

    def key(case: CaseResult) -> tuple[int, float, str]:
        worst = min((score_shortfall(s) for s in case.scores), default=0.0)
        return rank[case.state], worst, case.nodeid

    return sorted((c for c in run.cases if c.state in rank), key=key)


def case_reason(case: CaseResult) -> str:
    """The case's reason, or the reasons of its failing and unmeasured scores when it has none."""
    if case.reason.strip():
        return case.reason
    parts = [f"{s.name}: {s.reason}" for s in case.scores if s.verdict != "pass" and s.reason]
    return "; ".join(parts) or "(no reason recorded)"


def gate_label(gate: GateResult) -> str:
    """The gate as written, with its scope once (a scoped expression already starts with it)."""
    if not gate.scope or gate.expression.lstrip().startswith("["):
        return gate.expression
    return f"{gate.expression} [{gate.scope}]"
