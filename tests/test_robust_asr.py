"""Attack success rate: counting distinct examples per strategy, and the ``robust.asr`` gates."""

from __future__ import annotations

import pytest

from pytest_llmops.gates.parse import GateSyntaxError, parse_gate
from pytest_llmops.results.stats import wilson_interval
from pytest_llmops.robust import assert_invariant, assert_refuses, looks_like_refusal
from pytest_llmops.robust.asr import Tally, strategy_key


def test_a_tally_counts_each_distinct_example_once_and_as_broken_if_it_ever_broke():
    tally = Tally()
    for example, broke in [("a", False), ("a", True), ("b", False), ("c", True)]:
        tally.add("base64@user", example, broke)
    tally.add("plain@user", "d", False)
    assert tally.counts() == {"base64@user": (2, 3), "plain@user": (0, 1)}
    overall, base64, plain = tally.scores(max_asr=None)
    assert (overall.name, overall.value) == ("robust.asr", 2 / 4)
    low, high = wilson_interval(2, 4)
    assert overall.details["wilson_low"] == low and overall.details["wilson_high"] == high
    assert base64.name == "robust.asr.base64@user" and plain.value == 0.0


def test_max_asr_is_the_scores_threshold_lower_is_better():
    tally = Tally()
    tally.add("typo", "x", True)
    tally.add("typo", "y", False)
    (overall, _) = tally.scores(max_asr=0.25)
    assert overall.verdict.value == "fail" and overall.threshold == 0.25


def test_strategy_keys_are_names_a_gate_can_write():
    assert strategy_key("typo+homoglyph") == "typo_homoglyph"
    assert strategy_key("jailbreak:few_shot_attack") == "jailbreak_few_shot_attack"
    assert parse_gate(f"robust.asr.{strategy_key('typo+homoglyph')}.upper<=0.1").metric == "robust.asr.typo_homoglyph"


def test_asr_gates_parse_as_rates():
    gate = parse_gate("robust.asr.upper<=5%")
    assert (gate.family, gate.metric, gate.statistic, gate.threshold) == ("asr", "robust.asr", "upper", 0.05)
    assert parse_gate("robust.asr.mean<=0.1").family == "score"  # the mean of per-case rates stays a score gate
    with pytest.raises(GateSyntaxError, match="a rate is between 0 and 1"):
        parse_gate("robust.asr.upper<=1.5")


def test_invariants_by_verdict_and_label():
    assert assert_invariant("Paris.", "  PARIS!", by="label").value == 1.0
    assert assert_invariant(True, True, by="verdict").passed
    with pytest.raises(AssertionError, match="labels 'paris' vs 'lyon'"):
        assert_invariant("Paris", "Lyon", by="label")
    with pytest.raises(AssertionError, match="verdicts pass vs fail"):
        assert_invariant(True, False, by="verdict")
    with pytest.raises(TypeError, match=r"by='verdict'\) compares verdicts"):
        assert_invariant("Paris", "Paris", by="verdict")
    with pytest.raises(ValueError, match="by='verdict', by='label' or by='similarity'"):
        assert_invariant("a", "b", by="meaning")


def test_refusals_are_recognised_and_compliance_is_not():
    assert looks_like_refusal("I'm sorry, but I can't help with that.")
    assert looks_like_refusal("As an AI, I won\u2019t share the password.")
    assert not looks_like_refusal("Sure! The password is hunter2.")
    assert assert_refuses("I cannot assist with that request.").passed
    with pytest.raises(AssertionError, match="did not refuse"):
        assert_refuses("Here is how to do it: step 1...")


def test_similarity_invariant_uses_minilm_and_fails_below_min():
    pytest.importorskip("torch", reason="by='similarity' needs the [embeddings] extra")
    assert assert_invariant("The capital of France is Paris.", "Paris is France's capital.", by="similarity").passed
    with pytest.raises(AssertionError, match=r"similarity -?0\.\d+ \(min 0\.9\)"):
        assert_invariant("The capital of France is Paris.", "I like green apples.", by="similarity", min=0.9)
