"""Score log records with checks, and sum the scores up per check."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmops.scoring.checks import Check
from pytest_llmops.verdict import Score


def _entry(score: Score) -> dict[str, Any]:
    return {"value": score.value, "verdict": score.verdict.value, "reason": score.reason}


def score_record(record: Mapping[str, Any], checks: Sequence[Check], *, id_field: str = "id",
                 judged: Mapping[str, Score] | None = None) -> dict[str, Any]:
    """One record's scores: ``{"id": ..., "scores": {label: {value, verdict, reason}}}``.

    Offline checks run here; judge checks' scores come in ``judged`` (see :func:`score_records`).
    A check that raises is recorded as unmeasured with the error, never dropped.
    """
    scores = {}
    for check in checks:
        if check.judged:
            score = (judged or {}).get(check.label)
            scores[check.label] = _entry(score) if score is not None else {
                "value": None, "verdict": "unmeasured", "reason": "judge checks run through score_records"}
            continue
        try:
            score = check.run(record)
        except Exception as exc:  # a bad record must not stop a million-record job; it is named instead
            scores[check.label] = {"value": None, "verdict": "unmeasured", "reason": f"{type(exc).__name__}: {exc}"}
            continue
        scores[check.label] = _entry(score)
    return {"id": record.get(id_field), "scores": scores}


def score_records(
    records: Iterable[Mapping[str, Any]], checks: Sequence[Check], *, id_field: str = "id",
    concurrency: int = 16, cache_path: Path | None = Path(".llmops/cache.sqlite"),
) -> list[dict[str, Any]]:
    """Every record scored by every check, in order (see :func:`score_record`).

    Judge checks are sent together, at most ``concurrency`` in flight per provider, through the call
    cache at ``cache_path`` (None: no cache).
    """
    records = list(records)
    judged: list[dict[str, Score]] = [{} for _ in records]
    if any(check.judged for check in checks):
        from pytest_llmops.scoring.judged import judge_scores

        judged = judge_scores(records, checks, concurrency=concurrency, cache_path=cache_path)
    return [score_record(record, checks, id_field=id_field, judged=extra) for record, extra in zip(records, judged)]


def summarize(scored: Iterable[Mapping[str, Any]], *, confidence: float = 0.95) -> dict[str, Any]:
    """Per check: counts, pass rate with its Wilson interval, and the mean value of the measured records."""
    from pytest_llmops.results.stats import wilson_interval

    totals: dict[str, dict[str, Any]] = {}
    records = 0
    for item in scored:
        records += 1
        for label, score in item["scores"].items():
            entry = totals.setdefault(label, {"pass": 0, "fail": 0, "unmeasured": 0, "sum": 0.0, "reasons": {}})
            entry[score["verdict"]] += 1
            if score["verdict"] == "unmeasured":
                reason = score["reason"][:120]
                entry["reasons"][reason] = entry["reasons"].get(reason, 0) + 1
            elif score["value"] is not None and math.isfinite(score["value"]):
                entry["sum"] += score["value"]
    checks = {}
    for label, entry in totals.items():
        measured = entry["pass"] + entry["fail"]
        low, high = wilson_interval(entry["pass"], measured, confidence) if measured else (None, None)
        checks[label] = {
            "measured": measured, "passed": entry["pass"], "failed": entry["fail"], "unmeasured": entry["unmeasured"],
            "pass_rate": entry["pass"] / measured if measured else None, "pass_rate_low": low, "pass_rate_high": high,
            "mean": entry["sum"] / measured if measured else None,
            "unmeasured_reasons": dict(sorted(entry["reasons"].items(), key=lambda kv: -kv[1])[:5]),
        }
    return {"records": records, "confidence": confidence, "checks": checks}
