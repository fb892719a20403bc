"""Judge metrics for grounded answers and retrieval (RAG).

* ``faithfulness``: the judge splits the response into claims, then checks
  each against the context; the score is the share supported, and the
  unsupported claims are listed in the reason (hallucinations).
* ``answer_relevancy``: the share of the response's statements that help
  answer the question.
* ``context_precision``: were the useful chunks ranked first? Average
  precision over the retrieved chunks, each judged useful or not for
  arriving at the answer.
* ``context_recall``: the share of the reference answer's claims that the
  retrieved context supports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmops.judges._common import GuardMode, MetricRun, check_fraction
from pytest_llmops.judges.templates import JudgeTemplate, resolve_template
from pytest_llmops.verdict import Score, UnmeasuredError

__all__ = ["answer_relevancy", "context_precision", "context_recall", "faithfulness"]

TemplateArg = JudgeTemplate | str | Path | None


def _context(context: str | Sequence[Any]) -> str | list[Any]:
    if isinstance(context, str):
        if not context.strip():
            raise ValueError("the context is empty: pass the text (or list of chunks) the answer must be grounded in")
        return context
    chunks = list(context)
    if not chunks:
        raise ValueError("the context is an empty list: pass the retrieved chunks")
    return chunks


def _one_per_claim(answer: Any, variables: Mapping[str, Any]) -> str | None:
    expected = len(variables["claims"])
    if len(answer.verdicts) != expected:
        return f"verdicts: {len(answer.verdicts)} verdicts for {expected} claims; give exactly one per claim, in order"
    return None


def _one_per_chunk(answer: Any, variables: Mapping[str, Any]) -> str | None:
    expected = len(variables["chunks"])
    indexes = [c.index for c in answer.chunks]
    if indexes != list(range(1, expected + 1)):
        return (
            f"chunks: got indexes {indexes} for {expected} chunks; give one entry per chunk with index 1 to {expected}"
        )
    return None


async def faithfulness(
    response: str,
    *,
    context: str | Sequence[Any],
    judge: Any,
    input: str = "",
    threshold: float | None = 1.0,
    claims_template: TemplateArg = None,
    template: TemplateArg = None,
    guard: GuardMode = "flag",
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
    name: str = "faithfulness",
) -> Score:
    """Share of the claims in ``response`` that ``context`` supports (1.0: no hallucination).

    Passes at ``threshold`` (default 1.0: every claim supported). A response
    with no claims at all is unmeasured, not a pass.
    """
    check_fraction(threshold, "threshold")
    ctx = _context(context)
    claims_tpl = resolve_template("claims", claims_template)
    verify_tpl = resolve_template("faithfulness", template)
    run = MetricRun(name, judge, [claims_tpl, verify_tpl], guard=guard, guarded={"response": response},
                    response_format=response_format, params=params,
                    judged={"input": input, "output": response, "context": ctx})
    try:
        split = await run.ask(claims_tpl, {"input": input, "response": response})
        claims = [c.strip() for c in split.answer.claims if c.strip()]
        if not claims:
            return run.unmeasured("the judge found no claims in the response, so there is nothing to verify")
        checked = await run.ask(verify_tpl, {"context": ctx, "claims": claims}, check=_one_per_claim)
    except UnmeasuredError as error:
        return run.unmeasured(error.reason)
    verdicts = checked.answer.verdicts
    return run.share(
        len(claims),
        [f"{c} ({v.reason})" if v.reason else c for c, v in zip(claims, verdicts) if not v.supported],
        counted="claims supported by the context",
        missing="unsupported",
        threshold=threshold,
        claims=[{"claim": c, "supported": v.supported, "reason": v.reason} for c, v in zip(claims, verdicts)],
        unsupported_claims=[c for c, v in zip(claims, verdicts) if not v.supported],
    )


async def answer_relevancy(
    response: str,
    *,
    input: str,
    judge: Any,
    threshold: float | None = 0.7,
    template: TemplateArg = None,
    guard: GuardMode = "flag",
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
    name: str = "answer_relevancy",
) -> Score:
    """Share of the statements in ``response`` that help answer ``input``."""
    check_fraction(threshold, "threshold")
    if not input.strip():
        raise ValueError("answer_relevancy() needs the question: pass input='...'")
    chosen = resolve_template("answer_relevancy", template)
    run = MetricRun(name, judge, [chosen], guard=guard, guarded={"response": response},
                    response_format=response_format, params=params, judged={"input": input, "output": response})
    try:
        reply = await run.ask(chosen, {"input": input, "response": response})
    except UnmeasuredError as error:
        return run.unmeasured(error.reason)
    statements = reply.answer.statements
    if not statements:
        return run.unmeasured("the judge found no statements in the response")
    return run.share(
        len(statements),
        [s.statement for s in statements if not s.relevant],
        counted="statements address the question",
        missing="off-topic",
        threshold=threshold,
        statements=[s.model_dump() for s in statements],
    )


def average_precision(useful: Sequence[bool]) -> float:
    """Mean of precision@k over the ranks k that hold a useful chunk (0.0 when none is useful)."""
    hits = 0
    total = 0.0
    for rank, flag in enumerate(useful, start=1):
        if flag:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


async def context_precision(
    input: str,
    chunks: Sequence[Any],
    *,
    answer: str,
    judge: Any,
    threshold: float | None = 0.5,
    template: TemplateArg = None,
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
    name: str = "context_precision",
) -> Score:
    """How well the retriever ranked useful ``chunks`` first, for ``input`` and its ``answer``.

    ``answer`` is the reference answer (or, without one, the response). The
    value is the average precision of the judge's useful/not-useful marks.
    """
    check_fraction(threshold, "threshold")
    items = _context(chunks)
    if isinstance(items, str):
        items = [items]
    chosen = resolve_template("context_precision", template)
    run = MetricRun(name, judge, [chosen], guard="off", response_format=response_format, params=params)
    try:
        reply = await run.ask(chosen, {"input": input, "answer": answer, "chunks": items}, check=_one_per_chunk)
    except UnmeasuredError as error:
        return run.unmeasured(error.reason)
    marks = [c.useful for c in reply.answer.chunks]
    value = average_precision(marks)
    useful_at = [i for i, flag in enumerate(marks, start=1) if flag]
    return run.measured(
        value,
        threshold=threshold,
        reason=f"useful chunks at ranks {useful_at or 'none'} of {len(marks)}",
        chunks=[c.model_dump() for c in reply.answer.chunks],
    )


async def context_recall(
    input: str,
    chunks: Sequence[Any] | str,
    *,
    reference: str,
    judge: Any,
    threshold: float | None = 0.7,
    template: TemplateArg = None,
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
    name: str = "context_recall",
) -> Score:
    """Share of the ``reference`` answer's claims that the retrieved ``chunks`` support."""
    check_fraction(threshold, "threshold")
    if not reference.strip():
        raise ValueError("context_recall() needs the reference answer: pass reference='...'")
    ctx = _context(chunks)
    chosen = resolve_template("context_recall", template)
    run = MetricRun(name, judge, [chosen], guard="off", response_format=response_format, params=params)
    try:
        reply = await run.ask(chosen, {"input": input, "context": ctx, "reference": reference})
    except UnmeasuredError as error:
        return run.unmeasured(error.reason)
    claims = reply.answer.claims
    if not claims:
        return run.unmeasured("the judge found no claims in the reference answer")
    return run.share(
        len(claims),
        [c.claim for c in claims if not c.attributed],
        counted="reference claims found in the context",
        missing="missing",
        threshold=threshold,
        claims=[c.model_dump() for c in claims],
    )
