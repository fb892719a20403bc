"""Deterministic local computations (METEOR, BERTScore, MiniLM vectors) are kept across runs.

A warm run of an unchanged suite reads them back: it gives the same scores and
never loads torch or WordNet.
"""

from __future__ import annotations

import json
import sqlite3
import warnings

import pytest

from pytest_llmops import memo

pytest.importorskip("torch")
pytest.importorskip("nltk")

SUITE = """
import sys
import pytest
from pytest_llmops.assertions import assert_meteor, assert_bertscore, assert_no_drift

ANSWERS = ["The office opens at nine in the morning.", "Refunds take five working days."]

@pytest.mark.llm_eval
@pytest.mark.parametrize("answer", ANSWERS)
def test_metrics(answer):
    assert_meteor(answer, "The office opens at 9 am.", min_score=0.0)
    assert_bertscore(answer, "The office opens at 9 am.", min_f1=-1.0, rescale=True)

@pytest.mark.llm_eval
def test_drift():
    assert_no_drift(ANSWERS * 5, baseline=ANSWERS * 5)  # MiniLM, the default embedder

def test_zz_heavy_modules_seen():
    # Runs last: writes which heavy modules this run loaded, for the test to read.
    loaded = {name: name in sys.modules for name in ("torch", "nltk.corpus.reader.wordnet")}
    open("loaded.json", "w").write(__import__("json").dumps(loaded))
"""


def _run(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, bool], dict[str, list]]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    loaded = json.loads((pytester.path / "loaded.json").read_text())
    cases = json.loads((pytester.path / ".llmops" / "results.json").read_text())["cases"]
    scores = {c["nodeid"]: [(s["name"], s["value"]) for s in c["scores"]] for c in cases}
    return loaded, scores


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_a_warm_run_gives_the_same_scores_without_loading_torch_or_wordnet(suite):
    cold_loaded, cold_scores = _run(suite)
    warm_loaded, warm_scores = _run(suite)

    assert cold_loaded == {"torch": True, "nltk.corpus.reader.wordnet": True}
    assert warm_loaded == {"torch": False, "nltk.corpus.reader.wordnet": False}
    assert warm_scores == cold_scores
    assert any(name == "meteor" for scores in warm_scores.values() for name, _ in scores)


def test_record_mode_all_computes_again_and_off_keeps_nothing(suite):
    _run(suite)
    recomputed, _ = _run(suite, "--llmops-record-mode=all")
    assert recomputed["torch"] and recomputed["nltk.corpus.reader.wordnet"]

    (suite.path / ".llmops" / "computed.sqlite").unlink()
    _run(suite, "--llmops-record-mode=off")
    assert not (suite.path / ".llmops" / "computed.sqlite").exists()


def test_a_changed_signature_is_computed_afresh(tmp_path):
    memo.configure(tmp_path / "computed.sqlite")
    try:
        key = memo.digest("hypothesis", ["reference"])
        memo.put_json("metric:meteor|nltk:3.9", key, [0.5, 3])

        assert memo.get_json("metric:meteor|nltk:3.9", key) == [0.5, 3]
        assert memo.get_json("metric:meteor|nltk:3.10", key) is None
    finally:
        memo.configure(None)


def test_values_are_shared_by_two_connections_to_one_file(tmp_path):
    path = tmp_path / "computed.sqlite"
    memo.configure(path)
    try:
        memo.put_many("vectors|v1", {"a": b"\x00\x01", "b": b"\x02"})
    finally:
        memo.configure(None)
    rows = sqlite3.connect(path).execute("SELECT signature, digest, value FROM computed ORDER BY digest").fetchall()
    assert rows == [("vectors|v1", "a", b"\x00\x01"), ("vectors|v1", "b", b"\x02")]

    memo.configure(path, replay=False)
    try:
        assert memo.get_many("vectors|v1", ["a", "b"]) == {}  # record mode "all": computed again
    finally:
        memo.configure(None)


def test_an_unusable_store_warns_once_and_values_are_computed(tmp_path):
    path = tmp_path / "computed.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    memo.configure(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert memo.get_many("sig", ["a"]) == {}
            memo.put_many("sig", {"a": b"1"})
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1 and str(path) in messages[0] and "delete the file" in messages[0]
    finally:
        memo.configure(None)
