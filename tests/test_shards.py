"""``--llmops-shard=i/n`` splits a suite across CI jobs; ``llmops results merge`` + ``llmops gate`` decide once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_llmops.cli import main as llmops
from pytest_llmops.shards import assign, case_ids_hash, parse_shard

pytest.importorskip("sacrebleu")

SUITE = """
import pytest
from pytest_llmops.assertions import collect_corpus_bleu

PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("a quick brown fox jumps", "the quick brown fox jumps"),
    ("hello world again", "hello world"),
    ("it is raining today", "it rains today"),
    ("we went to the market", "we went to the shop"),
    ("the sun is bright", "the sun shines bright"),
    ("my dog likes long walks", "my dog likes long walks"),
    ("she reads a book", "she is reading a book"),
    ("green trees in the park", "the park has green trees"),
    ("coffee is hot", "the coffee is hot"),
    ("open the window please", "please open the window"),
    ("time flies fast", "time flies"),
]

@pytest.mark.llm_eval
@pytest.mark.parametrize("hypothesis,reference", PAIRS)
def test_translation(hypothesis, reference):
    collect_corpus_bleu(hypothesis, reference, group="demo", min_score=5)
    # Two of the twelve answers fail a case-level check: 10/12 = 0.833 pass rate.
    assert hypothesis not in ("coffee is hot", "time flies fast")
"""

GATES = ["--llmops-gate=pass_rate>=0.9", "--llmops-gate=pass_rate.lower>=0.4"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--llmops-history=off", *GATES, *args)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_parse_shard_and_the_split_is_stable_and_complete():
    assert parse_shard("2/3") == (2, 3)
    ids = [f"t.py::test[{i}]" for i in range(50)]
    by_hash = assign(ids, 4)
    assert by_hash == assign(list(reversed(ids)), 4)  # order of collection does not matter
    assert set(by_hash.values()) == {1, 2, 3, 4}
    # Balanced by duration: one slow case gets a shard to itself.
    durations = {nodeid: 1.0 for nodeid in ids}
    durations[ids[0]] = 25.0
    balanced = assign(ids, 3, durations)
    alone = [n for n in ids if balanced[n] == balanced[ids[0]]]
    assert alone == [ids[0]]
    assert case_ids_hash(ids) == case_ids_hash(list(reversed(ids)))


@pytest.mark.parametrize("bad", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_a_bad_shard_is_a_usage_error(pytester, bad):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--llmops-shard={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmops-shard: expected a shard as i/n*Example: --llmops-shard=2/3*"])


@pytest.fixture
def sharded(pytester: pytest.Pytester) -> tuple[pytest.Pytester, list[Path]]:
    """The suite run whole (results.json) and in three shards (shard-1..3.json)."""
    pytester.makepyfile(SUITE)
    whole = run(pytester)
    assert whole.ret == 6  # the pass_rate>=0.9 gate fails the unsharded run
    total_deselected = 0
    paths = []
    for index in (1, 2, 3):
        path = pytester.path / f"shard-{index}.json"
        result = run(pytester, f"--llmops-shard={index}/3", f"--llmops-results={path}")
        # The gate is deferred: the shard's failures are the gate's to judge, after the merge.
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines([f"shard {index}/3: * of 12 eval cases (split by hash); 2 gate(s) *deferred*"])
        outcomes = result.parseoutcomes()
        total_deselected += outcomes.get("deselected", 0)
        paths.append(path)
    assert total_deselected == 2 * 12  # each case ran in one shard, deselected in the other two
    return pytester, paths


def test_three_shards_merged_equal_the_unsharded_run(sharded, capsys):
    pytester, paths = sharded
    whole = read(pytester.path / ".llmops" / "results.json")
    shard = read(paths[0])
    assert shard["shard"]["count"] == 3 and shard["gates"] == [] and shard["group_scores"] == []
    assert sorted(shard["shard"]["gates"]) == sorted(g.split("=", 1)[1] for g in GATES)

    merged_path = pytester.path / "merged.json"
    assert llmops(["results", "merge", *map(str, paths), "-o", str(merged_path)]) == 0
    merged = read(merged_path)
    assert sorted(c["nodeid"] for c in merged["cases"]) == sorted(c["nodeid"] for c in whole["cases"])
    assert merged["summary"]["counts"] == whole["summary"]["counts"]
    # Corpus BLEU from the pooled pairs of all shards, as the whole run scored it.
    [whole_bleu] = whole["group_scores"]
    [merged_bleu] = merged["group_scores"]
    assert merged_bleu["value"] == pytest.approx(whole_bleu["value"], abs=1e-9)
    assert {(g["expression"], g["value"], g["verdict"]) for g in merged["gates"]} == {
        (g["expression"], g["value"], g["verdict"]) for g in whole["gates"]
    }
    capsys.readouterr()
    assert llmops(["gate", str(merged_path)]) == 1  # pass_rate 0.833 < 0.9, decided once
    out = capsys.readouterr().out
    assert "FAIL       pass_rate>=0.9  = 0.8333" in out
    assert "PASS       pass_rate.lower>=0.4" in out


def test_a_missing_shard_is_refused(sharded, capsys):
    _, paths = sharded
    assert llmops(["results", "merge", str(paths[0]), str(paths[2]), "-o", "out.json"]) == 2
    assert "missing shard(s) 2/3" in capsys.readouterr().err


def test_a_duplicated_shard_or_case_is_refused(sharded, capsys, tmp_path):
    _, paths = sharded
    copy = tmp_path / "copy.json"
    shutil.copy(paths[1], copy)
    assert llmops(["results", "merge", *map(str, paths), str(copy), "-o", str(tmp_path / "o.json")]) == 2
    assert f"{copy}: duplicated shard 2/3, also in {paths[1]}" in capsys.readouterr().err

    # Shard 3 claims one of shard 1's cases as well.
    one, three = read(paths[0]), read(paths[2])
    three["cases"].append(one["cases"][0])
    paths[2].write_text(json.dumps(three))
    assert llmops(["results", "merge", *map(str, paths), "-o", str(tmp_path / "o.json")]) == 2
    assert f"{paths[2]}: duplicated case {one['cases'][0]['nodeid']}, also in {paths[0]}" in capsys.readouterr().err


def test_shards_of_different_settings_or_suites_are_refused(sharded, capsys, tmp_path):
    _, paths = sharded
    data = read(paths[1])
    data["settings"]["model"] = "openai/other-model"
    paths[1].write_text(json.dumps(data))
    assert llmops(["results", "merge", *map(str, paths), "-o", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert f"{paths[1]}: its settings hash is" in err and "with the same settings" in err

    data["settings"]["model"] = read(paths[0])["settings"]["model"]
    data["shard"]["case_ids_hash"] = "0" * 64
    paths[1].write_text(json.dumps(data))
    assert llmops(["results", "merge", *map(str, paths), "-o", str(tmp_path / "o.json")]) == 2
    assert f"{paths[1]}: its case set" in capsys.readouterr().err


def test_an_unsharded_file_is_refused(sharded, capsys):
    pytester, paths = sharded
    whole = pytester.path / ".llmops" / "results.json"
    assert llmops(["results", "merge", str(whole), *map(str, paths), "-o", "o.json"]) == 2
    assert f"{whole}: not a shard's results" in capsys.readouterr().err


def test_shards_under_xdist_record_their_part_and_merge(pytester, capsys):
    pytest.importorskip("xdist")
    pytester.makepyfile(SUITE)
    paths = []
    for index in (1, 2):
        path = pytester.path / f"shard-{index}.json"
        result = run(pytester, "-n", "2", f"--llmops-shard={index}/2", f"--llmops-results={path}")
        assert result.ret == 0, result.stdout.str()
        assert read(path)["shard"]["index"] == index  # the controller got the record from its workers
        paths.append(path)
    merged = pytester.path / "merged.json"
    assert llmops(["results", "merge", *map(str, paths), "-o", str(merged)]) == 0
    assert read(merged)["summary"]["counts"]["passed"] == 10
    assert read(merged)["group_scores"][0]["verdict"] == "pass"


def test_more_shards_than_cases_leaves_empty_shards_that_still_pass_and_merge(pytester, capsys):
    pytester.makepyfile("import pytest\n@pytest.mark.llm_eval\ndef test_one():\n    assert True\n")
    paths = [pytester.path / f"shard-{i}.json" for i in (1, 2, 3)]
    results = [run(pytester, f"--llmops-shard={i}/3", f"--llmops-results={path}") for i, path in enumerate(paths, 1)]
    assert [r.ret for r in results] == [0, 0, 0]  # not 5 ("no tests ran") for the empty ones
    assert sorted(len(read(p)["cases"]) for p in paths) == [0, 0, 1]
    # The deferred gates are decided on the one case, once merged: 1/1 passed, but one case
    # is too few for a Wilson lower bound of 0.4.
    assert llmops(["results", "merge", *map(str, paths), "-o", str(pytester.path / "m.json")]) == 0
    capsys.readouterr()
    assert llmops(["gate", str(pytester.path / "m.json")]) == 1
    out = capsys.readouterr().out
    assert "PASS       pass_rate>=0.9  = 1" in out and "FAIL       pass_rate.lower>=0.4  = 0.2065" in out


def test_a_previous_results_file_balances_the_split_by_duration(pytester, capsys):
    pytester.makepyfile(SUITE)
    assert run(pytester, "--llmops-results=previous.json").ret == 6
    previous = read(pytester.path / "previous.json")
    slow = previous["cases"][0]["nodeid"]
    previous["cases"][0]["duration_s"] = 100.0  # one case took longer than all the others together
    for case in previous["cases"][1:]:
        case["duration_s"] = 1.0
    paths = []
    for index in (1, 2):
        path = pytester.path / f"shard-{index}.json"
        path.write_text(json.dumps(previous))  # each job starts from the same previous file
        result = run(pytester, f"--llmops-shard={index}/2", f"--llmops-results={path}")
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines([f"shard {index}/2: * (split by duration)*"])
        paths.append(path)
    shards = [read(p)["shard"] for p in paths]
    alone = [s["selected"] for s in shards if slow in s["selected"]]
    assert alone == [[slow]]  # the slow case has a shard to itself, the other 11 share the other
    assert shards[0]["durations_hash"] == shards[1]["durations_hash"] is not None
    assert llmops(["results", "merge", *map(str, paths), "-o", str(pytester.path / "m.json")]) == 0
