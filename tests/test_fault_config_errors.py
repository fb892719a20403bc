"""A call that cannot work as configured is never retried and names what to set (issue 15, item 7).

litellm reports a missing API key as an ``InternalServerError`` (status 500)
raised before anything is sent; taken at its word, the client retried it four
times as a server fault and the case ended unmeasured. It is a
``ModelConfigError`` now: one attempt, the variable to set in the message, and
the case ends in error (the suite's set-up is at fault, not the model).
"""

from __future__ import annotations

import json

import pytest

from pytest_llmops.models.backend import ModelConfigError
from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
from pytest_llmops.models.retry import RetryPolicy

pytest_plugins = ["pytester"]


@pytest.fixture
def no_key(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_a_missing_api_key_on_the_litellm_path_is_one_attempt_naming_the_variable(server, no_key):
    runtime = ModelRuntime(client="litellm")
    client = LLMClient(
        ModelConfig(model="openai/test-model", api_base=server.url,
                    retry=RetryPolicy(retries=3, base_delay_s=0.01, deadline_s=30)),
        runtime,
    )
    try:
        with pytest.raises(ModelConfigError, match=r"openai/test-model: no API key: set OPENAI_API_KEY in the environment"):
            client.complete_sync("hello")
    finally:
        runtime.close()
    assert server.received == []
    [call] = runtime.calls
    assert (call.attempts, call.error_type) == (1, "InternalServerError")
    assert "OPENAI_API_KEY" in (call.error or "")


def test_a_key_that_is_set_still_reaches_the_provider(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    runtime = ModelRuntime(client="litellm")
    client = LLMClient(ModelConfig(model="openai/test-model", api_base=server.url), runtime)
    try:
        answer = client.complete_sync("hello")
    finally:
        runtime.close()
    assert answer.startswith("Reply")
    assert len(server.received) == 1


def test_a_case_whose_key_is_missing_ends_in_error_not_unmeasured(pytester, server, no_key):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_ask(llm):
            llm.complete_sync("hello")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-client=litellm", "--llmops-model=openai/test-model",
                                f"--llmops-api-base={server.url}", "--llmops-gate=unmeasured_rate<=1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    [case] = json.loads((pytester.path / ".llmops" / "results.json").read_text())["cases"]
    assert (case["state"], case["error_type"]) == ("error", "ModelConfigError")
    assert "set OPENAI_API_KEY in the environment" in case["reason"]
    assert [call["attempts"] for call in case["calls"]] == [1]
    assert server.received == []
