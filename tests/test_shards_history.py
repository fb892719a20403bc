"""Shards balanced by the run history when no previous results file is given; plain tests in shard 1 only."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pytest_llmops.cli import main as llmops

SUITE = """
import time
import pytest

@pytest.mark.llm_eval
@pytest.mark.parametrize("n", range(8))
def test_answer(n):
    if n == 3:
        time.sleep(0.6)  # one case slower than all the others together
    assert n >= 0
"""
PLAIN = """
def test_plain_one():
    assert 1 + 1 == 2

def test_plain_two():
    assert "a".upper() == "A"
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_without_a_results_file_the_latest_run_of_the_suite_in_the_history_balances_the_split(pytester, capsys):
    pytester.makepyfile(test_suite=SUITE)
    # The whole suite once: appended to .llmops/history.sqlite with each case's duration.
    assert run(pytester, "--llmops-results=whole.json").ret == 0
    history = pytester.path / ".llmops" / "history.sqlite"
    with sqlite3.connect(history) as db:
        slowest = db.execute("SELECT nodeid FROM cases ORDER BY duration_s DESC LIMIT 1").fetchone()[0]
    assert slowest == "test_suite.py::test_answer[3]"

    paths = []
    for index in (1, 2):
        path = pytester.path / f"shard-{index}.json"  # a CI job starts with no results file
        result = run(pytester, f"--llmops-shard={index}/2", f"--llmops-results={path}")
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines([f"shard {index}/2: * of 8 eval cases (split by duration)*"])
        paths.append(path)
    shards = [json.loads(p.read_text())["shard"] for p in paths]
    assert [s["selected"] for s in shards if slowest in s["selected"]] == [[slowest]]  # a shard to itself
    assert all(s["durations_from"].startswith("history run ") for s in shards)
    assert shards[0]["durations_hash"] == shards[1]["durations_hash"] is not None
    with sqlite3.connect(history) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1  # shards are not added to it
    assert llmops(["results", "merge", *map(str, paths), "-o", str(pytester.path / "merged.json")]) == 0

    # No history (or history off): the split is by hash again.
    result = run(pytester, "--llmops-shard=1/2", "--llmops-results=h.json", "--llmops-history=off")
    result.stdout.fnmatch_lines(["shard 1/2: * of 8 eval cases (split by hash)*"])


def test_plain_tests_run_in_shard_1_only(pytester):
    pytester.makepyfile(test_suite=SUITE.replace("time.sleep(0.6)", "pass"), test_plain=PLAIN)
    ran = []
    for index in (1, 2, 3):
        result = run(pytester, f"--llmops-shard={index}/3", f"--llmops-results=shard-{index}.json",
                     "--llmops-history=off", "-v")
        assert result.ret == 0, result.stdout.str()
        ran.append({line.split(" ")[0] for line in result.outlines if " PASSED" in line})
    plain = {"test_plain.py::test_plain_one", "test_plain.py::test_plain_two"}
    assert plain <= ran[0] and not plain & (ran[1] | ran[2])
    # The eval cases alone are split, each into one shard; the plain tests are no case of the merge.
    cases = [c["nodeid"] for i in (1, 2, 3) for c in json.loads((pytester.path / f"shard-{i}.json").read_text())["cases"]]
    assert sorted(cases) == sorted(f"test_suite.py::test_answer[{n}]" for n in range(8))
    assert sorted(n for r in ran for n in r if n.startswith("test_suite")) == sorted(cases)
