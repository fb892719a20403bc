"""Grounded short-answer QA, checked without a judge: is each answer supported by its context?

The same cases and prompt as ``test_grounded_qa.py``, so the default model's
answers come from the cache when that file ran first (same prompt, same key).
Here no expected word is given: ``assert_grounded`` (the offline
hallucination detector) checks the answer against the context alone.

Where the answer is wrong, or the detector's verdict is, the case is a known
failure saying which, read by hand (``KNOWN``): it runs, counts against the
suite's pass-rate gate for this test, and is listed apart in the summary. Of
the 22 answers of the default model (llama-cpp-python 0.3.36, greedy), 7 are
right and pass. 8 are right and flagged anyway (false alarms), because the
detector rewards copying the context's words and word order: a paraphrase
("is held in October"), the question's words ("the first name of the first
keeper") or "The answer is ..." cost an answer its support. 7 are wrong or
add what the context lacks, and all are flagged, 2 of them for the right
reason only in part: no wrong answer passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmops import case_params, load_cases
from pytest_llmops.assertions import assert_grounded

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("context", "question"))

#: Cases that fail, with what happens, read by hand.
KNOWN = {
    # The detector flags a right answer (false alarms).
    "lookup-name": "detector false alarm: 'The first name of the first keeper is Tobias Wren.' is right, but repeats "
    "the question's words in an order the context lacks (p=0.97)",
    "month": "detector false alarm: 'The Harvest Festival is held in October.' is right; 'held' is a paraphrase of "
    "'takes place' (p=1.00)",
    "ingredient": "detector false alarm: 'The secret ingredient of the soup is nutmeg.' is right; the inserted "
    "'of the soup' breaks the context's word pairs (p=0.91)",
    "counterfactual": "detector false alarm: the model answers Lyon (right) as 'The answer is: Lyon', flagged for the "
    "word 'answer' (p=1.00)",
    "distractor-second-fact": "detector false alarm: 'The correct answer is Rocket.' is right, flagged for 'correct "
    "answer' (p=1.00)",
    "colour": "detector false alarm: 'The museum's front door is painted green.' is right, nearly word for word "
    "(p=0.62 against 0.51)",
    "language": "detector false alarm: 'Most people in Oberhain speak German.' is right; the context says "
    "'most of its people speak German' (p=0.92)",
    "negation": "detector false alarm: the model answers tea (right, inferred from 'did not choose coffee') but quotes "
    "the question, which the context lacks, and 'tea' copies no context sentence (p=1.00)",
    # The answer is wrong or adds what the context does not say, and the detector flags it.
    "place": "the default model adds what the context does not say ('a global company', 'Portugal') to the right "
    "city; flagged (p=1.00)",
    "price": "the default model answers 14 but rambles ('we need to convert 14 to a decimal'), which the context does "
    "not support; flagged, though 'The answer is 14.' is flagged too, for the word 'answer' (p=1.00)",
    "count": "the default model answers 17 (adds the pear trees); flagged: 17 is not in the context (p=1.00)",
    "weekday": "the default model says 'the 1st of each month'; flagged: 1st is not in the context (p=1.00)",
    "arithmetic": "the default model answers 7 (computes 7 - 5 = 2, then 2 + 5 = 7); flagged for the 2 (p=1.00)",
    "person-role": "the default model calls Amara Okafor the photographer and Lena Brandt the cook; flagged, barely "
    "(p=0.53 against 0.51), from word-pair order: the detector does not read roles",
    "comparison": "the default model says the oak is taller; flagged only because 'taller' is not a context word, "
    "so the right answer would be flagged too (p=0.98)",
}


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", case_params(CASES, known=KNOWN))
async def test_answer_is_supported_by_the_context(case, prompt, llm):
    answer = await llm.complete(prompt("grounded_qa", context=case.context, question=case.question))

    assert_grounded(answer, case.context)
