"""A local OTLP/HTTP receiver: evaluate a black-box app (another process) through the traces it sends.

The ``llmops_otlp_receiver`` fixture starts one on 127.0.0.1 for the case; point the app's OTLP
exporter at ``receiver.endpoint`` (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), run it, then
``receiver.wait(min_spans=...)`` moves the spans it sent into the case's tree, below the current
step, so ``assert_tool_called`` / ``assert_trajectory`` / span gates judge them like the app's own.
Accepts OTLP protobuf and OTLP/JSON. Needs opentelemetry-proto (extra ``[otel]``), imported here only.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_llmops.case import current_case
from pytest_llmops.tracing.capture import _kind
from pytest_llmops.tracing.spans import Span, current_span
from pytest_llmops.verdict import Score

TRACES_PATH = "/v1/traces"
_STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR


def _value(any_value: Any) -> Any:
    """An OTLP AnyValue as a Python value."""
    which = any_value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    if which == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, which)


def decode_spans(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The spans of an OTLP export request (protobuf or JSON), as plain dicts, resource attributes dropped."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    if "json" in content_type:
        json_format.Parse(body.decode("utf-8"), request)
    else:
        request.ParseFromString(body)
    spans = []
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                spans.append({
                    "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                    "parent_id": span.parent_span_id.hex() or None, "start": span.start_time_unix_nano / 1e9,
                    "end": span.end_time_unix_nano / 1e9 if span.end_time_unix_nano else None,
                    "error": span.status.message or "error" if span.status.code == _STATUS_ERROR else None,
                    "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                })
    return spans


class OTLPReceiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1 (a free port), in a background thread."""

    def __init__(self) -> None:
        self._received: list[dict[str, Any]] = []
        self._attached = 0
        self._errors: list[str] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path.split("?")[0] != TRACES_PATH:
                    self.send_error(404, f"this receiver takes traces at {TRACES_PATH}")
                    return
                try:
                    spans = decode_spans(body, self.headers.get("Content-Type", ""))
                except Exception as exc:  # a malformed export is answered 400 and remembered, not dropped silently
                    receiver._note_error(f"{type(exc).__name__}: {exc}")
                    self.send_error(400, "not an OTLP trace export")
                    return
                receiver._add(spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the report says it
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="llmops-otlp-receiver", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """The URL to give the app's OTLP/HTTP exporter (``.../v1/traces``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{TRACES_PATH}"

    def _add(self, spans: list[dict[str, Any]]) -> None:
        with self._arrived:
            self._received.extend(spans)
            self._arrived.notify_all()

    def _note_error(self, error: str) -> None:
        with self._arrived:
            self._errors.append(error)

    @property
    def received(self) -> int:
        with self._arrived:
            return len(self._received)

    def wait(self, min_spans: int = 1, timeout: float = 10.0) -> list[Span]:
        """Wait until ``min_spans`` spans have arrived, then add every new one to the running case.

        The app's spans keep their own nesting; its top spans become children of the case's current
        step. When fewer arrive within ``timeout`` the case ends **unmeasured** (a trajectory that was
        never sent cannot be judged), naming what arrived and any export that could not be decoded.
        """
        from pytest_llmops.case import require

        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._received) < min_spans and time.monotonic() < deadline:
                self._arrived.wait(max(0.0, deadline - time.monotonic()))
            new, self._attached = self._received[self._attached:], len(self._received)
            arrived, errors = len(self._received), list(self._errors)
        if arrived < min_spans:
            detail = f"; {len(errors)} export(s) not decoded, first: {errors[0]}" if errors else ""
            require(Score.unmeasured(
                "otlp_spans",
                f"the app sent {arrived} span(s) to {self.endpoint} within {timeout:g} s, {min_spans} expected{detail}. "
                "Check that its OTLP exporter points there and that it flushes before exiting",
            ))
        return self._attach(new)

    def _attach(self, received: list[dict[str, Any]]) -> list[Span]:
        record, parent = current_case(), current_span()
        if record is None or parent is None:
            raise RuntimeError("receiver.wait() attaches spans to the running case: call it inside an eval case")
        ids = {span["span_id"] for span in received}
        attached = []
        for item in received:
            span = Span(
                name=item["name"], kind=_kind(item["attributes"]), trace_id=record.spans[0].trace_id,
                span_id=item["span_id"], parent_id=item["parent_id"] if item["parent_id"] in ids else parent.span_id,
                start=item["start"], end=item["end"] or item["start"], status="error" if item["error"] else "ok",
                error=item["error"], source="otlp",
            )
            span.update(item["attributes"])
            span.set("llmops.otlp.trace_id", item["trace_id"])
            record.add_span(span)
            attached.append(span)
        return attached

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
