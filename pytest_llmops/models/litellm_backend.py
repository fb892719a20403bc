"""The backend for hosted and OpenAI-compatible providers, over litellm.

litellm is imported on first use only (it costs seconds of CPU and hundreds of
modules; FACTS.md). Before that import it is made quiet and offline: the cost
map comes from the copy shipped in the package instead of the network, and it
does not log. A setting the user made explicitly in the environment wins.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from pytest_llmops.models.backend import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelConfigError,
    ProviderError,
    ProviderTimeout,
    StreamChunk,
    TokenLogprob,
)
from pytest_llmops.models.endpoints import KEY_VARIABLES
from pytest_llmops.models.prices import priced_tokens
from pytest_llmops.redact import redact_url

#: Set before litellm is imported unless the user chose otherwise (FACTS.md).
OFFLINE_DEFAULTS = {
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "true",
    "LITELLM_LOG": "ERROR",
    "HF_HUB_OFFLINE": "1",
}

#: HTTP statuses worth sending again: rate limits, timeouts and server-side failures.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})

_litellm: Any = None
#: What to install for models that go through litellm (an extra since litellm is not in the core).
LITELLM_EXTRA_PIP = "pytest-llmops[litellm]"


class LiteLLMUnavailable(ProviderError, ImportError):
    """litellm is not installed: models other than OpenAI-compatible bases cannot be called."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, error_type="LiteLLMUnavailable")


def load_litellm() -> Any:
    """Import litellm once, quiet and offline."""
    global _litellm
    if _litellm is None:
        for name, value in OFFLINE_DEFAULTS.items():
            os.environ.setdefault(name, value)
        try:
            import litellm
        except ImportError as exc:
            if getattr(exc, "name", None) not in ("litellm", None):
                raise
            raise LiteLLMUnavailable(
                "this model goes through litellm, which is not installed: pip install "
                f"'{LITELLM_EXTRA_PIP}' (OpenAI-compatible servers need no litellm: give an "
                "openai/ or hosted_vllm/ model with an api_base)"
            ) from exc
        litellm.suppress_debug_info = True
        litellm.telemetry = False
        _litellm = litellm
    return _litellm


def _retry_after_seconds(exc: BaseException) -> float | None:
    """The provider's ``Retry-After`` as seconds, from wherever litellm kept the headers."""
    candidates: list[Mapping[str, str]] = []
    for attr in ("headers", "litellm_response_headers"):
        value = getattr(exc, attr, None)
        if value:
            candidates.append(value)
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "headers", None) is not None:
        candidates.append(response.headers)
    for headers in candidates:
        try:
            raw = headers.get("retry-after") or headers.get("Retry-After")
        except AttributeError:
            continue
        if raw is None:
            continue
        raw = str(raw).strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:  # the HTTP-date form
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            continue
    return None


def missing_key_variables(exc: BaseException, model: str, api_key: str | None) -> list[str] | None:
    """The environment variables to set when ``exc`` says the API key is missing, or None when it does not.

    litellm reports a missing key as an ``InternalServerError`` (OpenAI SDK)
    or an ``AuthenticationError`` (Anthropic), before any request is sent; its
    ``validate_environment`` confirms it and names the variables it reads.
    """
    litellm = load_litellm()
    status = getattr(exc, "status_code", None)
    text = str(getattr(exc, "message", None) or exc).lower()
    if status not in (None, 401, 500) or not any(word in text for word in ("api_key", "api key", "credentials")):
        return None
    try:
        missing = litellm.validate_environment(model=model, api_key=api_key).get("missing_keys") or []
    except Exception:  # litellm does not know the provider: leave the error as it came
        return None
    return [str(name) for name in missing] or None


def translate_error(exc: BaseException, model: str, api_key: str | None = None) -> ProviderError | ModelConfigError:
    """Turn a litellm / OpenAI SDK exception into the project's ``ProviderError``.

    A missing API key becomes a ``ModelConfigError`` naming the variable to
    set: sending the request again cannot help, so it is never retried.
    """
    litellm = load_litellm()
    kind = type(exc).__name__
    message = f"{model}: {kind}: {getattr(exc, 'message', None) or exc}"
    if isinstance(exc, litellm.Timeout):
        return ProviderTimeout(message, error_type=kind)
    variables = missing_key_variables(exc, model, api_key)
    if variables is not None:
        return ModelConfigError(
            f"{model}: no API key: set {' or '.join(variables)} in the environment (litellm reads the key from "
            f"there). litellm said: {kind}: {getattr(exc, 'message', None) or exc}",
            error_type=kind,
        )
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.APIConnectionError) and status in (None, 500):
        # Refused connections and unreadable bodies both land here (FACTS.md).
        return ProviderError(message, retryable=True, status=status, error_type=kind)
    retryable = status in RETRYABLE_STATUSES if isinstance(status, int) else False
    return ProviderError(
        message,
        retryable=retryable,
        status=status if isinstance(status, int) else None,
        retry_after=_retry_after_seconds(exc),
        error_type=kind,
    )


def _logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if content is None and isinstance(getattr(choice, "logprobs", None), dict):
        content = choice.logprobs.get("content")
    if not content:
        return None
    out = []
    for item in content:
        get = item.get if isinstance(item, dict) else lambda k, item=item: getattr(item, k, None)
        top = get("top_logprobs") or []
        alternatives = tuple(
            (t["token"], float(t["logprob"])) if isinstance(t, dict) else (t.token, float(t.logprob)) for t in top
        )
        out.append(TokenLogprob(token=get("token"), logprob=float(get("logprob")), top=alternatives))
    return tuple(out)


def _provider_finished(stream: Any) -> bool:
    """Whether the provider itself sent a finish_reason (litellm's stream wrapper records it).

    An object without those attributes (another litellm version) is taken at its word.
    """
    received = getattr(stream, "received_finish_reason", "unknown")
    if received is None:
        return bool(getattr(stream, "intermittent_finish_reason", None) or getattr(stream, "received_any_finish_reason", False))
    return True


def check_api_base(model: str, api_base: str | None) -> None:
    """Refuse an OpenAI-compatible ``api_base`` that litellm would mangle, with the fix.

    Measured with litellm 1.110: for ``openai/`` models it appends
    ``chat/completions`` to the query string of ``...?api-version=1`` (a 404), and
    credentials in the URL make its HTTP client refuse the request ("Cannot combine
    AUTHORIZATION header ... credentials encoded in URL"), retried as a server error.
    The direct client handles both.
    """
    if not api_base or not model.startswith(tuple(KEY_VARIABLES)):
        return
    try:
        parts = urlsplit(api_base.strip())
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        return  # litellm reports a malformed URL itself
    problem = "a query string" if parts.query else "credentials (user:password@)" if has_credentials else None
    if problem:
        raise ProviderError(
            f"{model}: the api_base {redact_url(api_base)!r} has {problem}, which litellm does not send as given; "
            f"use --llmops-client=direct (the default), which does",
            retryable=False,
        )


class LiteLLMBackend:
    """Any litellm model name: ``openai/...``, ``anthropic/...``, ``ollama_chat/...``, ..."""

    name = "litellm"
    max_in_flight = None

    def prepare(self, model: str) -> None:
        """Before the first timed call of ``model``: import litellm (seconds) and warm its path.

        litellm imports some fifty more modules inside its first call (0.15-0.4 s here);
        an offline mock answer (``mock_response``: nothing is sent) pays for them now,
        so no attempt's latency or deadline includes them.
        """
        litellm = load_litellm()
        with contextlib.suppress(Exception):  # best effort: a real problem shows on the real call
            litellm.completion(model=model, messages=[{"role": "user", "content": "warm-up"}], mock_response="ok")

    def _kwargs(self, request: ChatRequest) -> dict[str, Any]:
        check_api_base(request.model, request.api_base)
        kwargs: dict[str, Any] = dict(request.params)
        kwargs.update(model=request.model, messages=[dict(m) for m in request.messages])
        kwargs["timeout"] = request.timeout
        kwargs["max_retries"] = 0  # the client owns retries
        if request.api_base:
            kwargs["api_base"] = request.api_base
        if request.api_key:
            kwargs["api_key"] = request.api_key
        return kwargs

    def _cost(self, response: Any) -> float | None:
        litellm = load_litellm()
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:  # litellm raises for a model it has no price for
            return None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        litellm = load_litellm()
        kwargs = self._kwargs(request)
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise translate_error(exc, request.model, request.api_key) from exc
        if not getattr(response, "choices", None):
            raise ProviderError(f"{request.model}: the provider answered with no choices", retryable=True)
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return ChatResponse(
            text=choice.message.content or "",
            tokens_in=getattr(usage, "prompt_tokens", None),
            tokens_out=getattr(usage, "completion_tokens", None),
            cost_usd=self._cost(response),
            finish_reason=getattr(choice, "finish_reason", None),
            logprobs=_logprobs(choice),
        )

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        litellm = load_litellm()
        kwargs = self._kwargs(request)
        kwargs.update(stream=True, stream_options={"include_usage": True})
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        usage: Any = None
        finish_reason = None
        try:
            stream = await litellm.acompletion(**kwargs)
            async for chunk in stream:
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or []:
                    delta = getattr(getattr(choice, "delta", None), "content", None)
                    finish_reason = getattr(choice, "finish_reason", None) or finish_reason
                    if delta:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        parts.append(delta)
                        yield StreamChunk(delta=delta)
        except ProviderError:
            raise
        except Exception as exc:
            raise translate_error(exc, request.model, request.api_key) from exc
        text = "".join(parts)
        if finish_reason is None or not _provider_finished(stream):
            # litellm raises this itself once text has arrived, but a stream that ends before any
            # text gets a finish_reason of "stop" made up by litellm; its wrapper knows better.
            raise ProviderError(
                f"{request.model}: the stream ended early (no finish_reason) after {len(text)} characters",
                retryable=True,
                error_type="IncompleteStream",
            )
        tokens_in = getattr(usage, "prompt_tokens", None)
        tokens_out = getattr(usage, "completion_tokens", None)
        cost = priced_tokens(litellm, request.model, tokens_in, tokens_out)
        yield StreamChunk(
            final=ChatResponse(
                text=text,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost_usd=cost,
                finish_reason=finish_reason,
                ttft_s=ttft,
            )
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        litellm = load_litellm()
        check_api_base(request.model, request.api_base)
        kwargs: dict[str, Any] = {
            "model": request.model,
            "input": list(request.texts),
            "timeout": request.timeout,
            "max_retries": 0,
        }
        if request.api_base:
            kwargs["api_base"] = request.api_base
        if request.api_key:
            kwargs["api_key"] = request.api_key
        try:
            response = await litellm.aembedding(**kwargs)
        except Exception as exc:
            raise translate_error(exc, request.model, request.api_key) from exc
        rows = sorted(response.data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
        vectors = tuple(tuple(float(x) for x in (r["embedding"] if isinstance(r, dict) else r.embedding)) for r in rows)
        if len(vectors) != len(request.texts):
            raise ProviderError(
                f"{request.model}: asked for {len(request.texts)} embeddings, got {len(vectors)}", retryable=True
            )
        usage = getattr(response, "usage", None)
        cost = None
        try:
            cost = float(litellm.completion_cost(completion_response=response, call_type="embedding"))
        except Exception:
            cost = None
        return EmbeddingResponse(vectors=vectors, tokens_in=getattr(usage, "prompt_tokens", None), cost_usd=cost)
