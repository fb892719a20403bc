"""``--llmops-client``: plain HTTP for OpenAI-compatible bases by default, litellm for every other hosted model
(or for all of them on request)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

EVAL = """
import pytest

@pytest.mark.llm_eval
async def test_answer(llm):
    answer = await llm.complete("which client sent me?")
    assert answer
    assert answer.call.cost_usd is None  # a self-hosted model name has no known price on either path
"""


@pytest.mark.parametrize(("client", "agent"), [(None, "aiohttp"), ("litellm", "openai/python"), ("direct", "aiohttp")])
def test_the_client_setting_picks_the_path_a_request_takes(pytester, server, api_key, monkeypatch, client, agent):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makepyfile(EVAL)
    # In a subprocess: an in-process run would import httpx's connection modules inside pytester's
    # module snapshot, and their removal afterwards leaves later tests with mismatched exception classes.
    chosen = [] if client is None else [f"--llmops-client={client}"]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--llmops-model=openai/test-model",
                                           f"--llmops-api-base={server.url}", *chosen)
    result.assert_outcomes(passed=1)
    (request,) = [r for r in server.received if r.path.endswith("/chat/completions")]
    assert agent in request.headers.get("user-agent", "").lower()
    assert request.body["model"] == "test-model"


def test_a_model_without_an_api_base_stays_on_litellm_even_with_the_direct_client():
    from pytest_llmops.models.client import ModelRuntime

    runtime = ModelRuntime(client="direct")
    try:
        assert runtime.backend_for("openai/gpt-4o-mini", None).name == "litellm"
        assert runtime.backend_for("anthropic/claude-3-5-haiku", "http://127.0.0.1:9/v1").name == "litellm"
        assert runtime.backend_for("openai/my-model", "http://127.0.0.1:9/v1").name == "openai-http"
        assert runtime.backend_for("local/smollm2").name == "local"
    finally:
        runtime.close()


def test_an_unknown_client_is_a_usage_error_naming_the_option(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-client=httpx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmops-client*"])
