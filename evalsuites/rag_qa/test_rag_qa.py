"""Retrieval-augmented QA over a small help centre written for this suite.

The corpus (``corpus/``) is the help centre of the Quillpad, a fictional note
tablet: thirteen short articles, cut into 28 chunks of three sentences with
one sentence of overlap. Each case (``cases.jsonl``) is a question, the ids of
the chunks that hold its answer, the key fact and a reference answer.

Two layers are gated:

* **retrieval** (MiniLM embeddings): each question must find all its relevant
  chunks in the top 5, and the means over all questions must stay above
  the gates below (measured: recall@5 1.0, MRR@5 0.96, nDCG@5 0.97, hit
  rate@3 0.95). One question ranks its chunk 4th and is a strict expected
  failure at k=3.
* **generation** by the embedded default model (SmolLM2-135M, greedy) from
  the top 3 chunks: the answer must contain the key fact. Questions the
  model gets wrong are strict expected failures that say what it answers
  (13 of 19 right, read by hand; one wrong answer follows the retrieval
  miss above).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmops import load_cases
from pytest_llmops.assertions import (
    assert_contains,
    assert_mean_retrieval,
    assert_retrieval,
)

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("question", "relevant", "expected"))

#: Questions whose relevant chunk MiniLM ranks below 3rd, read by hand.
MISSED_AT_3 = {"frozen-reset": "ranks reset#1 4th, below the battery and returns articles"}

#: Questions the default model answers wrongly from correct context, with what it says.
WRONG_ANSWERS = {
    "battery-saver": "says to turn Battery Saver mode on, without naming the Power menu",
    "hotel-wifi": "repeats the question (\"use an airport network that shows a sign-in page\") instead of the hotspot",
    "sync-interval": "quotes the subscription plans chunk instead of the ten-minute interval",
    "nib-pack": "says the pack holds 100 nibs",
    "frozen-reset": "answers from the factory-reset overview: its top 3 lacks reset#1 (MiniLM ranks it 4th)",
    "left-handed": "degenerates into repeating 'mode'",
}


def _params(known: dict[str, str], what: str):
    return [
        pytest.param(case, id=str(case), marks=[pytest.mark.xfail(strict=True, reason=f"{what} {known[case.id]}")]
                     if case.id in known else [])
        for case in CASES
    ]


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_relevant_chunks_are_in_the_top_5(case, retriever):
    results = await retriever.search(case.question, k=5)

    assert_retrieval(results, case.relevant, metric="recall", k=5, min_score=1.0, query=case.question)


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", _params(MISSED_AT_3, "MiniLM"))
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
@pytest.mark.parametrize("case", _params(WRONG_ANSWERS, "the default model"))
async def test_answer_from_retrieved_context_has_the_key_fact(case, retriever, prompt, llm):
    chunks = await retriever.search(case.question, k=3)
    answer = await llm.complete(prompt("rag_qa", context=chunks, question=case.question))

    assert_contains(answer, case.expected, mode="any", ignore_case=True)
