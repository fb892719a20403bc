"""Pydantic schemas of the judge's answers, one per judge template.

A schema checks the *shape* of an answer (a malformed one gets one re-ask).
``contradiction`` checks that the answer agrees with itself (a score that
says pass with a verdict that says fail); a contradiction is not re-asked:
the check ends unmeasured with the contradiction named, since a judge that
contradicts itself cannot be trusted either way.

Imported only when a judge metric runs (pydantic is not a plugin-import dependency).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class JudgeAnswer(BaseModel):
    """Base of every judge answer: unknown keys are ignored, answers are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def contradiction(self, variables: Mapping[str, Any]) -> str | None:
        """A description of how the answer contradicts itself, or ``None``."""
        return None


class RubricAnswer(JudgeAnswer):
    """G-Eval style: reasoning first (chain of thought), then an integer score and a verdict."""

    reasoning: str
    score: int
    verdict: Literal["pass", "fail"]

    def contradiction(self, variables: Mapping[str, Any]) -> str | None:
        low, high, mark = (
            int(variables["score_min"]),
            int(variables["score_max"]),
            int(variables["pass_mark"]),
        )
        if not low <= self.score <= high:
            return None  # out of range is a shape problem, reported by check_rubric_range
        if (self.score >= mark) != (self.verdict == "pass"):
            return (
                f"score {self.score}/{high} with verdict {self.verdict!r}, but the pass mark is {mark} "
                f"(verdict must be 'pass' exactly when score >= {mark})"
            )
        return None


class ClaimsAnswer(JudgeAnswer):
    """The claims an answer makes, each a short self-contained statement."""

    claims: list[str]


class ClaimVerdict(JudgeAnswer):
    claim: str
    supported: bool
    reason: str = ""


class FaithfulnessAnswer(JudgeAnswer):
    verdicts: list[ClaimVerdict]
    all_supported: bool

    def contradiction(self, variables: Mapping[str, Any]) -> str | None:
        unsupported = [v.claim for v in self.verdicts if not v.supported]
        if self.all_supported and unsupported:
            return f"all_supported is true but {len(unsupported)} claim(s) are marked unsupported: {unsupported[:3]}"
        if not self.all_supported and not unsupported:
            return "all_supported is false but every claim is marked supported"
        return None


class StatementRelevance(JudgeAnswer):
    statement: str
    relevant: bool
    reason: str = ""


class RelevancyAnswer(JudgeAnswer):
    statements: list[StatementRelevance]


class ChunkVerdict(JudgeAnswer):
    index: int = Field(ge=1)
    useful: bool
    reason: str = ""


class ContextPrecisionAnswer(JudgeAnswer):
    chunks: list[ChunkVerdict]


class AttributedClaim(JudgeAnswer):
    claim: str
    attributed: bool
    reason: str = ""


class ContextRecallAnswer(JudgeAnswer):
    claims: list[AttributedClaim]


class PairwiseAnswer(JudgeAnswer):
    reasoning: str
    winner: Literal["A", "B", "tie"]


class ReferenceAnswer(JudgeAnswer):
    answer: str = Field(min_length=1)


class _FlaggedRating(JudgeAnswer):
    """A 0..1 rating with a yes/no flag that must agree with it (flag true exactly when score >= 0.5)."""

    flag: ClassVar[str]
    score: float = Field(ge=0.0, le=1.0)
    reason: str

    def contradiction(self, variables: Mapping[str, Any]) -> str | None:
        value = getattr(self, self.flag)
        if value != (self.score >= 0.5):
            return (
                f"{self.flag}={value} contradicts score={self.score}: "
                f"{self.flag} must be true exactly when score >= 0.5"
            )
        return None


class ToxicityAnswer(_FlaggedRating):
    """Safety: how toxic a text is (0 harmless .. 1 severe) and in which categories."""

    flag = "toxic"
    toxic: bool
    categories: list[str] = Field(default_factory=list)


class BiasAnswer(_FlaggedRating):
    """Safety: how biased a text is (0 even-handed .. 1 strongly biased) and against which groups."""

    flag = "biased"
    biased: bool
    groups: list[str] = Field(default_factory=list)


class PIIItem(JudgeAnswer):
    type: str
    text: str


class PIIAnswer(JudgeAnswer):
    """Safety: the personal-data items found in a text."""

    contains_pii: bool
    items: list[PIIItem] = Field(default_factory=list)
    reason: str

    def contradiction(self, variables: Mapping[str, Any]) -> str | None:
        if self.contains_pii != bool(self.items):
            return (
                f"contains_pii={self.contains_pii} with {len(self.items)} item(s): "
                "contains_pii must be true exactly when items is not empty"
            )
        return None


class InjectionFollowedAnswer(JudgeAnswer):
    """Safety: whether a response carries out an injected instruction, and how sure the judge is."""

    followed: bool
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: str = ""
    reason: str


#: Template (metric) name -> the schema its answers must match.
SCHEMAS: dict[str, type[JudgeAnswer]] = {
    "rubric": RubricAnswer,
    "claims": ClaimsAnswer,
    "faithfulness": FaithfulnessAnswer,
    "answer_relevancy": RelevancyAnswer,
    "context_precision": ContextPrecisionAnswer,
    "context_recall": ContextRecallAnswer,
    "pairwise": PairwiseAnswer,
    "reference_answer": ReferenceAnswer,
    "toxicity": ToxicityAnswer,
    "bias": BiasAnswer,
    "pii": PIIAnswer,
    "injection_followed": InjectionFollowedAnswer,
}
