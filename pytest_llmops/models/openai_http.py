"""A direct backend for OpenAI-compatible endpoints over aiohttp (no litellm on the call path).

For a model served behind an explicit ``api_base`` that speaks the OpenAI API
(vLLM, llama.cpp server, LM Studio, Ollama's ``/v1``, a gateway, the local test
server) this backend sends the requests itself: ``{api_base}/chat/completions``
(streamed or not), ``{api_base}/embeddings`` and the reward-server routes vLLM
serves at the server's root (``/classify``, ``/score``, ``/pooling``; see
``reward``), with the model name after its
provider prefix (``openai/gpt-4o-mini`` -> ``gpt-4o-mini``). A query string or
credentials in the ``api_base``, and ``headers`` / ``extra_headers`` request
parameters, are handled as ``models/endpoints.py`` says.

It is the default path for such models (``--llmops-client=direct``); every
other hosted model goes through litellm. Why, measured by
``benchmarks/throughput.py`` on a 2-core machine at 32 calls in flight: the
client CPU per call is ~12 ms through litellm, ~5 ms with bare httpx (its
connection pool scans every connection for every request) and ~1.5 ms with
bare aiohttp (~1.7 ms with the model client around it); and a run that never
needs litellm does not pay its import (~5 s there).
aiohttp comes with litellm, so it is always installed.

Prices come from litellm's own price table (``models/prices.py``): a model it
prices is priced exactly as the litellm path would; an unpriced name costs
nothing to look up and its ``cost_usd`` stays unknown.

A streamed answer counts only once it is finished: a stream that ends
without a ``finish_reason`` and without ``data: [DONE]`` was cut short (a proxy
timeout, a crashed worker) and raises a retryable ``ProviderError``, so it is
retried and never cached as a whole answer.

Like every backend it makes one attempt per call and raises ``ProviderError``
with ``retryable``/``status``/``retry_after`` filled in; the client owns retries.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from pytest_llmops.models import prices
from pytest_llmops.models.backend import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ProviderError,
    RewardRequest,
    RewardResponse,
    ProviderTimeout,
    StreamChunk,
    TokenLogprob,
)
from pytest_llmops.models.endpoints import KEY_VARIABLES, Endpoint, body_params, endpoint

#: Statuses worth sending again (as on the litellm path).
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
#: Model prefixes whose requests go to an OpenAI-compatible ``api_base`` (keys: ``endpoints.KEY_VARIABLES``).
OPENAI_PREFIXES = tuple(KEY_VARIABLES)


def handles(model: str, api_base: str | None) -> bool:
    """Whether this backend can send ``model``'s requests (an OpenAI-style model with an explicit base)."""
    return bool(api_base) and model.startswith(OPENAI_PREFIXES)


def wire_model(model: str) -> str:
    """The model name the endpoint expects: the part after the provider prefix."""
    return model.split("/", 1)[1] if "/" in model else model


#: Error names by HTTP status, as the OpenAI SDK (and so the litellm path) names them, so
#: reports and results read the same whichever client made the call.
ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "Timeout",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
}


def error_type_of(status: int) -> str:
    """The name an HTTP error status gets in call records (``InternalServerError`` for other 5xx)."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "InternalServerError" if status >= 500 else f"HTTP{status}"


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


def _stream_event(data: str, model: str) -> Mapping[str, Any]:
    """One ``data:`` line of a stream as a JSON object; an error event or a broken one raises."""
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise ProviderError(f"{model}: a stream event is not JSON: {data[:80]!r}", retryable=True) from exc
    if not isinstance(event, dict):
        raise ProviderError(f"{model}: a stream event is not a JSON object: {data[:80]!r}", retryable=True)
    if event.get("error"):
        # vLLM and other servers report a failure inside a stream that began with 200.
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ProviderError(f"{model}: the stream reported an error: {message}", retryable=True)
    return event


async def _close_with_loop(session: Any) -> Any:
    """An async generator that closes ``session`` when its loop shuts down.

    ``asyncio.run``, ``asyncio.Runner`` and pytest-asyncio all close a loop's open
    async generators (``loop.shutdown_asyncgens``) before closing it; this one's
    ``finally`` closes the connection pool then, so no loop ends with an
    unclosed session, whoever owns the loop.
    """
    try:
        yield
    finally:
        await session.close()


class OpenAIHTTPBackend:
    """OpenAI-compatible endpoints over one pooled aiohttp session per event loop."""

    name = "openai-http"
    max_in_flight = None

    def __init__(self) -> None:
        # Keyed by the loop itself (weakly): a session must not outlive or change its loop.
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        #: (scheme, host, port) -> (proxy URL or None, proxy auth or None).
        self._proxies: dict[tuple[str, str | None, int | None], tuple[Any, Any]] = {}

    # -- transport -----------------------------------------------------------------------
    async def _session(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            # No pool limit of its own: the model client's per-provider limit decides. The
            # proxy comes from ``_proxy`` (once per origin), not ``trust_env``: that one sends
            # two look-ups per request to threads (proxy variables, ~/.netrc).
            session = self._sessions[loop] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), json_serialize=json.dumps
            )
            keeper = self._keepers[loop] = _close_with_loop(session)
            await keeper.asend(None)
        return session

    async def _proxy(self, url: str) -> tuple[Any, Any]:
        """The proxy (and its auth) for ``url`` from HTTP(S)_PROXY / NO_PROXY, as on the litellm path.

        Looked up once per origin, in a thread (the look-up may read the system's settings).
        """
        from aiohttp.helpers import get_env_proxy_for_url
        from yarl import URL

        target = URL(url)
        origin = (target.scheme, target.host, target.port)
        found = self._proxies.get(origin)
        if found is None:
            try:
                found = await asyncio.to_thread(get_env_proxy_for_url, target)
            except LookupError:
                found = (None, None)
            self._proxies[origin] = found
        return found

    def prepare(self, model: str) -> None:
        """Before the first timed call of ``model``: load what pricing it needs (see ``models/prices.py``)."""
        prices.prepare(model)

    async def aclose(self) -> None:
        """Close the connection pool of the running loop."""
        loop = asyncio.get_running_loop()
        self._sessions.pop(loop, None)
        keeper = self._keepers.pop(loop, None)
        if keeper is not None:
            await keeper.aclose()

    @staticmethod
    def _timeout(seconds: float) -> Any:
        import aiohttp

        return aiohttp.ClientTimeout(total=seconds)

    def _failure(self, exc: BaseException, model: str) -> ProviderError:
        kind = type(exc).__name__
        if isinstance(exc, TimeoutError):
            return ProviderTimeout(f"{model}: {kind}: no answer in time", error_type=kind)
        if isinstance(exc, ValueError):
            # aiohttp refuses the request itself (a bad URL or header value): sending it again cannot help.
            return ProviderError(f"{model}: {kind}: the request could not be sent: {exc}", retryable=False, error_type=kind)
        # Refused or dropped connections, broken framing: worth another attempt.
        return ProviderError(f"{model}: {kind}: {exc}", retryable=True, error_type=kind)

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes, model: str) -> ProviderError:
        kind = error_type_of(status)
        return ProviderError(
            f"{model}: {kind}: HTTP {status}: {_error_message(body)}",
            retryable=status in RETRYABLE_STATUSES,
            status=status,
            retry_after=_retry_after(headers),
            error_type=kind,
        )

    async def _post(self, target: Endpoint, payload: Mapping[str, Any], timeout: float, model: str) -> Any:
        import aiohttp

        session = await self._session()
        try:
            proxy, proxy_auth = await self._proxy(target.url)
            async with session.post(
                target.url, json=payload, headers=target.headers, timeout=self._timeout(timeout),
                proxy=proxy, proxy_auth=proxy_auth,
            ) as response:
                body = await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._failure(exc, model) from exc
        if status >= 400:
            raise self._status_error(status, headers, body, model)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ProviderError(f"{model}: the answer is not JSON: {body[:80]!r}", retryable=True) from exc

    # -- Backend protocol ---------------------------------------------------------------
    def _chat_payload(self, request: ChatRequest) -> dict[str, Any]:
        return {**body_params(request.params), "model": wire_model(request.model), "messages": [dict(m) for m in request.messages]}

    @staticmethod
    def _chat_endpoint(request: ChatRequest) -> Endpoint:
        return endpoint(request.api_base, "/chat/completions", request.model, request.api_key, request.params)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        data = await self._post(
            self._chat_endpoint(request),
            self._chat_payload(request),
            request.timeout,
            request.model,
        )
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(f"{request.model}: the provider answered with no choices", retryable=True) from exc
        usage = data.get("usage") if isinstance(data.get("usage"), Mapping) else {}
        return ChatResponse(
            text=text,
            tokens_in=usage.get("prompt_tokens"),
            tokens_out=usage.get("completion_tokens"),
            cost_usd=prices.chat_cost(request.model, data),
            finish_reason=choice.get("finish_reason"),
            logprobs=_logprobs(choice),
        )

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        import aiohttp

        payload = {**self._chat_payload(request), "stream": True, "stream_options": {"include_usage": True}}
        target = self._chat_endpoint(request)
        session = await self._session()
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        usage: Mapping[str, Any] = {}
        finish_reason = None
        done = False
        try:
            proxy, proxy_auth = await self._proxy(target.url)
            async with session.post(
                target.url,
                json=payload,
                headers=target.headers,
                timeout=self._timeout(request.timeout),
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                if response.status >= 400:
                    body = await response.read()
                    raise self._status_error(response.status, response.headers, body, request.model)
                async for raw in response.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        break
                    event = _stream_event(data, request.model)
                    if isinstance(event.get("usage"), Mapping):
                        usage = event["usage"]
                    for choice in event.get("choices") or []:
                        if not isinstance(choice, Mapping):
                            raise ProviderError(f"{request.model}: a stream event has a malformed choice", retryable=True)
                        finish_reason = choice.get("finish_reason") or finish_reason
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            if ttft is None:
                                ttft = time.perf_counter() - started
                            parts.append(delta)
                            yield StreamChunk(delta=delta)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._failure(exc, request.model) from exc
        text = "".join(parts)
        if not done and finish_reason is None:
            # A cleanly closed body is no proof of a whole answer: only [DONE] or a finish_reason is.
            raise ProviderError(
                f"{request.model}: the stream ended early (no finish_reason and no [DONE]) "
                f"after {len(text)} characters",
                retryable=True,
                error_type="IncompleteStream",
            )
        yield StreamChunk(
            final=ChatResponse(
                text=text,
                tokens_in=usage.get("prompt_tokens"),
                tokens_out=usage.get("completion_tokens"),
                cost_usd=prices.token_cost(request.model, usage.get("prompt_tokens"), usage.get("completion_tokens")),
                finish_reason=finish_reason,
                ttft_s=ttft,
            )
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        data = await self._post(
            endpoint(request.api_base, "/embeddings", request.model, request.api_key),
            {"model": wire_model(request.model), "input": list(request.texts)},
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
        return EmbeddingResponse(
            vectors=vectors,
            tokens_in=(data.get("usage") or {}).get("prompt_tokens"),
            cost_usd=prices.embedding_cost(request.model, data),
        )

    async def reward(self, request: RewardRequest) -> RewardResponse:
        """Score one answer with a reward model behind vLLM's pooling routes (one request).

        The request and answer shapes are vLLM's (``vllm/entrypoints/pooling``):

        * ``POST /classify`` with chat ``messages`` (the server applies the model's
          chat template, as sequence-classification reward models need) ->
          ``data[0].probs`` (one per class) and ``data[0].label``;
          https://docs.vllm.ai/en/latest/models/pooling_models/reward/
        * ``POST /score`` with ``text_1`` (the prompt) and ``text_2`` (the answer) ->
          ``data[0].score``; https://docs.vllm.ai/en/latest/models/pooling_models/scoring/
        * ``POST /pooling`` with chat ``messages`` -> ``data[0].data``: a vector, or one
          row per token (token reward models), of which the last token's row is kept;
          https://docs.vllm.ai/en/latest/examples/pooling/pooling/

        A body that is JSON but not of that shape, or holds a number that is not
        finite, is a ``ProviderError`` that is not retried (the server would say it again).
        """
        messages = [{"role": "user", "content": request.prompt}, {"role": "assistant", "content": request.answer}]
        payload: dict[str, Any] = {**body_params(request.params), "model": wire_model(request.model)}
        if request.api == "score":
            payload.update(text_1=request.prompt, text_2=request.answer)
        else:
            payload["messages"] = messages
        target = endpoint(reward_root(request.api_base), "/" + request.api, request.model, request.api_key, request.params)
        data = await self._post(target, payload, request.timeout, request.model)
        values, label = _reward_values(request.api, data, request.model)
        usage = data.get("usage") if isinstance(data.get("usage"), Mapping) else {}
        tokens = usage.get("prompt_tokens")
        return RewardResponse(values=values, label=label, tokens_in=tokens if isinstance(tokens, int) else None)


def reward_root(api_base: str | None) -> str | None:
    """The server root of an ``api_base``: vLLM serves ``/classify``, ``/score`` and ``/pooling`` beside ``/v1``.

    A trailing ``/v1`` leaves the path; a query string and credentials stay.
    """
    if not api_base:
        return api_base
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(api_base.strip())
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _malformed(model: str, api: str, problem: str) -> ProviderError:
    return ProviderError(
        f"{model}: the /{api} answer is malformed: {problem}", retryable=False, error_type="MalformedReward"
    )


def _finite_numbers(raw: Any, model: str, api: str, what: str) -> tuple[float, ...]:
    import math

    if isinstance(raw, bool) or isinstance(raw, (int, float)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _malformed(model, api, f"{what} is {json.dumps(raw)[:80]}, expected a non-empty list of numbers")
    values = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise _malformed(model, api, f"{what} holds {item!r}, not a finite number")
        values.append(float(item))
    return tuple(values)


def _reward_values(api: str, data: Any, model: str) -> tuple[tuple[float, ...], str | None]:
    """The output vector and label of the first (only) result of a reward answer."""
    rows = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], Mapping):
        raise _malformed(model, api, "no 'data' list of results")
    row = rows[0]
    if api == "classify":
        label = row.get("label")
        return _finite_numbers(row.get("probs"), model, api, "'probs'"), label if isinstance(label, str) else None
    if api == "score":
        return _finite_numbers(row.get("score"), model, api, "'score'"), None
    pooled = row.get("data")
    if isinstance(pooled, list) and pooled and all(isinstance(r, list) for r in pooled):
        pooled = pooled[-1]  # one row per token: the last token's output scores the whole answer
    return _finite_numbers(pooled, model, api, "'data'"), None
