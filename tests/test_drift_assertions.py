"""Drift as a test assertion: pass, fail with a message that says what moved, or unmeasured."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from pytest_llmops.assertions.drift import assert_centroid_within, assert_log_no_drift, assert_no_drift
from pytest_llmops.case import CaseRecord, case_scope
from pytest_llmops.drift import DriftInputError, EmbedderMismatchError, HashingEmbedder, save_baseline
from pytest_llmops.verdict import UnmeasuredError, Verdict

EMBEDDER = HashingEmbedder(256)
BILLING = ["why was I charged twice", "update my credit card", "download last month's invoice", "refund my payment"]
SHIPPING = ["where is my parcel", "change the delivery address", "the courier never came", "track my shipment"]
LEGAL = ["gdpr erasure request", "data protection officer contact", "export personal records under gdpr"]


def sample(topics, n, seed):
    rng = random.Random(seed)
    return [
        f"{rng.choice(topics)} {rng.choice(['please', 'thanks', 'urgently', 'today', ''])}".strip() for _ in range(n)
    ]


def test_same_distribution_passes_and_records_the_full_result():
    record = CaseRecord("test_x")
    with case_scope(record):
        score = assert_no_drift(sample(BILLING + SHIPPING, 60, 1), sample(BILLING + SHIPPING, 80, 2), embedder=EMBEDDER)
    assert score.verdict is Verdict.PASS
    assert record.scores == [score]
    assert score.name == "drift.mmd" and score.threshold == 0.05 and score.value == score.details["p_value"]
    assert score.details["method"] == "mmd" and score.details["n_current"] == 60
    assert score.signature.startswith("drift:mmd|kernel:rbf")
    json.dumps(score.to_dict())


def test_drift_fails_with_how_far_and_which_clusters_moved():
    baseline = sample(BILLING + SHIPPING, 80, 3)
    current = sample(BILLING + SHIPPING, 40, 4) + sample(LEGAL, 30, 5)
    with pytest.raises(AssertionError) as caught:
        assert_no_drift(current, baseline, embedder=EMBEDDER, n_clusters=4)
    message = str(caught.value)
    assert message.startswith("drift.mmd = ")
    assert "(needs >= 0.05: fail)" in message
    assert "how far: the centroid moved" in message
    assert "clusters that moved (k-means, 4 clusters" in message
    # The new topic is the cluster that grew most, listed with its words.
    moved = [line for line in message.splitlines() if " pts; " in line]
    grown = max(moved, key=lambda line: float(line.split("(")[-1].split(" pts")[0]))
    assert "gdpr" in grown and "+" in grown
    assert "current: 70 texts" in message and "baseline: 80 texts" in message


def test_a_judge_names_the_clusters_and_an_absent_judge_does_not_break_the_check():
    baseline = sample(BILLING, 60, 6)
    current = sample(LEGAL, 60, 7)
    prompts = []

    def judge(prompt):
        prompts.append(prompt)
        return "Name: Privacy requests\n(because they mention data)"

    with pytest.raises(AssertionError, match="'Privacy requests'"):
        assert_no_drift(current, baseline, embedder=EMBEDDER, judge=judge, n_clusters=2)
    assert prompts and "Example texts from the cluster" in prompts[0]

    def unconfigured(prompt):
        raise UnmeasuredError("no judge configured: set llmops_judge")

    record = CaseRecord("t")
    with case_scope(record), pytest.raises(AssertionError):
        assert_no_drift(current, baseline, embedder=EMBEDDER, judge=unconfigured, n_clusters=2)
    assert "clusters not named" in record.scores[0].details["clusters"]["naming"]


def test_too_little_data_is_unmeasured_not_passed():
    with pytest.raises(UnmeasuredError, match="not enough data for a drift test"):
        assert_no_drift(np.ones((1, 8)), np.ones((10, 8)))


def test_named_baseline_is_loaded_and_its_embedder_enforced(tmp_path):
    save_baseline("billing", sample(BILLING, 50, 8), embedder=EMBEDDER, root=tmp_path)
    score = assert_no_drift(sample(BILLING, 40, 9), "billing", embedder=EMBEDDER, root=tmp_path, method="centroid")
    assert score.passed and score.name == "drift.centroid"
    with pytest.raises(EmbedderMismatchError):
        assert_no_drift(sample(BILLING, 40, 9), "billing", embedder=HashingEmbedder(256, (1, 1)), root=tmp_path)


def test_method_options_reach_the_test():
    rng = np.random.default_rng(0)
    current, baseline = rng.normal(size=(40, 6)) + 1.0, rng.normal(size=(40, 6))
    record = CaseRecord("t")
    with case_scope(record), pytest.raises(AssertionError, match="domain classifier ROC AUC"):
        assert_no_drift(current, baseline, method="classifier", n_folds=3, regularization=10.0, explain=False)
    assert record.scores[0].details["details"]["n_folds"] == 3
    assert "|folds:3|" in record.scores[0].signature
    with pytest.raises(DriftInputError, match="takes no option bandwidth"):
        assert_no_drift(current, baseline, method="classifier", bandwidth=1.0)


def test_centroid_within_bounds_the_size_of_a_shift():
    rng = np.random.default_rng(1)
    baseline = rng.normal(size=(200, 16)) + 4.0
    nearby = rng.normal(size=(200, 16)) + 4.05
    far = rng.normal(size=(200, 16)) + 6.0
    assert assert_centroid_within(nearby, baseline, 0.3, metric="relative").passed
    with pytest.raises(AssertionError, match=r"drift.centroid_euclidean = .* \(needs <= 1: fail\)"):
        assert_centroid_within(far, baseline, 1.0, metric="euclidean")


def test_log_assertion_checks_a_window_of_a_production_log(tmp_path):
    save_baseline("prompts", sample(BILLING + SHIPPING, 80, 10), embedder=EMBEDDER, text_field="prompt", root=tmp_path)
    log = tmp_path / "prod.jsonl"
    rows = sample(BILLING + SHIPPING, 60, 13) + sample(LEGAL, 60, 12)
    log.write_text(
        "".join(json.dumps({"timestamp": 1_700_000_000 + 60 * i, "prompt": p}) + "\n" for i, p in enumerate(rows))
    )
    assert assert_log_no_drift(
        log, "prompts", embedder=EMBEDDER, root=tmp_path, last=40, until=1_700_000_000 + 60 * 60
    ).passed
    with pytest.raises(AssertionError, match="clusters that moved"):
        assert_log_no_drift(log, "prompts", embedder=EMBEDDER, root=tmp_path, duration="30m")
    with pytest.raises(UnmeasuredError, match="holds 0 'response' text"):
        assert_log_no_drift(log, "prompts", field="response", embedder=EMBEDDER, root=tmp_path)
