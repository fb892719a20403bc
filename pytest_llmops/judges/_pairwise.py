"""Pairwise comparison (A vs B), asked in both orders to cancel position bias.

The judge sees the two responses twice, swapped. When both orders agree the
winner stands; when they disagree (each order prefers whichever came first,
say) the result is a tie and ``details["consistent"]`` is false, with the
reason saying so. The value is 1.0 when ``response_a`` wins, 0.5 for a tie,
0.0 when ``response_b`` wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_llmops.judges._common import GuardMode, MetricRun
from pytest_llmops.judges.engine import ask
from pytest_llmops.judges.templates import JudgeTemplate, resolve_template
from pytest_llmops.verdict import Score, UnmeasuredError

__all__ = ["pairwise"]

DEFAULT_CRITERIA = "Which response answers the input better: correct, complete, helpful and clear."
_VALUE = {"a": 1.0, "tie": 0.5, "b": 0.0}


def _combine(first: str, second: str) -> tuple[str, bool, str]:
    """The winner ("a", "b", "tie"), whether both orders agreed, and a sentence saying how."""
    if first == second:
        how = "a tie in both orders" if first == "tie" else f"response {first.upper()} preferred in both orders"
        return first, True, how
    if "tie" in (first, second):
        return (
            "tie",
            False,
            f"orders disagree (A-first: {first}, B-first: {second}); counted as a tie",
        )
    return (
        "tie",
        False,
        (
            f"position bias: the judge preferred response {first.upper()} when it came "
            f"{'first' if first == 'a' else 'second'} and response {second.upper()} when swapped; counted as a tie"
        ),
    )


async def pairwise(
    input: str,
    response_a: str,
    response_b: str,
    *,
    judge: Any,
    criteria: str = DEFAULT_CRITERIA,
    threshold: float | None = 0.5,
    template: JudgeTemplate | str | Path | None = None,
    guard: GuardMode = "flag",
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
    name: str = "pairwise",
) -> Score:
    """Compare ``response_a`` with ``response_b``; passes when A scores at least ``threshold``.

    ``threshold=0.5`` (default) means "A is at least as good as B"; ``1.0``
    means "A must win".
    """
    if threshold is not None and threshold not in _VALUE.values():
        raise ValueError(f"threshold must be 0.0, 0.5 (A at least ties) or 1.0 (A wins), got {threshold}")
    chosen = resolve_template("pairwise", template)
    run = MetricRun(
        name,
        judge,
        [chosen],
        guard=guard,
        guarded={"response_a": response_a, "response_b": response_b},
        options={"orders": "both"},
        judged={"input": input, "response_a": response_a, "response_b": response_b, "criteria": criteria},
    )

    def in_order(first: str, second: str) -> Any:
        values = {"criteria": criteria, "input": input, "response_a": first, "response_b": second}
        return ask(judge, chosen, values, response_format=response_format, params=params)

    # Both orders at once; wait for both even when one fails, so nothing is left running.
    ab, ba = await asyncio.gather(
        in_order(response_a, response_b),
        in_order(response_b, response_a),
        return_exceptions=True,
    )
    for order, outcome in (("A first", ab), ("B first", ba)):
        if isinstance(outcome, UnmeasuredError):
            return run.unmeasured(f"{order}: {outcome.reason}")
        if isinstance(outcome, BaseException):
            raise outcome
    run.saw(ab)
    run.saw(ba)
    first = {"A": "a", "B": "b", "tie": "tie"}[ab.answer.winner]
    second = {"A": "b", "B": "a", "tie": "tie"}[ba.answer.winner]
    winner, consistent, how = _combine(first, second)
    return run.measured(
        _VALUE[winner],
        threshold=threshold,
        reason=f"winner: {winner}; {how}. A-first: {ab.answer.reasoning} | B-first: {ba.answer.reasoning}",
        winner=winner,
        consistent=consistent,
        orders={"a_first": first, "b_first": second},
    )
