"""The progress status: drawn on a terminal, absent from logs, off on request."""

from __future__ import annotations

import re

import pytest

from pytest_llmops.reporting.progress import ERASE

pytest_plugins = ["pytester"]

CASES = """
import asyncio
import pytest

@pytest.mark.llm_eval
@pytest.mark.parametrize("i", range(6))
async def test_case(i, llm):
    await llm.complete(f"question {i}")
    await asyncio.sleep(0.3)

def test_plain():
    pass
"""


@pytest.fixture
def eval_args(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    return ["--llmops-model=openai/test-model", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider"]


def test_the_status_counts_cases_and_calls_and_is_erased(pytester, eval_args):
    pytester.makepyfile(CASES)
    result = pytester.runpytest_subprocess(*eval_args, "--llmops-progress=on", "--llmops-concurrency=2")
    result.assert_outcomes(passed=7)
    out = result.stdout.str()
    statuses = re.findall(r"\[llmops (\d+)/6 cases \| (\d+) in flight \| (\d+) calls\]", out)
    assert statuses, out
    done = [int(d) for d, _, _ in statuses]
    assert done == sorted(done) and max(done) <= 6
    # Every drawn status is erased again, and pytest's own lines are intact.
    assert out.count(ERASE) >= len(statuses)
    result.stdout.fnmatch_lines(["*cases: 6 (6 passed)*"])
    assert "[100%]" in out


@pytest.mark.parametrize("flags", [[], ["-q"]])
def test_no_status_by_default_when_not_on_a_terminal(pytester, eval_args, flags):
    pytester.makepyfile(CASES)
    result = pytester.runpytest_subprocess(*eval_args, *flags)
    result.assert_outcomes(passed=7)
    assert "[llmops" not in result.stdout.str() and ERASE not in result.stdout.str()


def test_verbose_output_is_unchanged_when_forced_on(pytester, eval_args):
    pytester.makepyfile(CASES)
    result = pytester.runpytest_subprocess(*eval_args, "-v", "--llmops-progress=on")
    result.stdout.fnmatch_lines([f"*test_case[[]{i}[]] PASSED*" for i in range(6)] + ["*test_plain PASSED*"])


def test_a_bad_progress_value_names_the_option(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("--llmops-progress=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmops-progress*invalid choice*sometimes*"])
