"""A black-box app in another process, evaluated through the OTLP traces it sends to the case's receiver."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytest_plugins = ["pytester"]

APP = '''
import sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1])))
tracer = provider.get_tracer("weather-agent")
with tracer.start_as_current_span("agent", attributes={"openinference.span.kind": "AGENT"}):
    with tracer.start_as_current_span("search", attributes={
            "openinference.span.kind": "TOOL", "tool.name": "search", "tool.parameters": '{"query": "paris"}'}):
        pass
    with tracer.start_as_current_span("calculator", attributes={"openinference.span.kind": "TOOL"}):
        pass
provider.shutdown()
'''

SUITE = '''
import subprocess, sys
import pytest
from pytest_llmops import assert_tool_called, assert_trajectory

@pytest.mark.llm_eval
def test_the_agent_searches_then_calculates(llmops_otlp_receiver):
    subprocess.run([sys.executable, "app.py", llmops_otlp_receiver.endpoint], check=True, timeout=120)
    llmops_otlp_receiver.wait(min_spans=3)
    assert_tool_called("search", with_args={"query": "paris"})
    assert_trajectory(["search", "calculator"], order="exact")

@pytest.mark.llm_eval
def test_an_app_that_sends_nothing_is_unmeasured(llmops_otlp_receiver):
    llmops_otlp_receiver.wait(min_spans=1, timeout=0.5)
    assert_trajectory(["search"], order="exact")
'''


def test_the_spans_of_another_process_join_the_case_and_are_judged(pytester):
    pytester.makepyfile(app=APP, test_agent=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.stdout.fnmatch_lines(["*1 passed, 1 unmeasured*"])
    result.stdout.fnmatch_lines(["*the app sent 0 span(s) to http://127.0.0.1:*/v1/traces within 0.5 s, 1 expected*"])
    data = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    case = next(c for c in data["cases"] if c["nodeid"].endswith("searches_then_calculates"))
    spans = {s["name"]: s for s in case["spans"]}
    assert {s["source"] for s in case["spans"] if s["name"] in ("agent", "search", "calculator")} == {"otlp"}
    assert spans["search"]["parent_id"] == spans["agent"]["span_id"]  # the app's own nesting is kept
    assert spans["agent"]["parent_id"] == case["spans"][0]["span_id"]  # its top span hangs under the case
    assert spans["search"]["kind"] == "tool" and spans["agent"]["kind"] == "agent"
    assert [s["state"] for s in data["cases"]] == ["passed", "unmeasured"]


def test_otlp_json_is_read_and_a_malformed_export_is_refused():
    from pytest_llmops.tracing.receiver import OTLPReceiver

    receiver = OTLPReceiver()
    try:
        body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "lookup",
            "startTimeUnixNano": "1764547200000000000", "endTimeUnixNano": "1764547200500000000",
            "attributes": [{"key": "openinference.span.kind", "value": {"stringValue": "RETRIEVER"}},
                           {"key": "retrieval.top_k", "value": {"intValue": "5"}}],
        }]}]}]}
        request = urllib.request.Request(receiver.endpoint, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(request, timeout=10).status == 200
        bad = urllib.request.Request(receiver.endpoint, data=b"\xff\x00garbage",
                                     headers={"Content-Type": "application/x-protobuf"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)
        assert refused.value.code == 400
        assert receiver.received == 1
        (span,) = receiver._received
        assert span["name"] == "lookup" and span["attributes"] == {"openinference.span.kind": "RETRIEVER",
                                                                   "retrieval.top_k": 5}
        assert span["end"] - span["start"] == pytest.approx(0.5)
    finally:
        receiver.close()
