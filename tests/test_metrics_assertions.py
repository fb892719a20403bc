"""The assert_* helpers: what a failing test shows, what a case records, what comes back."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from pydantic import BaseModel

from pytest_llmops.assertions.text import (
    assert_bleu,
    assert_chrf,
    assert_contains,
    assert_edit_distance,
    assert_exact,
    assert_json,
    assert_json_schema,
    assert_meteor,
    assert_not_contains,
    assert_pydantic,
    assert_regex,
    assert_rouge,
    assert_semantic_similarity,
    assert_ter,
)
from pytest_llmops.case import CaseRecord, case_scope
from pytest_llmops.verdict import UnmeasuredError, Verdict


@pytest.fixture
def record():
    with case_scope(CaseRecord(nodeid="tests/test_x.py::test_case")) as current:
        yield current


def test_a_failing_rouge_shows_score_threshold_why_and_inputs(record):
    with pytest.raises(AssertionError) as failure:
        assert_rouge("testing", "testing one two", rouge="rouge1", min_f=0.6)
    assert str(failure.value).splitlines() == [
        "rouge1 = 0.5 (needs >= 0.6: fail) - precision 1.000, recall 0.333, F 0.500",
        "  prediction: testing",
        "  reference: testing one two",
        "  signature: metric:rouge1|measure:fmeasure|stem:no|tok:rouge-score|nrefs:1"
        f"|rouge-score:{version('rouge-score')}",
    ]
    assert [s.name for s in record.scores] == ["rouge1"]


def test_every_threshold_given_is_checked_and_recorded(record):
    with pytest.raises(AssertionError, match=r"rougeL_recall = 0\.6667 \(needs >= 0\.9: fail\)"):
        assert_rouge("testing one", "testing one two", min_f=0.5, min_precision=0.9, min_recall=0.9)
    assert [(s.name, s.verdict) for s in record.scores] == [
        ("rougeL", Verdict.PASS),
        ("rougeL_precision", Verdict.PASS),
        ("rougeL_recall", Verdict.FAIL),
    ]


def test_passing_assertions_return_their_score(record):
    score = assert_rouge("testing one", "testing one two", min_f=0.5)
    assert score.value == pytest.approx(0.8)
    assert assert_bleu("the cat sat on the mat", "the cat sat on the mat", min_score=99).value == pytest.approx(100.0)
    assert assert_chrf("the cat", "the cat", min_score=99).value == pytest.approx(100.0)
    assert assert_ter("the cat", "the cat", max_score=0).value == 0.0
    assert len(record.scores) == 4


def test_a_threshold_is_required():
    with pytest.raises(TypeError, match=r"assert_rouge\(\) needs a threshold: pass at least one of min_f=..."):
        assert_rouge("a", "a")
    with pytest.raises(TypeError, match="max_distance=..., max_normalized=..."):
        assert_edit_distance("a", "a")


def test_a_blank_reference_makes_the_case_unmeasured(record):
    with pytest.raises(UnmeasuredError, match="every reference is empty") as unmeasured:
        assert_bleu("an answer", "", min_score=10)
    assert unmeasured.value.score.verdict is Verdict.UNMEASURED
    assert record.scores[0].verdict is Verdict.UNMEASURED


def test_ter_gates_from_above():
    with pytest.raises(AssertionError, match=r"ter = 50 \(needs <= 20: fail\)"):
        assert_ter("a b", "a b c d", max_score=20)


def test_meteor_and_semantic_similarity_assertions():
    assert_meteor("the sofa is red", "the couch is red", min_score=0.9)
    with pytest.raises(AssertionError, match="semantic_similarity = "):
        assert_semantic_similarity("The weather is sunny.", "Quarterly revenue grew by 8%.", min_score=0.6)


def test_string_assertions():
    assert_exact("  Paris\n", "Paris")
    assert_contains("Refunds take 5 days", ["Refunds", "days"])
    assert_regex("Ticket TCK-1234", r"TCK-\d{4}")
    assert_edit_distance("colour", "color", max_distance=1, max_normalized=0.2)
    with pytest.raises(AssertionError, match="contains forbidden text: 'sk-live-123'"):
        assert_not_contains("your key is sk-live-123", ["sk-live-123"])
    with pytest.raises(AssertionError, match="output: Berlin"):
        assert_exact("Berlin", "Paris")


class Answer(BaseModel):
    city: str
    confidence: float


def test_structured_assertions_return_the_parsed_value():
    assert assert_json('{"a": 1}') == {"a": 1}
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    assert assert_json_schema('{"city": "Paris"}', schema) == {"city": "Paris"}
    assert assert_pydantic('{"city": "Paris", "confidence": 0.9}', Answer) == Answer(city="Paris", confidence=0.9)


def test_structured_failures_point_at_the_problem():
    with pytest.raises(AssertionError, match=r"\$\.confidence: Input should be a valid number"):
        assert_pydantic('{"city": "Paris", "confidence": "high"}', Answer)
    with pytest.raises(AssertionError, match=r"\$: 'city' is a required property"):
        assert_json_schema("{}", {"type": "object", "required": ["city"]})
    with pytest.raises(AssertionError, match="line 1, column 2"):
        assert_json("{oops}")
