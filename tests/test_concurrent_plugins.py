"""Concurrent async eval tests against the real local server, under xdist, and beside
pytest-asyncio and anyio (each plugin keeps the tests it owns, run one at a time)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

CASES = """
import pytest

@pytest.mark.llm_eval
@pytest.mark.parametrize("i", range(8))
async def test_case(i, llm, llmops_case):
    first = await llm.complete(f"first question number {i}")
    second = await llm.complete(f"second question number {i}")
    assert f"number {i}" in first and f"number {i}" in second
    assert [call.nodeid for call in llmops_case.calls] == [llmops_case.nodeid] * 2
"""


@pytest.fixture
def eval_args(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    return ["--llmops-model=openai/test-model", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider"]


def test_cases_share_the_provider_concurrently_and_keep_their_own_calls(pytester, server, eval_args):
    server.latency = 0.3
    pytester.makepyfile(CASES)
    result = pytester.runpytest(*eval_args, "--llmops-concurrency=8")
    result.assert_outcomes(passed=8)
    assert server.requests == 16
    # Eight cases in flight at once (two calls each, in sequence): 0.6 s of latency, not 4.8 s.
    assert server.max_in_flight == 8
    data = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    for case in data["cases"]:
        assert len(case["calls"]) == 2
        index = case["nodeid"].split("[")[1].rstrip("]")
        assert all(call["nodeid"] == case["nodeid"] for call in case["calls"]), index


def test_calls_in_flight_stay_within_the_concurrency_while_more_tests_run(pytester, server, eval_args):
    server.latency = 0.2
    pytester.makepyfile(CASES)
    result = pytester.runpytest(*eval_args, "--llmops-concurrency=2")
    result.assert_outcomes(passed=8)
    # Four tests at once (twice the calls in flight), but never more than two requests out.
    assert server.requests == 16 and server.max_in_flight == 2


def test_a_run_against_an_openai_compatible_base_never_imports_litellm(pytester, server, eval_args):
    pytester.makepyfile(CASES)
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            with open("modules.txt", "w") as f:
                f.write(" ".join(name for name in ("litellm", "aiohttp") if name in sys.modules))
        """
    )
    result = pytester.runpytest_subprocess(*eval_args)
    result.assert_outcomes(passed=8)
    assert (pytester.path / "modules.txt").read_text() == "aiohttp"
    result = pytester.runpytest_subprocess(*eval_args, "--llmops-client=litellm", "--llmops-record-mode=off")
    result.assert_outcomes(passed=8)
    assert "litellm" in (pytester.path / "modules.txt").read_text()


def test_under_xdist_each_worker_runs_its_share(pytester, server, eval_args):
    pytester.makepyfile(CASES)
    result = pytester.runpytest_subprocess(*eval_args, "-n", "2")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*cases: 8 (8 passed)*"])
    assert server.requests == 16


ASYNC_PLUGINS = """
import asyncio
import pytest

LOOPS = {}

@pytest.mark.llm_eval
@pytest.mark.parametrize("i", range(3))
async def test_ours(i):
    LOOPS.setdefault("ours", set()).add(asyncio.get_running_loop())
    await asyncio.sleep(0.05)

@pytest.mark.asyncio
async def test_theirs():
    LOOPS.setdefault("asyncio", set()).add(asyncio.get_running_loop())
    await asyncio.sleep(0.01)

@pytest.mark.llm_eval
@pytest.mark.asyncio
async def test_eval_marked_asyncio():
    LOOPS.setdefault("asyncio", set()).add(asyncio.get_running_loop())

@pytest.mark.anyio
async def test_anyio():
    LOOPS.setdefault("anyio", set()).add(asyncio.get_running_loop())

@pytest.fixture
def anyio_backend():
    return "asyncio"

def test_loops_were_separate():
    # Our cases share the session's loop; the other plugins' tests ran on loops of their own
    # (the loops themselves are kept, so no id is reused).
    assert len(LOOPS["ours"]) == 1
    assert LOOPS["ours"].isdisjoint(LOOPS["asyncio"]) and LOOPS["ours"].isdisjoint(LOOPS["anyio"])
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio_and_anyio_keep_their_tests(pytester, mode):
    pytester.makeini(f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(ASYNC_PLUGINS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    if mode == "strict":
        result.assert_outcomes(passed=7)
    else:
        # In auto mode pytest-asyncio claims every async test, ours too: they still pass,
        # on its loops, one at a time; the loop check then sees three loops of ours.
        result.assert_outcomes(passed=6, failed=1)
        result.stdout.fnmatch_lines(["*assert 3 == 1*"])
    result.stdout.fnmatch_lines(["*test_ours[[]0[]] PASSED*", "*test_ours[[]1[]] PASSED*", "*test_ours[[]2[]] PASSED*"])
