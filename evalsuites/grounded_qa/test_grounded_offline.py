"""Grounded short-answer QA, checked without a judge: is each answer supported by its context?

The same cases and prompt as ``test_grounded_qa.py``, so the default model's
answers come from the cache when that file ran first (same prompt, same key).
Here no expected word is given: ``assert_grounded`` (the offline
hallucination detector) checks the answer against the context alone.

Where the answer is wrong, or the detector cannot judge it, the case is a
known weakness saying which, read by hand (``KNOWN``): it runs, counts in the
suite's gates for this test, and is listed apart in the summary. The detector
(model version 2) judges an answer only inside the region it was validated
on: answers that copy their context's words. Of the 22 answers of the default
model (llama-cpp-python 0.3.36, greedy) it judges 10: the 6 right ones pass and
the 4 wrong ones are flagged (no wrong answer passes, no right one is
flagged). It declines the other 12 (9 right, 3 wrong), which reword their
context, as unmeasured with the reason and the judge-backed alternative
(``assert_faithful``), instead of the false alarms it gave there before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmops import case_params, load_cases
from pytest_llmops.assertions import assert_grounded

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("context", "question"))

DECLINED = "the offline detector declines (unmeasured): the answer rewords its context, where a word-support detector is not valid"

#: Cases that do not pass, with what happens, read by hand (llama-cpp-python 0.3.36, greedy).
KNOWN = {
    # Wrong answers, or answers that add what the context lacks: flagged, as they should be.
    "place": "the default model adds what the context does not say ('a global company', 'Portugal'); flagged",
    "price": "the default model answers 14 but rambles ('we need to convert the cost'); flagged",
    "count": "the default model answers 17 (adds the pear trees); flagged: 17 is not in the context",
    "arithmetic": "the default model answers 7 (computes 7 - 5 = 2, then 2 + 5 = 7); flagged for the 2",
    # The detector declines: it measures word support, which a rewording answer lacks.
    **{case_id: f"{DECLINED} ({what})" for case_id, what in {
        "lookup-name": "right: 'The first name of the first keeper is Tobias Wren.'",
        "colour": "right: 'The museum's front door is painted green.'",
        "month": "right: 'held in the month of October'",
        "language": "right: 'Most people in Oberhain speak German.'",
        "ingredient": "right: 'The secret ingredient of the soup is nutmeg.'",
        "counterfactual": "right: 'The answer is: Lyon.' after a copied sentence",
        "multi-hop": "right: 'The Ravi lives in the blue house on Elm Street.'",
        "distractor-second-fact": "right: 'The correct answer is Rocket.'",
        "negation": "right: quotes the question, then 'tea'",
        "weekday": "wrong: hedges on the meeting day",
        "person-role": "wrong: swaps the photographer and the cook",
        "comparison": "wrong: says the oak is taller",
    }.items()},
}


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", case_params(CASES, known=KNOWN))
async def test_answer_is_supported_by_the_context(case, prompt, llm):
    answer = await llm.complete(prompt("grounded_qa", context=case.context, question=case.question))

    assert_grounded(answer, case.context)
