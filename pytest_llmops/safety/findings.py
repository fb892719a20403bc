"""``Finding``: one typed span a safety detector found in a text. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """A span of ``text[start:end]`` that a detector flagged.

    ``kind`` is the entity or finding type (``"EMAIL_ADDRESS"``,
    ``"API_KEY"``, ``"LEAK"``...), ``detector`` says which rule or model found
    it (``"github_token"``, ``"luhn"``...), ``score`` how sure it is (1.0 for a
    validated pattern such as a Luhn-checked card number).
    """

    kind: str
    start: int
    end: int
    text: str
    detector: str = ""
    score: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"finding {self.kind}: bad span {self.start}:{self.end}")

    def masked(self, keep: int = 2) -> str:
        """The found text with all but ``keep`` characters at each end starred, for messages and logs."""
        value = self.text
        if len(value) <= 2 * keep + 2:
            return "*" * len(value)
        return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """JSON-ready dict; the text is masked unless ``reveal`` (results files end up in CI logs)."""
        return {
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "text": self.text if reveal else self.masked(),
            "detector": self.detector,
            "score": self.score,
        }

    def describe(self) -> str:
        return f"{self.kind} at {self.start}:{self.end} {self.masked()!r} ({self.detector})"


@dataclass(frozen=True)
class Detection:
    """What a classifier-based detector decided about one text.

    ``score`` is in [0, 1]; ``flagged`` is ``score >= threshold``. ``start`` and
    ``end`` locate the part of the text that drove the score (the worst
    segment of a long text, or a rule's match), and ``evidence`` names what
    fired: ``"model:toxicity"``, ``"rule:ignore_previous_instructions"``...

    A text outside the detector's validated region (another language) is not
    judged: ``score`` is ``None``, ``unmeasured`` says why and what to use
    instead, ``measured`` and ``flagged`` are false. Check ``measured`` before
    reading ``flagged`` as "looks fine" (the ``*_check`` helpers and
    ``assert_*`` do, and end such a check unmeasured).
    """

    detector: str
    score: float | None
    threshold: float
    start: int
    end: int
    evidence: str
    signature: str = ""
    unmeasured: str = ""

    def __post_init__(self) -> None:
        if (self.score is None) != bool(self.unmeasured):
            raise ValueError(f"detection {self.detector}: score None exactly when unmeasured (with a reason)")

    @property
    def measured(self) -> bool:
        return self.score is not None

    @property
    def flagged(self) -> bool:
        return self.score is not None and self.score >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        out = {
            "detector": self.detector,
            "score": self.score,
            "threshold": self.threshold,
            "flagged": self.flagged,
            "start": self.start,
            "end": self.end,
            "evidence": self.evidence,
        }
        if self.unmeasured:
            out["unmeasured"] = self.unmeasured
        return out
