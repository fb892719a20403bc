"""Judge-backed assertions: rubric, faithfulness, relevancy, RAG retrieval, pairwise, ground truth.

Each helper awaits a metric from ``pytest_llmops.judges``, records the
``Score`` on the running case and turns its verdict into the outcome through
``pytest_llmops.case.require``: a fail raises ``AssertionError`` (with the
judge's reasons, e.g. the unsupported claims), an unmeasured score (no judge,
a refusal, a malformed or self-contradicting answer) raises
``UnmeasuredError``. All are coroutines: ``await assert_faithful(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmops import case
from pytest_llmops.verdict import Score

__all__ = [
    "assert_answer_relevant",
    "assert_context_precision",
    "assert_context_recall",
    "assert_faithful",
    "assert_matches_judge_reference",
    "assert_no_hallucination",
    "assert_preferred",
    "assert_rubric",
]


async def assert_rubric(response: str, *, criteria: str, judge: Any, **options: Any) -> Score:
    """Fail if the judge scores ``response`` below ``threshold`` on ``criteria`` (see ``judges.rubric``, the function)."""
    from pytest_llmops.judges._rubric import rubric

    score = await rubric(response, criteria=criteria, judge=judge, **options)
    return case.require(score, response=response, criteria=criteria)


async def assert_faithful(
    response: str,
    *,
    context: str | Sequence[Any],
    judge: Any,
    threshold: float = 1.0,
    **options: Any,
) -> Score:
    """Fail if fewer than ``threshold`` of the response's claims are supported by ``context``; lists the others."""
    from pytest_llmops.judges.rag import faithfulness

    score = await faithfulness(response, context=context, judge=judge, threshold=threshold, **options)
    return case.require(score, response=response)


async def assert_no_hallucination(response: str, *, context: str | Sequence[Any], judge: Any, **options: Any) -> Score:
    """``assert_faithful`` with every claim required to be supported."""
    return await assert_faithful(response, context=context, judge=judge, threshold=1.0, **options)


async def assert_answer_relevant(
    response: str, *, input: str, judge: Any, threshold: float = 0.7, **options: Any
) -> Score:
    """Fail if less than ``threshold`` of the response's statements address ``input``."""
    from pytest_llmops.judges.rag import answer_relevancy

    score = await answer_relevancy(response, input=input, judge=judge, threshold=threshold, **options)
    return case.require(score, input=input, response=response)


async def assert_context_precision(
    input: str,
    chunks: Sequence[Any],
    *,
    answer: str,
    judge: Any,
    threshold: float = 0.5,
    **options: Any,
) -> Score:
    """Fail if the useful retrieved chunks are not ranked near the top (average precision < ``threshold``)."""
    from pytest_llmops.judges.rag import context_precision

    score = await context_precision(input, chunks, answer=answer, judge=judge, threshold=threshold, **options)
    return case.require(score, input=input)


async def assert_context_recall(
    input: str,
    chunks: Sequence[Any] | str,
    *,
    reference: str,
    judge: Any,
    threshold: float = 0.7,
    **options: Any,
) -> Score:
    """Fail if the retrieved chunks miss more than ``1 - threshold`` of the reference answer's claims."""
    from pytest_llmops.judges.rag import context_recall

    score = await context_recall(input, chunks, reference=reference, judge=judge, threshold=threshold, **options)
    return case.require(score, input=input, reference=reference)


async def assert_preferred(
    input: str,
    response: str,
    baseline: str,
    *,
    judge: Any,
    allow_tie: bool = True,
    **options: Any,
) -> Score:
    """Fail unless the judge prefers ``response`` over ``baseline`` in both orders (or ties, with ``allow_tie``)."""
    from pytest_llmops.judges._pairwise import pairwise

    score = await pairwise(
        input,
        response,
        baseline,
        judge=judge,
        threshold=0.5 if allow_tie else 1.0,
        **options,
    )
    return case.require(score, input=input, response=response, baseline=baseline)


async def assert_matches_judge_reference(
    input: str, response: str, *, judge: Any, threshold: float = 0.5, **options: Any
) -> Score:
    """Fail if ``response`` is far from the judge's own answer to ``input`` (ROUGE-L by default)."""
    from pytest_llmops.judges._ground_truth import ground_truth

    score = await ground_truth(input, response, judge=judge, threshold=threshold, **options)
    return case.require(
        score,
        input=input,
        response=response,
        reference=score.details.get("reference", ""),
    )
