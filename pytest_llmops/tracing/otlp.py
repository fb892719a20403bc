"""OTLP/HTTP export of the run's case traces to a collector (Phoenix, Jaeger, Langfuse...).

``--llmops-otlp=URL`` sends every case's span tree once, as the run ends, on
the controller; ``--llmops-otlp-content=off`` drops prompt, answer, document
and argument text (``spans.is_content``) from what is sent. opentelemetry-sdk
and its OTLP exporter (extra ``[otel]``) are imported only when exporting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_llmops import redact
from pytest_llmops.settings import Option, _convert, add_string_options
from pytest_llmops.tracing.spans import is_content

OPTIONS: tuple[Option, ...] = (
    Option("otlp", "OTLP/HTTP collector to send each case's trace to as the run ends (a base URL gets /v1/traces)",
           None, kind="url", example="http://127.0.0.1:4318"),
    Option("otlp_content", "send prompt, answer, document and argument text with exported spans: on or off",
           "on", kind="choice", choices=("on", "off"), example="off"),
)

INSTALL = "pip install 'pytest-llmops[otel]'"


@dataclass(frozen=True)
class ExportOptions:
    endpoint: str | None = None
    content: bool = True


_key = pytest.StashKey[ExportOptions]()


def add_options(parser: pytest.Parser) -> None:
    add_string_options(parser, OPTIONS)


def resolve(config: pytest.Config) -> ExportOptions:
    """The export options (checked at start-up: a bad URL or choice is a usage error)."""
    cached = config.stash.get(_key, None)
    if cached is not None:
        return cached
    values: dict[str, Any] = {}
    inifile = str(config.inipath) if config.inipath else "the ini file"
    for option in OPTIONS:
        raw, where = config.getoption(option.dest, default=None), option.flag
        if raw is None:
            raw, where = config.getini(option.ini) or None, f"{option.ini} in {inifile}"
        values[option.name] = _convert(option, raw, where) if raw is not None else option.default
    endpoint = values["otlp"]
    if endpoint is not None and urlsplit(endpoint).path in ("", "/"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    resolved = config.stash[_key] = ExportOptions(endpoint=endpoint, content=values["otlp_content"] != "off")
    return resolved


def _attributes(attributes: Mapping[str, Any], content: bool, secrets: Any) -> dict[str, Any]:
    kept = {}
    for key, value in attributes.items():
        if not content and is_content(key):
            continue
        kept[key] = redact.redact_text(value, secrets) if isinstance(value, str) else value
    return kept


def to_otel(spans: Iterable[Mapping[str, Any]], content: bool) -> list[Any]:
    """The span dicts of the results as opentelemetry-sdk ``ReadableSpan`` objects."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    from pytest_llmops import __version__

    resource = Resource.create({"service.name": "pytest-llmops"})
    scope = InstrumentationScope("pytest-llmops", __version__)
    secrets = redact.known_secrets()
    result = []
    for span in spans:
        trace_id = int(span["trace_id"], 16)
        context = SpanContext(trace_id, int(span["span_id"], 16), is_remote=False, trace_flags=TraceFlags(1))
        parent = None
        if span.get("parent_id"):
            parent = SpanContext(trace_id, int(span["parent_id"], 16), is_remote=False, trace_flags=TraceFlags(1))
        error = span.get("status") == "error"
        message = span.get("error") if content else None
        result.append(ReadableSpan(
            name=redact.redact_text(span["name"], secrets), context=context, parent=parent, resource=resource,
            attributes=_attributes(span.get("attributes") or {}, content, secrets), kind=SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, message) if error else Status(StatusCode.OK),
            start_time=int(span["start"] * 1e9), end_time=int((span.get("end") or span["start"]) * 1e9),
            instrumentation_scope=scope,
        ))
    return result


def export(cases: Iterable[Any], options: ExportOptions) -> str:
    """Send the spans of ``cases`` (``CaseOutcome``); returns a line for the terminal saying what happened."""
    if options.endpoint is None:
        return ""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult
    except ImportError:
        return f"traces not exported: --llmops-otlp needs opentelemetry-sdk and its OTLP exporter ({INSTALL})"
    spans = [span for case in cases for span in case.spans]
    if not spans:
        return "traces: no case recorded a span, nothing exported"
    exporter = OTLPSpanExporter(endpoint=options.endpoint, timeout=10)
    try:
        outcome = exporter.export(to_otel(spans, options.content))
    finally:
        exporter.shutdown()
    shown = redact.redact_text(options.endpoint)
    if outcome is not SpanExportResult.SUCCESS:
        return f"traces NOT exported: the collector at {shown} did not accept {len(spans)} spans"
    return f"traces: {len(spans)} spans exported to {shown}" + ("" if options.content else " (content off)")
