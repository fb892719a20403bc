"""Asking the judge: every labelled item, unperturbed and under each perturbation, through the project's judges.

``rubric`` and ``faithfulness`` items go through the project's metric
functions (the same templates, engine, re-ask and unmeasured rules as in a
test). ``pairwise`` items are asked in one order a request through the judge
engine with the pairwise template: ``pairwise()`` itself asks both orders and
turns a disagreement into a tie, which would hide the position bias the audit
measures. The judge guard is off (``guard="off"``): the audit measures the
judge itself, not the guard's flags.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_llmops.judges.audit.labels import AuditItem
from pytest_llmops.judges.engine import judge_name
from pytest_llmops.judges.audit.perturb import PERTURBATIONS, applies, perturb, pushed_verdict
from pytest_llmops.judges.audit.report import AuditReport, Judged, Judgement, build_report

__all__ = ["DEFAULT_RUBRIC_CRITERIA", "Judgement", "judge_item", "run_audit"]

DEFAULT_RUBRIC_CRITERIA = "The answer is correct, and everything it states is supported by the context."
_PAIRWISE_VALUE = {"A": "a", "B": "b", "tie": "tie"}


async def _pairwise(judge: Any, item: AuditItem, criteria: str, template: Any, params: Mapping[str, Any] | None,
                    ) -> Judgement:
    from pytest_llmops.judges.engine import ask
    from pytest_llmops.judges.templates import resolve_template

    values = {"criteria": criteria, "input": item.input, "response_a": item.response_a, "response_b": item.response_b}
    reply = await ask(judge, resolve_template("pairwise", template), values, params=params)
    winner = _PAIRWISE_VALUE[reply.answer.winner]
    return Judgement(winner, None, reply.answer.reasoning)


async def judge_item(
    judge: Any,
    template: str,
    item: AuditItem,
    *,
    criteria: str | None = None,
    threshold: float | None = None,
    template_file: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
) -> Judgement:
    """The judge's verdict on ``item``; a malformed answer or a failed call is unmeasured, with the reason.

    Bad options (a threshold outside the range, a broken template file) raise: they are usage errors.
    """
    from pytest_llmops.verdict import UnmeasuredError, Verdict

    try:
        if template == "pairwise":
            from pytest_llmops.judges._pairwise import DEFAULT_CRITERIA

            return await _pairwise(judge, item, item.criteria or criteria or DEFAULT_CRITERIA, template_file, params)
        if template == "faithfulness":
            from pytest_llmops.judges.rag import faithfulness

            extra = {} if threshold is None else {"threshold": threshold}
            score = await faithfulness(item.output, context=item.context, input=item.input, judge=judge,
                                       template=template_file, guard="off", params=params, **extra)
        else:
            from pytest_llmops.judges._rubric import rubric

            score = await rubric(item.output, criteria=item.criteria or criteria or DEFAULT_RUBRIC_CRITERIA,
                                 input=item.input, context=item.context or "", judge=judge, threshold=threshold,
                                 template=template_file, guard="off", params=params)
    except UnmeasuredError as error:  # a malformed answer, a refusal, a provider error after retries
        return Judgement(None, None, error.reason)
    if score.verdict is Verdict.UNMEASURED:
        return Judgement(None, None, score.reason)
    return Judgement(score.verdict.value, score.value, score.reason)


async def run_audit(
    judge: Any,
    template: str,
    items: list[AuditItem],
    *,
    samples: int = 3,
    temperature: float = 0.7,
    criteria: str | None = None,
    threshold: float | None = None,
    template_file: str | Path | None = None,
    confidence: float = 0.95,
    labels: str = "",
) -> AuditReport:
    """Audit ``judge`` with ``template`` over ``items``; every judge call is started at once.

    The client's per-provider concurrency limit decides how many are in
    flight; temperature-0 calls are answered from the call cache on a rerun.
    ``samples`` extra answers per item are asked at ``temperature`` with
    seeds 1..``samples``: distinct requests, so none is the temperature-0
    answer from the cache (a rerun replays the same samples from it).
    """
    # Usage errors before any judge call: a broken template file, a threshold the metric refuses.
    templates = _template_refs(template, template_file)
    _check_threshold(template, threshold)

    def one(item: AuditItem, params: Mapping[str, Any] | None = None) -> Any:
        return judge_item(judge, template, item, criteria=criteria, threshold=threshold,
                          template_file=template_file, params=params)

    text_kinds = [p.name for p in PERTURBATIONS if applies(p, template) is None and p.name != "repeated_sampling"]
    jobs: list[Any] = [one(item) for item in items]
    for name in text_kinds:
        jobs += [one(perturb(name, item, template)) for item in items]
    for seed in range(1, samples + 1):
        jobs += [one(item, {"temperature": temperature, "seed": seed}) for item in items]
    answers = list(await asyncio.gather(*jobs))

    n = len(items)
    base = answers[:n]
    perturbed: dict[str, list[Judged]] = {}
    for k, name in enumerate(text_kinds, start=1):
        chunk = answers[k * n:(k + 1) * n]
        perturbed[name] = [
            Judged(item, before, _unswapped(name, after), pushed_verdict(name, item, template))
            for item, before, after in zip(items, base, chunk)
        ]
    start = (len(text_kinds) + 1) * n
    repeats = [answers[start + s * n:start + (s + 1) * n] for s in range(samples)]
    return build_report(
        template=template,
        items=items,
        base=base,
        perturbed=perturbed,
        repeats=[list(per_item) for per_item in zip(*repeats)] if samples else [],
        samples=samples,
        temperature=temperature,
        confidence=confidence,
        labels=labels,
        judge_model=judge_name(judge),
        templates=templates,
    )


def _check_threshold(template: str, threshold: float | None) -> None:
    if threshold is None or template == "pairwise":
        return
    low, high = (0.0, 1.0) if template == "faithfulness" else (1.0, 5.0)
    if not low <= threshold <= high:
        unit = "a share of claims" if template == "faithfulness" else "a score on the rubric's 1-5 range"
        raise ValueError(f"--threshold {threshold:g} is outside {low:g}-{high:g}; the {template} threshold is {unit}")


def _template_refs(template: str, template_file: str | Path | None) -> list[dict[str, str]]:
    from pytest_llmops.judges.templates import resolve_template

    kinds = ("claims", "faithfulness") if template == "faithfulness" else (template,)
    return [resolve_template(kind, template_file if kind == template else None).describe() for kind in kinds]


def _unswapped(name: str, answer: Judgement) -> Judgement:
    """A swapped pair's verdict in the item's own terms (the judge's "A" was the original B)."""
    if name != "order_swapped" or answer.verdict is None:
        return answer
    return Judgement({"a": "b", "b": "a", "tie": "tie"}[answer.verdict], answer.value, answer.reason)
