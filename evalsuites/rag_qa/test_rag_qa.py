"""Retrieval-augmented QA over a small help centre written for this suite.

The corpus (``corpus/``) is the help centre of the Quillpad, a fictional note
tablet: thirteen short articles, cut into 28 chunks of three sentences with
one sentence of overlap. Each case (``cases.jsonl``) is a question, the ids of
the chunks that hold its answer, the key fact and a reference answer.

Two layers are checked here (the other families, on the same answers, are in
the suite's other files):

* **retrieval** (MiniLM embeddings): each question must find all its relevant
  chunks in the top 5, and the means over all questions must stay above the
  suite's gates (measured: recall@5 1.0, MRR@5 0.96, nDCG@5 0.97, hit
  rate@3 0.95). One question ranks its chunk 4th: a known weakness at k=3.
* **generation** by the embedded default model (SmolLM2-135M, greedy) from
  the top 3 chunks: the answer must contain the key fact. The questions the
  model gets wrong are kept as known weaknesses (``known_failure`` in
  ``cases.jsonl``, with what the model says): they run, count against the
  pass rate the suite's gate holds, and are listed apart in the summary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmops import case_params, load_cases
from pytest_llmops.assertions import assert_contains, assert_mean_retrieval, assert_retrieval

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("question", "relevant", "expected"))

#: Questions whose relevant chunk MiniLM ranks below 3rd, read by hand.
MISSED_AT_3 = {"frozen-reset": "MiniLM ranks reset#1 4th, below the battery and returns articles"}


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_relevant_chunks_are_in_the_top_5(case, retriever):
    results = await retriever.search(case.question, k=5)

    assert_retrieval(results, case.relevant, metric="recall", k=5, min_score=1.0, query=case.question)


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", case_params(CASES, known=MISSED_AT_3))
async def test_a_relevant_chunk_is_in_the_top_3(case, retriever):
    results = await retriever.search(case.question, k=3)

    assert_retrieval(results, case.relevant, metric="hit_rate", k=3, query=case.question)


@pytest.mark.llm_eval
@pytest.mark.parametrize(("metric", "k", "gate"), [("recall", 5, 0.95), ("mrr", 5, 0.9), ("ndcg", 5, 0.9),
                                                   ("hit_rate", 3, 0.9)])
async def test_mean_retrieval_quality_over_the_suite(metric, k, gate, retriever):
    queries = [(await retriever.search(case.question, k=k), case.relevant) for case in CASES]

    assert_mean_retrieval(queries, metric=metric, k=k, min_score=gate)


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", case_params(CASES))
async def test_answer_from_retrieved_context_has_the_key_fact(case, answer_from_retrieval):
    _, answer = await answer_from_retrieval(case.question)

    assert_contains(answer, case.expected, mode="any", ignore_case=True)
