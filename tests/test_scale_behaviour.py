"""Large runs: the pipeline stays full, each case reports its own time, every attempt is on record.

The runs go through pytest inside pytest (``pytester``) against the project's
test server, started here in the outer test so its counters (most requests in
flight, time with none in flight) can be read afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET

import pytest

from pytest_llmops.models.backend import ProviderError
from pytest_llmops.testing import Fault, LLMTestServer

pytest_plugins = ["pytester"]

ONE_CALL_CASES = """
import pytest

@pytest.mark.llm_eval
@pytest.mark.parametrize("case", range({cases}))
async def test_case(case, llm):
    assert await llm.complete(f"{name} case {{case}}")
"""


def run_cases(pytester: pytest.Pytester, server: LLMTestServer, *args: str):
    return pytester.runpytest(
        "-p", "no:cacheprovider", "--llmops-model=openai/test-model", f"--llmops-api-base={server.url}",
        "--llmops-record-mode=off", *args,
    )


@pytest.fixture
def slow_server():
    with LLMTestServer(latency=0.2) as running:
        yield running


def test_calls_in_flight_reach_the_limit_across_modules_and_past_the_set_up_window(pytester, slow_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    # Three modules of 40 cases; 8 tests at once set up at most 32 items ahead, so each
    # module slides its window and the run crosses two module boundaries.
    for name in ("first", "second", "third"):
        pytester.makepyfile(**{f"test_{name}": ONE_CALL_CASES.format(cases=40, name=name)})
    result = run_cases(pytester, slow_server, "--llmops-concurrency=8", "--llmops-test-concurrency=8")
    result.assert_outcomes(passed=120)
    assert slow_server.requests == 120
    assert slow_server.max_in_flight == 8
    # 120 calls of 0.2 s, 8 at a time, is 3 s of waiting; the pipeline empties only for
    # the moments between modules (module fixtures are torn down before the next set up).
    assert slow_server.idle_s < 1.0


def test_a_concurrent_case_reports_its_own_time(pytester, slow_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    pytester.makepyfile(test_timed=ONE_CALL_CASES.format(cases=6, name="timed"))
    result = run_cases(pytester, slow_server, "--junitxml=junit.xml", "--llmops-concurrency=6", "--durations=0")
    result.assert_outcomes(passed=6)
    # Each body waited 0.2 s on the server: its call phase says so, not the ~0 s of handing back its outcome.
    times = [float(case.get("time")) for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")]
    assert len(times) == 6 and all(0.2 <= t < 5 for t in times), times
    results = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    assert all(case["duration_s"] >= 0.2 for case in results["cases"]), [c["duration_s"] for c in results["cases"]]
    result.stdout.fnmatch_lines(["*0.2?s call * test_timed.py::test_case[[]*[]]*"])


def test_retried_attempts_are_on_the_call_record(make_client, server):
    server.latency = 0.05
    server.inject(Fault.server_error(), times=1)
    server.inject(Fault.rate_limit(retry_after=0.01), times=1)
    answer = make_client(retries=3).complete_sync("flaky")
    log = answer.call.attempt_log
    assert answer.call.attempts == 3 and len(log) == 3
    assert [(a["error_type"], a["status"]) for a in log[:2]] == [("InternalServerError", 500), ("RateLimitError", 429)]
    assert "error_type" not in log[2] and log[2]["elapsed_s"] == pytest.approx(answer.call.latency_s, abs=1e-5)
    assert all(a["elapsed_s"] >= 0.05 for a in log)


def test_a_call_that_fails_for_good_keeps_its_latency_and_every_attempt(make_client, server):
    server.latency = 0.05
    server.inject(Fault.server_error(), times=10)
    with pytest.raises(ProviderError) as caught:
        make_client(retries=1).complete_sync("down")
    call = caught.value.call
    assert call.error and call.attempts == 2
    assert [a["status"] for a in call.attempt_log] == [500, 500]
    assert call.latency_s is not None and call.latency_s >= 0.05
    assert call.to_dict()["attempt_log"][0]["error_type"] == "InternalServerError"


def test_a_clean_call_carries_no_attempt_log(make_client):
    answer = make_client().complete_sync("fine")
    assert answer.call.attempts == 1 and answer.call.attempt_log == ()


def test_a_loop_stall_does_not_time_out_an_answer_that_arrived_in_time(make_client, server):
    # The answer comes after 0.1 s; the attempt may take 0.5 s; the loop is held up for 0.8 s
    # right after the request goes out. The answer was in time: one attempt, no spurious retry.
    server.latency = 0.1
    client = make_client(timeout_s=0.5, retries=2, record_mode="off")
    client.complete_sync("warm up")  # the backend loaded and a connection open: the request goes out at once
    server.reset_counters()

    async def stalled() -> object:
        task = asyncio.create_task(client.complete("stalled"))
        await asyncio.sleep(0.05)
        assert server.in_flight == 1
        time.sleep(0.8)  # a busy loop: pytest work, an import, another process
        return await task

    answer = client.runtime.run(stalled())
    assert answer.call.attempts == 1 and server.requests == 1


def test_a_hang_still_times_out_when_the_loop_is_not_stalled(make_client, server):
    server.inject(Fault.hang(), times=10)
    client = make_client(timeout_s=0.3, retries=0)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        client.complete_sync("stuck")
    assert 0.3 <= time.monotonic() - started < 1.5
    assert caught.value.error_type == "Timeout" and caught.value.call.attempt_log[0]["error_type"] == "Timeout"


def test_an_attempt_cut_off_by_the_deadline_is_on_the_call_record(make_client, server):
    # One 500, then a hang: the second attempt is what the 0.6 s deadline cuts off.
    server.inject(Fault.server_error(), times=1)
    server.inject(Fault.hang(), times=10)
    client = make_client(timeout_s=5.0, deadline_s=0.6, retries=3)
    with pytest.raises(ProviderError) as caught:
        client.complete_sync("cut off")
    assert "deadline" in str(caught.value)
    call = caught.value.call
    assert call.attempts == 2
    assert [(a["attempt"], a["error_type"], a["status"]) for a in call.attempt_log] == [
        (1, "InternalServerError", 500),
        (2, "Timeout", None),
    ]
    # The cut-off attempt ran for most of the deadline, and that is the failed call's latency.
    assert 0.3 <= call.attempt_log[1]["elapsed_s"] < 1.0 and call.latency_s == call.attempt_log[1]["elapsed_s"]


def test_the_run_loop_collects_less_and_puts_the_collector_back():
    import gc

    from pytest_llmops import concurrent

    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with concurrent._collect_less():
        assert gc.get_threshold() == concurrent.GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what existed before the loop is not walked again
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    # A suite that tuned the collector itself keeps its settings.
    gc.set_threshold(20000, 10, 10)
    try:
        with concurrent._collect_less():
            assert gc.get_threshold() == (20000, 10, 10)
    finally:
        gc.set_threshold(*before)
