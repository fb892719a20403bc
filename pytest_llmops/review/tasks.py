"""Review tasks from a results file: one per judge score of each case marked for review."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmops.review.items import JUDGED_KEY, item_id, item_sha256
from pytest_llmops.review.select import MARK_KEY, is_judge_score


@dataclass(frozen=True)
class ReviewTask:
    """One judged item for a human: the texts the judge saw and (hidden or shown) its verdict."""

    item_id: str
    nodeid: str
    score: str
    item_sha256: str
    judged: dict[str, Any]
    reasons: list[str]
    judge: dict[str, Any] = field(default_factory=dict)

    def group(self) -> str:
        """The judge model and templates: agreement is reported per group."""
        templates = ",".join(f"{t.get('name')}@{t.get('version')}" for t in self.judge.get("templates", []))
        return f"{self.judge.get('model', '?')} / {templates or self.score}"

    def to_dict(self, *, show_judge: bool = True) -> dict[str, Any]:
        data = {"item_id": self.item_id, "nodeid": self.nodeid, "score": self.score,
                "item_sha256": self.item_sha256, "judged": self.judged, "review_reasons": self.reasons}
        if show_judge:
            data["judge"] = self.judge
        return data


def review_tasks(run: Any) -> list[ReviewTask]:
    """The review tasks of a ``RunResult`` (cases with ``metadata["review"]``, scores with judged texts)."""
    tasks = []
    for case in run.cases:
        mark = case.metadata.get(MARK_KEY)
        if not mark:
            continue
        for score in case.scores:
            judged = score.details.get(JUDGED_KEY)
            if not judged or not is_judge_score(score.model_dump()):
                continue
            tasks.append(ReviewTask(
                item_id=item_id(case.nodeid, score.name, judged),
                nodeid=case.nodeid,
                score=score.name,
                item_sha256=item_sha256(judged),
                judged=dict(judged),
                reasons=list(mark.get("reasons", [])),
                judge={
                    "model": score.details.get("judge_model", ""),
                    "templates": score.details.get("templates", []),
                    "signature": score.signature,
                    "verdict": score.verdict,
                    "value": score.value,
                    "threshold": score.threshold,
                    "reason": score.reason,
                },
            ))
    return tasks
