"""Drift over time: each run's drift checks keep an embedding summary in the history, and
``llmops history trend drift`` re-tests run after run (or window after window) against a reference."""

from __future__ import annotations

import base64
import json
import sqlite3

import numpy as np
import pytest
import sklearn.feature_extraction.text  # noqa: F401  (pytester's in-process runs drop the modules they import first)

from pytest_llmops.cli import main as llmops
from pytest_llmops.drift import DriftInputError
from pytest_llmops.drift.summary import EmbeddingSummary, summarize
from pytest_llmops.history import store as history_store
from pytest_llmops.history.drift_trend import drift_over_time
from pytest_llmops.history.store import HistoryError, HistoryStore

pytest_plugins = ["pytester"]

# Each run answers 60 support questions; from the topic the file names, so a run can drift on purpose.
ANSWERS = """
import random

import pytest

from pytest_llmops.assertions.drift import assert_no_drift
from pytest_llmops.drift import HashingEmbedder

TOPICS = {{
    "billing": ["why was I charged twice", "update my credit card", "download last month's invoice",
                "refund my payment", "my card was declined"],
    "legal": ["gdpr erasure request", "data protection officer contact", "export personal records under gdpr",
              "delete my personal data", "privacy policy question"],
}}


def answers(topic, n, seed):
    rng = random.Random(seed)
    return [f"{{rng.choice(TOPICS[topic])}} {{rng.choice(['please', 'thanks', 'today', 'asap', ''])}}".strip()
            for _ in range(n)]


@pytest.mark.llm_eval
def test_answers_look_like_last_release():
    baseline = answers("billing", 60, 0)
    assert_no_drift(answers("{topic}", 60, {seed}), baseline, embedder=HashingEmbedder({features}),
                    n_permutations=200, explain=False)
"""


def run_suite(pytester: pytest.Pytester, topic: str, seed: int, *args: str, features: int = 256) -> None:
    pytester.makepyfile(test_answers=ANSWERS.format(topic=topic, seed=seed, features=features))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLMOPS_GIT_BRANCH", "main")
        pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def history_path(pytester: pytest.Pytester) -> str:
    return str(pytester.path / ".llmops" / "history.sqlite")


def trend_json(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    capsys.readouterr()
    assert llmops(["history", "--path", history_path(pytester), "trend", "drift", "--json", *args]) == 0
    (points,) = json.loads(capsys.readouterr().out).values()
    return points


def test_trend_drift_shows_the_drift_appearing_at_the_run_it_began(pytester, capsys):
    # Three runs answer about billing, then the model starts answering about legal matters.
    for seed, topic in enumerate(["billing", "billing", "billing", "legal", "legal"], start=1):
        run_suite(pytester, topic, seed)

    points = trend_json(pytester, capsys)
    assert [p["is_reference"] for p in points] == [True, False, False, False, False]
    assert [p["drifted"] for p in points] == [None, False, False, True, True]
    assert points[3]["p_value"] < 0.05 < points[1]["p_value"]
    assert points[3]["centroid_shift"] > 10 * points[1]["centroid_shift"]
    assert {p["n"] for p in points} == {60} and points[1]["statistic_name"] == "MMD²"

    # Against the run before: the jump shows once, at run 4; run 5 is like run 4.
    previous = trend_json(pytester, capsys, "--against", "previous")
    assert [p["drifted"] for p in previous] == [None, False, False, True, False]

    # Windows of two runs: (1, 2) is the reference, (3, 4) holds the first drifted run, (5) drifted.
    windows = trend_json(pytester, capsys, "--window", "2")
    assert [len(p["run_ids"]) for p in windows] == [2, 2, 1]
    assert [p["n"] for p in windows] == [120, 120, 60]
    assert [p["drifted"] for p in windows] == [None, True, True]

    # The table a user reads, and the same as a page of charts.
    page = pytester.path / "drift.html"
    assert llmops(["history", "--path", history_path(pytester), "trend", "drift", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == ("test_answers.py::test_answers_look_like_last_release drift.mmd: drift against the first "
                        "window, run by run, oldest first")
    assert "reference" in lines[2]
    assert [line.split()[-2] for line in lines[3:]] == ["no", "no", "YES", "YES"]
    html = page.read_text()
    assert "drift.mmd: p-value against the first window, oldest first" in html
    assert html.count('<circle class="dot"') == 5 and html.count(">yes<") == 2 and "<script src" not in html


def test_a_run_by_another_embedder_is_not_compared_and_a_run_can_be_the_reference(pytester, capsys):
    run_suite(pytester, "billing", 1)
    run_suite(pytester, "legal", 2)
    run_suite(pytester, "legal", 3, features=128)  # another embedder: its vectors live in another space
    with HistoryStore(pytester.path / ".llmops" / "history.sqlite") as store:
        runs = [r.run_id for r in reversed(store.runs())]

    points = trend_json(pytester, capsys)
    assert points[1]["drifted"] is True
    assert points[2]["drifted"] is None
    assert points[2]["note"] == ("not compared: embedded by 'hashing|features:128|ngrams:1-2|lowercase:yes|norm:l2', "
                                 "the reference by 'hashing|features:256|ngrams:1-2|lowercase:yes|norm:l2'")

    # Against the second run (a prefix will do): the first one drifted from it, the second is the reference.
    against = trend_json(pytester, capsys, "--against", runs[1][:8])
    assert [p["run_ids"] for p in against] == [[runs[0]], [runs[2]]]
    assert against[0]["reference"] == [runs[1]] and against[0]["drifted"] is True
    assert against[1]["note"].startswith("not compared: embedded by 'hashing|features:128")

    # Another method re-tests the same summaries.
    centroid = trend_json(pytester, capsys, "--method", "centroid-cosine")
    assert centroid[1]["method"] == "centroid-cosine" and centroid[1]["drifted"] is True

    assert llmops(["history", "--path", history_path(pytester), "trend", "drift", "--against", "ffffffff"]) == 2
    assert "no run 'ffffffff'" in capsys.readouterr().err
    assert llmops(["history", "--path", history_path(pytester), "trend", "drift", "--window", "0"]) == 2
    assert "a window holds at least 1 run" in capsys.readouterr().err
    assert llmops(["history", "--path", history_path(pytester), "trend", "drift", "--method", "nope"]) == 2
    assert "unknown drift method 'nope'" in capsys.readouterr().err
    assert llmops(["history", "--path", history_path(pytester), "trend", "quality", "--window", "3"]) == 2
    assert "--window: only for `trend drift` (without --by)" in capsys.readouterr().err


def test_under_xdist_the_summary_reaches_the_history_from_the_worker(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_answers=ANSWERS.format(topic="legal", seed=1, features=256))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLMOPS_GIT_BRANCH", "main")
        pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2").assert_outcomes(failed=1)
    with HistoryStore(pytester.path / ".llmops" / "history.sqlite") as store:
        (row,) = store.drift_summaries()
    assert (row["n"], row["rows"], row["dim"], row["dtype"]) == (60, 60, 256, "float16")
    assert len(row["sample"]) == 60 * 256 * 2


def test_the_html_report_charts_drift_over_the_suites_runs(pytester):
    for seed, topic in enumerate(["billing", "billing", "legal"], start=1):
        run_suite(pytester, topic, seed, "--llmops-html=.llmops/report.html")
    page = (pytester.path / ".llmops" / "report.html").read_text()
    section = page[page.index('<section id="drift-over-time">'):]
    section = section[:section.index("</section>")]
    assert "drift.mmd: p-value against the first of the last 3 runs" in section
    assert section.count('<circle class="dot"') == 3 and '<polyline class="trend-line"' in section
    table = section[section.index("<table"):]
    # Newest first: the drifted run, the one like the first, then the reference.
    assert table.index(">yes<") < table.index(">no<") < table.index(">reference<")


def test_a_report_without_drift_checks_has_no_drift_section(pytester):
    pytester.makepyfile(test_plain="""
        import pytest
        from pytest_llmops import Score, require

        @pytest.mark.llm_eval
        def test_quality():
            require(Score.measured("quality", 0.9, threshold=0.5))
    """)
    for _ in range(2):
        pytester.runpytest_inprocess("-p", "no:cacheprovider", "--llmops-html=.llmops/report.html")
    page = (pytester.path / ".llmops" / "report.html").read_text()
    assert '<section id="history">' in page and "drift-over-time" not in page


def test_the_summary_is_seeded_capped_and_read_back_as_stored():
    vectors = np.random.default_rng(0).normal(size=(500, 16))
    summary = summarize(vectors, embedder="e", rows=100, seed=3)
    assert summary.n == 500 and summary.rows == 100 and summary.dim == 16
    assert np.array_equal(summary.sample, summarize(vectors, embedder="e", rows=100, seed=3).sample)
    np.testing.assert_allclose(summary.mean, vectors.mean(axis=0))
    stored = summary.to_dict()
    assert stored["dtype"] == "float16" and len(base64.b64decode(stored["sample"])) == 100 * 16 * 2  # the cap
    back = EmbeddingSummary.from_bytes(
        embedder="e", n=500, dim=16, rows=100, dtype="float16", mean=base64.b64decode(stored["mean"]),
        sample=base64.b64decode(stored["sample"]),
    )
    np.testing.assert_allclose(back.sample, summary.sample, rtol=1e-3, atol=1e-3)
    # Values float16 cannot hold are kept as float32, never as infinities.
    assert summarize(vectors * 1e6, embedder="e", rows=10).to_dict()["dtype"] == "float32"
    with pytest.raises(DriftInputError, match="do not make 100 rows of dimension 16"):
        EmbeddingSummary.from_bytes(embedder="e", n=500, dim=16, rows=100, dtype="float16", mean=b"", sample=b"")


def test_keep_sample_zero_keeps_no_summary(pytester, capsys):
    pytester.makepyfile(test_off="""
        import pytest
        from pytest_llmops.assertions.drift import assert_no_drift
        from pytest_llmops.drift import HashingEmbedder

        @pytest.mark.llm_eval
        def test_off():
            texts = [f"refund my payment {i}" for i in range(30)]
            assert_no_drift(texts, texts, embedder=HashingEmbedder(64), n_permutations=50, keep_sample=0)
    """)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    with HistoryStore(pytester.path / ".llmops" / "history.sqlite") as store:
        assert len(store.runs()) == 1 and store.drift_summaries() == []
    # `trend drift` then shows the statistic the check computed, and says why.
    capsys.readouterr()
    assert llmops(["history", "--path", history_path(pytester), "trend", "drift"]) == 0
    assert capsys.readouterr().out.startswith("no run stored an embedding summary of its drift checks")
    assert llmops(["history", "--path", history_path(pytester), "trend", "drift", "--against", "previous"]) == 2
    assert "no run in " in capsys.readouterr().err


def test_a_version_2_history_is_migrated_and_its_drift_summaries_read_out(tmp_path):
    """Runs stored before version 3 keep their summaries in the results text; the migration fills the table."""
    vectors = np.random.default_rng(1).normal(size=(40, 8))
    score = {"name": "drift.mmd", "value": 0.4, "verdict": "pass", "details": {
        "method": "mmd", "alpha": 0.05, "seed": 0, "n_permutations": 100,
        "embedding_summary": summarize(vectors, embedder="e", rows=32).to_dict(),
    }}
    results = json.dumps({"cases": [{"nodeid": "t.py::test_x", "scores": [score]}]})
    path = tmp_path / "history.sqlite"
    db = sqlite3.connect(path)
    for migration in history_store.MIGRATIONS[:2]:  # the schema as version 2 wrote it
        migration(db)
    db.execute("INSERT INTO runs (run_id, started_at, finished_at, n_cases, counts, results) "
               "VALUES ('old', 1.0, 2.0, 1, '{}', ?)", (results,))
    db.execute("INSERT INTO runs (run_id, started_at, finished_at, n_cases, counts, results) "
               "VALUES ('broken', 1.0, 3.0, 0, '{}', 'not json')")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with HistoryStore(path) as store:
        assert store.schema_version == history_store.SCHEMA_VERSION == 3
        assert len(store.runs()) == 2
        (row,) = store.drift_summaries()
        assert (row["run_id"], row["nodeid"], row["name"], row["n"], row["rows"]) == ("old", "t.py::test_x",
                                                                                      "drift.mmd", 40, 32)
        ((point,),) = drift_over_time(store).values()
        assert point.is_reference and point.check == "t.py::test_x drift.mmd"
        with pytest.raises(HistoryError, match="at least 1 run"):
            drift_over_time(store, window=0)


def _store_run(store: HistoryStore, run_id: str, finished_at: float, suite: str, vectors: np.ndarray) -> None:
    """A run of ``suite`` whose one drift check saw ``vectors`` (as the plugin's append stores it)."""
    score = {"name": "drift.mmd", "details": {
        "method": "mmd", "alpha": 0.05, "seed": 0, "n_permutations": 100,
        "embedding_summary": summarize(vectors, embedder="e", rows=32).to_dict(),
    }}
    with store._write() as db:
        db.execute("INSERT INTO runs (run_id, started_at, finished_at, n_cases, counts, results, suite) "
                   "VALUES (?,?,?,1,'{}','{}',?)", (run_id, finished_at, finished_at, suite))
        history_store._insert_summaries(db, run_id, history_store._summaries_in([(f"{suite}/t.py::x", score)]))


def test_the_reports_last_runs_are_the_suites_even_when_another_suite_ran_since(tmp_path):
    rng = np.random.default_rng(2)
    with HistoryStore(tmp_path / "history.sqlite") as store:
        for i in range(3):
            _store_run(store, f"a{i}", 10.0 + i, "evals/a", rng.normal(size=(40, 8)) + (3.0 if i == 2 else 0.0))
        for i in range(5):
            _store_run(store, f"b{i}", 20.0 + i, "evals/b", rng.normal(size=(40, 8)))
        checks = drift_over_time(store, suite="evals/a", limit=2)
        ((name, points),) = checks.items()
        assert name == "evals/a/t.py::x drift.mmd"
        assert [p.run_ids for p in points] == [("a1",), ("a2",)] and points[1].drifted is True
        # A reference run older than the window is fetched on its own.
        against = drift_over_time(store, suite="evals/a", limit=1, against="a0")
        assert [(p.run_ids, p.reference) for p in against["evals/a/t.py::x drift.mmd"]] == [(("a2",), ("a0",))]


def test_the_history_store_appends_drift_summaries_without_numpy():
    # Every run is appended at its end: reading a drift check's summary out of it must not load numpy.
    from tests.test_import_light import modules_after

    loaded = modules_after("import pytest_llmops.history.store, pytest_llmops.history.drift_trend")
    assert "pytest_llmops.history.drift_trend" in loaded
    assert sorted(m for m in ("numpy", "scipy", "sklearn", "torch") if m in loaded) == []
