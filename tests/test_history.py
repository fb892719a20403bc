"""The run history: each finished run appended to .llmops/history.sqlite, read back as trends and baselines."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_llmops.cli import main as llmops
from pytest_llmops.history import store as history_store
from pytest_llmops.history.store import HistoryError, HistoryStore
from pytest_llmops.results.models import read_results

pytest_plugins = ["pytester"]

SCORED = """
import pytest
from pytest_llmops import Score, require

VALUES = {values}

@pytest.mark.llm_eval
@pytest.mark.parametrize("case", range(len(VALUES)))
def test_quality(case):
    require(Score.measured("quality", VALUES[case], threshold=0.5))
"""


def run(
    pytester: pytest.Pytester, values: list[float], *args: str, branch: str = "main", subprocess: bool = False
) -> pytest.RunResult:
    pytester.makepyfile(test_scored=SCORED.format(values=values))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLMOPS_GIT_BRANCH", branch)
        runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest_inprocess
        return runner("-p", "no:cacheprovider", *args)


def history_of(pytester: pytest.Pytester) -> HistoryStore:
    return HistoryStore(pytester.path / ".llmops" / "history.sqlite")


def test_every_finished_run_is_appended_and_its_trend_can_be_read(pytester, capsys):
    run(pytester, [0.9] * 4)
    run(pytester, [0.9, 0.9, 0.3, 0.3], "--llmops-gate=pass_rate>=0.25", branch="feature/x")
    with history_of(pytester) as store:
        runs = store.runs()
        assert [r.git_branch for r in runs] == ["feature/x", "main"]  # newest first
        assert [r.counts.get("passed") for r in runs] == [2, 4]
        trend = store.trend("quality")
    assert [round(p["mean"], 3) for p in trend] == [0.9, 0.6]
    assert [(p["passed"], p["cases"]) for p in trend] == [(4, 4), (2, 4)]

    path = str(pytester.path / ".llmops" / "history.sqlite")
    assert llmops(["history", "--path", path, "trend", "quality"]) == 0
    out = capsys.readouterr().out
    assert "mean 0.9  (4/4 passed)" in out and "mean 0.6  (2/4 passed)" in out
    assert llmops(["history", "--path", path, "list", "--branch", "main"]) == 0
    listed = capsys.readouterr().out
    assert "main" in listed and "feature/x" not in listed and "pass (4 passed)" in listed


def test_the_same_results_imported_twice_are_stored_once(pytester, tmp_path, capsys):
    run(pytester, [0.8] * 3, "--llmops-history=off")
    assert not (pytester.path / ".llmops" / "history.sqlite").exists()  # off keeps no history
    results = pytester.path / ".llmops" / "results.json"
    target = str(tmp_path / "h.sqlite")
    assert llmops(["history", "--path", target, "import", str(results), "--branch", "main"]) == 0
    assert llmops(["history", "--path", target, "import", str(results)]) == 0
    out = capsys.readouterr().out
    assert "added as run" in out and "already in the history as run" in out
    with HistoryStore(Path(target)) as store:
        (only,) = store.runs()
        assert only.git_branch == "main"
        assert store.load(only.run_id[:6]).cases == read_results(results).cases


def test_a_broken_results_file_is_named_and_not_imported(tmp_path, capsys):
    broken = tmp_path / "results.json"
    broken.write_text("{not json")
    assert llmops(["history", "--path", str(tmp_path / "h.sqlite"), "import", str(broken)]) == 2
    assert f"cannot import {broken}" in capsys.readouterr().err


def _append_many(path: str, tag: str, n: int) -> None:
    """Append n distinct runs, as a separate CI job would (run by two processes at once)."""
    from pytest_llmops.results.models import Environment, RunResult

    with HistoryStore(Path(path)) as store:
        for i in range(n):
            store.append(RunResult(
                started_at=time.time(), finished_at=time.time(), settings={"model": tag}, summary={},
                environment=Environment(python="3", platform=tag, packages={}), cases=[],
                exit_status=i,
            ))


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "history.sqlite")
    HistoryStore(Path(path)).close()
    code = "import sys; from tests.test_history import _append_many; _append_many(sys.argv[1], sys.argv[2], 40)"
    root = Path(__file__).resolve().parents[1]
    jobs = [
        subprocess.Popen([sys.executable, "-c", code, path, tag], cwd=root, stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    errors = [job.communicate(timeout=120)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], errors
    with HistoryStore(Path(path)) as store:
        runs = store.runs()
    assert sorted((r.model, r.exit_status) for r in runs) == sorted((t, i) for t in "ab" for i in range(40))


def test_under_four_xdist_workers_the_run_is_appended_once_with_every_case(pytester):
    pytest.importorskip("xdist")
    run(pytester, [0.9] * 12, "-n", "4", subprocess=True)
    with history_of(pytester) as store:
        (only,) = store.runs()
        assert only.n_cases == 12 and only.counts["passed"] == 12


def test_an_older_history_file_is_migrated_in_place(tmp_path):
    path = tmp_path / "history.sqlite"
    db = sqlite3.connect(path)
    history_store.MIGRATIONS[0](db)  # the schema as version 1 wrote it
    db.execute("INSERT INTO runs (run_id, started_at, finished_at, n_cases, counts, results) "
               "VALUES ('old', 1.0, 2.0, 0, '{}', '{}')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with HistoryStore(path) as store:
        assert store.schema_version == history_store.SCHEMA_VERSION == 3
        (old,) = store.runs()
        assert old.run_id == "old" and old.git_branch is None  # kept, with the new column empty


def test_a_history_file_from_a_newer_version_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "history.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(HistoryError, match="schema 99, newer than this pytest-llmops knows.*upgrade"):
        HistoryStore(path)


def test_compare_with_the_latest_run_of_main(pytester):
    run(pytester, [0.8] * 12)  # main
    run(pytester, [0.3] * 12, "--llmops-gate=pass_rate>=0", branch="feature/broken")  # not the baseline
    worse = run(pytester, [0.8, 0.8] + [0.6] * 10, "--llmops-compare=main@latest", branch="feature/y")
    assert worse.ret == 6
    worse.stdout.fnmatch_lines([
        "baseline 'main@latest (run *)': 1 regression(s)*",
        "  REGRESSION * quality: 0.8 -> 0.6333 *",
    ])
    assert "WARNING" not in worse.stdout.str()  # a fresh baseline: no staleness warning


def test_an_old_baseline_run_is_compared_with_a_staleness_warning(pytester, tmp_path):
    run(pytester, [0.8] * 6, "--llmops-history=off")
    results = pytester.path / ".llmops" / "results.json"
    data = json.loads(results.read_text())
    data["finished_at"] -= 10 * 86400
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    assert llmops(["history", "--path", str(pytester.path / ".llmops" / "history.sqlite"), "import", str(old),
                   "--branch", "main"]) == 0
    same = run(pytester, [0.8] * 6, "--llmops-compare=main@latest", "--llmops-compare-max-age=3d")
    assert same.ret == 0
    same.stdout.fnmatch_lines(["  WARNING: baseline run * (main@latest) finished 10.0 days ago, more than "
                               "--llmops-compare-max-age (3 days)*"])


def test_compare_by_git_revision_and_by_run_id(pytester):
    run(pytester, [0.8] * 4)
    with history_of(pytester) as store:
        (first,) = store.runs()
    by_id = run(pytester, [0.8] * 4, f"--llmops-compare=@{first.run_id[:8]}")
    assert by_id.ret == 0 and f"(run {first.run_id})" in by_id.stdout.str()
    unknown = run(pytester, [0.8] * 4, "--llmops-compare=@ffffffff")
    assert unknown.ret == 6
    unknown.stdout.fnmatch_lines(["*no run 'ffffffff' in *history.sqlite*llmops history list*"])


def test_compare_with_a_branch_that_never_ran_names_the_branches_there(pytester):
    run(pytester, [0.8] * 2, branch="dev")
    result = run(pytester, [0.8] * 2, "--llmops-compare=main@latest")
    assert result.ret == 6
    result.stdout.fnmatch_lines(["*no finished run of branch 'main' in *(branches there: dev)*"])


@pytest.mark.parametrize("bad", ["main@", "@ab", "main@yesterday"])
def test_a_malformed_history_reference_stops_the_run_before_any_test(pytester, bad):
    result = run(pytester, [0.8], f"--llmops-compare={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*is not a history reference; use BRANCH@latest*"])


def test_the_html_report_charts_the_suites_last_runs_with_their_gates(pytester):
    for values in ([0.9] * 4, [0.9, 0.9, 0.9, 0.3], [0.9, 0.3, 0.3, 0.3]):
        result = run(pytester, values, "--llmops-html=.llmops/report.html", "--llmops-gate=pass_rate>=0.5")
    result.assert_outcomes(passed=1, failed=3)
    page = (pytester.path / ".llmops" / "report.html").read_text()
    history = page[page.index('<section id="history">'):]
    history = history[:history.index("</section>")]
    assert "Pass rate of the last 3 runs of this suite" in history
    assert history.count('<circle class="dot"') == 3 and '<polyline class="trend-line"' in history
    # Newest first in the table: this run's pass rate (also its gate's value), then the older ones.
    table = history[history.index("<table"):]
    assert table.index(">0.25<") < table.index(">0.75<") < table.index(">1<")
    assert "pass_rate&gt;=0.5" in table


def test_a_first_run_has_no_history_section(pytester):
    run(pytester, [0.9] * 2, "--llmops-html=.llmops/report.html")
    assert '<section id="history">' not in (pytester.path / ".llmops" / "report.html").read_text()


DRIFTING = """
import pytest
from pytest_llmops import Score, require

@pytest.mark.llm_eval
def test_drift():
    require(Score.measured("drift.mmd", {mmd}, threshold=0.5, higher_is_better=False))
    require(Score.measured("drift.classifier", {auc}, threshold=0.9, higher_is_better=False))
    require(Score.measured("drift_free", 0.1, threshold=0.05))
"""


def test_trend_drift_shows_each_drift_statistic_run_by_run(pytester, capsys):
    for mmd, auc in ((0.1, 0.55), (0.3, 0.7)):
        pytester.makepyfile(test_drift=DRIFTING.format(mmd=mmd, auc=auc))
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    with history_of(pytester) as store:
        points = store.trend("drift")
    assert [(p["group"], p["mean"]) for p in points] == [
        ("drift.classifier", 0.55), ("drift.mmd", 0.1), ("drift.classifier", 0.7), ("drift.mmd", 0.3),
    ]  # 'drift_free' is not of the family: the '_' is not a LIKE wildcard here
    path = str(pytester.path / ".llmops" / "history.sqlite")
    assert llmops(["history", "--path", path, "trend", "drift"]) == 0
    out = capsys.readouterr().out
    assert out.count("drift.mmd") == 2 and "mean 0.3" in out
