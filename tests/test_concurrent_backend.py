"""The direct OpenAI-compatible backend (aiohttp) against the real local server.

Same contract as the litellm backend: one attempt per call, answers parsed into
``ChatResponse``/``EmbeddingResponse``, failures as ``ProviderError`` with
``retryable``, ``status`` and ``retry_after`` for the client's retry policy;
a model litellm prices costs the same on both paths.
"""

from __future__ import annotations

import asyncio
import gc
import http.server
import json
import subprocess
import sys
import textwrap
import threading
import urllib.request
import warnings
from typing import ClassVar

import pytest

from pytest_llmops.models import prices
from pytest_llmops.models.backend import (
    ChatRequest,
    EmbeddingRequest,
    ProviderError,
    ProviderTimeout,
)
from pytest_llmops.models.litellm_backend import LiteLLMBackend
from pytest_llmops.models.openai_http import OpenAIHTTPBackend, handles, wire_model
from pytest_llmops.testing import Fault


def chat(server, text: str = "hello there", model: str = "openai/test-model", api_key: str | None = "sk-test", **params) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[{"role": "user", "content": text}],
        params=params,
        api_base=server.url,
        api_key=api_key,
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


def test_a_long_stream_event_is_read_whole(server):
    word = "x" * 300_000  # one token, so one event of ~300 KB
    server.script(None, f"start {word} end")

    async def collect():
        return [chunk async for chunk in OpenAIHTTPBackend().chat_stream(chat(server, "a long one"))]

    final = run(collect())[-1].final
    assert final.text == f"start {word} end" and final.tokens_out == 3


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


@pytest.mark.parametrize(
    ("fault", "name"),
    [
        (Fault.status(401, "invalid api key"), "AuthenticationError"),
        (Fault.rate_limit(), "RateLimitError"),
        (Fault.server_error(), "InternalServerError"),
        (Fault.unavailable(), "ServiceUnavailableError"),
    ],
)
def test_http_errors_are_named_as_on_the_litellm_path(server, fault, name):
    server.inject(fault)
    with pytest.raises(ProviderError) as caught:
        run(OpenAIHTTPBackend().chat(chat(server)))
    assert caught.value.error_type == name
    assert str(caught.value).startswith(f"openai/test-model: {name}: HTTP ")


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


def test_without_a_configured_key_the_providers_environment_variable_is_sent(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", "vllm-key")
    run(OpenAIHTTPBackend().chat(chat(server, api_key=None)))
    assert server.received[-1].headers["authorization"] == "Bearer sk-from-env"
    run(OpenAIHTTPBackend().chat(chat(server, model="hosted_vllm/llama", api_key=None)))
    assert server.received[-1].headers["authorization"] == "Bearer vllm-key"
    run(OpenAIHTTPBackend().chat(chat(server, api_key="sk-configured")))
    assert server.received[-1].headers["authorization"] == "Bearer sk-configured"
    monkeypatch.delenv("OPENAI_API_KEY")
    run(OpenAIHTTPBackend().chat(chat(server, api_key=None)))
    assert "authorization" not in server.received[-1].headers


@pytest.mark.parametrize(
    "model",
    ["openai/gpt-4o-mini", "openai/gpt-4.1", "openai/o3-mini", "openai/bench-judge", "hosted_vllm/gpt-4o-mini"],
)
def test_a_chat_costs_the_same_as_on_the_litellm_path(server, model):
    request = chat(server, "price this answer please", model=model)
    direct = run(OpenAIHTTPBackend().chat(request))
    through_litellm = run(LiteLLMBackend().chat(request))
    assert (direct.tokens_in, direct.tokens_out) == (through_litellm.tokens_in, through_litellm.tokens_out)
    assert direct.cost_usd == through_litellm.cost_usd
    if model in ("openai/gpt-4o-mini", "openai/gpt-4.1", "openai/o3-mini"):
        assert direct.cost_usd is not None and direct.cost_usd > 0
    else:  # a name litellm has no price for stays unknown, never 0
        assert direct.cost_usd is None


def test_streamed_and_embedding_answers_are_priced_like_litellm_prices_them(server):
    request = chat(server, "stream and price this", model="openai/gpt-4o-mini")

    async def final(backend):
        return [chunk async for chunk in backend.chat_stream(request)][-1].final

    direct, through_litellm = run(final(OpenAIHTTPBackend())), run(final(LiteLLMBackend()))
    assert direct.cost_usd is not None and direct.cost_usd == through_litellm.cost_usd
    embedding = EmbeddingRequest(
        model="openai/text-embedding-3-small", texts=["a b c", "d e"], api_base=server.url, api_key="sk-test", timeout=2.0
    )
    direct_embed, litellm_embed = run(OpenAIHTTPBackend().embed(embedding)), run(LiteLLMBackend().embed(embedding))
    assert direct_embed.cost_usd is not None and direct_embed.cost_usd == litellm_embed.cost_usd


def test_which_names_may_have_a_price_is_read_without_importing_litellm():
    assert prices.may_be_priced("openai/gpt-4o-mini")
    assert prices.may_be_priced("openai/ft:gpt-4o-mini-2024-07-18:acme::abc123")
    assert not prices.may_be_priced("openai/our-llama-3-8b-finetune")
    code = textwrap.dedent(
        """
        import sys
        from pytest_llmops.models import prices
        assert prices.may_be_priced("openai/gpt-4o-mini")
        assert prices.chat_cost("openai/our-llama", {"choices": [], "usage": {}}) is None
        print("litellm" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_connection_pool_closes_with_its_event_loop(server):
    backend = OpenAIHTTPBackend()

    async def two_calls():
        await backend.chat(chat(server, "first"))
        await backend.chat(chat(server, "second"))
        return backend._sessions[asyncio.get_running_loop()]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = run(two_calls())  # asyncio.run closes the loop's async generators first
        gc.collect()
    assert session.closed
    assert not [w for w in caught if "Unclosed" in str(w.message)]
    assert server.connections == 1  # one kept-alive connection served both calls


def test_a_priced_models_first_call_imports_litellm_without_stalling_calls_in_flight(server):
    # In a fresh interpreter, where litellm is not imported yet: the first call of a model
    # litellm prices imports it (seconds), in a thread; a call already waiting on the server
    # keeps its own latency instead of absorbing the import.
    server.latency = 0.3
    code = textwrap.dedent(
        f"""
        import asyncio, json, sys
        from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

        async def main():
            runtime = ModelRuntime()
            def client(model):
                return LLMClient(ModelConfig(model=model, api_base={server.url!r}, api_key="sk"), runtime)
            waiting = asyncio.create_task(client("openai/self-hosted").complete("already in flight"))
            await asyncio.sleep(0.05)
            priced = await client("openai/gpt-4o-mini").complete("first priced call")
            waiting = await waiting
            return waiting.call.latency_s, priced.call.latency_s, priced.call.cost_usd, "litellm" in sys.modules

        print(json.dumps(asyncio.run(main())))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    waiting_latency, priced_latency, cost, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported and cost is not None and cost > 0
    assert waiting_latency < 1.0 and priced_latency < 1.0


class _ForwardingProxy(http.server.BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: takes ``POST http://host/path`` and replays it to the host."""

    seen: ClassVar[list[str]] = []

    def do_POST(self):
        type(self).seen.append(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
        # Straight to the server, whatever the proxy variables say.
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(urllib.request.Request(self.path, body, headers), timeout=5) as answer:
            payload = answer.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_the_proxy_environment_variables_apply_as_on_the_litellm_path(server, monkeypatch):
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        _ForwardingProxy.seen = []
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.setenv("NO_PROXY", "")
        answer = run(OpenAIHTTPBackend().chat(chat(server, "through the proxy please")))
        assert "proxy" in answer.text
        assert _ForwardingProxy.seen == [server.url + "/chat/completions"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        run(OpenAIHTTPBackend().chat(chat(server, "straight to the server")))
        assert len(_ForwardingProxy.seen) == 1
    finally:
        proxy.shutdown()
        proxy.server_close()
