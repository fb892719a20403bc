"""Retrieval metrics against labelled relevant ids: hit rate, recall, precision, MRR, nDCG at k.

Small pure functions over a ranked list of ids (best first) and the relevant
ids (a collection, or a mapping id -> graded gain for nDCG). A duplicated id
in a ranking takes its slots but counts once, at its first rank. Standard library only; the
tests check them against hand-computed values and scikit-learn's
``ndcg_score``.

:func:`retrieval_score` and :func:`mean_retrieval_score` wrap them into
``Score`` objects (with the retrieved, found and missing ids in ``details``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from pytest_llmops.verdict import Score

METRICS = ("hit_rate", "recall", "precision", "mrr", "ndcg")


def _gains(relevant: Collection[str] | Mapping[str, float]) -> dict[str, float]:
    if isinstance(relevant, str):
        raise TypeError("relevant ids must be a collection of ids, not one string; wrap it in a list: [id]")
    if isinstance(relevant, Mapping):
        return {str(k): float(v) for k, v in relevant.items() if float(v) > 0}
    return {str(i): 1.0 for i in relevant}


def _top(retrieved: Sequence[str], k: int | None) -> list[str]:
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    # Cut at k first: a duplicate still takes a slot, it just cannot count twice.
    cut = list(retrieved) if k is None else list(retrieved)[:k]
    return list(dict.fromkeys(str(i) for i in cut))


def hit_rate_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 if any relevant id is in the top ``k``, else 0.0 (averaged over queries, the hit rate)."""
    gains = _gains(relevant)
    return 1.0 if any(i in gains for i in _top(retrieved, k)) else 0.0


def recall_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant ids found in the top ``k``."""
    gains = _gains(relevant)
    if not gains:
        raise ValueError("recall is undefined without relevant ids")
    return sum(1 for i in _top(retrieved, k) if i in gains) / len(gains)


def precision_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the top ``k`` slots holding a relevant id (empty slots count as misses)."""
    gains = _gains(relevant)
    return sum(1 for i in _top(retrieved, k) if i in gains) / k


def reciprocal_rank(retrieved: Sequence[str], relevant: Collection[str], k: int | None = None) -> float:
    """1 / rank of the first relevant id (within the top ``k`` if given), 0.0 if none; averaged, the MRR."""
    gains = _gains(relevant)
    for rank, chunk_id in enumerate(_top(retrieved, k), start=1):
        if chunk_id in gains:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved: Sequence[str], relevant: Collection[str] | Mapping[str, float], k: int) -> float:
    """Normalised discounted cumulative gain at ``k``: sum of gain / log2(rank + 1) over the top ``k``,
    divided by the same sum for the ideal ranking. Binary gains unless ``relevant`` maps ids to gains."""
    gains = _gains(relevant)
    if not gains:
        raise ValueError("nDCG is undefined without relevant ids")
    dcg = sum(gains.get(i, 0.0) / math.log2(rank + 1) for rank, i in enumerate(_top(retrieved, k), start=1))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal, start=1))
    return dcg / idcg


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "hit_rate": hit_rate_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": reciprocal_rank,
    "ndcg": ndcg_at_k,
}
_ALIASES = {"hit": "hit_rate", "hitrate": "hit_rate", "hit_rate": "hit_rate", "recall": "recall",
            "precision": "precision", "mrr": "mrr", "reciprocal_rank": "mrr", "ndcg": "ndcg"}


def metric_name(metric: str) -> str:
    """The canonical metric name; an unknown one is a ValueError listing the known ones."""
    name = _ALIASES.get(str(metric).strip().lower().replace("-", "_").replace("@", ""))
    if name is None:
        raise ValueError(f"unknown retrieval metric {metric!r}; use one of: {', '.join(METRICS)}")
    return name


def ranked(results: Iterable[Any]) -> list[tuple[str, float | None]]:
    """(id, score) pairs from search results, ``(id, score)`` tuples or plain ids, in order."""
    if isinstance(results, str):
        raise TypeError("results must be a list of search results or ids, not one string")
    pairs: list[tuple[str, float | None]] = []
    for item in results:
        if isinstance(item, str):
            pairs.append((item, None))
        elif isinstance(item, tuple) and len(item) == 2:
            pairs.append((str(item[0]), float(item[1])))
        elif hasattr(item, "id"):
            score = getattr(item, "score", None)
            pairs.append((str(item.id), None if score is None else float(score)))
        else:
            raise TypeError(f"cannot read a chunk id from {item!r}; pass search results, (id, score) pairs or ids")
    return pairs


def compute(metric: str, retrieved: Sequence[str], relevant: Collection[str] | Mapping[str, float], k: int) -> float:
    """The value of ``metric`` at ``k`` for one query."""
    return _FUNCTIONS[metric_name(metric)](retrieved, relevant, k)


def retrieval_score(
    results: Iterable[Any],
    relevant_ids: Collection[str] | Mapping[str, float],
    *,
    metric: str = "recall",
    k: int = 5,
    min_score: float | None = None,
    query: str | None = None,
) -> Score:
    """One query's ``metric@k`` as a ``Score`` (held to ``min_score`` when given).

    No relevant ids leaves the score unmeasured: nothing can be found, so no
    number would mean anything. ``details`` list the retrieved, found and missing ids.
    """
    name = metric_name(metric)
    pairs = ranked(results)
    ids = [i for i, _ in pairs]
    gains = _gains(relevant_ids)
    label = f"{name}@{k}"
    signature = f"retrieval:{label}|{'graded' if isinstance(relevant_ids, Mapping) else 'binary'}"
    top = _top(ids, k)
    scores = dict(reversed(pairs))  # the first score of each id
    details: dict[str, Any] = {
        "k": k,
        "retrieved": [{"rank": r, "id": i, "score": scores.get(i)} for r, i in enumerate(top, start=1)],
        "relevant": sorted(gains),
        "found": [i for i in top if i in gains],
        "missing": sorted(i for i in gains if i not in top),
    }
    if query is not None:
        details["query"] = query
    if not gains:
        return Score.unmeasured(label, "no relevant ids were given for this query", signature=signature,
                                details=details)
    value = _FUNCTIONS[name](ids, relevant_ids if name == "ndcg" else gains, k)
    reason = f"found {len(details['found'])} of {len(gains)} relevant in the top {k}"
    return Score.measured(label, value, threshold=min_score, reason=reason, signature=signature, details=details)


def mean_retrieval_score(
    queries: Iterable[tuple[Iterable[Any], Collection[str] | Mapping[str, float]]],
    *,
    metric: str = "recall",
    k: int = 5,
    min_score: float | None = None,
) -> Score:
    """The mean of ``metric@k`` over queries ``(results, relevant_ids)``; queries without labels are left out
    (and listed); none measured leaves the score unmeasured."""
    name = metric_name(metric)
    per_query = [retrieval_score(results, relevant, metric=name, k=k) for results, relevant in queries]
    measured = [s for s in per_query if s.value is not None]
    label = f"mean {name}@{k}"
    signature = per_query[0].signature if per_query else f"retrieval:{name}@{k}"
    details = {
        "queries": len(per_query),
        "unlabelled": sum(1 for s in per_query if s.value is None),
        "per_query": [s.value for s in per_query],
        "worst": sorted(
            ({"index": n, "value": s.value, "missing": list(s.details["missing"])}
             for n, s in enumerate(per_query) if s.value is not None),
            key=lambda row: row["value"],
        )[:5],
    }
    if not measured:
        return Score.unmeasured(label, "no query had relevant ids to measure against", signature=signature,
                                details=details)
    value = sum(s.value for s in measured) / len(measured)  # type: ignore[misc]
    return Score.measured(label, value, threshold=min_score, reason=f"over {len(measured)} queries",
                          signature=signature, details=details)
