"""Baselines: save a run, compare the next one case by case, fail only on a significant drop."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


def run(pytester: pytest.Pytester, values: list[float], *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_scored=SCORED.format(values=values))
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_a_consistent_drop_is_a_significant_regression(pytester):
    saved = run(pytester, [0.8] * 12, "--llmops-save-baseline=main")
    assert saved.ret == 0
    saved.stdout.fnmatch_lines(["*baseline saved: .llmops/baselines/main.json*"])
    stored = json.loads((pytester.path / ".llmops" / "baselines" / "main.json").read_text())
    assert len(stored["cases"]) == 12 and stored["environment"]["packages"]["pytest"]

    worse = run(pytester, [0.8, 0.8] + [0.6] * 10, "--llmops-compare=main")
    assert worse.ret == 6
    worse.stdout.fnmatch_lines([
        "baseline 'main': 1 regression(s) (alpha 0.05, tolerance 0)",
        "  REGRESSION * quality: 0.8 -> 0.6333 (delta -0.1667, CI *, p=0, n=12; paired bootstrap, 10000 resamples)",
    ])


def test_a_drop_on_one_case_is_not_significant_and_the_tolerance_is_respected(pytester):
    run(pytester, [0.8] * 10, "--llmops-save-baseline=main")
    # The pass-rate gate takes the one failing case; the comparison finds no significant drop.
    one_case = run(pytester, [0.8] * 9 + [0.3], "--llmops-compare=main", "--llmops-gate=pass_rate>=0.8", "-v")
    assert one_case.ret == 0
    one_case.stdout.fnmatch_lines([
        "baseline 'main': 0 regression(s)*",
        "  NO SIGNIFICANT CHANGE * pass_rate: 1 -> 0.9 (delta -0.1, p=0.5, n=10; exact McNemar, one-sided)",
        "  NO SIGNIFICANT CHANGE * quality: 0.8 -> 0.75 (delta -0.05, CI *",
    ])
    small = run(pytester, [0.78] * 10, "--llmops-compare=main", "--llmops-compare-tolerance=0.05")
    assert small.ret == 0
    assert "0 regression(s)" in small.stdout.str()
    beyond = run(pytester, [0.78] * 10, "--llmops-compare=main", "--llmops-compare-tolerance=0.01")
    assert beyond.ret == 6


def test_pass_fail_flips_are_tested_with_exact_mcnemar(pytester):
    run(pytester, [0.8] * 10, "--llmops-save-baseline=main")
    flipped = run(pytester, [0.8] * 4 + [0.3] * 6, "--llmops-compare=main", "--llmops-gate=pass_rate>=0.3")
    assert flipped.ret == 6  # the pass-rate gate holds, but six flips to failing is a regression (p = 1/64)
    flipped.stdout.fnmatch_lines(["  REGRESSION * pass_rate: 1 -> 0.4 (delta -0.6, p=0.0156, n=10; exact McNemar, one-sided)"])


def test_comparing_with_a_different_judge_warns_loudly(pytester):
    run(pytester, [0.8] * 4, "--llmops-save-baseline=main")
    other = run(pytester, [0.8] * 4, "--llmops-compare=main", "--llmops-judge=openai/other-judge")
    other.stdout.fnmatch_lines(["  WARNING: judge differs: baseline None, this run 'openai/other-judge'"])


def test_a_missing_baseline_fails_the_run_with_the_fix(pytester):
    result = run(pytester, [0.8], "--llmops-compare=nightly")
    assert result.ret == 6
    result.stdout.fnmatch_lines([
        "llmops: no baseline 'nightly' at *nightly.json (none is stored yet); "
        "save one with --llmops-save-baseline=nightly on a good run"
    ])


def llmops(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_llmops.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_stored_results_can_be_regated_and_compared_without_rerunning(pytester):
    run(pytester, [0.9, 0.8, 0.3, 0.7])
    passing = llmops("gate", "--gate", "pass_rate>=0.75", "--gate", "quality.mean>=0.6", cwd=pytester.path)
    assert passing.returncode == 0, passing.stderr
    assert "PASS       pass_rate>=0.75  = 0.75" in passing.stdout
    failing = llmops("gate", ".llmops/results.json", "--gate", "quality.min>=0.5", cwd=pytester.path)
    assert failing.returncode == 1
    assert "FAIL       quality.min>=0.5  = 0.3" in failing.stdout
    bad = llmops("gate", "--gate", "quality.min=>0.5", cwd=pytester.path)
    assert bad.returncode == 2
    assert "expected a comparison" in bad.stderr and "    quality.min=>0.5\n               ^" in bad.stderr

    saved = llmops("baseline", "save", ".llmops/results.json", "before", cwd=pytester.path)
    assert saved.returncode == 0 and "saved" in saved.stdout
    run(pytester, [0.2, 0.1, 0.3, 0.2])
    compared = llmops("gate", "--gate", "pass_rate>=0", "--compare", "before", "--html", "report.html", cwd=pytester.path)
    assert compared.returncode == 1
    assert "REGRESSION             quality" in compared.stdout
    assert (pytester.path / "report.html").read_text().count("quality") > 1


def test_a_baseline_made_on_another_llama_cpp_build_is_flagged():
    from pytest_llmops.results.baseline import provenance_warnings
    from pytest_llmops.results.models import CaseResult, Environment, RunResult

    def run_on(build: str) -> RunResult:
        runtime = {"engine": "llama.cpp", "llama_cpp_python": build, "weights": "m.gguf"}
        call = {"model": "local/smollm2", "kind": "chat", "role": "llm", "api_base": None, "params": {},
                "prompt_hash": "p", "cache_key": "k", "started_at": 0.0, "extra": {"runtime": runtime}}
        case = CaseResult(nodeid="test_a.py::test_a", state="passed", calls=[call])
        from pytest_llmops.results.models import runtimes_of

        return RunResult(
            started_at=0.0, finished_at=1.0, interrupted=False, exit_status=0, settings={"model": "local/smollm2"},
            environment=Environment(python="3.11", platform="Linux", packages={}, runtimes=runtimes_of([case])),
            summary={}, cases=[case],
        )

    assert provenance_warnings(run_on("0.3.36"), run_on("0.3.36")) == []
    warnings = provenance_warnings(run_on("0.3.37"), run_on("0.3.36"))
    assert len(warnings) == 1
    assert warnings[0].startswith("model runtime differs") and "'0.3.36'" in warnings[0] and "'0.3.37'" in warnings[0]
