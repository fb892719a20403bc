"""Which eval cases go to human review.

A case is marked when review is on for it (``llm_eval(review=0.1)`` or
``--llmops-review-sample=0.1``) and either

- it falls in the seeded sample: a hash of the seed and the test id below
  the rate, so the choice does not depend on test order, ``-k`` or xdist,
  and the same seed marks the same cases again; or
- one of its judge scores is within the margin of its threshold (the margin
  is a share of the score's range: 0.1 on a 1-5 rubric is 0.4 points), the
  straddling verdicts a human should see.

Standard library only: the plugin imports this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Where the plan of a case sits in its metadata, and where its marking is written.
PLAN_KEY = "review_plan"
MARK_KEY = "review"


@dataclass(frozen=True)
class ReviewPlan:
    """Review settings of one case: sample rate, margin around thresholds, seed."""

    rate: float
    margin: float = 0.1
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "margin": self.margin, "seed": self.seed}


def in_sample(nodeid: str, rate: float, seed: int = 0) -> bool:
    """Whether ``nodeid`` is in the seeded sample of share ``rate``."""
    digest = hashlib.sha256(f"{seed}\0{nodeid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def is_judge_score(score: Mapping[str, Any]) -> bool:
    """A score given by a judge model (its signature names the judge)."""
    return "|judge:" in str(score.get("signature", ""))


def score_span(score: Mapping[str, Any]) -> float:
    """The width of a score's range: a rubric's ``range`` detail (``1-5``), else 1 (a 0-1 score)."""
    span = str(score.get("details", {}).get("range", ""))
    low, sep, high = span.partition("-")
    try:
        return float(high) - float(low) if sep else 1.0
    except ValueError:
        return 1.0


def near_threshold(score: Mapping[str, Any], margin: float) -> bool:
    """Whether a measured judge score is within ``margin`` (a share of its range) of its threshold."""
    value, threshold = score.get("value"), score.get("threshold")
    if value is None or threshold is None or score.get("verdict") == "unmeasured":
        return False
    return abs(float(value) - float(threshold)) <= margin * score_span(score) + 1e-12


def review_reasons(nodeid: str, scores: list[Mapping[str, Any]], plan: Mapping[str, Any]) -> list[str]:
    """Why the case goes to review (empty: it does not)."""
    rate, margin, seed = float(plan["rate"]), float(plan.get("margin", 0.1)), int(plan.get("seed", 0))
    reasons = []
    judged = [s for s in scores if is_judge_score(s)]
    if not judged:
        return []  # nothing a judge decided, nothing for a human to check it against
    if in_sample(nodeid, rate, seed):
        reasons.append(f"sampled (rate {rate:g}, seed {seed})")
    for score in judged:
        if near_threshold(score, margin):
            reasons.append(
                f"near threshold: {score['name']} = {float(score['value']):.4g}, threshold {float(score['threshold']):g}"
                f" (margin {margin:g} of the range)"
            )
    return reasons


def mark_case(case: Any) -> None:
    """Write ``metadata["review"]`` on a case outcome whose plan asks for review and that qualifies."""
    plan = case.metadata.get(PLAN_KEY)
    if not plan:
        return
    reasons = review_reasons(case.nodeid, case.scores, plan)
    if reasons:
        case.metadata[MARK_KEY] = {"reasons": reasons}
