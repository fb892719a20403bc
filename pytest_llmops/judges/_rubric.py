"""Rubric scoring in the G-Eval style: criteria, evaluation steps, a score range.

The judge reasons first, then writes an integer score and a pass/fail
verdict. When the judge's provider returns token log-probabilities, the score
is their expected value over the score tokens (a judge split between 3 and 4
scores about 3.5); otherwise it is the integer the judge wrote. The signature
says which (``scoring:logprob-weighted`` or ``scoring:plain``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmops.judges._common import GuardMode, MetricRun, supports_logprobs
from pytest_llmops.judges.scoring import weighted_score
from pytest_llmops.judges.templates import JudgeTemplate, resolve_template
from pytest_llmops.verdict import Score, UnmeasuredError

__all__ = ["rubric"]


def _check_range(score_range: tuple[int, int]) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in score_range)
    except (TypeError, ValueError):
        raise ValueError(f"score_range must be two integers (low, high), got {score_range!r}") from None
    if high <= low:
        raise ValueError(f"score_range must go from low to high, got {score_range!r}")
    return low, high


def _in_range(answer: Any, variables: Mapping[str, Any]) -> str | None:
    low, high = int(variables["score_min"]), int(variables["score_max"])
    if not low <= answer.score <= high:
        return f"score: {answer.score} is outside the range {low} to {high}"
    return None


async def rubric(
    response: str,
    *,
    criteria: str,
    judge: Any,
    input: str = "",
    context: str | Sequence[str] = "",
    steps: Sequence[str] = (),
    score_range: tuple[int, int] = (1, 5),
    threshold: float | None = None,
    logprobs: bool | None = None,
    name: str = "rubric",
    template: JudgeTemplate | str | Path | None = None,
    guard: GuardMode = "flag",
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
) -> Score:
    """Score ``response`` on ``criteria`` from ``score_range[0]`` to ``score_range[1]``.

    ``steps`` are the evaluation steps (the judge writes its own when none
    are given). ``threshold`` is the lowest passing score (default: the middle
    of the range, rounded up); the judge is told it as its pass mark.
    ``logprobs``: ``None`` asks for them when the provider is known to give
    them, ``True`` always asks, ``False`` never does.
    """
    if not isinstance(criteria, str) or not criteria.strip():
        raise ValueError("rubric() needs criteria: say what a good response does, e.g. criteria='Answers the question'")
    low, high = _check_range(score_range)
    if threshold is None:
        threshold = float(math.ceil((low + high) / 2))
    if not low <= threshold <= high:
        raise ValueError(f"threshold {threshold} is outside score_range {score_range}")
    chosen = resolve_template("rubric", template)
    want_logprobs = supports_logprobs(judge) if logprobs is None else bool(logprobs)
    variables = {
        "criteria": criteria,
        "steps": list(steps),
        "input": input,
        "context": list(context) if not isinstance(context, str) else context,
        "response": response,
        "score_min": low,
        "score_max": high,
        "pass_mark": math.ceil(threshold),
    }
    run = MetricRun(
        name,
        judge,
        [chosen],
        guard=guard,
        guarded={"response": response},
        options={"range": f"{low}-{high}"},
        response_format=response_format,
        params=params,
        judged={"input": input, "output": response, "context": variables["context"], "criteria": criteria},
    )
    try:
        reply = await run.ask(chosen, variables, check=_in_range, logprobs=(high - low + 1 + 4) if want_logprobs else 0)
    except UnmeasuredError as error:
        run.options["scoring"] = "none"
        return run.unmeasured(error.reason)
    answer = reply.answer
    weighted = weighted_score(reply.text, reply.logprobs, low, high) if want_logprobs else None
    if weighted is not None:
        run.options["scoring"] = "logprob-weighted"
        value = weighted.value
        extra = {"score_probabilities": {str(k): round(v, 6) for k, v in weighted.probabilities.items()}}
    else:
        run.options["scoring"] = "plain"
        value = float(answer.score)
        extra = {}
    return run.measured(
        value,
        threshold=threshold,
        reason=f"judge: {answer.score}/{high} ({answer.verdict}). {answer.reasoning}",
        judge_score=answer.score,
        judge_verdict=answer.verdict,
        reasoning=answer.reasoning,
        **extra,
    )
