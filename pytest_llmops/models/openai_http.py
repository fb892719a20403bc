"""A direct backend for OpenAI-compatible endpoints over httpx (no litellm on the call path).

For a model served behind an explicit ``api_base`` that speaks the OpenAI API
(vLLM, llama.cpp server, LM Studio, Ollama's ``/v1``, a gateway, the local test
server), litellm's per-call work (~5 ms of client CPU, FACTS.md) is most of the
client's cost once many calls are in flight; a bare HTTP client spends well
under 1 ms. This backend sends the same requests itself: ``{api_base}/chat/completions``
(streamed or not) and ``{api_base}/embeddings``, with the model name after its
provider prefix (``openai/gpt-4o-mini`` -> ``gpt-4o-mini``).

It is opt-in: ``--llmops-client=direct`` (ini ``llmops_client``) routes
OpenAI-style models with an explicit ``api_base`` here; by default every hosted
model goes through litellm, which knows providers' prices.
``benchmarks/throughput.py`` measures both side by side. Prices are
unknown on this path (``cost_usd`` is ``None``), as they are for most
self-hosted model names on the litellm path too.

Like every backend it makes one attempt per call and raises ``ProviderError``
with ``retryable``/``status``/``retry_after`` filled in; the client owns retries.
httpx is imported on first use (it comes with litellm's dependencies).
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from pytest_llmops.models.backend import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ProviderError,
    ProviderTimeout,
    StreamChunk,
    TokenLogprob,
)

#: Statuses worth sending again (as on the litellm path).
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
#: Model prefixes whose requests go to an OpenAI-compatible ``api_base``.
OPENAI_PREFIXES = ("openai/", "hosted_vllm/", "openai_compatible/")


def handles(model: str, api_base: str | None) -> bool:
    """Whether this backend can send ``model``'s requests (an OpenAI-style model with an explicit base)."""
    return bool(api_base) and model.startswith(OPENAI_PREFIXES)


def wire_model(model: str) -> str:
    """The model name the endpoint expects: the part after the provider prefix."""
    return model.split("/", 1)[1] if "/" in model else model


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(data["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace") or "(empty body)"


def _logprobs(choice: Mapping[str, Any]) -> tuple[TokenLogprob, ...] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    return tuple(
        TokenLogprob(
            token=entry["token"],
            logprob=float(entry["logprob"]),
            top=tuple((t["token"], float(t["logprob"])) for t in entry.get("top_logprobs") or []),
        )
        for entry in content
    )


class OpenAIHTTPBackend:
    """OpenAI-compatible endpoints over one pooled httpx client per event loop."""

    name = "openai-http"
    max_in_flight = None

    def __init__(self) -> None:
        # Keyed by the loop itself (weakly): an httpx client must not outlive or change its loop.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    # -- transport -----------------------------------------------------------------------
    def _client(self) -> Any:
        import httpx

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            # No pool limit of its own: the model client's per-provider limit decides.
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            client = self._clients[loop] = httpx.AsyncClient(limits=limits)
        return client

    async def aclose(self) -> None:
        """Close the connection pool of the running loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    @staticmethod
    def _headers(api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @staticmethod
    def _url(api_base: str | None, path: str, model: str) -> str:
        if not api_base:
            raise ProviderError(
                f"{model}: the direct OpenAI-compatible backend needs an api_base "
                f"(--llmops-api-base / --llmops-judge-api-base)",
                retryable=False,
            )
        return api_base.rstrip("/") + path

    def _failure(self, exc: Exception, model: str) -> ProviderError:
        import httpx

        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeout(f"{model}: {kind}: no answer in time", error_type=kind)
        # Refused or dropped connections, broken framing: worth another attempt.
        return ProviderError(f"{model}: {kind}: {exc}", retryable=True, error_type=kind)

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes, model: str) -> ProviderError:
        return ProviderError(
            f"{model}: HTTP {status}: {_error_message(body)}",
            retryable=status in RETRYABLE_STATUSES,
            status=status,
            retry_after=_retry_after(headers),
            error_type=f"HTTP{status}",
        )

    async def _post(self, url: str, payload: Mapping[str, Any], api_key: str | None, timeout: float, model: str) -> Any:
        import httpx

        try:
            response = await self._client().post(url, json=payload, headers=self._headers(api_key), timeout=timeout)
        except httpx.HTTPError as exc:
            raise self._failure(exc, model) from exc
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.headers, response.content, model)
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"{model}: the answer is not JSON: {response.content[:80]!r}", retryable=True) from exc

    # -- Backend protocol ---------------------------------------------------------------
    def _chat_payload(self, request: ChatRequest) -> dict[str, Any]:
        return {**dict(request.params), "model": wire_model(request.model), "messages": [dict(m) for m in request.messages]}

    async def chat(self, request: ChatRequest) -> ChatResponse:
        data = await self._post(
            self._url(request.api_base, "/chat/completions", request.model),
            self._chat_payload(request),
            request.api_key,
            request.timeout,
            request.model,
        )
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(f"{request.model}: the provider answered with no choices", retryable=True) from exc
        usage = data.get("usage") or {}
        return ChatResponse(
            text=text,
            tokens_in=usage.get("prompt_tokens"),
            tokens_out=usage.get("completion_tokens"),
            cost_usd=None,
            finish_reason=choice.get("finish_reason"),
            logprobs=_logprobs(choice),
        )

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        import httpx

        payload = {**self._chat_payload(request), "stream": True, "stream_options": {"include_usage": True}}
        url = self._url(request.api_base, "/chat/completions", request.model)
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        usage: Mapping[str, Any] = {}
        finish_reason = None
        try:
            async with self._client().stream(
                "POST", url, json=payload, headers=self._headers(request.api_key), timeout=request.timeout
            ) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise self._status_error(response.status_code, response.headers, body, request.model)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        event = json.loads(data)
                    except ValueError as exc:
                        raise ProviderError(f"{request.model}: a stream event is not JSON", retryable=True) from exc
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        finish_reason = choice.get("finish_reason") or finish_reason
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            if ttft is None:
                                ttft = time.perf_counter() - started
                            parts.append(delta)
                            yield StreamChunk(delta=delta)
        except httpx.HTTPError as exc:
            raise self._failure(exc, request.model) from exc
        yield StreamChunk(
            final=ChatResponse(
                text="".join(parts),
                tokens_in=usage.get("prompt_tokens"),
                tokens_out=usage.get("completion_tokens"),
                cost_usd=None,
                finish_reason=finish_reason,
                ttft_s=ttft,
            )
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        data = await self._post(
            self._url(request.api_base, "/embeddings", request.model),
            {"model": wire_model(request.model), "input": list(request.texts)},
            request.api_key,
            request.timeout,
            request.model,
        )
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            vectors = tuple(tuple(float(x) for x in row["embedding"]) for row in rows)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"{request.model}: the embeddings answer is malformed", retryable=True) from exc
        if len(vectors) != len(request.texts):
            raise ProviderError(
                f"{request.model}: asked for {len(request.texts)} embeddings, got {len(vectors)}", retryable=True
            )
        return EmbeddingResponse(vectors=vectors, tokens_in=(data.get("usage") or {}).get("prompt_tokens"), cost_usd=None)
