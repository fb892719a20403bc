"""Reward-model scores: a trained reward model's opinion of an answer, as a ``Score``.

A reward model (a sequence classifier fitted to human preferences, e.g.
Skywork-Reward served by vLLM) gives one number per (prompt, answer). These
metrics ask it through the model client (``LLMClient.reward``: cache, limits,
retries, ``Call`` records) and turn the number into a ``Score`` that gates
(``reward.mean>=0.6``) and baselines read like any other.

* ``reward_score``: one answer; ``min_score`` makes it a check.
* ``reward_compare``: two answers to one prompt, the pairwise value the judges
  use (1.0 when A's reward is higher by more than ``margin``, 0.5 a tie, 0.0 when
  B's is). With review on (``--llmops-review-sample``) it keeps the texts, so
  ``llmops export preferences`` turns its decided pairs into training pairs.

A reward server that is down, answers something that is not a reward, or gives
several class probabilities without ``label=`` saying which is the reward, ends
the score unmeasured with the reason, never a NaN.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pytest_llmops.verdict import Score, UnmeasuredError

__all__ = ["reward_compare", "reward_score"]


def _signature(model: Any, api: str | None, label: int | None) -> str:
    chosen = api or getattr(getattr(model, "config", None), "reward_api", None) or "classify"
    return f"reward|model:{getattr(model, 'model', None)}|api:{chosen}|label:{'only' if label is None else label}"


def _pick(values: tuple[float, ...], label: int | None) -> float | str:
    """The reward among the server's values, or why none can be picked."""
    if label is None:
        if len(values) == 1:
            return values[0]
        return (
            f"the reward model gave {len(values)} values {list(values)} (one per class); pass label=INDEX "
            f"to say which class probability is the reward"
        )
    if isinstance(label, bool) or not isinstance(label, int):
        raise TypeError(f"label must be an int (the class index), got {type(label).__name__} {label!r}")
    if not -len(values) <= label < len(values):
        return f"label={label} but the reward model gave {len(values)} value(s) {list(values)}"
    return values[label]


async def _reward(model: Any, prompt: str, answer: str, api: str | None, label: int | None,
                  params: dict[str, Any]) -> tuple[float | None, str, dict[str, Any]]:
    """(reward, "", details) or (None, reason, details)."""
    reward = getattr(model, "reward", None)
    if reward is None:
        raise TypeError(
            f"model={model!r} cannot give reward scores; pass the reward_model fixture or another LLMClient"
        )
    try:
        result = await reward(prompt, answer, api=api, **params)
    except UnmeasuredError as error:
        return None, f"the reward model did not answer: {error.reason}", {}
    details: dict[str, Any] = {"values": list(result.values)}
    if result.label is not None:
        details["label"] = result.label
    picked = _pick(result.values, label)
    if isinstance(picked, str):
        return None, picked, details
    return picked, "", details


def _review_on() -> bool:
    """Whether the running case is up for human review (``--llmops-review-sample``), so scores keep their texts."""
    from pytest_llmops.case import current_case
    from pytest_llmops.review.select import PLAN_KEY

    case = current_case()
    return case is not None and PLAN_KEY in case.metadata


async def reward_score(
    prompt: str,
    answer: str,
    *,
    model: Any,
    min_score: float | None = None,
    label: int | None = None,
    api: str | None = None,
    name: str = "reward",
    params: dict[str, Any] | None = None,
) -> Score:
    """The reward model's score of ``answer`` as a reply to ``prompt``; passes when it is at least ``min_score``.

    ``model`` is the reward model's client (the ``reward_model`` fixture). ``api``
    picks the reward server's route for this call (``classify``, ``score``,
    ``pooling``; by default the client's, ``--llmops-reward-api``). With several
    class probabilities, ``label`` is the index of the one that is the reward.
    ``params`` are extra JSON body fields (vLLM's ``use_activation=False`` for raw logits).
    """
    signature = _signature(model, api, label)
    value, reason, details = await _reward(model, prompt, answer, api, label, dict(params or {}))
    if value is None:
        return Score.unmeasured(name, reason, signature=signature, details=details)
    return Score.measured(name, value, threshold=min_score, signature=signature, details=details)


async def reward_compare(
    prompt: str,
    answer_a: str,
    answer_b: str,
    *,
    model: Any,
    margin: float = 0.0,
    threshold: float | None = 0.5,
    label: int | None = None,
    api: str | None = None,
    name: str = "reward_pairwise",
    params: dict[str, Any] | None = None,
) -> Score:
    """Compare two answers to ``prompt`` by reward: 1.0 when A's is higher by more than ``margin``,
    0.5 a tie, 0.0 when B's is.

    Both answers are scored concurrently (two requests, each cached on its own).
    ``threshold=0.5`` (default) passes when A is at least as good as B, ``1.0`` when A must win.
    """
    if threshold is not None and threshold not in (0.0, 0.5, 1.0):
        raise ValueError(f"threshold must be 0.0, 0.5 (A at least ties) or 1.0 (A wins), got {threshold}")
    if not margin >= 0:
        raise ValueError(f"margin must be a number >= 0, got {margin!r}")
    signature = _signature(model, api, label) + f"|margin:{margin:g}"
    extra = dict(params or {})
    (reward_a, reason_a, details_a), (reward_b, reason_b, details_b) = await asyncio.gather(
        _reward(model, prompt, answer_a, api, label, extra), _reward(model, prompt, answer_b, api, label, extra)
    )
    details: dict[str, Any] = {"reward_a": reward_a, "reward_b": reward_b, "values_a": details_a.get("values"),
                               "values_b": details_b.get("values")}
    if reward_a is None or reward_b is None:
        reason = "; ".join(f"answer {which}: {why}" for which, why in (("A", reason_a), ("B", reason_b)) if why)
        return Score.unmeasured(name, reason, signature=signature, details=details)
    details["consistent"] = True  # one reward per answer: no order to disagree (``llmops export preferences`` reads it)
    if _review_on():
        # As judge scores do: the texts stay with the score for review and preference export.
        details["judged"] = {"input": prompt, "response_a": answer_a, "response_b": answer_b}
    difference = reward_a - reward_b
    if difference > margin:
        value, winner = 1.0, "a"
    elif -difference > margin:
        value, winner = 0.0, "b"
    else:
        value, winner = 0.5, "tie"
    details.update(difference=difference, winner=winner)
    how = {"a": "answer A has the higher reward", "b": "answer B has the higher reward",
           "tie": f"a tie (rewards within {margin:g})"}[winner]
    reason = f"{how}: {reward_a:.4g} vs {reward_b:.4g}"
    return Score.measured(name, value, threshold=threshold, reason=reason, signature=signature, details=details)
