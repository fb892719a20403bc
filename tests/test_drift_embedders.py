"""Choosing an embedder: by object, by name or by import path, always with a signature."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_llmops.drift import DriftInputError, HashingEmbedder, MiniLMEmbedder, as_sample, resolve_embedder


def test_names_resolve_to_embedders():
    assert isinstance(resolve_embedder(None), MiniLMEmbedder)  # the default; the model loads on first call only
    assert isinstance(resolve_embedder("minilm"), MiniLMEmbedder)
    assert resolve_embedder("hashing:64").signature == HashingEmbedder(64).signature
    by_path = resolve_embedder("pytest_llmops.drift.embedders:HashingEmbedder")
    assert by_path.signature == HashingEmbedder().signature


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bert", "unknown embedder 'bert'"),
        ("hashing:lots", "hashing:<number of features>"),
        ("no_such_module_xyz:embed", "cannot import it"),
        ("pytest_llmops.drift.embedders:nothing_here", "cannot import it"),
    ],
)
def test_bad_names_say_what_is_accepted(spec, message):
    with pytest.raises(DriftInputError, match=message):
        resolve_embedder(spec)


def test_an_embedder_must_carry_a_signature():
    def anonymous(texts):
        return np.ones((len(texts), 3))

    with pytest.raises(DriftInputError, match="has no 'signature' string attribute"):
        as_sample(["a", "b"], embedder=anonymous)
    anonymous.signature = "ones|dim:3"
    sample = as_sample(["a", "b"], embedder=anonymous)
    assert sample.signature == "ones|dim:3" and sample.texts == ("a", "b")


def test_embedder_output_is_checked():
    def wrong_rows(texts):
        return np.ones((len(texts) + 1, 3))

    def nan_rows(texts):
        return np.full((len(texts), 3), np.nan)

    wrong_rows.signature = nan_rows.signature = "broken"
    with pytest.raises(DriftInputError, match=r"returned shape \(3, 3\) for 2 texts"):
        as_sample(["a", "b"], embedder=wrong_rows)
    with pytest.raises(DriftInputError, match="NaN or infinite values for text 0: 'a'"):
        as_sample(["a", "b"], embedder=nan_rows)


def test_hashing_embedder_is_deterministic_and_unit_norm():
    embedder = HashingEmbedder(32)
    first, again = embedder(["reset my password", "where is my order"]), embedder(["reset my password"])
    assert first.shape == (2, 32)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert np.array_equal(first[0], again[0])
