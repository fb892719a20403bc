"""The one model client: chat, streamed chat, embeddings and reward scores, async first.

Every request goes through the same steps, whatever the provider:

1. the prompt becomes messages, and the parameters are merged (call
   arguments over the template's defaults over the fixture's defaults);
2. the cache is asked (by record mode) for a content-addressed answer;
3. otherwise the backend is called under the provider's concurrency limit,
   with the client's retry policy and an overall deadline;
4. the outcome, success or failure, becomes an immutable ``Call`` record that
   is kept for the session and attached to the running case.

A call that fails for good raises ``ProviderError`` (an ``UnmeasuredError``):
the case ends unmeasured with the reason, never as a silent pass. A call that
cannot work as configured (no API key) raises ``ModelConfigError`` at once,
never retried: the case ends in error, since the suite's set-up is at fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_llmops import redact
from pytest_llmops.case import current_case, current_sample
from pytest_llmops.models.backend import (
    Backend,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelConfigError,
    ProviderError,
    ProviderTimeout,
    RewardRequest,
    RewardResponse,
    StreamChunk,
    TokenLogprob,
)
from pytest_llmops.models.budget import Budget
from pytest_llmops.models.call import Call, CallRole
from pytest_llmops.models.limits import THROTTLE_STATUSES, AdaptiveLimit
from pytest_llmops.models.retry import RetryPolicy
from pytest_llmops.models.stall import stall_tolerant_timeout
from pytest_llmops.tracing.spans import describe_call, model_span
from pytest_llmops.verdict import UnmeasuredError

if TYPE_CHECKING:
    from pytest_llmops.models.cache import CallCache, RecordMode

T = TypeVar("T")
E = TypeVar("E", ProviderError, ModelConfigError)

LOCAL_PREFIX = "local/"
#: The most (seconds) a loop stall may stretch one attempt's time limit (see ``models/stall.py``).
MAX_STALL_EXTENSION_S = 5.0

#: Seconds a call may run past its deadline before it is cut off from outside (see ``_with_retries``).
DEADLINE_GRACE_S = 0.1


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def prompt_hash(messages: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the messages as sent: two calls with the same hash saw the same prompt."""
    return hashlib.sha256(_canonical([dict(m) for m in messages]).encode()).hexdigest()


def to_messages(prompt: Any) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
    """Messages and default parameters from a string, a message list or a rendered prompt."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": str(prompt)}], {}
    messages = getattr(prompt, "messages", None)
    if messages is not None:  # a RenderedPrompt from the prompt library
        return [dict(m) for m in messages], dict(getattr(prompt, "params", {}) or {})
    if isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt):
        for index, message in enumerate(prompt):
            if "role" not in message or "content" not in message:
                raise TypeError(f"message {index} needs 'role' and 'content' keys, got {sorted(message)}")
        return [dict(m) for m in prompt], {}
    raise TypeError(
        f"a prompt must be a str, a list of {{'role', 'content'}} messages or a rendered prompt, "
        f"got {type(prompt).__name__}"
    )


class Completion(str):
    """The text of an answer, with its ``Call`` record and details attached.

    It *is* a ``str``, so it goes straight into assertions and metrics;
    ``.call`` tells how it was obtained (model, latency, tokens, cost, cache).
    """

    call: Call
    logprobs: tuple[TokenLogprob, ...] | None
    finish_reason: str | None

    def __new__(
        cls,
        text: str,
        *,
        call: Call,
        logprobs: tuple[TokenLogprob, ...] | None = None,
        finish_reason: str | None = None,
    ) -> Completion:
        obj = super().__new__(cls, text)
        obj.call = call
        obj.logprobs = logprobs
        obj.finish_reason = finish_reason
        return obj

    @property
    def text(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class ModelConfig:
    """What a client is bound to: model, endpoint, role, defaults and limits."""

    model: str
    role: CallRole = "llm"
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Seconds one attempt may take.
    timeout_s: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: The name the call cache knows this endpoint by, in place of ``api_base``: a
    #: scripted server on a random local port keeps its entries from run to run.
    cache_endpoint: str | None = None
    #: Which reward-server API ``reward()`` calls by default: classify, score or pooling.
    reward_api: str = "classify"

    @property
    def provider(self) -> str:
        """The concurrency-limit group: the provider prefix and endpoint."""
        prefix = self.model.split("/", 1)[0] if "/" in self.model else self.model
        return f"{prefix}@{self.api_base or 'default'}"


#: How hosted models are called: litellm for all, or plain HTTP for OpenAI-compatible bases.
CLIENTS = ("litellm", "direct")


def _direct_handles(model: str, api_base: str | None) -> bool:
    from pytest_llmops.models.openai_http import handles

    return handles(model, api_base)


class ModelRuntime:
    """Session-wide state shared by every client: backends, cache, limits, call log.

    One per pytest session (per xdist worker). It also owns the event loop
    that the plugin runs async tests on, so clients created for one test can
    be reused by the next without "attached to a different loop" errors.
    """

    def __init__(
        self,
        *,
        cache: CallCache | None = None,
        record_mode: RecordMode | None = None,
        concurrency: int = 16,
        budget: Budget | None = None,
        client: str = "direct",
        keep_calls: bool = True,
    ) -> None:
        from pytest_llmops.models.cache import RecordMode as _RecordMode

        if client not in CLIENTS:
            raise ValueError(f"client must be one of {', '.join(CLIENTS)}, got {client!r}")
        #: "litellm" for every hosted model, or "direct": OpenAI-compatible models with an
        #: explicit api_base go over plain HTTP (see ``models/openai_http.py``).
        self.client = client

        self.cache = cache
        self.record_mode = record_mode or _RecordMode.NEW
        if self.cache is None:
            self.record_mode = _RecordMode.OFF
        self.concurrency = max(1, int(concurrency))
        self.budget = budget or Budget()
        #: Every call recorded, in order, when ``keep_calls``; the plugin's session runtime keeps
        #: none (each call is kept on its case), so memory does not grow with the run.
        self.calls: list[Call] = []
        self.keep_calls = keep_calls
        #: Calls recorded (kept or not), and whether any of them had a price.
        self.call_count = 0
        self.any_priced = False
        self._backends: dict[str, Backend] = {}
        #: Which backend serves (model, api_base).
        self._backend_names: dict[tuple[str, str | None], str] = {}
        self._prepared: set[tuple[str, str]] = set()
        self._preparing: dict[tuple[int, tuple[str, str]], asyncio.Task[None]] = {}
        self._limits: dict[tuple[int, str], AdaptiveLimit] = {}
        self._runner: asyncio.Runner | None = None
        self._in_flight: dict[tuple[int, str], asyncio.Future[Any]] = {}

    # -- event loop -------------------------------------------------------
    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion on the session's event loop (from sync code)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise RuntimeError(
                "a *_sync model method was called inside a running event loop; "
                "in an async test use `await llm.complete(...)` instead"
            )
        if self._runner is None:
            self._runner = asyncio.Runner()
        # The runner would use a context frozen at its creation; hand it the
        # caller's, so the running case (a context variable) is seen inside.
        return self._runner.run(awaitable, context=contextvars.copy_context())  # type: ignore[arg-type]

    def loop(self) -> asyncio.AbstractEventLoop:
        """The session's event loop, made on first use: tasks may be created on it while it is not running."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.get_loop()

    def step(self, awaitable: Awaitable[T]) -> T:
        """``run`` for the concurrent run loop's many short turns (see ``pytest_llmops.concurrent``).

        It skips what ``asyncio.Runner.run`` sets up on each call (a SIGINT handler, ~0.1 ms
        a call, thousands of calls a run): a Ctrl-C then interrupts the loop directly, and the
        run loop cancels the bodies still running.
        """
        return self.loop().run_until_complete(awaitable)

    def close(self) -> None:
        if self._runner is not None:
            for backend in self._backends.values():
                aclose = getattr(backend, "aclose", None)
                if aclose is not None:
                    # Connection pools close on the loop that opened them.
                    with contextlib.suppress(Exception):
                        self._runner.run(aclose())
            self._runner.close()
            self._runner = None
        if self.cache is not None:
            self.cache.close()

    # -- backends and limits ---------------------------------------------
    def backend_for(self, model: str, api_base: str | None = None) -> Backend:
        name = self._backend_names.get((model, api_base))
        if name is None:  # decided once per model and endpoint, not for every call
            if model.startswith(LOCAL_PREFIX):
                name = "local"
            elif self.client == "direct" and _direct_handles(model, api_base):
                name = "openai-http"
            else:
                name = "litellm"
            self._backend_names[(model, api_base)] = name
        return self.backend_named(name)

    def backend_named(self, name: str) -> Backend:
        """The session's backend ``name`` ("local", "openai-http" or "litellm"), made on first use."""
        backend = self._backends.get(name)
        if backend is None:
            if name == "local":
                from pytest_llmops.models.local import LocalLlamaBackend

                backend = LocalLlamaBackend()
            elif name == "openai-http":
                from pytest_llmops.models.openai_http import OpenAIHTTPBackend

                backend = OpenAIHTTPBackend()
            else:
                from pytest_llmops.models.litellm_backend import LiteLLMBackend

                backend = LiteLLMBackend()
            self._backends[name] = backend
        return backend

    async def prepare(self, backend: Backend, model: str) -> None:
        """Once per model: let the backend load what its calls need before the first one is timed.

        The work (importing litellm takes seconds) runs in a thread, so the loop keeps
        reading the answers of calls already in flight and their latency stays theirs.
        """
        key = (getattr(backend, "name", type(backend).__name__), model)
        if key in self._prepared:
            return
        prepare = getattr(backend, "prepare", None)
        if prepare is None:
            self._prepared.add(key)
            return
        loop = asyncio.get_running_loop()
        pending = self._preparing.get((id(loop), key))
        if pending is None:
            pending = self._preparing[(id(loop), key)] = loop.create_task(asyncio.to_thread(prepare, model))
            pending.add_done_callback(lambda _: self._preparing.pop((id(loop), key), None))
        await asyncio.shield(pending)
        self._prepared.add(key)

    # -- request coalescing ------------------------------------------------------
    def in_flight(self, key: str) -> asyncio.Future[Any] | None:
        """The pending answer of an identical request sent from this event loop, if any."""
        return self._in_flight.get((id(asyncio.get_running_loop()), key))

    def lead(self, key: str) -> asyncio.Future[Any]:
        """Register a request about to be sent, so identical ones can wait for it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        # Nobody may be waiting: mark a failure as seen so asyncio does not warn about it.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._in_flight[(id(loop), key)] = future
        return future

    def release(self, key: str, future: asyncio.Future[Any] | None) -> None:
        if future is not None:
            self._in_flight.pop((id(asyncio.get_running_loop()), key), None)

    def limit_for(self, provider: str, ceiling: int | None = None) -> AdaptiveLimit:
        """The adaptive concurrency limit of ``provider`` on the running event loop.

        ``ceiling`` is what the backend itself can serve at once (one for the
        in-process model): requests beyond it wait for a slot, where waiting is
        not counted as latency, rather than inside the backend, where it would be.
        """
        key = (id(asyncio.get_running_loop()), provider)
        limit = self._limits.get(key)
        if limit is None:
            most = self.concurrency if ceiling is None else max(1, min(ceiling, self.concurrency))
            limit = self._limits[key] = AdaptiveLimit(most)
        return limit

    def record(self, call: Call) -> Call:
        if self.keep_calls:
            self.calls.append(call)
        self.call_count += 1
        self.any_priced = self.any_priced or bool(call.cost_usd)
        self.budget.charge(call)
        case = current_case()
        if case is not None:
            case.add_call(call)
        return call


class LLMClient:
    """A model bound to its configuration: what the ``llm`` and ``judge`` fixtures give.

    Use ``await client.complete(prompt)`` in async tests and
    ``client.complete_sync(prompt)`` in sync ones; both return a ``Completion``.
    """

    def __init__(self, config: ModelConfig, runtime: ModelRuntime) -> None:
        self.config = config
        self.runtime = runtime
        # A provider may echo a credential in an error: every record and report redacts these.
        redact.remember_request(api_key=config.api_key, api_base=config.api_base)
        #: The api_base as call records show it (no credentials in the URL).
        self._recorded_api_base = redact.redact_url(config.api_base, redact.remembered())

    @property
    def model(self) -> str:
        return self.config.model

    configured = True

    def __repr__(self) -> str:
        return f"LLMClient(model={self.config.model!r}, role={self.config.role!r})"

    def with_params(self, **params: Any) -> LLMClient:
        """A client like this one with other default parameters (e.g. temperature)."""
        merged = {**self.config.params, **params}
        return LLMClient(replace(self.config, params=merged), self.runtime)

    # -- chat ---------------------------------------------------------------
    def _request(self, prompt: Any, params: Mapping[str, Any]) -> ChatRequest:
        messages, template_params = to_messages(prompt)
        merged = {**self.config.params, **template_params, **params}
        redact.remember_request(params=merged)
        return ChatRequest(
            model=self.config.model,
            messages=messages,
            params=merged,
            api_base=self.config.api_base,
            api_key=self.config.api_key,
            timeout=self.config.timeout_s,
        )

    def _key(self, kind: str, payload: Mapping[str, Any]) -> str:
        from pytest_llmops.models.cache import cache_key

        sample = current_sample()
        if sample:
            # Each repetition of a repeat=N case is a fresh sample, not a replay of the first.
            payload = {**payload, "llmops_sample": sample}
        return cache_key(kind, self.config.model, self.config.cache_endpoint or self.config.api_base, payload)

    def _call_record(self, request: AnyRequest, kind: str, key: str, **fields: Any) -> Call:
        case = current_case()
        if isinstance(request, ChatRequest):
            # Records are written (results, cache, reports): no header or key in them.
            params = redact.scrub(dict(request.params), redact.remembered())
            phash = prompt_hash(request.messages)
        elif isinstance(request, RewardRequest):
            params = {"api": request.api, **redact.scrub(dict(request.params), redact.remembered())}
            phash = hashlib.sha256(_canonical([request.prompt, request.answer]).encode()).hexdigest()
        else:
            params = {"n_texts": len(request.texts)}
            phash = hashlib.sha256(_canonical(list(request.texts)).encode()).hexdigest()
        return Call(
            model=self.config.model,
            kind=kind,  # type: ignore[arg-type]
            role=self.config.role,
            api_base=self._recorded_api_base,
            params=params,
            prompt_hash=phash,
            cache_key=key,
            nodeid=case.nodeid if case is not None else None,
            **fields,
        )

    def _replay(self, request: AnyRequest, kind: str, key: str) -> tuple[dict, Call] | None:
        runtime = self.runtime
        if runtime.cache is None or not runtime.record_mode.reads:
            return None
        entry = runtime.cache.get(key)
        if entry is None:
            if runtime.record_mode.value == "none":
                from pytest_llmops.models.cache import CacheMissError

                case = current_case()
                raise CacheMissError(key=key, model=self.config.model, nodeid=case.nodeid if case else None)
            return None
        recorded = entry.call
        call = self._call_record(
            request,
            kind,
            key,
            started_at=time.time(),
            latency_s=recorded.get("latency_s"),
            ttft_s=recorded.get("ttft_s"),
            tokens_in=recorded.get("tokens_in"),
            tokens_out=recorded.get("tokens_out"),
            cost_usd=recorded.get("cost_usd"),
            attempts=0,
            cache_hit=True,
            extra={
                "replayed": True,
                "recorded_at": entry.created_at,
                **({"runtime": recorded["extra"]["runtime"]} if "runtime" in (recorded.get("extra") or {}) else {}),
            },
        )
        return entry.response, runtime.record(call)

    def _store(self, key: str, kind: str, request: AnyRequest, response: dict, call: Call) -> None:
        runtime = self.runtime
        if runtime.cache is None or not runtime.record_mode.writes:
            return
        if isinstance(request, ChatRequest):
            stored_request = {"messages": [dict(m) for m in request.messages], "params": dict(request.params)}
        elif isinstance(request, RewardRequest):
            stored_request = {"api": request.api, "prompt": request.prompt, "answer": request.answer,
                              "params": redact.scrub(dict(request.params), redact.remembered())}
        else:
            stored_request = {"texts": list(request.texts)}
        runtime.cache.put(key, kind=kind, model=self.config.model, request=stored_request, response=response, call=call.to_dict())

    async def _with_retries(
        self,
        attempt: Callable[[float], Awaitable[T]],
        log: list[dict[str, Any]] | None = None,
        backend: Backend | None = None,
    ) -> tuple[T, float, int, float]:
        """Run ``attempt(timeout)`` under the retry policy and deadline.

        The model is prepared first (imports, loading the local model): that is the
        session's cost, not this call's, so the deadline starts once it is ready. The
        deadline then bounds the whole call, waiting for a slot and backoff included.

        Returns the result, the successful attempt's latency, the attempt count
        and the seconds spent backing off. Raises the last ``ProviderError``
        (with ``attempts``, ``backoff_s`` and ``attempt_log`` attached) when it gives up.
        Each attempt is appended to ``log``: its number, elapsed seconds, and for a
        failed one its error type and HTTP status.
        """
        policy = self.config.retry
        if backend is None:
            backend = self.runtime.backend_for(self.config.model, self.config.api_base)
        try:
            await self.runtime.prepare(backend, self.config.model)
        except ProviderError as error:
            error.attempts, error.backoff_s = 0, 0.0  # type: ignore[attr-defined]
            raise
        limit = self.runtime.limit_for(self.config.provider, getattr(backend, "max_in_flight", None))
        started = time.monotonic()
        attempts = 0
        backoff = 0.0
        log = [] if log is None else log
        try:
            # A backstop: each attempt's own timeout is what is left of the deadline, so this
            # fires only for what overruns that (a backend that ignores it); the grace keeps
            # it from racing the attempt's timeout.
            async with asyncio.timeout(policy.deadline_s + DEADLINE_GRACE_S):
                while True:
                    attempts += 1
                    try:
                        result, latency = await self._attempt(attempt, limit, started, attempts, log)
                        return result, latency, attempts, backoff
                    except ProviderError as error:
                        delay = policy.delay_s(error, attempts)
                        if not policy.should_retry(error, attempts) or time.monotonic() - started + delay >= policy.deadline_s:
                            error.attempts = attempts  # type: ignore[attr-defined]
                            error.backoff_s = backoff  # type: ignore[attr-defined]
                            error.attempt_log = tuple(log)  # type: ignore[attr-defined]
                            raise
                        await asyncio.sleep(delay)
                        backoff += delay
        except TimeoutError as exc:
            error = self._past_deadline(attempts)
            error.attempts, error.backoff_s = attempts, backoff  # type: ignore[attr-defined]
            error.attempt_log = tuple(log)  # type: ignore[attr-defined]
            raise error from exc

    async def _attempt(
        self,
        attempt: Callable[[float], Awaitable[T]],
        limit: AdaptiveLimit,
        started: float,
        number: int,
        log: list[dict[str, Any]],
    ) -> tuple[T, float]:
        """One attempt in a concurrency slot; its latency starts once the request goes out.

        The attempt's own limit is kept by ``stall_tolerant_timeout``; the backend is
        handed that limit plus the most the timer may extend it by, so the backend's
        timeout is not what fires first. The attempt is appended to ``log`` however it ends.
        """
        deadline_s = self.config.retry.deadline_s
        t0: float | None = None
        try:
            async with limit.slot() as epoch:
                left = deadline_s - (time.monotonic() - started)
                if left <= 0:  # the deadline passed while waiting for the slot
                    raise TimeoutError
                t0 = time.perf_counter()
                budget = max(0.001, min(self.config.timeout_s, left))
                grace = min(budget, MAX_STALL_EXTENSION_S)
                try:
                    async with stall_tolerant_timeout(budget, max_extension_s=grace):
                        result = await attempt(budget + grace)
                except (ProviderTimeout, TimeoutError) as error:
                    if left < self.config.timeout_s:
                        # The attempt's own limit was what was left of the deadline.
                        raise TimeoutError from error
                    if isinstance(error, ProviderTimeout):
                        raise
                    raise ProviderTimeout(
                        f"{self.config.model}: Timeout: no answer within {budget:g} s "
                        f"(attempt {number}; raise --llmops-timeout to allow more)"
                    ) from None
                except ProviderError as error:
                    if error.status in THROTTLE_STATUSES:
                        limit.throttled(epoch)
                    raise
                latency = time.perf_counter() - t0
                limit.succeeded()
        except ProviderError as error:
            log.append(_attempt_entry(number, t0, error.error_type, error.status))
            raise
        except (TimeoutError, asyncio.CancelledError):
            # The deadline ran out (here, or from outside by the backstop); a plain cancel too, whose log is dropped.
            log.append(_attempt_entry(number, t0, "Timeout", None))
            raise
        log.append({"attempt": number, "elapsed_s": round(latency, 6)})
        return result, latency

    def _past_deadline(self, attempts: int) -> ProviderTimeout:
        return ProviderTimeout(
            f"{self.config.model}: no answer within the {self.config.retry.deadline_s:g} s deadline "
            f"(attempt {attempts}; raise --llmops-deadline to allow more)"
        )

    def _fail(self, error: E, request: AnyRequest, kind: str, key: str, started: float) -> E:
        """Record the failed call (a configuration error is recorded too: one attempt, never retried)."""
        message = redact.redact_text(str(error))
        if message != str(error):
            # The message becomes the case's reason, in every report: a provider may have echoed a key.
            error.args = (message,)
            error.reason = message  # type: ignore[attr-defined]
        log = getattr(error, "attempt_log", ())
        call = self._call_record(
            request,
            kind,
            key,
            started_at=started,
            attempts=getattr(error, "attempts", 1),
            backoff_s=getattr(error, "backoff_s", 0.0),
            error=str(error),
            error_type=error.error_type,
            # A failed call's latency is its last attempt's time (None if none went out).
            latency_s=log[-1]["elapsed_s"] if log else None,
            attempt_log=log,
        )
        error.call = self.runtime.record(call)
        return error

    def _chat_succeeded(
        self,
        request: ChatRequest,
        key: str,
        started: float,
        response: ChatResponse,
        latency: float,
        attempts: int,
        backoff: float,
        log: Sequence[Mapping[str, Any]] = (),
    ) -> Call:
        """Record a successful chat call and cache its answer."""
        call = self.runtime.record(
            self._call_record(
                request,
                "chat",
                key,
                started_at=started,
                latency_s=latency,
                ttft_s=response.ttft_s,
                tokens_in=response.tokens_in,
                tokens_out=response.tokens_out,
                cost_usd=response.cost_usd,
                attempts=attempts,
                backoff_s=backoff,
                extra={"runtime": dict(response.runtime)} if response.runtime else {},
                attempt_log=_retried(log),
            )
        )
        self._store(key, "chat", request, _response_to_dict(response), call)
        return call

    async def complete(self, prompt: Any, *, stream: bool = False, **params: Any) -> Completion:
        """Ask the model; returns the answer as a ``Completion`` (a ``str``).

        ``stream=True`` streams the answer to measure time to first token.
        Extra keyword arguments are sampling parameters (temperature, max_tokens, ...).
        Inside an eval case the call is a span of the case's trace.
        """
        request = self._request(prompt, params)
        with model_span("chat", self.config.model, self.config.role, messages=request.messages) as span:
            try:
                answer = await self._complete(request, stream)
            except BaseException as error:
                describe_call(span, getattr(error, "call", None))
                raise
            describe_call(span, answer.call, str(answer))
            return answer

    async def _complete(self, request: ChatRequest, stream: bool) -> Completion:
        key = self._key("chat", {"messages": [dict(m) for m in request.messages], "params": dict(request.params)})
        replayed = self._replay(request, "chat", key)
        if replayed is not None:
            response, call = replayed
            return _completion_from_dict(response, call)
        if not stream:
            leader = self.runtime.in_flight(key)
            if leader is not None:
                return await self._follow(leader, request, key)
        self.runtime.budget.check(request.model)
        started = time.time()
        backend = self.runtime.backend_for(request.model, request.api_base)

        async def attempt(timeout: float) -> ChatResponse:
            sent = replace(request, timeout=timeout)
            if not stream:
                return await backend.chat(sent)
            final = None
            async for chunk in backend.chat_stream(sent):
                if chunk.final is not None:
                    final = chunk.final
            if final is None:
                raise ProviderError(f"{request.model}: the stream ended without a final answer", retryable=True)
            return final

        # Identical requests arriving while this one is out wait for its answer
        # instead of being sent again (the cache would miss them all).
        shared = None if stream else self.runtime.lead(key)
        log: list[dict[str, Any]] = []
        try:
            response, latency, attempts, backoff = await self._with_retries(attempt, log)
        except (ProviderError, ModelConfigError) as error:
            if shared is not None:
                shared.set_exception(error)
            raise self._fail(error, request, "chat", key, started) from None
        except BaseException:
            if shared is not None:  # cancelled or broken: the followers must not hang
                shared.set_exception(
                ProviderError(f"{request.model}: the identical request in flight did not finish", retryable=False)
            )
            raise
        finally:
            self.runtime.release(key, shared)
        call = self._chat_succeeded(request, key, started, response, latency, attempts, backoff, log)
        if shared is not None:
            shared.set_result((response, call))
        return Completion(response.text, call=call, logprobs=response.logprobs, finish_reason=response.finish_reason)

    async def _follow(self, leader: asyncio.Future[tuple[ChatResponse, Call]], request: ChatRequest, key: str) -> Completion:
        """Wait for an identical request already in flight and share its answer.

        The follower's ``Call`` says ``coalesced``: no attempt of its own, the
        leader's latency and token counts (it waited as long and got the same
        answer), and a cost of 0 (the provider billed the leader only).
        """
        started = time.time()
        try:
            response, original = await asyncio.shield(leader)
        except ProviderError as error:
            shared_error = ProviderError(
                f"{error} (shared with an identical request in flight)", retryable=False, status=error.status,
                error_type=error.error_type,
            )
            shared_error.attempts, shared_error.backoff_s = 0, 0.0  # type: ignore[attr-defined]
            raise self._fail(shared_error, request, "chat", key, started) from None
        call = self.runtime.record(
            self._call_record(
                request,
                "chat",
                key,
                started_at=started,
                latency_s=original.latency_s,
                tokens_in=original.tokens_in,
                tokens_out=original.tokens_out,
                cost_usd=0.0 if original.cost_usd is not None else None,
                attempts=0,
                extra={"coalesced": True},
            )
        )
        return Completion(response.text, call=call, logprobs=response.logprobs, finish_reason=response.finish_reason)

    def complete_sync(self, prompt: Any, **params: Any) -> Completion:
        """``complete`` for sync code: runs on the session's event loop."""
        return self.runtime.run(self.complete(prompt, **params))

    async def stream(self, prompt: Any, **params: Any) -> AsyncIterator[str]:
        """Yield the answer's text as it arrives.

        A cached answer arrives as one piece. Failures before the first piece
        are retried like ``complete``; a stream that breaks after it raises.
        The ``Call`` record is kept as for ``complete``.
        """
        request = self._request(prompt, params)
        key = self._key("chat", {"messages": [dict(m) for m in request.messages], "params": dict(request.params)})
        replayed = self._replay(request, "chat", key)
        if replayed is not None:
            yield replayed[0]["text"]
            return
        self.runtime.budget.check(request.model)
        started = time.time()
        backend = self.runtime.backend_for(request.model, request.api_base)
        queue: asyncio.Queue[StreamChunk | None] = asyncio.Queue()

        async def attempt(timeout: float) -> ChatResponse:
            first = True
            final = None
            try:
                async for chunk in backend.chat_stream(replace(request, timeout=timeout)):
                    if chunk.final is not None:
                        final = chunk.final
                    elif chunk.delta:
                        first = False
                        queue.put_nowait(chunk)
            except ProviderError as error:
                # Text already handed to the caller cannot be taken back: no retry then.
                error.retryable = error.retryable and first
                raise
            if final is None:
                raise ProviderError(f"{request.model}: the stream ended without a final answer", retryable=first)
            return final

        log: list[dict[str, Any]] = []
        task = asyncio.ensure_future(self._with_retries(attempt, log))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk.delta
        finally:
            if not task.done():
                task.cancel()
        try:
            response, latency, attempts, backoff = task.result()
        except (ProviderError, ModelConfigError) as error:
            raise self._fail(error, request, "chat", key, started) from None
        self._chat_succeeded(request, key, started, response, latency, attempts, backoff, log)

    # -- embeddings -----------------------------------------------------------
    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """Embed ``texts`` in one request; one vector per text, in order."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of texts; wrap a single text in a list")
        request = EmbeddingRequest(
            model=self.config.model,
            texts=list(texts),
            api_base=self.config.api_base,
            api_key=self.config.api_key,
            timeout=self.config.timeout_s,
        )
        with model_span("embedding", self.config.model, self.config.role, texts=request.texts) as span:
            try:
                vectors, call = await self._embed(request)
            except BaseException as error:
                describe_call(span, getattr(error, "call", None))
                raise
            describe_call(span, call)
            return vectors

    async def _embed(self, request: EmbeddingRequest) -> tuple[list[tuple[float, ...]], Call | None]:
        key = self._key("embedding", {"texts": list(request.texts)})
        replayed = self._replay(request, "embedding", key)
        if replayed is not None:
            return [tuple(v) for v in replayed[0]["vectors"]], replayed[1]
        self.runtime.budget.check(request.model)
        started = time.time()
        backend = self.runtime.backend_for(request.model, request.api_base)

        async def attempt(timeout: float) -> EmbeddingResponse:
            return await backend.embed(replace(request, timeout=timeout))

        log: list[dict[str, Any]] = []
        try:
            response, latency, attempts, backoff = await self._with_retries(attempt, log)
        except (ProviderError, ModelConfigError) as error:
            raise self._fail(error, request, "embedding", key, started) from None
        call = self.runtime.record(
            self._call_record(
                request,
                "embedding",
                key,
                started_at=started,
                latency_s=latency,
                tokens_in=response.tokens_in,
                tokens_out=0,
                cost_usd=response.cost_usd,
                attempts=attempts,
                backoff_s=backoff,
                attempt_log=_retried(log),
            )
        )
        self._store(key, "embedding", request, {"vectors": [list(v) for v in response.vectors]}, call)
        return list(response.vectors), call

    def embed_sync(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        return self.runtime.run(self.embed(texts))

    # -- reward scores ------------------------------------------------------------
    def _reward_request(self, prompt: str, answer: str, api: str | None, params: Mapping[str, Any]) -> RewardRequest:
        if not isinstance(prompt, str) or not isinstance(answer, str):
            raise TypeError(
                f"reward() scores a text answer to a text prompt, "
                f"got {type(prompt).__name__} and {type(answer).__name__}"
            )
        merged = {**self.config.params, **params}
        redact.remember_request(params=merged)
        return RewardRequest(
            model=self.config.model,
            api=api or self.config.reward_api,
            prompt=prompt,
            answer=answer,
            params=merged,
            api_base=self.config.api_base,
            api_key=self.config.api_key,
            timeout=self.config.timeout_s,
        )

    def _reward_key(self, request: RewardRequest) -> str:
        return self._key("reward", {"api": request.api, "prompt": request.prompt, "answer": request.answer,
                                    "params": dict(request.params)})

    async def reward(self, prompt: str, answer: str, *, api: str | None = None, **params: Any) -> RewardResult:
        """Score ``answer`` as a reply to ``prompt`` with the reward model; one request, one ``Call``.

        ``api`` is the reward server's route (``classify``, ``score`` or ``pooling``;
        by default the client's ``reward_api``); extra keyword arguments go into the
        JSON body. Cached, limited, retried and recorded like a chat call; a failed or
        malformed answer raises ``ProviderError`` (the check ends unmeasured). Only
        OpenAI-compatible models with an api_base (``hosted_vllm/``, ``openai/``) can be
        asked, since litellm has no route for vLLM's reward APIs. Inside an eval case
        the call is a span (kind ``evaluator``) of the case's trace.
        """
        request = self._reward_request(prompt, answer, api, params)
        with model_span("reward", self.config.model, self.config.role,
                        scored={"prompt": request.prompt, "answer": request.answer}) as span:
            try:
                result = await self._reward(request)
            except BaseException as error:
                describe_call(span, getattr(error, "call", None))
                raise
            describe_call(span, result.call)
            if span is not None:
                span.set_output({"values": list(result.values), "label": result.label})
            return result

    async def _reward(self, request: RewardRequest) -> RewardResult:
        key = self._reward_key(request)
        replayed = self._replay(request, "reward", key)
        if replayed is not None:
            data, call = replayed
            return RewardResult(tuple(float(v) for v in data["values"]), data.get("label"), call)
        self.runtime.budget.check(request.model)
        started = time.time()
        backend = self._reward_backend()
        if backend is None:
            unsupported = ModelConfigError(
                f"{request.model}: reward scores come from an OpenAI-compatible reward server (vLLM's /classify, "
                f"/score, /pooling), which litellm and the local model do not offer; give the reward model as "
                f"hosted_vllm/<name> (or openai/<name>) with an api_base, e.g. --llmops-reward-model="
                f"hosted_vllm/Skywork/Skywork-Reward-V2-Qwen3-0.6B --llmops-reward-api-base=http://127.0.0.1:8000/v1",
                error_type="RewardUnsupported",
            )
            raise self._fail(unsupported, request, "reward", key, started)

        leader = self.runtime.in_flight(key)
        if leader is not None:
            return await self._follow_reward(leader, request, key)

        async def attempt(timeout: float) -> RewardResponse:
            return await backend.reward(replace(request, timeout=timeout))  # type: ignore[attr-defined]

        # The same answer scored by several cases at once (a shared baseline) goes out once.
        shared = self.runtime.lead(key)
        log: list[dict[str, Any]] = []
        try:
            response, latency, attempts, backoff = await self._with_retries(attempt, log, backend)
        except (ProviderError, ModelConfigError) as error:
            shared.set_exception(error)
            raise self._fail(error, request, "reward", key, started) from None
        except BaseException:
            shared.set_exception(
                ProviderError(f"{request.model}: the identical request in flight did not finish", retryable=False)
            )
            raise
        finally:
            self.runtime.release(key, shared)
        call = self.runtime.record(
            self._call_record(
                request,
                "reward",
                key,
                started_at=started,
                latency_s=latency,
                tokens_in=response.tokens_in,
                tokens_out=0,
                attempts=attempts,
                backoff_s=backoff,
                attempt_log=_retried(log),
            )
        )
        self._store(key, "reward", request, {"values": list(response.values), "label": response.label}, call)
        shared.set_result((response, call))
        return RewardResult(response.values, response.label, call)

    async def _follow_reward(self, leader: asyncio.Future[Any], request: RewardRequest, key: str) -> RewardResult:
        """Share the answer of an identical reward request in flight (as ``_follow`` does for chat)."""
        started = time.time()
        try:
            response, original = await asyncio.shield(leader)
        except (ProviderError, ModelConfigError) as error:
            shared_error = ProviderError(f"{error} (shared with an identical request in flight)", retryable=False,
                                         status=getattr(error, "status", None), error_type=error.error_type)
            shared_error.attempts, shared_error.backoff_s = 0, 0.0  # type: ignore[attr-defined]
            raise self._fail(shared_error, request, "reward", key, started) from None
        call = self.runtime.record(
            self._call_record(request, "reward", key, started_at=started, latency_s=original.latency_s,
                              tokens_in=original.tokens_in, tokens_out=0, attempts=0, extra={"coalesced": True})
        )
        return RewardResult(response.values, response.label, call)

    def _reward_backend(self) -> Backend | None:
        """The direct HTTP backend when the model is OpenAI-compatible with an api_base (whatever ``client`` says:
        litellm has no reward route), else None."""
        from pytest_llmops.models.openai_http import handles

        if self.config.model.startswith(LOCAL_PREFIX) or not handles(self.config.model, self.config.api_base):
            return None
        return self.runtime.backend_named("openai-http")


class UnconfiguredModel:
    """Stands in for a model the user has not configured (there is no default judge).

    Any use ends the check unmeasured with a reason that names the setting,
    so a judge-based check can never pass without a judge.
    """

    configured = False

    def __init__(self, role: CallRole, setting: str, option: str) -> None:
        self.role = role
        self.reason = (
            f"no {role} model is configured: set {setting} = \"<litellm model name>\" "
            f"under [tool.pytest.ini_options], or pass {option}=<model>"
        )

    @property
    def model(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"UnconfiguredModel(role={self.role!r})"

    def _refuse(self) -> UnmeasuredError:
        return UnmeasuredError(self.reason)

    async def complete(self, prompt: Any, **params: Any) -> Completion:
        raise self._refuse()

    def complete_sync(self, prompt: Any, **params: Any) -> Completion:
        raise self._refuse()

    async def stream(self, prompt: Any, **params: Any) -> AsyncIterator[str]:
        raise self._refuse()
        yield ""  # pragma: no cover - makes this an async generator

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        raise self._refuse()

    def embed_sync(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        raise self._refuse()

    async def reward(self, prompt: str, answer: str, **params: Any) -> RewardResult:
        raise self._refuse()

    def with_params(self, **params: Any) -> UnconfiguredModel:
        return self


@dataclass(frozen=True)
class RewardResult:
    """What a reward model said about one answer: its output vector (class probabilities, the score,
    or the last token's pooled output), the label the server named, and the ``Call`` record."""

    values: tuple[float, ...]
    label: str | None
    call: Call


AnyRequest = ChatRequest | EmbeddingRequest | RewardRequest


def _attempt_entry(number: int, t0: float | None, error_type: str, status: int | None) -> dict[str, Any]:
    """A failed attempt's entry in the attempt log; ``elapsed_s`` is ``None`` when no request went out."""
    elapsed = None if t0 is None else round(time.perf_counter() - t0, 6)
    return {"attempt": number, "elapsed_s": elapsed, "error_type": error_type, "status": status}


def _retried(log: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    """The attempts of a call that needed more than one; one clean attempt says nothing ``latency_s`` does not."""
    return tuple(log) if len(log) > 1 else ()


def _response_to_dict(response: ChatResponse) -> dict[str, Any]:
    return {
        "text": response.text,
        "finish_reason": response.finish_reason,
        "logprobs": [
            {"token": t.token, "logprob": t.logprob, "top": [list(x) for x in t.top]} for t in response.logprobs
        ]
        if response.logprobs
        else None,
    }


def _completion_from_dict(data: Mapping[str, Any], call: Call) -> Completion:
    logprobs = data.get("logprobs")
    parsed = (
        tuple(TokenLogprob(token=t["token"], logprob=t["logprob"], top=tuple((a, b) for a, b in t["top"])) for t in logprobs)
        if logprobs
        else None
    )
    return Completion(data["text"], call=call, logprobs=parsed, finish_reason=data.get("finish_reason"))
