"""``assert_grounded``: pass on supported answers, fail naming what is unsupported, unmeasured without evidence."""

from __future__ import annotations

import json

import pytest

from pytest_llmops.assertions import assert_grounded
from pytest_llmops.hallucination.model import load_model
from pytest_llmops.verdict import UnmeasuredError

pytest_plugins = ["pytester"]

CONTEXT = [
    "The Harlow Public Library opened in 1987.",
    "It holds about forty thousand books and a small map collection.",
]


def test_a_supported_answer_passes_and_returns_its_score():
    score = assert_grounded("The Harlow Public Library opened in 1987.", CONTEXT)
    assert score.passed and score.name == "grounded"
    assert score.value <= score.threshold == load_model().threshold
    assert score.signature == load_model().signature


def test_an_answer_with_an_invented_year_and_name_fails_naming_them():
    with pytest.raises(AssertionError) as failure:
        assert_grounded("The library opened in 1991. It was founded by Margaret Thatcher.", CONTEXT)
    message = str(failure.value)
    assert message.startswith("grounded = ")
    assert "2 of 2 sentence(s) not supported by the context" in message
    assert "not in the context: 1991" in message
    assert "Margaret Thatcher" in message


def test_a_stricter_threshold_can_be_chosen():
    answer = "It holds about forty thousand books."
    default = assert_grounded(answer, CONTEXT)
    with pytest.raises(AssertionError, match=r"needs <= 0\.0001: fail"):
        assert_grounded(answer, CONTEXT, max_score=0.0001)
    assert 0.0001 < default.value <= default.threshold
    with pytest.raises(ValueError, match="max_score is a probability"):
        assert_grounded(answer, CONTEXT, max_score=2)


def test_embeddings_on_give_the_same_score_and_add_the_similarity():
    answer = "It holds about forty thousand books."
    lexical = assert_grounded(answer, CONTEXT)
    embedded = assert_grounded(answer, CONTEXT, embeddings=True)
    assert embedded.value == lexical.value and embedded.signature == lexical.signature
    assert lexical.details["sentences"][0]["similarity"] is None
    assert 0.5 < embedded.details["sentences"][0]["similarity"] <= 1.0
    assert lexical.details["sentences"][0]["closest_context"] == CONTEXT[1]


@pytest.mark.parametrize(("answer", "context"), [("", CONTEXT), ("The library opened in 1987.", [])])
def test_an_empty_answer_or_context_is_unmeasured_not_passed(answer, context):
    with pytest.raises(UnmeasuredError, match="grounded: unmeasured - the (answer|context) is empty"):
        assert_grounded(answer, context)


def test_the_assertion_records_its_score_on_the_eval_case(pytester):
    # Load the model and nltk here first: the inner run then reuses them
    # (pytester drops modules first imported inside it, and some cannot be re-imported).
    assert_grounded("The Harlow Public Library opened in 1987.", CONTEXT)
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_llmops.assertions import assert_grounded

        CONTEXT = {CONTEXT!r}

        @pytest.mark.llm_eval
        def test_supported():
            assert_grounded("It holds about forty thousand books.", CONTEXT)

        @pytest.mark.llm_eval
        def test_invented():
            assert_grounded("It holds about 90,000 books.", CONTEXT)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: grounded = * (needs <= *: fail) - 1 of 1 sentence(s)*"])
    cases = json.loads((pytester.path / ".llmops" / "results.json").read_text())["cases"]
    scores = {case["nodeid"].split("::")[1]: case["scores"] for case in cases}
    [supported], [invented] = scores["test_supported"], scores["test_invented"]
    assert supported["name"] == invented["name"] == "grounded"
    assert supported["verdict"] == "pass" and invented["verdict"] == "fail"
    assert invented["signature"].startswith("hallucination:offline|v:2|")
    assert invented["details"]["sentences"][0]["unsupported"] == ["90,000"]
