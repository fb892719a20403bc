"""Probability-weighted scores from the judge's token log-probabilities (G-Eval).

Instead of the single score the judge wrote, take the expected value of the
score over the probabilities the judge gave each score token at that
position: a judge torn between 3 and 4 scores 3.5, not whichever it sampled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["WeightedScore", "weighted_score"]

_LEADING_INT = re.compile(r"^\s*\"?\s*(-?\d+)")


@dataclass(frozen=True)
class WeightedScore:
    """The expected score and the probability of each score value (renormalised over the valid ones)."""

    value: float
    probabilities: dict[int, float]
    mass: float


def _score_offset(text: str, key: str) -> int | None:
    match = re.search(rf'"{re.escape(key)}"\s*:\s*"?(-?\d+)', text)
    return match.start(1) if match else None


def weighted_score(
    text: str,
    logprobs: Sequence[Any] | None,
    low: int,
    high: int,
    *,
    key: str = "score",
) -> WeightedScore | None:
    """The probability-weighted ``key`` of a JSON reply, or ``None`` when it cannot be computed.

    ``logprobs`` are the reply's tokens (``.token``, ``.logprob``, ``.top`` as
    ``(token, logprob)`` pairs), whose texts must add up to ``text``. The
    token holding the score's first digit is found by its offset; each
    alternative at that position whose text (after the same prefix) starts
    with an integer in ``[low, high]`` counts for that score.
    """
    if not logprobs:
        return None
    offset = _score_offset(text, key)
    if offset is None:
        return None
    position = 0
    for token in logprobs:
        end = position + len(token.token)
        if position <= offset < end:
            prefix = token.token[: offset - position]
            candidates = list(token.top) or [(token.token, token.logprob)]
            if token.token not in {alt for alt, _ in candidates}:
                candidates.append((token.token, token.logprob))
            return _expected(candidates, prefix, low, high)
        position = end
    return None


def _expected(candidates: Sequence[tuple[str, float]], prefix: str, low: int, high: int) -> WeightedScore | None:
    probabilities: dict[int, float] = {}
    for alternative, logprob in candidates:
        rest = alternative[len(prefix) :] if prefix and alternative.startswith(prefix) else alternative
        match = _LEADING_INT.match(rest)
        if match is None:
            continue
        value = int(match.group(1))
        if low <= value <= high:
            probabilities[value] = probabilities.get(value, 0.0) + math.exp(logprob)
    mass = sum(probabilities.values())
    if mass <= 0.0:
        return None
    normalised = {value: p / mass for value, p in sorted(probabilities.items())}
    expected = sum(value * p for value, p in normalised.items())
    return WeightedScore(round(expected, 6), normalised, round(mass, 6))
