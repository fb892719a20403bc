"""The fault matrix: every provider failure, driven through a real ``pytest -m llm_eval`` run.

Each row injects faults into the project's test server for one eval case
(matched by the case's prompt) and says how the case must end, how many
attempts its call took, and that the results file holds the case and its call.
A fault the client can recover from by retrying ends ``passed`` after the
retries; one it cannot ends ``unmeasured``, never a pass, and is never cached
(a second run sends the request again and ends the same way).

Both clients run the matrix: the direct aiohttp path and litellm must agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from pytest_llmops.testing import Fault, LLMTestServer

pytest_plugins = ["pytester"]

RETRIES = 2  # three attempts at most
TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Row:
    """One eval case: the faults its requests meet, and how it must end."""

    name: str
    faults: tuple[tuple[Fault, int | None], ...]  # (fault, times); None: every request
    stream: bool
    state: str
    attempts: int
    #: A fragment of the unmeasured reason, for the direct client (litellm words its own).
    reason: str = ""
    min_backoff_s: float = 0.0


ALWAYS = None
MATRIX = (
    Row("truncated_stream_once", ((Fault.ends_early(chunks=1), 1),), True, "passed", 2),
    Row("truncated_stream_always", ((Fault.ends_early(chunks=1), ALWAYS),), True, "unmeasured", 3, "ended early"),
    Row("truncated_stream_before_any_text", ((Fault.ends_early(chunks=0), ALWAYS),), True, "unmeasured", 3,
        "ended early"),
    Row("dropped_mid_stream_once", ((Fault.drop_midway(chunks=2), 1),), True, "passed", 2),
    Row("dropped_mid_stream_always", ((Fault.drop_midway(chunks=2), ALWAYS),), True, "unmeasured", 3),
    Row("truncated_body_always", ((Fault.ends_early(), ALWAYS),), False, "unmeasured", 3, "not JSON"),
    Row("dropped_mid_body_once", ((Fault.drop_midway(), 1),), False, "passed", 2),
    Row("malformed_json_once", ((Fault.malformed_json(), 1),), False, "passed", 2),
    Row("malformed_json_always", ((Fault.malformed_json(), ALWAYS),), False, "unmeasured", 3, "not JSON"),
    Row("server_error_then_success", ((Fault.server_error(), 1),), False, "passed", 2),
    Row("server_error_twice_streamed", ((Fault.server_error(), 2),), True, "passed", 3),
    Row("rate_limit_with_retry_after", ((Fault.rate_limit(retry_after=0.3), 1),), False, "passed", 2,
        min_backoff_s=0.3),
    Row("hang_past_timeout", ((Fault.hang(), ALWAYS),), False, "unmeasured", 3),
    Row("hang_past_timeout_streamed", ((Fault.hang(), 1),), True, "passed", 2),
    Row("bad_request_is_not_retried", ((Fault.status(400, "bad shape"), ALWAYS),), False, "unmeasured", 1,
        "HTTP 400"),
)


def eval_module() -> str:
    cases = [
        f"""
@pytest.mark.llm_eval
async def test_{row.name}(llm):
    answer = await llm.complete("{row.name}: tell me something", stream={row.stream})
    assert answer.startswith("Reply")
"""
        for row in MATRIX
    ]
    return "import pytest\n" + "".join(cases)


def inject_matrix(server: LLMTestServer) -> None:
    for row in MATRIX:
        for fault, times in row.faults:
            server.inject(fault, times=times, match=rf"^{row.name}:")


def requests_for(server: LLMTestServer, row: Row) -> int:
    return sum(row.name + ":" in json.dumps(r.body) for r in server.received)


@pytest.fixture(params=["direct", "litellm"])
def client(request: pytest.FixtureRequest) -> str:
    return request.param


def run_matrix(pytester: pytest.Pytester, server: LLMTestServer, client: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(
        "-m", "llm_eval",
        "-p", "no:cacheprovider",
        "--llmops-model=openai/test-model",
        f"--llmops-api-base={server.url}",
        f"--llmops-client={client}",
        f"--llmops-retries={RETRIES}",
        f"--llmops-timeout={TIMEOUT_S}",
    )
    return result, json.loads((pytester.path / ".llmops" / "results.json").read_text())


def test_every_fault_ends_as_it_should_and_every_case_and_call_is_recorded(
    pytester: pytest.Pytester, server: LLMTestServer, monkeypatch: pytest.MonkeyPatch, api_key: str, client: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makepyfile(test_faults=eval_module())
    inject_matrix(server)

    result, data = run_matrix(pytester, server, client)

    cases = {case["nodeid"].split("::")[1].removeprefix("test_"): case for case in data["cases"]}
    assert sorted(cases) == sorted(row.name for row in MATRIX)
    for row in MATRIX:
        case = cases[row.name]
        assert case["state"] == row.state, (row.name, case["reason"])
        assert len(case["calls"]) == 1, row.name
        (call,) = case["calls"]
        assert call["attempts"] == row.attempts, (row.name, call)
        assert requests_for(server, row) == row.attempts, row.name
        assert call["backoff_s"] >= row.min_backoff_s, row.name
        if row.state == "passed":
            assert call["error"] is None and call["tokens_out"] > 0, row.name
        else:
            assert call["error"] and case["reason"], row.name
            if client == "direct":
                assert row.reason in case["reason"], (row.name, case["reason"])
    unmeasured = sum(row.state == "unmeasured" for row in MATRIX)
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("unmeasured"), outcomes.get("failed")) == (
        len(MATRIX) - unmeasured, unmeasured, None
    )
    assert data["summary"]["cases"] == len(MATRIX) and data["summary"]["calls"] == len(MATRIX)


def test_a_failed_answer_is_never_cached_and_fails_the_same_way_again(
    pytester: pytest.Pytester, server: LLMTestServer, monkeypatch: pytest.MonkeyPatch, api_key: str, client: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makepyfile(test_faults=eval_module())
    inject_matrix(server)
    run_matrix(pytester, server, client)
    server.reset_counters()

    _, again = run_matrix(pytester, server, client)

    cases = {case["nodeid"].split("::")[1].removeprefix("test_"): case for case in again["cases"]}
    for row in MATRIX:
        (call,) = cases[row.name]["calls"]
        if row.state == "passed":
            # The recovered answer was cached whole: replayed, no request sent.
            assert call["cache_hit"] and requests_for(server, row) == 0, row.name
        else:
            # Nothing was cached: the request goes out again and the case ends unmeasured again.
            assert cases[row.name]["state"] == "unmeasured" and not call["cache_hit"], row.name
            assert requests_for(server, row) == row.attempts, row.name


STREAM_MODULE = """
import pytest

@pytest.mark.llm_eval
async def test_cut_after_text(llm):
    pieces = [piece async for piece in llm.stream("cut_after_text: tell me")]
    assert pieces

@pytest.mark.llm_eval
async def test_cut_before_text(llm):
    pieces = [piece async for piece in llm.stream("cut_before_text: tell me")]
    assert "".join(pieces).startswith("Reply")
"""


def test_llm_stream_retries_a_cut_only_before_text_was_handed_over(
    pytester: pytest.Pytester, server: LLMTestServer, monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makepyfile(test_stream=STREAM_MODULE)
    server.inject(Fault.ends_early(chunks=2), times=None, match="^cut_after_text:")
    server.inject(Fault.ends_early(chunks=0), times=1, match="^cut_before_text:")

    _, data = run_matrix(pytester, server, "direct")

    cases = {case["nodeid"].split("::")[1]: case for case in data["cases"]}
    after, before = cases["test_cut_after_text"], cases["test_cut_before_text"]
    # Two pieces already reached the test: they cannot be taken back, so no retry and no pass.
    assert after["state"] == "unmeasured" and "ended early" in after["reason"]
    assert [call["attempts"] for call in after["calls"]] == [1]
    assert before["state"] == "passed" and [call["attempts"] for call in before["calls"]] == [2]
