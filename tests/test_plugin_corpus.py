"""Corpus-level metrics: each case adds a pair, the group is scored and gated once at the end."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sacrebleu")

CORPUS_TESTS = """
import pytest
from pytest_llmops.assertions import collect_corpus_bleu

PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("a quick brown fox jumps", "the quick brown fox jumps"),
    ("hello world again", "hello world"),
    ("it is raining today", "it rains today"),
]

@pytest.mark.llm_eval
@pytest.mark.parametrize("hypothesis,reference", PAIRS)
def test_translation(hypothesis, reference):
    collect_corpus_bleu(hypothesis, reference, group="demo", min_score={min_score})
"""


def direct_corpus_bleu() -> float:
    import sacrebleu

    hyps = ["the cat sat on the mat", "a quick brown fox jumps", "hello world again", "it is raining today"]
    refs = ["the cat sat on the mat", "the quick brown fox jumps", "hello world", "it rains today"]
    return sacrebleu.corpus_bleu(hyps, [refs]).score


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_corpus_group_is_scored_once_and_equals_sacrebleu(pytester, workers):
    if workers:
        pytest.importorskip("xdist")
    pytester.makepyfile(CORPUS_TESTS.format(min_score=10))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["group score: corpus_bleu[[]demo] = * (needs >= 10: pass)*"])
    data = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    [score] = data["group_scores"]
    assert score["value"] == pytest.approx(direct_corpus_bleu(), abs=1e-9)


def test_a_failing_corpus_group_fails_the_run_even_when_every_case_passed(pytester):
    pytester.makepyfile(CORPUS_TESTS.format(min_score=90))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["group score: corpus_bleu[[]demo] = * (needs >= 90: fail)*"])


def test_llmops_gate_refuses_a_run_whose_corpus_score_failed(pytester, capsys):
    from pytest_llmops.cli import main

    pytester.makepyfile(CORPUS_TESTS.format(min_score=90))
    pytester.runpytest_subprocess("-p", "no:cacheprovider")
    results = str(pytester.path / ".llmops" / "results.json")
    capsys.readouterr()

    # Every case passed, so the pass-rate gate passes; the corpus score still decides, as in the run.
    assert main(["gate", results, "--gate", "pass_rate>=1"]) == 1
    out = capsys.readouterr().out
    assert "PASS       pass_rate>=1" in out
    assert "REFUSED    corpus score corpus_bleu[demo] = " in out and ": fail (" in out


def test_llmops_gate_passes_a_run_whose_corpus_score_passed(pytester, capsys):
    from pytest_llmops.cli import main

    pytester.makepyfile(CORPUS_TESTS.format(min_score=10))
    pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert main(["gate", str(pytester.path / ".llmops" / "results.json"), "--gate", "pass_rate>=1"]) == 0
    assert "REFUSED" not in capsys.readouterr().out
