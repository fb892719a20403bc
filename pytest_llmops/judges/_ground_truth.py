"""Ground-truth mode (as in OpenAI Evals' model-graded references): the judge writes the reference.

The judge answers the input itself (``reference_answer`` template); a
reference-based metric from ``pytest_llmops.metrics`` then compares the
response with that answer: ROUGE-L F-measure (default) or embedding
similarity.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pytest_llmops.judges._common import MetricRun
from pytest_llmops.judges.engine import judge_name
from pytest_llmops.judges.templates import JudgeTemplate, resolve_template
from pytest_llmops.verdict import Score, UnmeasuredError

__all__ = ["ground_truth"]

Comparison = Literal["rougeL", "semantic"]


class _Precomputed:
    """A synchronous embedder over vectors already obtained from an async one."""

    def __init__(self, table: Mapping[str, Sequence[float]], model: str) -> None:
        self.table = table
        self.model = model

    def embed(self, texts: Sequence[str]) -> list[Sequence[float]]:
        return [self.table[text] for text in texts]


async def ground_truth(
    input: str,
    response: str,
    *,
    judge: Any,
    compare: Comparison = "rougeL",
    threshold: float | None = 0.5,
    embedder: Any | None = None,
    template: JudgeTemplate | str | Path | None = None,
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
) -> Score:
    """``response`` compared with the judge's own answer to ``input`` by ``compare``.

    ``compare="rougeL"`` uses ROUGE-L F-measure (the ``metrics`` extra);
    ``"semantic"`` uses embedding cosine similarity (``embedder``: MiniLM by
    default, or any embedder the metrics take, an async ``LLMClient`` included). The judge's reference is in ``details["reference"]``.
    """
    if compare not in ("rougeL", "semantic"):
        raise ValueError(f"compare must be 'rougeL' or 'semantic', got {compare!r}")
    chosen = resolve_template("reference_answer", template)
    run = MetricRun(f"ground_truth.{compare}", judge, [chosen], guard="off", response_format=response_format,
                    params=params)
    try:
        reply = await run.ask(chosen, {"input": input})
    except UnmeasuredError as error:
        return run.unmeasured(error.reason)
    reference = reply.answer.answer
    if compare == "rougeL":
        from pytest_llmops.metrics import rouge

        inner = rouge(response, reference, rouge_type="rougeL")
    else:
        from pytest_llmops.metrics import semantic_similarity

        if embedder is not None and inspect.iscoroutinefunction(getattr(embedder, "embed", None)):
            # An async client (e.g. an LLMClient embedding model): embed here, on the running loop.
            vectors = await embedder.embed([response, reference])
            embedder = _Precomputed(dict(zip([response, reference], vectors)), judge_name(embedder))
        inner = semantic_similarity(response, reference, embedder=embedder)
    run.options["compare"] = inner.signature or compare
    if inner.value is None:
        return run.unmeasured(
            f"comparing with the judge's reference failed: {inner.reason}",
            reference=reference,
        )
    return run.measured(
        inner.value,
        threshold=threshold,
        reason=f"{compare} against the judge's reference answer {reference[:200]!r}",
        reference=reference,
    )
