"""Kappas checked against tables worked out by hand, with and without the libraries."""

from __future__ import annotations

import pytest

from pytest_llmops.review import agreement
from pytest_llmops.review.select import in_sample, near_threshold, review_reasons

# Two reviewers, 10 items: both pass 4, both fail 3, A pass / B fail 2, A fail / B pass 1.
A = ["pass"] * 4 + ["fail"] * 3 + ["pass"] * 2 + ["fail"]
B = ["pass"] * 4 + ["fail"] * 3 + ["fail"] * 2 + ["pass"]


def test_cohen_kappa_of_a_hand_table():
    # p_o = 7/10; p_A(pass) = 6/10, p_B(pass) = 5/10; p_e = .6*.5 + .4*.5 = .5; kappa = (.7-.5)/(1-.5) = .4
    assert agreement.cohen_kappa(A, B) == pytest.approx(0.4)
    assert agreement._cohen_formula(A, B) == pytest.approx(0.4)


def test_cohen_kappa_when_everyone_says_the_same():
    assert agreement.cohen_kappa(["pass"] * 3, ["pass"] * 3) == 1.0
    assert agreement.cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="same items"):
        agreement.cohen_kappa(["pass"], [])


def test_fleiss_kappa_of_a_hand_table():
    # 3 items x 3 reviewers, counts (pass, fail): P_i = 1, 1/3, 1 -> P = 7/9;
    # p_pass = 5/9, p_fail = 4/9 -> P_e = 41/81; kappa = (63/81 - 41/81) / (40/81) = 22/40 = 0.55
    table = [[3, 0], [2, 1], [0, 3]]
    assert agreement._fleiss_formula(table) == pytest.approx(0.55)
    assert agreement.fleiss_kappa(table) == pytest.approx(0.55)


def test_fleiss_kappa_needs_equal_counts():
    with pytest.raises(ValueError, match="same number"):
        agreement.fleiss_kappa([[2, 0], [1, 2]])


def test_two_reviewers_get_cohen_and_three_get_fleiss():
    two = {str(i): {"ann": a, "bob": b} for i, (a, b) in enumerate(zip(A, B))}
    result = agreement.between_reviewers(two)
    assert (result["method"], result["kappa"], result["n_items"]) == ("Cohen's kappa", pytest.approx(0.4), 10)
    three = {
        "x": {"ann": "pass", "bob": "pass", "cy": "pass"},
        "y": {"ann": "pass", "bob": "pass", "cy": "fail"},
        "z": {"ann": "fail", "bob": "fail", "cy": "fail"},
        "w": {"ann": "pass", "bob": "fail"},  # two ratings: left out of Fleiss, and said so
    }
    result = agreement.between_reviewers(three)
    assert result["method"] == "Fleiss' kappa"
    assert result["kappa"] == pytest.approx(0.55)
    assert "1 item(s)" in result["reason"]


def test_judge_vs_human_has_a_wilson_interval_per_group():
    pairs = [("m / rubric@1", "pass", "pass")] * 8 + [("m / rubric@1", "pass", "fail")] * 2 + [("n / x@1", "fail", "fail")]
    rows = agreement.judge_vs_human(pairs)
    first = rows[0]
    assert first["group"] == "m / rubric@1" and first["n_items"] == 10 and first["agreement"] == 0.8
    # Wilson 95% for 8/10: [0.490, 0.943]
    assert first["interval"] == [pytest.approx(0.4902, abs=1e-3), pytest.approx(0.9433, abs=1e-3)]
    assert first["judge_pass_human_fail"] == 2
    assert rows[1]["agreement"] == 1.0 and rows[1]["interval"][1] == 1.0


def test_the_sample_is_seeded_and_near_about_its_rate():
    ids = [f"tests/test_x.py::test_case[{i}]" for i in range(2000)]
    chosen = [i for i in ids if in_sample(i, 0.1, seed=3)]
    assert chosen == [i for i in ids if in_sample(i, 0.1, seed=3)]
    assert chosen != [i for i in ids if in_sample(i, 0.1, seed=4)]
    assert 150 < len(chosen) < 250
    assert not any(in_sample(i, 0.0) for i in ids) and all(in_sample(i, 1.0) for i in ids)


def test_near_threshold_uses_the_score_range():
    rubric = {"name": "rubric", "value": 3.3, "threshold": 3.0, "verdict": "pass", "signature": "rubric|judge:m",
              "details": {"range": "1-5"}}
    assert near_threshold(rubric, 0.1)  # 0.3 <= 0.1 x 4
    assert not near_threshold({**rubric, "value": 4.0}, 0.1)
    share = {"name": "faithfulness", "value": 0.85, "threshold": 0.8, "verdict": "pass", "signature": "f|judge:m",
             "details": {}}
    assert near_threshold(share, 0.1) and not near_threshold(share, 0.01)
    plan = {"rate": 0.0, "margin": 0.1, "seed": 0}
    assert review_reasons("t", [share], plan) == [
        "near threshold: faithfulness = 0.85, threshold 0.8 (margin 0.1 of the range)"
    ]
    # A score no judge gave (ROUGE) is nothing to review.
    assert review_reasons("t", [{**share, "signature": "rouge|rougeL"}], {"rate": 1.0}) == []
