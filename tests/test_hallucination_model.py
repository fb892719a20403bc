"""The shipped combiner's files load, are checked, and a damaged copy fails naming the file and the fix."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pytest_llmops.hallucination.features import FEATURES
from pytest_llmops.hallucination.model import MODELS_DIR, load_model


def test_the_shipped_model_loads_with_its_card_and_a_usable_threshold():
    model = load_model()
    assert model.weights.shape == (len(FEATURES),)
    assert 0.0 < model.threshold < 1.0
    assert model.signature.startswith("hallucination:offline|v:2|sha:")
    assert "features:sim_best," in model.signature
    card = (MODELS_DIR / "offline.md").read_text(encoding="utf-8")
    assert "halueval_qa" in card and "Held-out quality" in card


def test_the_weights_say_that_less_support_means_more_hallucination():
    weights = dict(zip(FEATURES, load_model().weights))
    support = ("sim_best", "recall_best", "recall_context", "bigram_recall", "pair_support")
    assert all(weights[name] <= 0 for name in support)
    assert all(weights[name] >= 0 for name in FEATURES if name not in support)
    assert weights["bigram_recall"] < 0 and weights["unsupported_numbers"] > 0


def test_probabilities_rise_as_support_falls():
    model = load_model()
    supported = {name: 1.0 for name in FEATURES} | {"sim_best": 0.9, "unsupported_numbers": 0, "unsupported_names": 0,
                                                   "unsupported_quotes": 0, "negation_mismatch": 0}
    invented = supported | {"recall_best": 0.5, "bigram_recall": 0.3, "pair_support": 0.3, "unsupported_numbers": 2}
    low, high = model.probabilities([[supported[f] for f in FEATURES], [invented[f] for f in FEATURES]])
    assert low < model.threshold < high


@pytest.fixture
def model_copy(tmp_path):
    for suffix in ("json", "npz"):
        shutil.copy(MODELS_DIR / f"offline.{suffix}", tmp_path / f"offline.{suffix}")
    return tmp_path


def test_a_weights_file_from_another_training_is_refused_with_its_path(model_copy):
    np.savez(model_copy / "offline.npz", weights=np.zeros(len(FEATURES)), mean=np.zeros(len(FEATURES)), scale=np.ones(len(FEATURES)))
    with pytest.raises(ValueError, match=r"offline\.npz: sha256 differs .*train_hallucination\.py"):
        load_model(str(model_copy))


def test_a_header_that_is_not_json_is_refused_with_its_path(model_copy):
    (model_copy / "offline.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"offline\.json: not valid JSON"):
        load_model(str(model_copy))


def test_a_header_for_other_features_is_refused(model_copy):
    header = json.loads((model_copy / "offline.json").read_text(encoding="utf-8"))
    header["features"] = header["features"][:-1]
    (model_copy / "offline.json").write_text(json.dumps(header), encoding="utf-8")
    with pytest.raises(ValueError, match=r"offline\.json: features .* differ from this version's"):
        load_model(str(model_copy))


def test_a_missing_file_names_the_path_and_how_to_rebuild_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"offline\.json: no such file .*scripts/train_hallucination\.py"):
        load_model(str(tmp_path))
