"""A small tool-using agent on the embedded model, judged by its trace.

Every tool call and model call becomes a span of the case (``@traced``, the ``llm`` fixture); the
assertions read the trajectory from there, as they would for an app you evaluate.
"""

from __future__ import annotations

import re

import pytest

from pytest_llmops import assert_steps, assert_tool_called, assert_trajectory, traced
from pytest_llmops.assertions import assert_contains

CITIES = {"paris": "12 degrees and cloudy", "oslo": "-3 degrees and snowing", "lisbon": "19 degrees and sunny"}


@traced(kind="tool")
def weather(city: str) -> str:
    return CITIES.get(city.lower(), "unknown city")


@traced(kind="tool")
def calculator(expression: str) -> str:
    # Digits and + - * / only: the expression comes from the question text.
    if not re.fullmatch(r"[\d\s+\-*/().]+", expression):
        raise ValueError(f"not an arithmetic expression: {expression!r}")
    return str(eval(expression, {"__builtins__": {}}))  # noqa: S307 - checked to be arithmetic above


@traced(kind="agent")
async def agent(llm, question: str) -> str:
    """Pick the tools by rule, call them, and let the model answer from their results."""
    facts = []
    for city in CITIES:
        if city in question.lower():
            facts.append(f"Weather in {city.title()}: {weather(city)}.")
    arithmetic = re.search(r"\d+(?:\s*[-+*/]\s*\d+)+", question)
    if arithmetic:
        facts.append(f"{arithmetic.group(0)} = {calculator(arithmetic.group(0))}.")
    prompt = "Facts:\n" + "\n".join(facts) + f"\n\nUsing only the facts, answer in one sentence: {question}"
    return await llm.complete(prompt, max_tokens=40, temperature=0.0)


CASES = [
    ("What is the weather in Paris?", ["weather"], "12"),
    ("Is it snowing in Oslo?", ["weather"], "snow"),
    ("What is 17 * 3?", ["calculator"], "51"),
    ("How warm is Lisbon, and what is 40 + 2?", ["weather", "calculator"], "19"),
]


@pytest.mark.llm_eval
@pytest.mark.parametrize(("question", "tools", "fact"), CASES, ids=["paris", "oslo", "product", "both"])
async def test_the_agent_calls_the_right_tools_in_order(llm, question, tools, fact):
    await agent(llm, question)
    assert_trajectory(tools, order="exact")
    assert_tool_called(tools[0])
    assert_steps(max=len(tools) + 1)  # each tool once, and one model call


#: What SmolLM2-135M (llama-cpp-python 0.3.36, greedy) gets wrong here: data, not strict xfails.
KNOWN = {
    "paris": "ignores the tool's '12 degrees and cloudy' ('a mix of sunny days and cloudy skies')",
    "both": "mixes the two facts up: '42 degrees' for Lisbon and 42 + 2 = 46",
}


@pytest.mark.llm_eval
@pytest.mark.parametrize(
    ("question", "tools", "fact"),
    [pytest.param(*case, id=name, marks=[pytest.mark.llm_known_failure(KNOWN[name])] if name in KNOWN else [])
     for case, name in zip(CASES, ["paris", "oslo", "product", "both"])],
)
async def test_the_answer_states_the_tools_result(llm, question, tools, fact):
    answer = await agent(llm, question)
    assert_contains(answer, fact, ignore_case=True)
