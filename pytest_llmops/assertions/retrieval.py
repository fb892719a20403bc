"""Retrieval assertions: fail a test when the retriever did not find the labelled chunks.

::

    from pytest_llmops.assertions import assert_retrieval

    async def test_finds_the_refund_policy(retriever):
        results = await retriever.search("How long do I have to return it?", k=5)
        assert_retrieval(results, ["returns#0"], metric="recall", k=5, min_score=1.0)

A failure lists what was retrieved (rank, id, score) and which relevant ids
are missing. A query with no relevant ids ends the check unmeasured.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pytest_llmops.case import require
from pytest_llmops.verdict import Score

__all__ = ["assert_mean_retrieval", "assert_retrieval"]

_DEFAULT_MIN = {"hit_rate": 1.0, "recall": 1.0}


def _threshold(metric: str, min_score: float | None) -> float:
    if min_score is not None:
        if not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score!r}")
        return float(min_score)
    if metric in _DEFAULT_MIN:
        return _DEFAULT_MIN[metric]
    raise ValueError(f"assert_retrieval(metric={metric!r}) needs min_score=...: there is no natural default for it")


def _retrieved_inputs(score: Score) -> dict[str, str]:
    """One line per retrieved chunk (each its own input, so none is cut short)."""
    relevant = set(score.details["relevant"])
    rows = {}
    for row in score.details["retrieved"]:
        value = "" if row["score"] is None else f" (score {row['score']:.3f})"
        rows[f"retrieved #{row['rank']}"] = f"{row['id']}{value}" + ("  <- relevant" if row["id"] in relevant else "")
    return rows or {"retrieved": "nothing"}


def assert_retrieval(
    results: Iterable[Any],
    relevant_ids: Collection[str] | Mapping[str, float],
    *,
    metric: str = "recall",
    k: int = 5,
    min_score: float | None = None,
    query: str | None = None,
) -> Score:
    """Require ``metric@k`` of one query's ``results`` to be at least ``min_score``.

    ``metric``: ``hit_rate``, ``recall``, ``precision``, ``mrr`` or ``ndcg``;
    ``min_score`` defaults to 1.0 for hit rate and recall (every relevant id in
    the top ``k``) and must be given for the others. ``results`` are search
    results (or ids, or ``(id, score)`` pairs), best first.
    """
    from pytest_llmops.retrieval.metrics import metric_name, retrieval_score

    name = metric_name(metric)
    score = retrieval_score(results, relevant_ids, metric=name, k=k, min_score=_threshold(name, min_score), query=query)
    inputs: dict[str, Any] = {}
    if query is not None:
        inputs["query"] = query
    inputs["missing relevant ids"] = ", ".join(score.details["missing"]) or "none"
    inputs.update(_retrieved_inputs(score))
    return require(score, **inputs)


def assert_mean_retrieval(
    queries: Iterable[tuple[Iterable[Any], Collection[str] | Mapping[str, float]]],
    *,
    metric: str = "recall",
    k: int = 5,
    min_score: float,
) -> Score:
    """Require the mean ``metric@k`` over ``(results, relevant_ids)`` pairs to be at least ``min_score``;
    a failure shows the worst queries and their missing ids."""
    from pytest_llmops.retrieval.metrics import mean_retrieval_score, metric_name

    name = metric_name(metric)
    score = mean_retrieval_score(queries, metric=name, k=k, min_score=_threshold(name, min_score))
    worst = {
        f"worst query #{row['index']}": f"{row['value']:.3f}, missing {', '.join(row['missing']) or 'none'}"
        for row in score.details["worst"]
    }
    return require(score, **worst)
