"""Exact match, substring, regex and edit-distance checks."""

from __future__ import annotations

import re

import pytest

from pytest_llmops.metrics import contains, edit_distance, exact_match, regex_match
from pytest_llmops.verdict import Verdict


def test_exact_match_ignores_outer_whitespace_by_default():
    assert exact_match("Paris\n", "Paris").verdict is Verdict.PASS
    assert exact_match("Paris\n", "Paris", strip=False).verdict is Verdict.FAIL


def test_exact_match_normalisations():
    assert exact_match("PARIS", "paris").value == 0.0
    assert exact_match("PARIS", "paris", ignore_case=True).value == 1.0
    assert exact_match("New  York\ncity", "New York city", collapse_whitespace=True).value == 1.0
    # Composed "é" and "e" + combining accent are the same text.
    assert exact_match("caf\u00e9", "cafe\u0301").value == 1.0


def test_exact_match_failure_points_at_the_first_difference():
    score = exact_match("The answer is 42.", "The answer is 41.")
    assert score.verdict is Verdict.FAIL
    assert score.reason == "first difference at character 15: output has '2.', expected '1.'"


def test_contains_all_reports_the_fraction_found_and_what_is_missing():
    score = contains("Refunds take 5 business days.", ["Refunds", "business days", "receipt"])
    assert score.value == pytest.approx(2 / 3)
    assert score.verdict is Verdict.FAIL
    assert score.details["missing"] == ["receipt"]
    assert "'receipt'" in score.reason


def test_contains_any_and_negated():
    assert contains("yes, definitely", ["yes", "sure"], mode="any").verdict is Verdict.PASS
    assert contains("YES", "yes", ignore_case=True).verdict is Verdict.PASS
    leaked = contains("my password is hunter2", ["hunter2", "ssn"], negate=True)
    assert leaked.name == "not_contains"
    assert leaked.verdict is Verdict.FAIL
    assert leaked.details["found"] == ["hunter2"]
    assert contains("all clear", ["hunter2"], negate=True).verdict is Verdict.PASS


def test_contains_refuses_needles_that_always_match():
    with pytest.raises(ValueError, match="empty string"):
        contains("text", ["ok", ""])


def test_regex_search_and_fullmatch():
    score = regex_match("Order #A-1234 shipped", r"#([A-Z])-(\d{4})")
    assert score.verdict is Verdict.PASS
    assert score.details["match"] == "#A-1234"
    assert score.details["groups"] == ["A", "1234"]
    assert score.details["span"] == [6, 13]
    assert regex_match("Order 1234", r"\d{4}", mode="fullmatch").verdict is Verdict.FAIL
    assert regex_match("hello", re.compile("HELLO"), flags=re.IGNORECASE).verdict is Verdict.PASS


def test_invalid_regex_says_where():
    with pytest.raises(
        ValueError, match=r"invalid regular expression '\(ab': missing \), unterminated subpattern at position 0"
    ):
        regex_match("ab", "(ab")


def test_levenshtein_distance_of_the_textbook_example():
    # kitten -> sitting: two substitutions and one insertion.
    raw = edit_distance("kitten", "sitting", normalized=False, threshold=3)
    assert raw.value == 3.0
    assert raw.verdict is Verdict.PASS
    assert not raw.higher_is_better
    normalized = edit_distance("kitten", "sitting", threshold=0.4)
    assert normalized.value == pytest.approx(3 / 7)
    assert normalized.verdict is Verdict.FAIL
    assert edit_distance("", "").value == 0.0


def test_normalized_threshold_must_be_a_fraction():
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        edit_distance("a", "b", threshold=3)
