"""Baselines: a run's results stored under a name, and paired comparison with them.

A baseline is a results file (per-case verdicts and scores, the model, prompt
hashes, score signatures, package versions, git revision) kept as
``.llmops/baselines/NAME.json``. Comparison pairs cases by node id:

* for each score name, the per-case differences (current - baseline, signed so
  that a positive difference is better) go through a paired bootstrap; a
  regression is a one-sided upper confidence bound of the mean difference
  below ``-tolerance``, i.e. a drop larger than the tolerance that chance
  does not explain;
* pass/fail verdicts go through an exact one-sided McNemar test on the cases
  whose verdict changed; a regression needs p < alpha and a net share of
  newly failing cases above the tolerance.

A run compared with a baseline made with a different model, judge, prompt
template or metric signature is flagged loudly: its differences may not mean
what they seem to.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from pytest_llmops.results.models import CaseDelta, CaseResult, Comparison, MetricDelta, RunResult, read_results, write_results
from pytest_llmops.results.stats import mcnemar_exact, paired_bootstrap

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_MEASURED_STATES = {"passed": True, "failed": False, "error": False}
WORST_CASES = 5


class BaselineError(ValueError):
    """A baseline that cannot be saved or read; the message names the file and the fix."""


def baseline_path(folder: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise BaselineError(
            f"baseline name {name!r} must be letters, digits, '.', '_' or '-' (e.g. --llmops-save-baseline=main)"
        )
    return folder / f"{name}.json"


def save_baseline(run: RunResult, folder: Path, name: str, *, already_redacted: bool = False) -> Path:
    """Store ``run`` as the baseline ``name`` (replacing an older one atomically), redacted."""
    path = baseline_path(folder, name)
    write_results(run, path, already_redacted=already_redacted)
    return path


def load_baseline(folder: Path, name: str) -> RunResult:
    path = baseline_path(folder, name)
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        hint = f"known baselines: {', '.join(known)}" if known else "none is stored yet"
        raise BaselineError(
            f"no baseline {name!r} at {path} ({hint}); save one with --llmops-save-baseline={name} on a good run"
        )
    try:
        return read_results(path)
    except ValueError as exc:
        raise BaselineError(f"{path}: not a usable baseline ({exc}); save it again with --llmops-save-baseline={name}") from None


def _score_means(case: CaseResult) -> dict[str, tuple[float, bool]]:
    """Mean measured value per score name in one case, with its direction."""
    values: dict[str, list[float]] = defaultdict(list)
    higher: dict[str, bool] = {}
    for score in case.scores:
        if score.verdict != "unmeasured" and score.value is not None:
            values[score.name].append(score.value)
            higher[score.name] = score.higher_is_better
    return {name: (statistics.fmean(v), higher[name]) for name, v in values.items()}


def _signatures(run: RunResult) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for case in run.cases:
        for score in case.scores:
            if score.signature:
                found[score.name].add(score.signature)
    return found


def _prompt_hashes(run: RunResult) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for case in run.cases:
        for prompt in case.prompts:
            found[prompt.name].add(f"{prompt.version}/{prompt.hash}")
    return found


def provenance_warnings(current: RunResult, baseline: RunResult) -> list[str]:
    """What differs between the two runs in a way that can move the numbers by itself."""
    warnings = []
    for setting in ("model", "judge"):
        before, now = baseline.settings.get(setting), current.settings.get(setting)
        if before != now:
            warnings.append(f"{setting} differs: baseline {before!r}, this run {now!r}")
    if baseline.environment.runtimes != current.environment.runtimes:
        # Same model name, other engine build or weights: greedy answers can change by themselves.
        warnings.append(
            f"model runtime differs: baseline {baseline.environment.runtimes}, this run {current.environment.runtimes}"
        )
    before_prompts, now_prompts = _prompt_hashes(baseline), _prompt_hashes(current)
    for name in sorted(set(before_prompts) & set(now_prompts)):
        if before_prompts[name] != now_prompts[name]:
            warnings.append(
                f"prompt template {name!r} changed: baseline {sorted(before_prompts[name])}, this run {sorted(now_prompts[name])}"
            )
    before_sigs, now_sigs = _signatures(baseline), _signatures(current)
    for name in sorted(set(before_sigs) & set(now_sigs)):
        if before_sigs[name] != now_sigs[name]:
            warnings.append(
                f"score {name!r} was computed differently (judge, template or metric options): "
                f"baseline {sorted(before_sigs[name])}, this run {sorted(now_sigs[name])}"
            )
    return warnings


def compare_runs(
    current: RunResult,
    baseline: RunResult,
    *,
    name: str,
    tolerance: float = 0.0,
    alpha: float = 0.05,
    resamples: int = 10_000,
) -> Comparison:
    """Paired comparison of ``current`` with ``baseline`` (see the module docstring)."""
    before = {case.nodeid: case for case in baseline.cases}
    now = {case.nodeid: case for case in current.cases}
    shared = [nodeid for nodeid in now if nodeid in before]
    metrics = [_pass_fail(before, now, shared, tolerance, alpha)]
    deltas: list[CaseDelta] = []
    score_names = sorted({s.name for nodeid in shared for s in now[nodeid].scores} & {s.name for nodeid in shared for s in before[nodeid].scores})
    for score_name in score_names:
        metric, case_deltas = _score_delta(score_name, before, now, shared, tolerance, alpha, resamples)
        metrics.append(metric)
        deltas.extend(case_deltas)
    deltas.sort(key=lambda d: d.delta if d.delta is not None else 0.0)
    return Comparison(
        baseline_name=name,
        baseline_created_at=baseline.finished_at,
        baseline_git_revision=baseline.environment.git_revision,
        tolerance=tolerance,
        alpha=alpha,
        metrics=metrics,
        cases_only_in_baseline=sorted(set(before) - set(now)),
        cases_only_in_current=sorted(set(now) - set(before)),
        warnings=provenance_warnings(current, baseline),
        regressed=any(m.verdict == "regression" for m in metrics),
        worst_cases=[d for d in deltas if d.delta is not None and d.delta < 0][:WORST_CASES],
    )


def _pass_fail(
    before: dict[str, CaseResult], now: dict[str, CaseResult], shared: Sequence[str], tolerance: float, alpha: float
) -> MetricDelta:
    pairs = [
        (_MEASURED_STATES[before[n].state], _MEASURED_STATES[now[n].state])
        for n in shared
        if before[n].state in _MEASURED_STATES and now[n].state in _MEASURED_STATES
    ]
    test = "exact McNemar, one-sided"
    if not pairs:
        return MetricDelta(metric="pass_rate", kind="pass_fail", n_pairs=0, baseline=None, current=None, delta=None,
                           test=test, verdict="unmeasured", reason="no case has a pass/fail verdict in both runs")
    worse = sum(b and not c for b, c in pairs)
    better = sum(c and not b for b, c in pairs)
    rate_before = sum(b for b, _ in pairs) / len(pairs)
    rate_now = sum(c for _, c in pairs) / len(pairs)
    p_worse = mcnemar_exact(worse, better)
    p_better = mcnemar_exact(better, worse)
    net_drop = (worse - better) / len(pairs)
    if p_worse < alpha and net_drop > tolerance:
        verdict = "regression"
    elif p_better < alpha and -net_drop > tolerance:
        verdict = "improvement"
    else:
        verdict = "no significant change"
    return MetricDelta(
        metric="pass_rate", kind="pass_fail", n_pairs=len(pairs), baseline=rate_before, current=rate_now,
        delta=rate_now - rate_before, p_value=p_worse, test=test, verdict=verdict,
        reason=f"{worse} case(s) now fail that passed, {better} now pass that failed",
    )


def _score_delta(
    score_name: str,
    before: dict[str, CaseResult],
    now: dict[str, CaseResult],
    shared: Sequence[str],
    tolerance: float,
    alpha: float,
    resamples: int,
) -> tuple[MetricDelta, list[CaseDelta]]:
    differences: list[float] = []
    values_before: list[float] = []
    values_now: list[float] = []
    case_deltas = []
    for nodeid in shared:
        b = _score_means(before[nodeid]).get(score_name)
        c = _score_means(now[nodeid]).get(score_name)
        if b is None or c is None:
            continue
        sign = 1.0 if c[1] else -1.0
        differences.append(sign * (c[0] - b[0]))
        values_before.append(b[0])
        values_now.append(c[0])
        case_deltas.append(CaseDelta(nodeid=nodeid, metric=score_name, baseline=b[0], current=c[0], delta=sign * (c[0] - b[0])))
    test = f"paired bootstrap, {resamples} resamples"
    if not differences:
        return MetricDelta(metric=score_name, kind="score", n_pairs=0, baseline=None, current=None, delta=None,
                           test=test, verdict="unmeasured", reason="no case has this score measured in both runs"), []
    boot = paired_bootstrap(differences, tolerance=tolerance, confidence=1 - alpha, resamples=resamples)
    upper_improvement = paired_bootstrap([-d for d in differences], tolerance=tolerance, confidence=1 - alpha, resamples=resamples).upper
    if boot.upper < -tolerance:
        verdict = "regression"
    elif upper_improvement < -tolerance:
        verdict = "improvement"
    else:
        verdict = "no significant change"
    metric = MetricDelta(
        metric=score_name, kind="score", n_pairs=len(differences),
        baseline=statistics.fmean(values_before), current=statistics.fmean(values_now), delta=boot.mean,
        ci_low=boot.low, ci_high=boot.high, p_value=boot.p_value, test=test, verdict=verdict,
        reason="delta is this run minus the baseline, signed so that a positive delta is better",
    )
    return metric, case_deltas
