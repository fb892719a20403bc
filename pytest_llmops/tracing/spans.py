"""The light span model: one tree of timed steps per eval case.

Every model call, retrieval and ``@traced`` step made while a case runs
becomes a ``Span`` under the case's root span. The current span is a context
variable, so concurrent cases on one event loop (and the tasks they gather)
each grow their own tree. Attribute names follow OpenInference
(``openinference.span.kind``, ``llm.token_count.prompt``, ``input.value``) and
the OpenTelemetry GenAI conventions (``gen_ai.request.model``,
``gen_ai.usage.input_tokens``), so an exported trace reads right in Phoenix,
Jaeger or Langfuse.

Standard library only: the plugin imports this at start-up, and
opentelemetry is needed only to export or to capture the app's own spans.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pytest_llmops.case import current_case

if TYPE_CHECKING:
    from pytest_llmops.case import CaseRecord
    from pytest_llmops.models.call import Call

SpanKind = Literal["case", "llm", "embedding", "evaluator", "retriever", "tool", "chain", "agent"]
#: Kinds a user may give ``@traced`` / ``llmops_trace.span``.
USER_KINDS = ("tool", "chain", "retriever", "agent", "llm")
#: OpenInference's name of each kind (the case's root span is a chain).
OPENINFERENCE_KIND = {
    "case": "CHAIN", "llm": "LLM", "embedding": "EMBEDDING", "evaluator": "EVALUATOR", "retriever": "RETRIEVER",
    "tool": "TOOL", "chain": "CHAIN", "agent": "AGENT",
}
#: Longest text kept in one attribute of the results file (prompts, answers, documents).
MAX_TEXT = 4000
#: A span's fields as the results file holds them, in the order of ``Span.to_row``.
SPAN_FIELDS = ("name", "kind", "trace_id", "span_id", "parent_id", "start", "end", "duration_s", "status", "error",
               "attributes", "source")

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("llmops_current_span", default=None)


def is_content(key: str) -> bool:
    """Whether attribute ``key`` holds prompt, answer, document or argument text
    (dropped from exports with ``--llmops-otlp-content=off``)."""
    return (
        key in ("input.value", "output.value", "tool.parameters", "llmops.error.message")
        or key.startswith(("llm.input_messages.", "llm.output_messages."))
        or (key.startswith("retrieval.documents.") and key.endswith(".document.content"))
    )


def _new_id(size: int) -> str:
    return os.urandom(size).hex()


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"... [{len(text) - MAX_TEXT} more chars]"


def _attribute(value: Any) -> Any:
    """A value an attribute can hold (str, bool, int, float, or a list of them), text shortened."""
    kind = type(value)
    # The common cases first: a model span sets ~25 attributes, thousands of cases a run.
    if kind is str:
        return _shortened(value)
    if kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, str):
        # A plain str: a subclass (an answer's ``Completion``) would not cross to the xdist controller.
        return _shortened(str.__str__(value))
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return int(value) if isinstance(value, int) else float(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return [_attribute(v) for v in value]
    return _attribute(to_text(value))


def to_text(value: Any) -> str:
    """``value`` as the text of an ``input.value`` / ``output.value`` attribute (JSON where it can be)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


@dataclass
class Span:
    """One timed step of a case. ``start`` and ``end`` are epoch seconds; ``end`` is ``None`` while it runs."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: float
    end: float | None = None
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    #: "llmops" for the plugin's and ``@traced`` spans, "otel" for spans captured from the app's OpenTelemetry.
    source: str = "llmops"
    _perf: float = field(default_factory=time.perf_counter, repr=False, compare=False)

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - self.start)

    def set(self, key: str, value: Any) -> None:
        """Set one attribute (``None`` leaves it out)."""
        if value is not None:
            self.attributes[key] = _attribute(value)

    def update(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set(key, value)

    def set_input(self, value: Any) -> None:
        self.set("input.value", to_text(value))

    def set_output(self, value: Any) -> None:
        self.set("output.value", to_text(value))

    def fail(self, error: BaseException) -> None:
        self.status = "error"
        self.error = f"{type(error).__name__}: {error}"[:MAX_TEXT]
        self.set("llmops.error.type", type(error).__name__)

    def finish(self) -> None:
        if self.end is None:
            self.end = self.start + (time.perf_counter() - self._perf)

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(SPAN_FIELDS, self.to_row()))

    def to_row(self) -> tuple[Any, ...]:
        """The span's fields in the order of ``SPAN_FIELDS``: how a finished case keeps its tree
        (a tuple of 12 is a quarter of the size of a dict of them, thousands of cases a run)."""
        return (
            self.name, self.kind, self.trace_id, self.span_id, self.parent_id, self.start, self.end,
            self.duration_s, self.status, self.error, dict(self.attributes), self.source,
        )


# -- the case's root span and opening spans under it ------------------------------------


def start_root(record: CaseRecord) -> Span:
    """Open the root span of ``record`` (the plugin does this as the case's setup starts)."""
    root = Span(name=record.nodeid, kind="case", trace_id=_new_id(16), span_id=_new_id(8), parent_id=None,
                start=time.time())
    root.set("openinference.span.kind", "CHAIN")
    record.spans.append(root)
    return root


def end_root(record: CaseRecord) -> None:
    """Close the case's tree: a step still open (a task left running) is closed and says so."""
    for span in record.spans:
        if span.end is None:
            if span.kind != "case":
                span.set("llmops.unfinished", True)
            span.finish()


def current_span() -> Span | None:
    """The innermost open span of the running case (its root between steps), or ``None`` outside a case."""
    record = current_case()
    if record is None or not record.spans:
        return None
    span = _current.get()
    if span is not None and span.trace_id == record.spans[0].trace_id:
        return span
    return record.spans[0]


@contextmanager
def open_span(name: str, kind: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span | None]:
    """A child span of the current one for the ``with`` block; ``None`` (and no cost) outside a case.

    An exception leaving the block marks the span ``error`` with its type and message, and goes on.
    """
    parent = current_span()
    if parent is None:
        yield None
        return
    record = current_case()
    assert record is not None
    span = Span(name=name, kind=kind, trace_id=parent.trace_id, span_id=_new_id(8), parent_id=parent.span_id,
                start=time.time())
    span.set("openinference.span.kind", OPENINFERENCE_KIND.get(kind, "CHAIN"))
    if attributes:
        span.update(attributes)
    record.add_span(span)
    token = _current.set(span)
    try:
        yield span
    except BaseException as error:
        span.fail(error)
        raise
    finally:
        _current.reset(token)
        span.finish()


def _check_kind(kind: str) -> None:
    if kind not in USER_KINDS:
        raise ValueError(f"span kind must be one of {', '.join(USER_KINDS)}, got {kind!r}")


def _arguments(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> dict[str, Any]:
    if signature is None:
        return {"args": list(args), **kwargs}
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return {"args": list(args), **kwargs}
    return {name: value for name, value in bound.arguments.items() if name not in ("self", "cls")}


def _step_attributes(kind: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    text = to_text(dict(arguments))
    attributes: dict[str, Any] = {"input.value": text, "input.mime_type": "application/json"}
    if kind == "tool":
        attributes.update({"tool.name": name, "tool.parameters": text, "gen_ai.operation.name": "execute_tool",
                           "gen_ai.tool.name": name})
    if kind == "agent":
        attributes.update({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name})
    return attributes


@overload
def traced(function: F) -> F: ...
@overload
def traced(*, kind: str = "chain", name: str | None = None, capture: bool = True) -> Callable[[F], F]: ...


def traced(function: Any = None, *, kind: str = "chain", name: str | None = None, capture: bool = True) -> Any:
    """Record each call of a function (sync or ``async``) as a span of the running case.

    ``@traced(kind="tool")`` makes a tool step (``tool.name``, ``tool.parameters``),
    ``"chain"``, ``"retriever"`` and ``"agent"`` group steps; ``name`` defaults to the
    function's name. The arguments become ``input.value`` and the return value
    ``output.value`` (``capture=False`` keeps them out). Outside an eval case the
    function runs untouched, so app code can keep the decorator in production.
    """
    _check_kind(kind)

    def decorate(fn: F) -> F:
        step = name or fn.__name__
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None

        def attributes(args: tuple, kwargs: dict) -> dict[str, Any]:
            if not capture:
                return {"tool.name": step} if kind == "tool" else {}
            return _step_attributes(kind, step, _arguments(signature, args, kwargs))

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                if current_case() is None:
                    return await fn(*args, **kwargs)
                with open_span(step, kind, attributes(args, kwargs)) as span:
                    result = await fn(*args, **kwargs)
                    if capture and span is not None:
                        span.set_output(result)
                    return result
            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if current_case() is None:
                return fn(*args, **kwargs)
            with open_span(step, kind, attributes(args, kwargs)) as span:
                result = fn(*args, **kwargs)
                if capture and span is not None:
                    span.set_output(result)
                return result
        return run  # type: ignore[return-value]

    return decorate(function) if function is not None else decorate


# -- what the model client and the retriever record --------------------------------------


#: A model call's GenAI operation and span kind, by the call's kind (a reward model is an evaluator).
_CALL_SPANS = {"chat": ("chat", "llm"), "embedding": ("embeddings", "embedding"), "reward": ("reward", "evaluator")}


def model_span(call_kind: str, model: str, role: str, messages: Sequence[Mapping[str, Any]] | None = None,
               texts: Sequence[str] | None = None, scored: Mapping[str, str] | None = None) -> Any:
    """The span of one model call (``chat MODEL`` / ``embeddings MODEL`` / ``reward MODEL``), before its answer is in.

    ``scored`` is what a reward model is asked to score (its prompt and answer).
    """
    operation, kind = _CALL_SPANS[call_kind]
    attributes: dict[str, Any] = {
        "llm.model_name": model, "gen_ai.request.model": model, "gen_ai.operation.name": operation,
        "gen_ai.provider.name": model.split("/", 1)[0] if "/" in model else model, "llmops.role": role,
    }
    if messages is not None:
        attributes["input.value"] = to_text([dict(m) for m in messages])
        attributes["input.mime_type"] = "application/json"
        for index, message in enumerate(messages):
            attributes[f"llm.input_messages.{index}.message.role"] = message.get("role")
            content = message.get("content")
            attributes[f"llm.input_messages.{index}.message.content"] = content if isinstance(content, str) else to_text(content)
    if texts is not None:
        attributes["llmops.embedding.texts"] = len(texts)
    if scored is not None:
        attributes["input.value"] = to_text(dict(scored))
        attributes["input.mime_type"] = "application/json"
    return open_span(f"{operation} {model}", kind, attributes)


def describe_call(span: Span | None, call: Call | None, answer: str | None = None) -> None:
    """Copy a finished ``Call`` record onto its span: tokens, cost, latency, cache hit, attempts."""
    if span is None or call is None:
        return
    tokens_in, tokens_out = call.tokens_in, call.tokens_out
    span.update({
        "llm.token_count.prompt": tokens_in, "llm.token_count.completion": tokens_out,
        "llm.token_count.total": None if tokens_in is None and tokens_out is None else (tokens_in or 0) + (tokens_out or 0),
        "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out,
        "llm.cost.total": call.cost_usd, "llmops.cost_usd": call.cost_usd,
        "llmops.latency_s": call.latency_s, "llmops.ttft_s": call.ttft_s,
        "llmops.cache_hit": call.cache_hit, "llmops.attempts": call.attempts,
        "llmops.prompt_hash": call.prompt_hash,
    })
    if call.extra.get("coalesced"):
        span.set("llmops.coalesced", True)
    if answer is not None:
        span.set_output(answer)
        span.set("llm.output_messages.0.message.role", "assistant")
        span.set("llm.output_messages.0.message.content", answer)


def describe_documents(span: Span | None, chunks: Sequence[Any]) -> None:
    """OpenInference's ``retrieval.documents.N.document.*`` attributes of a retrieval's results."""
    if span is None:
        return
    for index, chunk in enumerate(chunks):
        span.set(f"retrieval.documents.{index}.document.id", str(chunk.id))
        span.set(f"retrieval.documents.{index}.document.score", float(chunk.score))
        span.set(f"retrieval.documents.{index}.document.content", chunk.text)
