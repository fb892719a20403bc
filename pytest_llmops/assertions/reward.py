"""Reward-model assertions: an answer's reward, and one answer preferred over another by reward.

Each helper awaits a metric from ``pytest_llmops.metrics._reward``, records the
``Score`` on the running case and turns its verdict into the outcome through
``pytest_llmops.case.require``: a reward below the bar raises
``AssertionError``; a reward server that did not answer, or answered no usable
reward, ends the test unmeasured. Both are coroutines.
"""

from __future__ import annotations

from typing import Any

from pytest_llmops import case
from pytest_llmops.verdict import Score, hide_check_frames

# A failing check is shown from the test's line (see verdict.hide_check_frames).
__tracebackhide__ = hide_check_frames

__all__ = ["assert_reward", "assert_reward_preferred"]


async def assert_reward(prompt: str, answer: str, *, model: Any, min_score: float, **options: Any) -> Score:
    """Fail if the reward model scores ``answer`` (to ``prompt``) below ``min_score`` (see ``metrics.reward_score``)."""
    from pytest_llmops.metrics._reward import reward_score

    score = await reward_score(prompt, answer, model=model, min_score=min_score, **options)
    return case.require(score, prompt=prompt, answer=answer)


async def assert_reward_preferred(
    prompt: str, answer: str, baseline: str, *, model: Any, allow_tie: bool = True, **options: Any
) -> Score:
    """Fail unless ``answer`` gets a higher reward than ``baseline`` (or ties within ``margin``, with ``allow_tie``)."""
    from pytest_llmops.metrics._reward import reward_compare

    score = await reward_compare(prompt, answer, baseline, model=model, threshold=0.5 if allow_tie else 1.0, **options)
    return case.require(score, prompt=prompt, answer=answer, baseline=baseline)
