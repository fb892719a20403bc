"""Judge checks over log records: the project's judges, client, call cache and concurrency limit.

One ``ModelRuntime`` per call of :func:`judge_scores` (so per worker process or Ray actor): its
client keeps at most ``concurrency`` calls in flight per provider, answers repeats from the SQLite
call cache, and retries as in the eval cases. A failed judge call makes its record's score
unmeasured with the reason, never a pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmops.scoring.checks import Check
from pytest_llmops.verdict import Score


async def _judge_one(check: Check, record: Mapping[str, Any], client: Any) -> Score:
    from pytest_llmops.judges._rubric import rubric
    from pytest_llmops.judges.rag import faithfulness

    text = record.get(check.field)
    if not isinstance(text, str) or not text.strip():
        return Score.unmeasured(check.label, f"the record has no text in field {check.field!r}")
    question = str(record.get(check.input_field) or "") if check.input_field else ""
    options = dict(check.options)
    if check.name == "rubric":
        if "score_range" in options:
            options["score_range"] = tuple(options["score_range"])
        return await rubric(text, judge=client, input=question, name=check.label, **options)
    context = record.get(check.context_field or "")
    if not isinstance(context, (str, list)) or not context:
        return Score.unmeasured(check.label, f"the record has no context in field {check.context_field!r}")
    return await faithfulness(text, context=context, judge=client, input=question, name=check.label, **options)


def judge_scores(
    records: Sequence[Mapping[str, Any]], checks: Sequence[Check], *, concurrency: int = 16,
    cache_path: Path | None = Path(".llmops/cache.sqlite"),
) -> list[dict[str, Score]]:
    """For each record, the judge checks' scores by label (records in order)."""
    from pytest_llmops.models.cache import CallCache, RecordMode
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

    judged = [check for check in checks if check.judged]
    if not judged or not records:
        return [{} for _ in records]
    cache = CallCache(cache_path) if cache_path is not None else None
    runtime = ModelRuntime(cache=cache, record_mode=RecordMode.NEW if cache else RecordMode.OFF,
                           concurrency=concurrency, keep_calls=False)
    clients = {
        check.label: LLMClient(ModelConfig(model=str(check.judge), role="judge", api_base=check.judge_api_base,
                                           params={"temperature": 0.0}), runtime)
        for check in judged
    }

    async def one(check: Check, record: Mapping[str, Any]) -> Score:
        try:
            return await _judge_one(check, record, clients[check.label])
        except Exception as exc:  # ProviderError after retries, a config error: unmeasured, with the reason
            return Score.unmeasured(check.label, f"judge call failed: {type(exc).__name__}: {exc}")

    async def everything() -> list[Score]:
        # All at once: the client's per-provider limit decides how many are in flight.
        return list(await asyncio.gather(*(one(check, record) for record in records for check in judged)))

    try:
        flat = runtime.run(everything())
    finally:
        runtime.close()
    per_record = len(judged)
    return [
        {check.label: flat[i * per_record + j] for j, check in enumerate(judged)} for i in range(len(records))
    ]
