"""Baselines on disk: round trip, metadata, integrity checks, refusing foreign embedders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_llmops.drift import (
    BaselineError,
    EmbedderMismatchError,
    HashingEmbedder,
    drift_test,
    list_baselines,
    load_baseline,
    save_baseline,
)
from pytest_llmops.drift.baseline import baselines_dir, set_state_dir, state_dir

TEXTS = ["How do I reset my password?", "Wie ändere ich mein Passwort? 🔑", "Where is my order #123?"]


def test_round_trip_keeps_vectors_texts_and_metadata(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    saved = save_baseline("support", vectors, embedder="my-model|dim:8", texts=TEXTS, source="unit test", root=tmp_path)
    loaded = load_baseline("support", root=tmp_path)

    assert np.array_equal(loaded.embeddings, vectors) and loaded.embeddings.dtype == np.float32
    assert loaded.texts == tuple(TEXTS)
    assert loaded.info.embedder == "my-model|dim:8"
    assert (loaded.info.count, loaded.info.dim, loaded.info.source) == (3, 8, "unit test")
    assert loaded.info.created == saved.info.created and loaded.info.created.endswith("+00:00")
    assert loaded.info.package_version not in ("", "unknown")
    assert not loaded.embeddings.flags.writeable
    # Plain numpy reads the file without pickle.
    with np.load(tmp_path / "baselines" / "support.npz", allow_pickle=False) as archive:
        assert set(archive.files) == {"embeddings", "text_bytes", "text_offsets"}
    metadata = json.loads((tmp_path / "baselines" / "support.json").read_text())
    assert metadata["embedder"] == "my-model|dim:8" and metadata["count"] == 3 and metadata["has_texts"]


def test_texts_are_embedded_with_the_given_embedder(tmp_path):
    embedder = HashingEmbedder(64)
    baseline = save_baseline("prompts", TEXTS, embedder=embedder, text_field="prompt", root=tmp_path)
    assert baseline.signature == embedder.signature
    assert baseline.info.text_field == "prompt"
    assert baseline.embeddings.shape == (3, 64)
    assert load_baseline(tmp_path / "baselines" / "prompts.json").texts == tuple(TEXTS)


def test_comparing_with_another_embedder_is_refused(tmp_path):
    save_baseline("words", TEXTS * 4, embedder=HashingEmbedder(64, (1, 1)), root=tmp_path)
    baseline = load_baseline("words", root=tmp_path)
    with pytest.raises(EmbedderMismatchError, match="vectors from different embedders cannot be compared"):
        drift_test(TEXTS * 4, baseline, "centroid", embedder=HashingEmbedder(64, (1, 2)))
    # The same embedder is fine.
    assert not drift_test(TEXTS * 4, baseline, "centroid", embedder=HashingEmbedder(64, (1, 1))).drifted


def test_existing_baseline_is_only_replaced_on_request(tmp_path):
    save_baseline("b", np.zeros((2, 3)), embedder="e", root=tmp_path)
    with pytest.raises(BaselineError, match="already exists .* pass overwrite=True"):
        save_baseline("b", np.ones((2, 3)), embedder="e", root=tmp_path)
    save_baseline("b", np.ones((4, 3)), embedder="e", root=tmp_path, overwrite=True)
    assert load_baseline("b", root=tmp_path).info.count == 4


def test_missing_baseline_lists_the_ones_that_exist(tmp_path):
    save_baseline("alpha", np.zeros((2, 3)), embedder="e", root=tmp_path)
    save_baseline("beta", np.zeros((2, 3)), embedder="e", root=tmp_path)
    with pytest.raises(BaselineError, match="no baseline 'gamma'.*Saved baselines: alpha, beta"):
        load_baseline("gamma", root=tmp_path)
    assert [info.name for info in list_baselines(tmp_path)] == ["alpha", "beta"]


def test_tampered_vectors_fail_the_checksum(tmp_path):
    baseline = save_baseline("b", np.zeros((2, 3)), embedder="e", root=tmp_path)
    np.savez(baseline.path, embeddings=np.ones((2, 3), dtype=np.float64))
    with pytest.raises(BaselineError, match="do not match the checksum"):
        load_baseline("b", root=tmp_path)


def test_metadata_errors_name_the_file(tmp_path):
    baseline = save_baseline("b", np.zeros((2, 3)), embedder="e", root=tmp_path)
    json_path = baseline.path.with_suffix(".json")
    json_path.write_text('{"name": "b",\n "count": }')
    with pytest.raises(BaselineError, match=r"b\.json:2: not valid JSON"):
        load_baseline("b", root=tmp_path)
    json_path.write_text(json.dumps({"name": "b", "embedder": "e", "dim": 3, "count": 5, "created": "now"}))
    with pytest.raises(BaselineError, match=r"shape \(2, 3\) but .* says 5 x 3"):
        load_baseline("b", root=tmp_path)


@pytest.mark.parametrize("name", ["", "../escape", "has space", ".hidden", "x" * 101])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(BaselineError, match="is not allowed"):
        save_baseline(name, np.zeros((2, 3)), embedder="e", root=tmp_path)


def test_an_array_needs_its_embedder_named(tmp_path):
    with pytest.raises(BaselineError, match="say which embedder made these vectors"):
        save_baseline("b", np.zeros((2, 3)), root=tmp_path)


def test_state_folder_is_found_at_the_project_root(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(project / "src" / "deep")
    # The plugin sets the folder for this run; outside pytest nobody does.
    monkeypatch.setattr("pytest_llmops.statedir._state_dir", None)
    assert state_dir() == project / ".llmops"
    assert baselines_dir() == project / ".llmops" / "baselines"
    set_state_dir(tmp_path / "chosen")
    assert state_dir() == tmp_path / "chosen"
