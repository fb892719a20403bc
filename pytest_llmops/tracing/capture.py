"""Capture the app's own OpenTelemetry spans into the running case's tree.

``capture_spans(provider)`` adds a span processor to the app's SDK
``TracerProvider`` (call it from a conftest.py). A span the app starts while a
case runs is recorded as a child of the case's current step (the app's own
nesting is kept below it), with ``source="otel"``. Outside a case it does
nothing. Needs opentelemetry-sdk (extra ``[otel]``); the plugin never imports it.
"""

from __future__ import annotations

import threading
from typing import Any

from pytest_llmops.case import CaseRecord, current_case
from pytest_llmops.tracing.spans import Span, current_span


def capture_spans(provider: Any) -> Any:
    """Record the spans of ``provider`` (an ``opentelemetry.sdk.trace.TracerProvider``) in eval cases."""
    from opentelemetry.sdk.trace import SpanProcessor

    class _CaseCapture(SpanProcessor):  # type: ignore[misc]
        def __init__(self) -> None:
            # otel span id -> (case record, our parent span id), from start to end.
            self._open: dict[int, tuple[CaseRecord, str]] = {}
            self._lock = threading.Lock()

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            record, parent = current_case(), current_span()
            if record is None or parent is None:
                return
            own_parent = span.parent.span_id if span.parent is not None else None
            with self._lock:
                known = own_parent in self._open
                self._open[span.context.span_id] = (record, f"{own_parent:016x}" if known else parent.span_id)

        def on_end(self, span: Any) -> None:
            with self._lock:
                entry = self._open.pop(span.context.span_id, None)
            if entry is None:
                return
            record, parent_id = entry
            ok = span.status.status_code.name != "ERROR"
            captured = Span(
                name=span.name, kind=_kind(span.attributes or {}), trace_id=record.spans[0].trace_id,
                span_id=f"{span.context.span_id:016x}", parent_id=parent_id, start=span.start_time / 1e9,
                end=span.end_time / 1e9, status="ok" if ok else "error",
                error=None if ok else (span.status.description or "error"), source="otel",
            )
            captured.update(dict(span.attributes or {}))
            record.add_span(captured)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    processor = _CaseCapture()
    provider.add_span_processor(processor)
    return processor


def _kind(attributes: Any) -> str:
    """The llmops kind from OpenInference's kind, or from the GenAI operation; a chain otherwise."""
    kind = str(attributes.get("openinference.span.kind", "")).lower()
    if kind in ("llm", "tool", "chain", "retriever", "agent", "embedding", "evaluator"):
        return kind
    operation = attributes.get("gen_ai.operation.name")
    if operation in ("chat", "text_completion", "generate_content"):
        return "llm"
    if operation == "execute_tool":
        return "tool"
    return "chain"
