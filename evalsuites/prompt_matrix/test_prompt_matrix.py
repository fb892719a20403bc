"""Which prompt, temperature and number of examples answer best: a matrix on the embedded model.

Two versions of one template (``evalsuites/prompts/trivia_v1.toml`` and
``trivia_v2.toml``) x temperature 0 and 0.7 x 0 and 2 few-shot examples make
8 cells; each asks the same six short general-knowledge questions. A case
passes when the answer names the fact as a whole word ("8" or "eight", not
"18"). The summary and the HTML report show each cell's pass rate with its
Wilson interval, the best cell against the runner-up (McNemar's test on the
same questions) and the Pareto front; the suite's conftest gates the best
cell and the cells with examples. The cells that lose are data, not failures
of the run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_llmops import load_cases
from pytest_llmops.assertions import assert_regex

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("question", "expected"))


def names_the_fact(expected: Sequence[str]) -> str:
    """A pattern for any of the accepted answers as a whole word."""
    return r"\b(?:" + "|".join(re.escape(word) for word in expected) + r")\b"


@pytest.mark.llm_eval
@pytest.mark.llm_matrix(prompt=["trivia_v1", "trivia_v2"], temperature=[0, 0.7], shots=[0, 2], name="trivia")
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_answer_names_the_fact(case, prompt, llm):
    answer = await llm.complete(prompt(question=case.question))

    assert_regex(answer, names_the_fact(case.expected), flags=re.IGNORECASE)
