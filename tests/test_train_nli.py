"""The NLI experiment script's pure parts: windows, their choice, REALSumm text, corruptions, thresholds.

The training itself (torch, minutes) is not run here; its figures are in
``benchmarks/data/nli_cross_encoder.json`` and the offline detector's card.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train_nli():
    pytest.importorskip("nltk")
    spec = importlib.util.spec_from_file_location("train_nli", REPO / "scripts" / "train_nli.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_nli"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("train_nli", None)


def test_windows_are_runs_of_consecutive_sentences(train_nli):
    assert train_nli.windows(["A.", "B.", "C."]) == ["A. B.", "B. C."]
    assert train_nli.windows(["A."]) == ["A."]
    assert train_nli.windows([]) == []


def test_best_windows_rank_by_shared_content_words(train_nli):
    windows = ["The bridge opened in 1990.", "The river Ost floods each spring.", "Ships pass under the bridge."]
    assert train_nli.best_windows("The Ost river floods in spring.", windows, k=1) == ["The river Ost floods each spring."]
    # every window, best first, when k asks for all of them
    ranked = train_nli.best_windows("Ships pass under the bridge.", windows, k=3)
    assert ranked[0] == "Ships pass under the bridge." and sorted(ranked) == sorted(windows)


def test_realsumm_text_is_glued_back(train_nli):
    assert train_nli._detokenize("<t> it 's a test , ( cnn ) he said . </t>") == "it's a test, (cnn) he said."


def test_corruptions_change_a_number_add_a_not_and_swap_a_word(train_nli):
    sentence = "The council was given 425 new houses."
    made = train_nli._corruptions(sentence, set(sentence.lower().split()), ["harbour", "council"], random.Random(0))
    assert len(made) == 3 and sentence not in made
    assert "425" not in made[0]
    assert made[1] == "The council was not given 425 new houses."
    assert "harbour" in made[2]


def test_thresholds_are_set_on_the_other_sources_only(train_nli):
    results = {
        "a": {"scores": [0.1, 0.2, 0.9, 0.95], "y": [0, 0, 1, 1]},
        "b": {"scores": [0.3, 0.4, 0.5, 0.6], "y": [0, 0, 1, 1]},
        "v": {"scores": [0.99, 0.1], "y": [0, 1]},
    }
    rows = train_nli.leave_one_out_thresholds(results, max_fpr=0.0, validation_only=("v",))
    assert rows["a"]["threshold"] == 0.4  # b's highest grounded score
    assert rows["b"]["threshold"] == 0.2
    assert rows["v"]["threshold"] == 0.4  # set on a and b, never on v
    assert rows["v"] == {"threshold": 0.4, "fpr": 1.0, "recall": 0.0}


def test_recorded_figures_hold_every_hallucination_source_and_both_variants():
    record = json.loads((REPO / "benchmarks" / "data" / "nli_cross_encoder.json").read_text(encoding="utf-8"))
    assert set(record) == {"clean", "with-anli"}
    for variant in record.values():
        assert set(variant["grounding"]) == {"halueval_qa", "summac_polytope", "summac_factcc", "faithbench"}
        assert all(0.0 <= g["auroc"] <= 1.0 and np.isfinite(g["auroc"]) for g in variant["grounding"].values())
    assert "anli" not in record["clean"]["pairs"] and record["with-anli"]["pairs"]["anli"] == 6400
