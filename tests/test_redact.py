"""No secret in any file or line the tool writes.

Secrets are planted everywhere a user can put one (request headers,
``extra_headers``, an ``api_base`` query string, credentials in the URL, an
API-key variable whose value a provider echoes in an error), a real
``pytest -m llm_eval`` run writes every artifact it can, and each artifact is
searched for them. The direct backend must still deliver each credential to
the provider, where it belongs.
"""

from __future__ import annotations

import base64
import json

import pytest

from pytest_llmops import redact
from pytest_llmops.models.backend import ChatRequest, ProviderError
from pytest_llmops.models.openai_http import OpenAIHTTPBackend
from pytest_llmops.testing import Fault, LLMTestServer

pytest_plugins = ["pytester"]

HEADER_SECRET = "hdr-SECRET-7f3a9c21"
EXTRA_SECRET = "xtr-SECRET-0b8e44d5"
QUERY_SECRET = "qry-SECRET-5d2c7e90"
USERINFO_SECRET = "usr-SECRET-91aa0c3f"
ENV_SECRET = "sk-env-SECRET-66b1f2e8d4"
SECRETS = (HEADER_SECRET, EXTRA_SECRET, QUERY_SECRET, USERINFO_SECRET, ENV_SECRET)


# -- the scrubber -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"https://x.openai.azure.com/openai/deployments/d?api-version=2024-06-01&api-key={QUERY_SECRET}",
         "api-version=2024-06-01&api-key=[REDACTED]"),
        (f"http://alice:{USERINFO_SECRET}@127.0.0.1:8000/v1", "http://[REDACTED]@127.0.0.1:8000/v1"),
        (f"GET /v1?code={QUERY_SECRET}&x=1", "?code=[REDACTED]&x=1"),
        (f"&lt;a href=&quot;/v1?x=1&amp;token={QUERY_SECRET}&quot;", "&amp;token=[REDACTED]&quot;"),
        (f"Authorization: Bearer {HEADER_SECRET}", "Authorization: Bearer [REDACTED]"),
    ],
)
def test_secrets_in_text_are_redacted_and_the_rest_is_kept(text: str, kept: str) -> None:
    clean = redact.redact_text(text)
    assert kept in clean
    assert not any(secret in clean for secret in SECRETS)


def test_plain_text_with_urls_keys_and_the_word_basic_is_left_alone() -> None:
    text = "Basic knowledge: see http://127.0.0.1:8000/v1?api-version=2024&model=x; max_tokens=16, cache_key"
    assert redact.redact_text(text) == text


def test_values_of_secret_environment_variables_are_redacted_wherever_they_appear(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_SECRET)
    monkeypatch.setenv("SOME_FLAG_TOKEN", "1")  # too short to be a credential: left alone
    text = f"401: Incorrect API key provided: {ENV_SECRET}. 1 attempt"
    assert redact.redact_text(text) == "401: Incorrect API key provided: [REDACTED]. 1 attempt"


def test_remembered_secrets_are_redacted_even_out_of_context() -> None:
    redact.remember("rem-SECRET-4242abcd", "short")
    assert redact.redact_text("echo rem-SECRET-4242abcd back") == "echo [REDACTED] back"
    assert redact.redact_text("short") == "short"


def test_scrub_drops_credential_fields_and_keeps_parameters() -> None:
    params = {
        "max_tokens": 16,
        "top_logprobs": 2,
        "temperature": 0.0,
        "api_key": ENV_SECRET,
        "extra_headers": {"X-Api-Key": EXTRA_SECRET},
        "headers": {"Authorization": f"Bearer {HEADER_SECRET}"},
        "metadata": {"note": f"see http://u:{USERINFO_SECRET}@host/v1"},
    }
    assert redact.scrub(params) == {
        "max_tokens": 16,
        "top_logprobs": 2,
        "temperature": 0.0,
        "metadata": {"note": "see http://[REDACTED]@host/v1"},
    }


def test_redact_keeps_every_key_of_a_record_and_redacts_its_strings() -> None:
    record = {"cache_key": "abc", "api_base": f"http://h/v1?key={QUERY_SECRET}", "tokens_in": 3}
    assert redact.redact(record) == {"cache_key": "abc", "api_base": "http://h/v1?key=[REDACTED]", "tokens_in": 3}


# -- the direct backend delivers credentials as HTTP, never in the body -----------


def ask(backend: OpenAIHTTPBackend, api_base: str, api_key: str | None = "sk-configured-key", **params) -> object:
    import asyncio

    async def main():
        try:
            return await backend.chat(
                ChatRequest(model="openai/test-model", messages=[{"role": "user", "content": "hi"}],
                            params=params, api_base=api_base, api_key=api_key, timeout=5.0)
            )
        finally:
            await backend.aclose()

    return asyncio.run(main())


def test_extra_headers_and_headers_go_out_as_http_headers_not_in_the_body(server: LLMTestServer) -> None:
    ask(OpenAIHTTPBackend(), server.url, extra_headers={"X-Api-Key": EXTRA_SECRET}, headers={"X-Trace": "t-1"},
        max_tokens=8)

    (received,) = server.received
    assert received.headers["x-api-key"] == EXTRA_SECRET and received.headers["x-trace"] == "t-1"
    assert "extra_headers" not in received.body and "headers" not in received.body
    assert received.body["max_tokens"] == 8


def test_an_api_base_with_a_query_string_keeps_it_after_the_path(server: LLMTestServer) -> None:
    ask(OpenAIHTTPBackend(), f"{server.url}?api-version=2024-06-01&api-key={QUERY_SECRET}")

    (received,) = server.received
    assert received.path == "/v1/chat/completions"
    assert received.query == f"api-version=2024-06-01&api-key={QUERY_SECRET}"


def test_credentials_in_the_url_are_sent_as_basic_auth(server: LLMTestServer, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_SECRET)  # the URL's credentials are the explicit choice
    base = server.url.replace("http://", f"http://alice:{USERINFO_SECRET}@")

    ask(OpenAIHTTPBackend(), base, api_key=None)

    (received,) = server.received
    expected = base64.b64encode(f"alice:{USERINFO_SECRET}".encode()).decode()
    assert received.headers["authorization"] == f"Basic {expected}"


def test_credentials_in_the_url_and_a_configured_key_are_a_clear_configuration_error(server: LLMTestServer) -> None:
    base = server.url.replace("http://", f"http://alice:{USERINFO_SECRET}@")

    with pytest.raises(ProviderError) as raised:
        ask(OpenAIHTTPBackend(), base, api_key="sk-configured-key")

    assert raised.value.retryable is False
    assert "api_base" in str(raised.value) and "not both" in str(raised.value)
    assert USERINFO_SECRET not in str(raised.value)
    assert server.requests == 0


@pytest.mark.parametrize("problem", ["a query string", "credentials"])
def test_the_litellm_path_refuses_an_api_base_it_would_mangle_and_names_the_fix(
    server: LLMTestServer, problem: str
) -> None:
    import asyncio

    from pytest_llmops.models.litellm_backend import LiteLLMBackend

    if problem == "a query string":
        api_base = f"{server.url}?api-version=1&api-key={QUERY_SECRET}"
    else:
        api_base = server.url.replace("http://", f"http://alice:{USERINFO_SECRET}@")
    request = ChatRequest(model="openai/test-model", messages=[{"role": "user", "content": "hi"}],
                          api_base=api_base, api_key="sk-configured-key", timeout=5.0)
    with pytest.raises(ProviderError) as raised:
        asyncio.run(LiteLLMBackend().chat(request))

    message = str(raised.value)
    assert raised.value.retryable is False and problem in message and "--llmops-client=direct" in message
    assert not any(secret in message for secret in SECRETS)
    assert server.requests == 0


# -- every artifact of a real run ------------------------------------------------


SECRET_SUITE = """
import pytest

@pytest.mark.llm_eval
async def test_headers(llm):
    answer = await llm.complete("planted headers", headers={{"X-Api-Key": "{header}"}},
                                extra_headers={{"X-Other-Key": "{extra}"}})
    assert answer.startswith("Reply")

@pytest.mark.llm_eval
async def test_streamed_headers(llm):
    answer = await llm.complete("planted stream", stream=True, extra_headers={{"X-Other-Key": "{extra}"}})
    assert answer.startswith("Reply")

@pytest.mark.llm_eval(api_base="{userinfo_base}")
async def test_credentials_in_the_url(llm):
    answer = await llm.complete("planted userinfo")
    assert answer.startswith("Reply")

@pytest.mark.llm_eval
async def test_key_echoed_in_an_error(llm):
    await llm.complete("planted echo")

@pytest.mark.llm_eval
async def test_api_base_in_a_failure(llm):
    answer = await llm.complete("planted failure")
    assert answer.call.api_base is None, answer.call.api_base
"""


def test_no_planted_secret_reaches_any_artifact_of_a_run(
    pytester: pytest.Pytester, server: LLMTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_SECRET)
    summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    server.inject(Fault.status(401, f"Incorrect API key provided: {ENV_SECRET}."), times=None, match="planted echo")
    query_base = f"{server.url}?api-version=2024-06-01&api-key={QUERY_SECRET}"
    userinfo_base = server.url.replace("http://", f"http://alice:{USERINFO_SECRET}@")
    pytester.makepyfile(
        test_secrets=SECRET_SUITE.format(
            header=HEADER_SECRET, extra=EXTRA_SECRET, userinfo_base=userinfo_base
        )
    )

    result = pytester.runpytest(
        "-m", "llm_eval", "-p", "no:cacheprovider", "-v", "-rA",
        "--llmops-model=openai/test-model",
        f"--llmops-api-base={query_base}",
        "--llmops-retries=0",
        "--llmops-save-baseline=main",
        "--llmops-html=report.html",
        "--llmops-markdown=report.md",
        "--junitxml=junit.xml",
    )

    # The run worked: each credential reached the provider, where it belongs.
    data = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    states = {case["nodeid"].split("::")[1]: case["state"] for case in data["cases"]}
    assert states == {
        "test_headers": "passed",
        "test_streamed_headers": "passed",
        "test_credentials_in_the_url": "passed",
        "test_key_echoed_in_an_error": "unmeasured",
        "test_api_base_in_a_failure": "failed",
    }
    assert all(len(case["calls"]) == 1 for case in data["cases"])
    sent = {json.dumps(r.body): r for r in server.received}
    by_prompt = {
        p: next(r for body, r in sent.items() if p in body)
        for p in ("planted headers", "planted stream", "planted userinfo")
    }
    assert by_prompt["planted headers"].headers["x-api-key"] == HEADER_SECRET
    assert by_prompt["planted stream"].headers["x-other-key"] == EXTRA_SECRET
    assert "extra_headers" not in by_prompt["planted stream"].body
    assert by_prompt["planted headers"].query.endswith(f"api-key={QUERY_SECRET}")
    assert by_prompt["planted userinfo"].headers["authorization"].startswith("Basic ")

    artifacts = [path for path in pytester.path.rglob("*") if path.is_file() and path.name != "test_secrets.py"]
    names = {path.name for path in artifacts}
    assert {"results.json", "main.json", "junit.xml", "report.html", "report.md", "step_summary.md",
            "cache.sqlite", "history.sqlite"} <= names, names
    for path in artifacts:
        content = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in content, f"{secret} in {path.relative_to(pytester.path)}"
    output = result.stdout.str() + result.stderr.str()
    for secret in SECRETS:
        assert secret not in output, secret
    # What was redacted is still recognisable for the reader.
    assert "api-key=[REDACTED]" in output and "Incorrect API key provided: [REDACTED]" in output


def test_a_secret_set_in_the_environment_after_an_earlier_scan_is_still_redacted(monkeypatch):
    # The environment scan is remembered between calls; a change to the environment must show.
    assert redact.redact_text("token late-secret-value-123456") == "token late-secret-value-123456"
    monkeypatch.setenv("LATE_API_KEY", "late-secret-value-123456")
    assert redact.redact_text("token late-secret-value-123456") == "token [REDACTED]"
    monkeypatch.setenv("LATE_API_KEY", "other-secret-value-654321")
    assert redact.redact_text("token late-secret-value-123456 other-secret-value-654321") == "token late-secret-value-123456 [REDACTED]"
    monkeypatch.delenv("LATE_API_KEY")
    assert "other-secret-value-654321" not in redact.known_secrets()
