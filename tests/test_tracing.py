"""Spans of eval cases: the tree each case records, its results-file form, and trajectory assertions.

Each test runs pytest inside pytest (``pytester``) against the local
OpenAI-compatible test server, with a small tool-using agent as the app.
"""

from __future__ import annotations

import json

import pytest

from pytest_llmops.tracing.spans import traced

pytest_plugins = ["pytester"]

AGENT = '''
import asyncio
import pytest
from pytest_llmops import traced, assert_tool_called, assert_trajectory, assert_steps

@traced(kind="tool")
def search(query, limit=3):
    return [f"doc about {query}"][:limit]

@traced(kind="tool", name="calculator")
async def calc(expression):
    await asyncio.sleep(0)
    return str(eval(expression))

@traced(kind="agent")
async def agent(llm, question):
    plan = await llm.complete(f"plan for: {question}")
    docs = search(question, limit=2)
    total = await calc("2+3")
    return await llm.complete(f"answer {question} with {docs} and {total}")

@pytest.mark.llm_eval
async def test_agent_uses_its_tools(llm, llmops_trace):
    answer = await agent(llm, "weather in Paris")
    assert answer.startswith("Reply")
    assert_tool_called("search", with_args={"query": "weather in Paris"})
    assert_trajectory(["search", "calculator"], order="exact")
    assert_steps(max=4)
'''


@pytest.fixture
def eval_args(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    return ["--llmops-model=openai/test-model", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider"]


def results_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def tree(spans: list[dict]) -> list[tuple[int, str, str]]:
    """(depth, kind, name) of each span, depth-first in start order: the shape a reader sees."""
    children: dict[str | None, list[dict]] = {}
    for span in spans:
        children.setdefault(span["parent_id"], []).append(span)
    shape: list[tuple[int, str, str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s["start"]):
            shape.append((depth, span["kind"], span["name"]))
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return shape


def test_nested_steps_form_one_tree_under_the_case(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT)
    result = pytester.runpytest(*eval_args)
    result.assert_outcomes(passed=1)
    (case,) = results_of(pytester)["cases"]
    assert tree(case["spans"]) == [
        (0, "case", "test_agent.py::test_agent_uses_its_tools"),
        (1, "agent", "agent"),
        (2, "llm", "chat openai/test-model"),
        (2, "tool", "search"),
        (2, "tool", "calculator"),
        (2, "llm", "chat openai/test-model"),
    ]
    assert len({span["trace_id"] for span in case["spans"]}) == 1
    llm_span = next(span for span in case["spans"] if span["kind"] == "llm")
    attributes = llm_span["attributes"]
    assert attributes["openinference.span.kind"] == "LLM"
    assert attributes["gen_ai.request.model"] == attributes["llm.model_name"] == "openai/test-model"
    assert attributes["gen_ai.usage.input_tokens"] == attributes["llm.token_count.prompt"] > 0
    assert attributes["llm.token_count.total"] == attributes["llm.token_count.prompt"] + attributes["llm.token_count.completion"]
    assert attributes["llmops.cache_hit"] is False
    assert attributes["llmops.latency_s"] > 0
    assert "plan for: weather in Paris" in attributes["llm.input_messages.0.message.content"]
    assert attributes["output.value"].startswith("Reply")
    tool = next(span for span in case["spans"] if span["name"] == "search")
    assert json.loads(tool["attributes"]["tool.parameters"]) == {"query": "weather in Paris", "limit": 2}
    assert tool["attributes"]["openinference.span.kind"] == "TOOL"
    assert json.loads(tool["attributes"]["output.value"]) == ["doc about weather in Paris"]
    root = case["spans"][0]
    assert all(root["start"] <= span["start"] and span["end"] <= root["end"] for span in case["spans"])


def test_a_replayed_call_says_cache_hit(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT)
    pytester.runpytest(*eval_args).assert_outcomes(passed=1)
    pytester.runpytest(*eval_args).assert_outcomes(passed=1)
    (case,) = results_of(pytester)["cases"]
    hits = [span["attributes"]["llmops.cache_hit"] for span in case["spans"] if span["kind"] == "llm"]
    assert hits == [True, True]


def test_concurrent_cases_keep_separate_trees(pytester, eval_args, server):
    # Each answer takes 0.3 s, so the four cases' steps interleave on the one event loop.
    server.latency = 0.3
    pytester.makepyfile(test_many='''
import asyncio
import pytest
from pytest_llmops import traced

@traced(kind="tool")
async def lookup(key):
    await asyncio.sleep(0.05)
    return key.upper()

@traced(kind="chain")
async def pipeline(llm, key):
    first = await llm.complete(f"first {key}")
    await lookup(key)
    return await llm.complete(f"second {key} {first}")

@pytest.mark.llm_eval
@pytest.mark.parametrize("key", ["a", "b", "c", "d"])
async def test_case(llm, key):
    await pipeline(llm, key)
''')
    result = pytester.runpytest(*eval_args, "--llmops-test-concurrency=4")
    result.assert_outcomes(passed=4)
    cases = results_of(pytester)["cases"]
    roots = [case["spans"][0] for case in cases]
    # They did run at the same time: every case started before any other ended.
    assert max(root["start"] for root in roots) < min(root["end"] for root in roots)
    for case in cases:
        key = case["nodeid"][-2]
        assert tree(case["spans"]) == [
            (0, "case", case["nodeid"]),
            (1, "chain", "pipeline"),
            (2, "llm", "chat openai/test-model"),
            (2, "tool", "lookup"),
            (2, "llm", "chat openai/test-model"),
        ]
        prompts = [s["attributes"]["llm.input_messages.0.message.content"] for s in case["spans"] if s["kind"] == "llm"]
        assert prompts[0] == f"first {key}" and prompts[1].startswith(f"second {key} ")
        assert len({span["trace_id"] for span in case["spans"]}) == 1
    assert len({case["spans"][0]["trace_id"] for case in cases}) == 4


def test_a_failing_trajectory_shows_the_steps_and_the_slowest_ones(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT.replace('["search", "calculator"]', '["calculator", "search"]'))
    result = pytester.runpytest(*eval_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*trajectory = 0 (needs >= 1: fail) - trajectory (exact) expected ?'calculator', 'search'?, got ?'search', 'calculator'?",
        "*1. agent: agent*",
        "*2.   llm: chat openai/test-model*",
        '*3.   tool: search {"query": "weather in Paris", "limit": 2}*',
        "*4.   tool: calculator*",
        "*llmops trace: slowest steps*",
        "* ms  agent     agent (*% of the case)*",
    ])
    (case,) = results_of(pytester)["cases"]
    trajectory = next(score for score in case["scores"] if score["name"] == "trajectory")
    assert trajectory["details"]["actual"] == ["search", "calculator"]


def test_step_and_tool_assertions_fail_with_the_count(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT.replace("assert_steps(max=4)", "assert_steps(max=3)"))
    result = pytester.runpytest(*eval_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*steps = 4 (needs <= 3: fail) - 4 steps, expected at most 3*"])
    pytester.makepyfile(test_agent=AGENT.replace('with_args={"query": "weather in Paris"}', 'with_args={"query": "Rome"}'))
    result = pytester.runpytest(*eval_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tool 'search' with {'query': 'Rome'} called 0 time(s), expected at least once"])


def test_llmops_trace_fixture_adds_steps_and_marks_errors(pytester, eval_args):
    pytester.makepyfile(test_steps='''
import pytest

def test_steps(llm, llmops_trace):
    with llmops_trace.span("plan", kind="chain", plan_size=2):
        llm.complete_sync("hello")
        with pytest.raises(KeyError):
            with llmops_trace.span("lookup", kind="tool"):
                raise KeyError("missing")
    assert [s.name for s in llmops_trace.steps()] == ["chat openai/test-model", "lookup"]
    assert llmops_trace.trajectory() == ["lookup"]
''')
    result = pytester.runpytest(*eval_args)
    result.assert_outcomes(passed=1)
    (case,) = results_of(pytester)["cases"]
    assert tree(case["spans"])[1:] == [(1, "chain", "plan"), (2, "llm", "chat openai/test-model"), (2, "tool", "lookup")]
    lookup = case["spans"][-1]
    assert lookup["status"] == "error" and lookup["error"] == "KeyError: 'missing'"
    assert case["spans"][1]["attributes"]["plan_size"] == 2


def test_traced_outside_a_case_runs_the_function_untouched():
    @traced(kind="tool")
    def add(a, b):
        return a + b

    assert add(2, 3) == 5
    with pytest.raises(ValueError, match="span kind must be one of tool, chain, retriever, agent, llm"):
        traced(kind="tools")


def test_gates_on_spans_and_steps(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT)
    result = pytester.runpytest(
        *eval_args, "--llmops-gate=span[kind=tool, name=search].latency.p95<=1s", "--llmops-gate=steps.mean<=6",
        "--llmops-gate=steps.max<=3",
    )
    assert result.ret == 6  # every case passed; a gate failed
    gates = {gate["expression"]: gate for gate in results_of(pytester)["gates"]}
    search = gates["span[kind=tool, name=search].latency.p95<=1s"]
    assert search["verdict"] == "pass" and search["n"] == 1 and 0 <= search["value"] < 1
    assert gates["steps.mean<=6"]["value"] == 4.0 and gates["steps.mean<=6"]["verdict"] == "pass"
    assert gates["steps.max<=3"]["verdict"] == "fail"


def test_a_span_gate_without_a_matching_span_is_unmeasured_and_a_bad_filter_is_refused(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT)
    result = pytester.runpytest(*eval_args, "--llmops-gate=span[name=nothing].latency.p95<=1s")
    assert result.ret == 6
    (gate,) = results_of(pytester)["gates"]
    assert gate["verdict"] == "unmeasured" and gate["detail"] == "no span matched span[name=nothing]"
    result = pytester.runpytest(*eval_args, "--llmops-gate=span[type=tool].latency.p95<=1s")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*a span filter is key=value pairs with keys kind, name*"])


def test_the_html_report_draws_each_case_as_a_waterfall(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT)
    pytester.runpytest(*eval_args, "--llmops-html=report.html").assert_outcomes(passed=1)
    page = (pytester.path / "report.html").read_text()
    assert "<table class='waterfall'>" in page
    rows = page.split("<table class='waterfall'>")[1].split("</tbody>")[0].split("<tr>")[2:]
    steps = [(row.split("padding-left:")[1].split("px")[0], row.split("<code>")[1].split("</code>")[0]) for row in rows]
    assert steps == [("4", "test_agent.py::test_agent_uses_its_tools"), ("18", "agent"),
                     ("32", "chat openai/test-model"), ("32", "search"), ("32", "calculator"),
                     ("32", "chat openai/test-model")]


class _Receiver:
    """A real OTLP/HTTP receiver on 127.0.0.1: decodes each POST /v1/traces with opentelemetry-proto."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        received = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                received.append((self.path, body, message))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list:
        return [span for _, _, message in self.requests for rs in message.resource_spans
                for ss in rs.scope_spans for span in ss.spans]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = _Receiver()
    yield running
    running.close()


def _values(span) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def test_traces_are_exported_to_an_otlp_receiver(pytester, eval_args, receiver):
    pytester.makepyfile(test_agent=AGENT)
    result = pytester.runpytest(*eval_args, f"--llmops-otlp={receiver.url}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"traces: 6 spans exported to {receiver.url}/v1/traces"])
    assert [path for path, _, _ in receiver.requests] == ["/v1/traces"]
    spans = receiver.spans()
    (case,) = results_of(pytester)["cases"]
    assert sorted(span.span_id.hex() for span in spans) == sorted(span["span_id"] for span in case["spans"])
    by_name = {span.name: span for span in spans}
    agent = by_name["agent"]
    assert agent.parent_span_id.hex() == case["spans"][0]["span_id"]
    assert _values(by_name["search"])["openinference.span.kind"] == "TOOL"
    llm = next(span for span in spans if span.name == "chat openai/test-model")
    assert _values(llm)["gen_ai.request.model"] == "openai/test-model"
    assert "plan for: weather in Paris" in _values(llm)["llm.input_messages.0.message.content"]


def test_content_off_leaves_no_prompt_or_answer_text_in_exported_spans(pytester, eval_args, receiver):
    pytester.makepyfile(test_agent=AGENT)
    result = pytester.runpytest(*eval_args, f"--llmops-otlp={receiver.url}", "--llmops-otlp-content=off")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["traces: 6 spans exported to * (content off)"])
    (_, body, _), = receiver.requests
    for text in (b"weather in Paris", b"plan for", b"Reply ", b"doc about", b"2+3"):
        assert text not in body
    llm = next(span for span in receiver.spans() if span.name == "chat openai/test-model")
    assert _values(llm)["llm.token_count.prompt"] > 0 and "input.value" not in _values(llm)


def test_a_bad_collector_url_is_a_usage_error(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT)
    result = pytester.runpytest(*eval_args, "--llmops-otlp=localhost:4318")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmops-otlp: expected*got 'localhost:4318'*"])


def test_the_apps_own_opentelemetry_spans_become_children_of_the_current_step(pytester, eval_args):
    pytester.makeconftest('''
from opentelemetry.sdk.trace import TracerProvider
from pytest_llmops.tracing.capture import capture_spans

provider = TracerProvider()
capture_spans(provider)
tracer = provider.get_tracer("my-app")
''')
    pytester.makepyfile(test_app='''
from conftest import tracer
from pytest_llmops import traced

@traced(kind="agent")
def app(llm):
    with tracer.start_as_current_span("fetch", attributes={"openinference.span.kind": "TOOL", "url": "x"}):
        with tracer.start_as_current_span("parse"):
            pass
    return llm.complete_sync("hi")

def test_app(llm):
    app(llm)
''')
    result = pytester.runpytest(*eval_args)
    result.assert_outcomes(passed=1)
    (case,) = results_of(pytester)["cases"]
    assert tree(case["spans"])[1:] == [(1, "agent", "app"), (2, "tool", "fetch"), (3, "chain", "parse"),
                                       (2, "llm", "chat openai/test-model")]
    fetch = next(span for span in case["spans"] if span["name"] == "fetch")
    assert fetch["source"] == "otel" and fetch["attributes"]["url"] == "x"


def test_span_trees_reach_the_controller_under_xdist(pytester, eval_args):
    pytester.makepyfile(test_agent=AGENT)
    result = pytester.runpytest(*eval_args, "-n", "2")
    result.assert_outcomes(passed=1)
    (case,) = results_of(pytester)["cases"]
    assert [kind for _, kind, _ in tree(case["spans"])] == ["case", "agent", "llm", "tool", "tool", "llm"]
