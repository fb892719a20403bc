"""The contract between the model client and a provider backend.

A backend knows how to talk to one kind of provider (litellm for the hosted
APIs, llama.cpp for the embedded local model). It makes exactly one attempt
per call: retries, the deadline, the cache and the ``Call`` records belong to
the client above it, so every backend behaves the same under failure.

Backends raise ``ProviderError`` (or a subclass) for anything that went wrong
on the provider's side, with ``retryable`` and ``retry_after`` filled in so
the client's retry policy needs no knowledge of the SDK underneath.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from pytest_llmops.verdict import UnmeasuredError

Message = Mapping[str, Any]


class ProviderError(UnmeasuredError):
    """A provider call failed. A test that ends on one is reported unmeasured.

    ``retryable`` says whether the same request may succeed if sent again (rate
    limits, 5xx, timeouts, broken connections); ``retry_after`` is the delay
    the provider asked for, in seconds, when it said one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.error_type = error_type or type(self).__name__
        #: The ``Call`` record of the failed call, set by the client once it gives up.
        self.call: Any = None


class ModelConfigError(ValueError):
    """The call cannot succeed as configured (no API key, a rejected key); the message names the setting to fix.

    Not a ``ProviderError``: it is never retried, and a case that ends on it
    is an error of the suite, not an unmeasured check. ``error_type`` is the
    provider SDK's name for it, as on ``ProviderError``.
    """

    def __init__(self, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type or type(self).__name__
        #: The ``Call`` record of the failed call, set by the client.
        self.call: Any = None


class ProviderTimeout(ProviderError):
    """An attempt, or the whole call, ran past its time limit."""

    def __init__(self, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message, retryable=True, error_type=error_type or "Timeout")


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request, as the client hands it to a backend.

    ``params`` holds everything that shapes the answer (temperature, max_tokens,
    top_p, stop, seed, response_format, logprobs, top_logprobs, ...).
    ``api_key`` is passed through to the provider and never recorded.
    """

    model: str
    messages: Sequence[Message]
    params: Mapping[str, Any] = field(default_factory=dict)
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(MappingProxyType(dict(m)) for m in self.messages))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


@dataclass(frozen=True)
class TokenLogprob:
    """Log-probability of one generated token, with the top alternatives when asked for."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ChatResponse:
    """What a backend got back for one chat request."""

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    #: USD, or ``None`` when the model's price is unknown.
    cost_usd: float | None = None
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    #: Time to first token in seconds; set by streaming backends only.
    ttft_s: float | None = None
    #: What produced the answer beyond the model name (engine and version, build, weights file):
    #: recorded on the ``Call`` so a changed runtime shows in a baseline comparison.
    runtime: Mapping[str, str] | None = None


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    texts: Sequence[str]
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))


@dataclass(frozen=True)
class EmbeddingResponse:
    vectors: tuple[tuple[float, ...], ...]
    tokens_in: int | None = None
    cost_usd: float | None = None


#: The reward-server APIs vLLM exposes for pooling models (see ``models/openai_http.py``).
REWARD_APIS = ("classify", "score", "pooling")


@dataclass(frozen=True)
class RewardRequest:
    """One reward-model request: score ``answer`` as a reply to ``prompt`` through ``api``.

    ``params`` are extra JSON body fields (e.g. vLLM's ``use_activation``) and
    the ``headers`` / ``extra_headers`` parameters; ``api_key`` is never recorded.
    """

    model: str
    api: str
    prompt: str
    answer: str
    params: Mapping[str, Any] = field(default_factory=dict)
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.api not in REWARD_APIS:
            raise ValueError(f"reward api must be one of {', '.join(REWARD_APIS)}, got {self.api!r}")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


@dataclass(frozen=True)
class RewardResponse:
    """What a reward server said about one answer: its output vector, finite numbers only.

    ``values`` holds the class probabilities (``/classify``), the one score
    (``/score``) or the pooled output of the last token (``/pooling``).
    """

    values: tuple[float, ...]
    label: str | None = None
    tokens_in: int | None = None


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed answer: a text delta, or (last) the full response."""

    delta: str = ""
    final: ChatResponse | None = None


class Backend(Protocol):
    """A provider backend. One attempt per call; raise ``ProviderError`` on failure.

    A backend may also define ``prepare(model)``: slow set-up its calls of ``model``
    need (an import), which the client runs once per model in a thread before
    timing the first call, and ``aclose()``, which closes what it holds open on the
    running loop when the session ends.
    """

    name: str
    #: How many requests the backend can serve at once; None leaves it to ``--llmops-concurrency``.
    max_in_flight: int | None

    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    def chat_stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        """Yield text deltas as they arrive, then one chunk whose ``final`` is set."""
        ...

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse: ...

    # A backend that can call reward servers also defines
    # ``async def reward(self, request: RewardRequest) -> RewardResponse``.
