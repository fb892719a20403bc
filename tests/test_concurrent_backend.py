"""The direct OpenAI-compatible backend (httpx) against the real local server.

Same contract as the litellm backend: one attempt per call, answers parsed into
``ChatResponse``/``EmbeddingResponse``, failures as ``ProviderError`` with
``retryable``, ``status`` and ``retry_after`` for the client's retry policy.
"""

from __future__ import annotations

import asyncio

import pytest

from pytest_llmops.models.backend import ChatRequest, EmbeddingRequest, ProviderError, ProviderTimeout
from pytest_llmops.models.openai_http import OpenAIHTTPBackend, handles, wire_model
from pytest_llmops.testing import Fault


def chat(server, text: str = "hello there", **params) -> ChatRequest:
    return ChatRequest(
        model="openai/test-model",
        messages=[{"role": "user", "content": text}],
        params=params,
        api_base=server.url,
        api_key="sk-test",
        timeout=2.0,
    )


def run(coro):
    return asyncio.run(coro)


def test_which_models_it_handles():
    assert handles("openai/gpt-4o-mini", "http://127.0.0.1:8000/v1")
    assert handles("hosted_vllm/llama", "http://127.0.0.1:8000/v1")
    assert not handles("openai/gpt-4o-mini", None)
    assert not handles("anthropic/claude-3-5-haiku-latest", "http://127.0.0.1:8000/v1")
    assert wire_model("openai/gpt-4o-mini") == "gpt-4o-mini"


def test_chat_answer_usage_and_logprobs(server):
    backend = OpenAIHTTPBackend()
    response = run(backend.chat(chat(server, "what is the capital", logprobs=True, top_logprobs=2)))
    assert response.text.startswith("Reply") and "capital" in response.text
    assert response.tokens_in == 4 and response.tokens_out == len(response.logprobs)
    assert response.finish_reason == "stop" and response.cost_usd is None
    assert response.logprobs[0].top[0][0] == response.logprobs[0].token == "Reply"
    sent = server.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "test-model" and sent.body["top_logprobs"] == 2
    assert sent.headers["authorization"] == "Bearer sk-test"


def test_streamed_chat_gives_deltas_then_the_full_answer(server):
    backend = OpenAIHTTPBackend()

    async def collect():
        return [chunk async for chunk in backend.chat_stream(chat(server, "stream this please"))]

    chunks = run(collect())
    final = chunks[-1].final
    assert final is not None and "".join(c.delta for c in chunks[:-1]) == final.text
    assert final.tokens_out == len(chunks) - 1 and final.ttft_s is not None and final.ttft_s >= 0


def test_embeddings_come_back_in_order(server):
    backend = OpenAIHTTPBackend()
    request = EmbeddingRequest(model="openai/test-embed", texts=["a", "b", "c"], api_base=server.url, timeout=2.0)
    response = run(backend.embed(request))
    assert len(response.vectors) == 3 and len(response.vectors[0]) == server.embedding_dim
    assert response.vectors[0] != response.vectors[1]


@pytest.mark.parametrize(
    ("fault", "retryable", "status", "retry_after"),
    [
        (Fault.rate_limit(retry_after=2), True, 429, 2.0),
        (Fault.server_error(), True, 500, None),
        (Fault.status(400, "bad request shape"), False, 400, None),
        (Fault.malformed_json(), True, None, None),
        (Fault.drop_connection(), True, None, None),
    ],
)
def test_failures_become_provider_errors(server, fault, retryable, status, retry_after):
    server.inject(fault)
    with pytest.raises(ProviderError) as caught:
        run(OpenAIHTTPBackend().chat(chat(server)))
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    assert caught.value.retry_after == retry_after
    assert "openai/test-model" in str(caught.value)


def test_a_hang_is_a_timeout(server):
    server.inject(Fault.hang())
    request = ChatRequest(model="openai/test-model", messages=[{"role": "user", "content": "hi"}], api_base=server.url, timeout=0.3)
    with pytest.raises(ProviderTimeout):
        run(OpenAIHTTPBackend().chat(request))


def test_the_model_client_retries_through_it(make_client, server):
    client = make_client(model="openai/test-model")
    client.runtime._backends["litellm"] = OpenAIHTTPBackend()
    server.inject(Fault.server_error())
    answer = client.complete_sync("retry me please")
    assert "retry" in answer and answer.call.attempts == 2
    assert server.requests == 2
