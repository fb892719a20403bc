"""Human labels that override a judge's verdict in later runs (``--llmops-review-labels``).

When a judge metric scores an item (same test, same check, same judged
texts) that reviewers labelled, the majority of their labels is the verdict;
the judge's value, verdict and reason stay in the score's details with who
labelled it and when. A tie between reviewers overrides nothing (the judge's
verdict stands, and the details say so). Loaded once, the first time a judge
metric asks.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_llmops.verdict import Score, Verdict

_path: Path | None = None
_table: dict[tuple[str, str, str], list[dict[str, Any]]] | None = None
_lock = threading.Lock()


def use_labels(path: Path | None) -> None:
    """Use the label store at ``path`` for overrides in this process; ``None`` turns them off."""
    global _path, _table
    with _lock:
        _path, _table = path, None


def active() -> bool:
    return _path is not None


def _labels() -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    global _table
    with _lock:
        if _table is None:
            from pytest_llmops.review.labels import read_store

            _table = {}
            for label in read_store(_path) if _path is not None else []:
                key = (label["nodeid"], label["score"], label["item_sha256"])
                _table.setdefault(key, []).append(label)
        return _table


def override(score: Score, nodeid: str, item_sha: str) -> Score:
    """``score`` with its verdict replaced by the reviewers' majority, when there are labels for it."""
    if score.verdict is Verdict.UNMEASURED or not active():
        return score
    from pytest_llmops.review.labels import majority

    labels = _labels().get((nodeid, score.name, item_sha))
    if not labels:
        return score
    verdict, votes = majority(labels)
    who = [{"reviewer": label["reviewer"], "label": label["label"], "at": label.get("at", "")} for label in votes]
    judge = {"value": score.value, "verdict": score.verdict.value, "reason": score.reason}
    if verdict is None:
        details = {**score.details, "human_review": {"override": False, "why": "reviewers tie", "labels": who}}
        return replace(score, details=details)
    details = {**score.details, "human_review": {"override": True, "labels": who, "judge": judge}}
    names = ", ".join(f"{w['reviewer']} ({w['at']})" for w in who)
    reason = f"human review: {verdict} by {names}; the judge said {score.verdict.value}. {score.reason}"
    return replace(score, verdict=Verdict(verdict), reason=reason, details=details)
