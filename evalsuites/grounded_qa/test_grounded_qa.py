"""Grounded short-answer QA on the embedded default model.

Each case gives a two- or three-sentence context written for this suite and a
question whose answer is one word or number in it. A case passes when the
answer contains the expected word and none of the known wrong answers (the
distractor the context offers, or the answer a careless reader gives).

Cases the 135M default model is known to get wrong are kept, with what it
answers instead as their ``known_failure`` field in ``cases.jsonl``: they run
and count against the pass rate that the suite's gate holds, and the summary
lists them apart (and says so when one passes). Of the 22 cases, the default
model (llama-cpp-python 0.3.36, greedy) answers 18 right and 4 wrong, each
read by hand; the 'weekday' answer passes the check while hedging, and is
documented too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmops import case_params, load_cases
from pytest_llmops.assertions import assert_contains, assert_not_contains

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("context", "question", "expected"))


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", case_params(CASES))
async def test_answer_is_grounded_in_the_context(case, prompt, llm):
    answer = await llm.complete(prompt("grounded_qa", context=case.context, question=case.question))

    assert_contains(answer, case.expected, ignore_case=True)
    if "wrong" in case:
        assert_not_contains(answer, case.wrong, ignore_case=True)
