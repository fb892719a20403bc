"""Where a direct request goes: URLs and headers from an ``api_base`` (``models/endpoints.py``)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from pytest_llmops.models.backend import ProviderError
from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
from pytest_llmops.models.endpoints import body_params, endpoint
from pytest_llmops.testing import LLMTestServer

MODEL = "openai/test-model"


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1/chat/completions"),
        ("https://x.azure.com/openai/deployments/d?api-version=2024-06-01",
         "https://x.azure.com/openai/deployments/d/chat/completions?api-version=2024-06-01"),
        ("https://x.azure.com/v1/?api-version=1&api-key=k", "https://x.azure.com/v1/chat/completions?api-version=1&api-key=k"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1/chat/completions"),
        ("http://alice:p%40ss@gateway:8443/v1", "http://gateway:8443/v1/chat/completions"),
    ],
)
def test_the_endpoint_path_goes_after_the_base_path_and_before_its_query(api_base: str, url: str) -> None:
    assert endpoint(api_base, "/chat/completions", MODEL, None).url == url


def test_url_credentials_are_decoded_into_basic_auth_and_the_key_variable_is_not_sent(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    target = endpoint("http://alice:p%40ss@gateway/v1", "/embeddings", MODEL, None)
    assert target.headers == {"Authorization": "Basic " + base64.b64encode(b"alice:p@ss").decode()}
    assert "p%40ss" not in repr(target) and "alice" not in repr(target)


def test_the_key_goes_as_a_bearer_token_and_request_headers_are_added_last(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    params = {"headers": {"X-A": "1"}, "extra_headers": {"X-B": 2, "Authorization": "Bearer override"}, "seed": 3}
    target = endpoint("http://h/v1", "/chat/completions", MODEL, None, params)
    assert target.headers == {"Authorization": "Bearer override", "X-A": "1", "X-B": "2"}
    assert body_params(params) == {"seed": 3}


@pytest.mark.parametrize(
    ("api_base", "problem"),
    [
        ("http://127.0.0.1:notaport/v1", "Port could not be cast"),
        ("ftp://127.0.0.1/v1", "expected http(s)://host"),
        ("127.0.0.1:8000/v1", "expected http(s)://host"),
        (None, "needs an api_base"),
    ],
)
def test_an_unusable_api_base_is_a_configuration_error_naming_the_setting(api_base: str | None, problem: str) -> None:
    with pytest.raises(ProviderError) as raised:
        endpoint(api_base, "/chat/completions", MODEL, None)
    assert raised.value.retryable is False
    assert problem in str(raised.value) and "--llmops-api-base" in str(raised.value)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"extra_headers": "X-Key: v"}, "extra_headers= must be a dict of header names to values, got str"),
        ({"extra_headers": {"X-Bad": "a\r\nb"}}, "the request could not be sent"),
    ],
)
def test_a_request_the_client_cannot_send_fails_at_once_with_a_call_record(
    server: LLMTestServer, params: dict, problem: str
) -> None:
    runtime = ModelRuntime()
    client = LLMClient(ModelConfig(model=MODEL, api_base=server.url, api_key="sk-configured"), runtime)

    async def ask() -> None:
        try:
            await client.complete("hi", **params)
        finally:
            await runtime.backend_for(MODEL, server.url).aclose()  # type: ignore[attr-defined]

    with pytest.raises(ProviderError, match=problem) as raised:
        asyncio.run(ask())

    assert raised.value.retryable is False
    (call,) = runtime.calls
    assert call.attempts == 1 and problem in call.error
    assert server.requests == 0
