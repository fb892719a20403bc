"""The judge pipeline on the default model's answers, with a **scripted** judge.

``assert_faithful`` asks the judge to split each answer into claims, then to
check every claim against the retrieved chunks. The ``judge`` fixture of this
suite (``conftest.py``) is the project's OpenAI-compatible test server on
127.0.0.1 playing the judge with a fixed rule: a claim is supported when at
least 75% of its content words occur in the context. It is not a language
model, and its verdicts are only as good as that rule; it makes the whole
pipeline (templates, JSON verdicts over HTTP, schema checks, records, gates)
run offline. Give ``--llmops-judge=<model>`` to judge with a real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmops import case_params, load_cases
from pytest_llmops.assertions import assert_faithful

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("question",))

#: Answers the scripted judge finds unfaithful, read by hand.
KNOWN = {
    "full-light": "calls the charging light 'a marker pen', made up from another chunk",
    "nib-pack": "answers 10, which no chunk says (the pack holds nine)",
    "warranty-length": "the answer is cut at the 32-token cap mid-sentence ('It is available'), a claim no chunk makes",
    "plus-price": "invents a holiday offer",
    "email-limit": "scripted-rule false alarm: the answer is right, but 'size limit' comes from the question, "
    "not the chunks",
}


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", case_params(CASES, known=KNOWN))
async def test_answer_is_faithful_to_the_retrieved_chunks(case, answer_from_retrieval, judge):
    chunks, answer = await answer_from_retrieval(case.question)

    await assert_faithful(answer, context=chunks, judge=judge, input=case.question)
