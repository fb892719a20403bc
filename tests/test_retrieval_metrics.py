"""Retrieval metrics against hand-computed values and scikit-learn, and the assertions built on them."""

from __future__ import annotations

import math

import pytest

from pytest_llmops.assertions import assert_mean_retrieval, assert_retrieval
from pytest_llmops.retrieval.metrics import (
    hit_rate_at_k,
    mean_retrieval_score,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    retrieval_score,
)
from pytest_llmops.verdict import UnmeasuredError, Verdict

RETRIEVED = ["a", "x", "b", "y", "c"]
RELEVANT = {"a", "b", "c", "d"}


def test_hit_rate_is_one_when_any_relevant_id_is_in_the_top_k():
    assert hit_rate_at_k(RETRIEVED, RELEVANT, 1) == 1.0
    assert hit_rate_at_k(["x", "y", "a"], RELEVANT, 2) == 0.0
    assert hit_rate_at_k(["x", "y", "a"], RELEVANT, 3) == 1.0


def test_recall_and_precision_count_relevant_ids_in_the_top_k():
    assert recall_at_k(RETRIEVED, RELEVANT, 3) == 0.5  # a, b of four
    assert recall_at_k(RETRIEVED, RELEVANT, 5) == 0.75  # a, b, c of four
    assert precision_at_k(RETRIEVED, RELEVANT, 3) == pytest.approx(2 / 3)
    # Fewer results than k: the empty slots are misses.
    assert precision_at_k(["a"], RELEVANT, 4) == 0.25


def test_reciprocal_rank_is_one_over_the_first_relevant_rank():
    assert reciprocal_rank(["x", "a", "b"], RELEVANT) == 0.5
    assert reciprocal_rank(["x", "y", "z"], RELEVANT) == 0.0
    assert reciprocal_rank(["x", "y", "a"], RELEVANT, k=2) == 0.0


def test_ndcg_with_binary_gains_matches_the_hand_computed_value():
    # DCG@3 = 1/log2(2) + 0 + 1/log2(4) = 1.5; the ideal ranking has three relevant ids on top.
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)

    assert ndcg_at_k(RETRIEVED, RELEVANT, 3) == pytest.approx(1.5 / ideal)
    assert ndcg_at_k(["a", "b", "c", "d"], RELEVANT, 3) == pytest.approx(1.0)


def test_ndcg_with_graded_gains_matches_the_hand_computed_value():
    dcg = 1 / math.log2(2) + 3 / math.log2(3)
    ideal = 3 / math.log2(2) + 1 / math.log2(3)

    assert ndcg_at_k(["b", "a"], {"a": 3, "b": 1}, 2) == pytest.approx(dcg / ideal)


def test_ndcg_agrees_with_scikit_learn_on_full_rankings():
    np = pytest.importorskip("numpy")
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(7)
    for _ in range(20):
        gains = rng.integers(0, 4, size=12)
        gains[0] = max(gains[0], 1)  # at least one relevant item
        scores = rng.permutation(12).astype(float)  # no ties: one ranking
        ranking = [f"d{i}" for i in np.argsort(-scores)]
        relevant = {f"d{i}": float(g) for i, g in enumerate(gains)}
        for k in (1, 3, 5, 12):
            expected = ndcg_score([gains], [scores], k=k)
            assert ndcg_at_k(ranking, relevant, k) == pytest.approx(expected), (k, relevant, ranking)


def test_a_duplicated_id_counts_once_at_its_first_rank():
    assert recall_at_k(["a", "a", "b"], {"a", "b"}, 2) == 0.5
    assert precision_at_k(["a", "a", "b"], {"a", "b"}, 3) == pytest.approx(2 / 3)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        recall_at_k(RETRIEVED, RELEVANT, 0)
    with pytest.raises(TypeError, match="wrap it in a list"):
        recall_at_k(RETRIEVED, "a", 3)
    with pytest.raises(ValueError, match="unknown retrieval metric 'f1'"):
        retrieval_score(RETRIEVED, RELEVANT, metric="f1")


def test_retrieval_score_is_a_score_with_what_was_found_and_missing():
    score = retrieval_score([("a", 0.9), ("x", 0.8), ("b", 0.7)], RELEVANT, metric="recall", k=3, min_score=0.6)

    assert score.name == "recall@3" and score.value == 0.5 and score.verdict is Verdict.FAIL
    assert score.details["found"] == ["a", "b"]
    assert score.details["missing"] == ["c", "d"]
    assert score.details["retrieved"][1] == {"rank": 2, "id": "x", "score": 0.8}


def test_without_relevant_ids_the_score_is_unmeasured_not_zero():
    score = retrieval_score(RETRIEVED, [], metric="recall", k=3)

    assert score.verdict is Verdict.UNMEASURED and score.value is None
    assert "no relevant ids" in score.reason


def test_mean_score_averages_measured_queries_and_lists_the_worst():
    score = mean_retrieval_score(
        [(["a", "x"], ["a"]), (["x", "y"], ["b"]), (["c"], [])], metric="hit_rate", k=2, min_score=0.4
    )

    assert score.value == 0.5 and score.passed
    assert score.details["unlabelled"] == 1
    assert score.details["worst"][0] == {"index": 1, "value": 0.0, "missing": ["b"]}


def test_assert_retrieval_passes_when_every_relevant_id_is_found():
    score = assert_retrieval(["b", "a", "z"], ["a", "b"], k=2)

    assert score.value == 1.0


def test_assert_retrieval_failure_lists_what_was_retrieved_and_what_is_missing():
    with pytest.raises(AssertionError) as raised:
        assert_retrieval([("faq#2", 0.81), ("returns#0", 0.74), ("faq#0", 0.5)], ["returns#0", "returns#1"],
                         metric="recall", k=3, query="How do I return it?")

    message = str(raised.value)
    assert "recall@3 = 0.5 (needs >= 1: fail)" in message
    assert "query: How do I return it?" in message
    assert "missing relevant ids: returns#1" in message
    assert "retrieved #1: faq#2 (score 0.810)" in message
    assert "retrieved #2: returns#0 (score 0.740)  <- relevant" in message


def test_assert_retrieval_needs_a_threshold_for_graded_metrics():
    with pytest.raises(ValueError, match="needs min_score"):
        assert_retrieval(["a"], ["a"], metric="ndcg", k=3)


def test_assert_retrieval_without_labels_ends_unmeasured():
    with pytest.raises(UnmeasuredError, match="no relevant ids"):
        assert_retrieval(["a"], [], k=3)


def test_assert_mean_retrieval_failure_shows_the_worst_queries():
    with pytest.raises(AssertionError) as raised:
        assert_mean_retrieval([(["a"], ["a"]), (["x"], ["b"])], metric="mrr", k=3, min_score=0.9)

    message = str(raised.value)
    assert "mean mrr@3 = 0.5 (needs >= 0.9: fail)" in message
    assert "worst query #1: 0.000, missing b" in message
