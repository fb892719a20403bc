"""The local OpenAI-compatible test server, driven by real HTTP clients.

Every test talks to the server over a socket: urllib/http.client for the
wire-level details, the openai SDK and litellm for what the project's model
layer and users will do.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from pytest_llmops.testing import Fault, LLMTestServer

pytest_plugins = ["pytest_llmops.testing.fixtures"]

CHAT = "/v1/chat/completions"


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def post(server: LLMTestServer, path: str, body: Any, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """POST JSON with urllib; returns (status, lower-cased headers, body) for errors too."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(server.root + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def chat(server: LLMTestServer, text: str, **params: Any) -> dict[str, Any]:
    status, _, body = post(server, CHAT, {"model": "test-model", "messages": user(text), **params})
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def client(llm_server: LLMTestServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm_server.url, api_key="test", max_retries=0)


# -- replies -----------------------------------------------------------------


def test_replies_are_openai_shaped_and_deterministic_in_the_request(llm_server: LLMTestServer) -> None:
    first = chat(llm_server, "What is the capital of France?")
    again = chat(llm_server, "What is the capital of France?")
    other = chat(llm_server, "What is the capital of Spain?")

    assert first["object"] == "chat.completion"
    assert first["model"] == "test-model"
    message = first["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert first["choices"][0]["finish_reason"] == "stop"
    assert message["content"] == again["choices"][0]["message"]["content"]
    assert message["content"] != other["choices"][0]["message"]["content"]
    assert message["content"].endswith("What is the capital of France?")
    # Whitespace tokens: 6 words in, and the reply's own words out.
    assert first["usage"] == {
        "prompt_tokens": 6,
        "completion_tokens": len(message["content"].split()),
        "total_tokens": 6 + len(message["content"].split()),
    }


def test_openai_sdk_reads_a_completion(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="my-model", messages=user("hello there"))

    assert completion.model == "my-model"
    assert completion.choices[0].message.content == chat(llm_server, "hello there")["choices"][0]["message"]["content"]
    assert completion.usage is not None and completion.usage.prompt_tokens == 2


def test_max_tokens_truncates_with_finish_reason_length(llm_server: LLMTestServer) -> None:
    llm_server.script(None, "one two three four five")

    completion = chat(llm_server, "count", max_tokens=2)

    assert completion["choices"][0]["message"]["content"] == "one two"
    assert completion["choices"][0]["finish_reason"] == "length"
    assert completion["usage"]["completion_tokens"] == 2


def test_streaming_sends_several_chunks_then_usage_then_done(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    expected = chat(llm_server, "stream me a reply")["choices"][0]["message"]["content"]

    chunks = list(
        client.chat.completions.create(
            model="test-model",
            messages=user("stream me a reply"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) == len(expected.split()) > 1
    assert "".join(pieces) == expected
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(pieces)


def test_raw_stream_ends_with_done_and_has_no_usage_unless_asked(llm_server: LLMTestServer) -> None:
    status, headers, body = post(llm_server, CHAT, {"model": "m", "messages": user("hi"), "stream": True})

    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = [line[len("data: ") :] for line in body.decode().splitlines() if line]
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(event) for event in events[:-1])


def test_ttft_and_chunk_delay_shape_the_stream(llm_server: LLMTestServer) -> None:
    llm_server.ttft = 0.3
    llm_server.chunk_delay = 0.05
    llm_server.script(None, "a b c d")
    connection = http.client.HTTPConnection("127.0.0.1", llm_server.port, timeout=5)
    body = json.dumps({"model": "m", "messages": user("x"), "stream": True})

    start = time.perf_counter()
    connection.request("POST", CHAT, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    first_line = response.readline()  # blocks until the first event arrives
    first_chunk_at = time.perf_counter() - start
    rest = response.read()
    total = time.perf_counter() - start

    assert first_line.startswith(b"data: {") and rest.endswith(b"data: [DONE]\n\n")
    assert first_chunk_at >= 0.3
    assert total - first_chunk_at >= 3 * 0.05  # three more content chunks, each after a delay


# -- scripts and logprobs ------------------------------------------------------


def test_scripted_dict_reply_makes_a_judge_answer_a_verdict(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    llm_server.script(r"Rate the answer", {"verdict": "yes", "score": 4}, times=1)

    judged = client.chat.completions.create(model="judge", messages=user("Rate the answer: Paris"))
    after = client.chat.completions.create(model="judge", messages=user("Rate the answer: Paris"))
    unrelated = client.chat.completions.create(model="judge", messages=user("Say hi"))

    assert json.loads(judged.choices[0].message.content or "") == {"verdict": "yes", "score": 4}
    assert after.choices[0].message.content.startswith("Reply ")  # the rule was used up
    assert unrelated.choices[0].message.content.startswith("Reply ")


def test_script_rules_go_in_order_and_see_every_message(llm_server: LLMTestServer) -> None:
    llm_server.script(re.compile(r"system rule"), "from the system message")
    llm_server.script(r"capital", lambda body: f"{len(body['messages'])} messages seen")
    llm_server.script(None, "fallback")
    messages = [{"role": "system", "content": "system rule"}, *user("capital?")]

    status, _, body = post(llm_server, CHAT, {"model": "m", "messages": messages})
    assert json.loads(body)["choices"][0]["message"]["content"] == "from the system message"
    assert chat(llm_server, "capital?")["choices"][0]["message"]["content"] == "1 messages seen"
    assert chat(llm_server, "anything")["choices"][0]["message"]["content"] == "fallback"

    llm_server.clear_script()
    assert chat(llm_server, "anything")["choices"][0]["message"]["content"].startswith("Reply ")


def test_a_failing_script_function_is_a_500_naming_the_problem(llm_server: LLMTestServer) -> None:
    llm_server.script(None, lambda body: 42)

    status, _, body = post(llm_server, CHAT, {"model": "m", "messages": user("x")})

    assert status == 500
    assert "return a str or a dict" in json.loads(body)["error"]["message"]
    assert len(llm_server.errors) == 1


def test_scripted_logprobs_give_a_judge_a_score_distribution(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    distribution = {"4": math.log(0.6), "5": math.log(0.25), "3": math.log(0.1), "2": math.log(0.05)}
    llm_server.script(r"score", "4", logprobs=[distribution])

    completion = client.chat.completions.create(
        model="judge", messages=user("score 1-5"), logprobs=True, top_logprobs=3
    )

    content = completion.choices[0].logprobs.content
    assert completion.choices[0].message.content == "4"
    assert [entry.token for entry in content] == ["4"]
    assert content[0].logprob == pytest.approx(math.log(0.6))
    assert [alt.token for alt in content[0].top_logprobs] == ["4", "5", "3"]
    assert content[0].top_logprobs[1].logprob == pytest.approx(math.log(0.25))
    assert content[0].bytes == [ord("4")]


def test_default_logprobs_are_certain_per_token(llm_server: LLMTestServer) -> None:
    completion = chat(llm_server, "two words", logprobs=True, top_logprobs=2)

    content = completion["choices"][0]["logprobs"]["content"]
    assert "".join(entry["token"] for entry in content) == completion["choices"][0]["message"]["content"]
    assert {entry["logprob"] for entry in content} == {0.0}
    assert all(entry["top_logprobs"] == [{k: entry[k] for k in ("token", "logprob", "bytes")}] for entry in content)
    assert chat(llm_server, "two words")["choices"][0]["logprobs"] is None


def test_script_rejects_logprobs_that_do_not_fit_the_reply(llm_server: LLMTestServer) -> None:
    with pytest.raises(ValueError, match="no entry for the reply's token '4'"):
        llm_server.script(None, "4", logprobs=[{"5": -0.1}])
    with pytest.raises(ValueError, match="add up to"):
        llm_server.script(None, "4", logprobs=[{"4": -0.1, "5": -0.2}])
    with pytest.raises(ValueError, match="<= 0"):
        llm_server.script(None, "4", logprobs=[{"4": 0.5}])


# -- faults ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "retry_after"),
    [
        (Fault.rate_limit(retry_after=2), 429, "rate_limit_error", "2"),
        (Fault.rate_limit(retry_after=0.25), 429, "rate_limit_error", "0.25"),
        (Fault.rate_limit(retry_after=None), 429, "rate_limit_error", None),
        (Fault.server_error(), 500, "server_error", None),
        (Fault.unavailable(retry_after=3), 503, "server_error", "3"),
        (Fault.status(401, "Invalid API key"), 401, "authentication_error", None),
        (Fault.status(400, "Bad request"), 400, "invalid_request_error", None),
    ],
)
def test_error_faults_send_status_headers_and_an_openai_error_body(
    llm_server: LLMTestServer, fault: Fault, status: int, error_type: str, retry_after: str | None
) -> None:
    llm_server.inject(fault)

    got_status, headers, body = post(llm_server, CHAT, {"model": "m", "messages": user("x")})

    assert got_status == status
    assert headers.get("retry-after") == retry_after
    error = json.loads(body)["error"]
    assert error["type"] == error_type and error["message"]
    assert chat(llm_server, "x")["object"] == "chat.completion"  # used once, then normal again


def test_openai_sdk_sees_a_rate_limit_with_its_retry_after(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    llm_server.inject(Fault.rate_limit(retry_after=1.5))

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="m", messages=user("x"))

    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "1.5"
    assert llm_server.requests == 1  # max_retries=0: one attempt only


def test_malformed_and_empty_bodies(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.malformed_json())
    llm_server.inject(Fault.empty_body())

    status, headers, body = post(llm_server, CHAT, {"model": "m", "messages": user("x")})
    assert status == 200 and headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)

    status, headers, body = post(llm_server, CHAT, {"model": "m", "messages": user("x")})
    assert status == 200 and headers["content-length"] == "0" and body == b""


def test_dropped_connection_gets_no_response(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    llm_server.inject(Fault.drop_connection(), times=2)
    connection = http.client.HTTPConnection("127.0.0.1", llm_server.port, timeout=5)

    connection.request("POST", CHAT, body=json.dumps({"messages": user("x")}))
    with pytest.raises(http.client.RemoteDisconnected):
        connection.getresponse()
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=user("x"))
    assert llm_server.requests == 2


def raw_chat(server: LLMTestServer, **body: Any) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    payload = json.dumps({"model": "m", "messages": user("x"), **body})
    connection.request("POST", CHAT, body=payload, headers={"Content-Type": "application/json"})
    return connection.getresponse()


def test_a_stream_that_ends_early_is_cleanly_framed_with_no_finish_and_no_done(llm_server: LLMTestServer) -> None:
    llm_server.script(None, "one two three four")
    llm_server.inject(Fault.ends_early(chunks=2))

    body = raw_chat(llm_server, stream=True).read()  # no IncompleteRead: the chunked body ends properly

    events = [json.loads(line[len("data: ") :]) for line in body.decode().splitlines() if line]
    assert [e["choices"][0]["delta"]["content"] for e in events] == ["one", " two"]
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    assert b"[DONE]" not in body
    # The next request is answered whole.
    assert raw_chat(llm_server, stream=True).read().endswith(b"data: [DONE]\n\n")


def test_a_plain_answer_that_ends_early_is_half_a_json_body_with_a_matching_length(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.ends_early())

    response = raw_chat(llm_server)
    body = response.read()

    assert response.status == 200 and int(response.headers["content-length"]) == len(body) > 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_a_connection_dropped_midway_cuts_the_stream_and_the_plain_body(llm_server: LLMTestServer) -> None:
    llm_server.script(None, "one two three four")
    llm_server.inject(Fault.drop_midway(chunks=1), times=2)

    response = raw_chat(llm_server, stream=True)
    first = response.readline()
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    assert json.loads(first[len(b"data: ") :])["choices"][0]["delta"]["content"] == "one"

    response = raw_chat(llm_server)
    with pytest.raises(http.client.IncompleteRead):
        response.read()  # the headers announced the whole body; half of it came
    assert llm_server.errors == []


@pytest.mark.parametrize("chunks", [-1, 1.5, True])
def test_cut_faults_refuse_a_bad_chunk_count(chunks: Any) -> None:
    with pytest.raises(ValueError, match=r"Fault.ends_early\(chunks="):
        Fault.ends_early(chunks=chunks)


def test_hang_is_cut_by_the_client_timeout_and_released_by_stop(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.hang())
    connection = http.client.HTTPConnection("127.0.0.1", llm_server.port, timeout=0.3)

    connection.request("POST", CHAT, body=json.dumps({"messages": user("x")}))
    with pytest.raises(TimeoutError):
        connection.getresponse()
    assert llm_server.in_flight == 1  # the server is still sitting on it

    start = time.perf_counter()
    llm_server.stop()
    assert time.perf_counter() - start < 1.0
    deadline = time.monotonic() + 2
    while llm_server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert llm_server.in_flight == 0


def test_stop_is_prompt_while_a_client_waits_on_a_hang(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.hang())
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(post(llm_server, CHAT, {"messages": user("x")}, timeout=10)[0])
        except Exception as exc:  # the connection is closed under it
            outcome.append(exc)

    waiter = threading.Thread(target=call)
    waiter.start()
    while llm_server.in_flight == 0:
        time.sleep(0.01)

    start = time.perf_counter()
    llm_server.stop()
    waiter.join(timeout=2)

    assert time.perf_counter() - start < 1.0
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], (ConnectionError, http.client.HTTPException, OSError))


def test_timed_hang_answers_normally_afterwards(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.hang(seconds=0.2))

    start = time.perf_counter()
    completion = chat(llm_server, "slow")
    assert time.perf_counter() - start >= 0.2
    assert completion["choices"][0]["message"]["content"].endswith("slow")


def test_faults_go_in_order_and_respect_match(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.status(404, "no such model"), match=r"judge")
    llm_server.inject(Fault.rate_limit(), times=2)
    llm_server.inject(Fault.server_error())
    assert llm_server.pending_faults == 4

    statuses = [post(llm_server, CHAT, {"messages": user(text)})[0] for text in ("a", "b", "judge me", "c", "d")]

    assert statuses == [429, 429, 404, 500, 200]
    assert llm_server.pending_faults == 0


def test_faults_apply_to_embeddings(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.unavailable(retry_after=1))

    status, headers, _ = post(llm_server, "/v1/embeddings", {"model": "e", "input": "x"})

    assert (status, headers["retry-after"]) == (503, "1")
    assert post(llm_server, "/v1/embeddings", {"model": "e", "input": "x"})[0] == 200


# -- embeddings and models -------------------------------------------------------


def test_embeddings_are_deterministic_unit_vectors(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    texts = ["the cat sat on the mat", "the cat sat on a mat", "quarterly revenue grew"]
    status, _, body = post(llm_server, "/v1/embeddings", {"model": "e", "input": texts})
    vectors = [item["embedding"] for item in json.loads(body)["data"]]
    # The SDK asks for base64 float32 by default: the same vectors must come back.
    via_sdk = client.embeddings.create(model="e", input=texts)

    assert status == 200 and len(vectors) == 3
    for vector, sdk_item in zip(vectors, via_sdk.data):
        assert len(vector) == llm_server.embedding_dim
        assert math.sqrt(sum(v * v for v in vector)) == pytest.approx(1.0)
        assert sdk_item.embedding == pytest.approx(vector, abs=1e-6)
    cosine = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731 - unit vectors
    assert cosine(vectors[0], vectors[1]) > 0.5 > cosine(vectors[0], vectors[2])
    assert via_sdk.usage.prompt_tokens == 6 + 6 + 3
    single = json.loads(post(llm_server, "/v1/embeddings", {"model": "e", "input": texts[0]})[2])
    assert single["data"][0]["embedding"] == vectors[0]


def test_embedding_size_follows_the_server_and_the_request() -> None:
    with LLMTestServer(embedding_dim=5) as server:
        default = json.loads(post(server, "/v1/embeddings", {"input": "x"})[2])["data"][0]["embedding"]
        asked = json.loads(post(server, "/v1/embeddings", {"input": "x", "dimensions": 3})[2])
        packed = json.loads(post(server, "/v1/embeddings", {"input": "x", "encoding_format": "base64"})[2])

    assert len(default) == 5
    assert len(asked["data"][0]["embedding"]) == 3
    unpacked = struct.unpack("<5f", base64.b64decode(packed["data"][0]["embedding"]))
    assert unpacked == pytest.approx(default, abs=1e-6)


def test_models_are_listed(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["test-model"]


# -- bad requests ----------------------------------------------------------------


def test_unknown_path_invalid_json_and_bad_fields_are_json_errors(llm_server: LLMTestServer) -> None:
    status, _, body = post(llm_server, "/v2/chat", {"messages": user("x")})
    assert status == 404 and "/v1/chat/completions" in json.loads(body)["error"]["message"]

    status, _, body = post(llm_server, CHAT, b"{not json")
    assert status == 400 and "not valid JSON" in json.loads(body)["error"]["message"]

    status, _, body = post(llm_server, CHAT, {"model": "m", "messages": []})
    assert status == 400 and "'messages'" in json.loads(body)["error"]["message"]

    status, _, body = post(llm_server, "/v1/embeddings", {"input": [1, 2, 3]})
    assert status == 400 and "'input'" in json.loads(body)["error"]["message"]
    assert llm_server.requests == 4 and llm_server.errors == []


def test_bad_arguments_are_rejected_with_the_fix() -> None:
    with pytest.raises(ValueError, match="between 400 and 599"):
        Fault.status(200)
    with pytest.raises(ValueError, match="latency"):
        LLMTestServer(latency=-1)
    with pytest.raises(TypeError, match="expected a Fault"):
        LLMTestServer().inject("429")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="call start"):
        LLMTestServer().url


# -- counters, concurrency, connections -------------------------------------------


def test_counters_see_concurrent_requests(llm_server: LLMTestServer) -> None:
    llm_server.latency = 0.2
    threads = [threading.Thread(target=chat, args=(llm_server, f"question {i}")) for i in range(8)]

    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start

    assert llm_server.max_in_flight == 8
    assert llm_server.in_flight == 0
    assert llm_server.requests == 8
    assert llm_server.requests_by_path == {CHAT: 8}
    assert 0.2 <= elapsed < 8 * 0.2  # served side by side, not one after another
    llm_server.reset_counters()
    assert (llm_server.requests, llm_server.max_in_flight, llm_server.received) == (0, 0, [])


def test_received_requests_keep_body_path_and_headers(llm_server: LLMTestServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="m", messages=user("hi"), temperature=0.3)

    (request,) = llm_server.received
    assert (request.method, request.path) == ("POST", CHAT)
    assert request.headers["authorization"] == "Bearer test"
    assert request.body["temperature"] == 0.3 and request.body["messages"] == user("hi")


def test_keep_alive_reuses_one_connection_quickly(llm_server: LLMTestServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", llm_server.port, timeout=5)
    body = json.dumps({"messages": user("x")})

    durations = []
    for _ in range(20):
        start = time.perf_counter()
        connection.request("POST", CHAT, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.version == 11 and response.status == 200
        response.read()
        durations.append(time.perf_counter() - start)

    assert llm_server.connections == 1 and llm_server.requests == 20
    # Without TCP_NODELAY every response waits ~40 ms for the client's delayed ACK.
    assert min(durations) < 0.02


def test_latency_can_change_while_running(llm_server: LLMTestServer) -> None:
    llm_server.latency = 0.25
    start = time.perf_counter()
    chat(llm_server, "slow")
    slow = time.perf_counter() - start

    llm_server.latency = 0
    start = time.perf_counter()
    chat(llm_server, "fast")
    fast = time.perf_counter() - start

    assert slow >= 0.25 > fast


def test_server_restarts_and_serves_on_loopback() -> None:
    server = LLMTestServer()
    with server:
        first = server.url
        assert chat(server, "x")["object"] == "chat.completion"
    assert not server.running
    with pytest.raises(ConnectionError):
        socket.create_connection(("127.0.0.1", int(first.rsplit(":", 1)[1].split("/")[0])), timeout=1).close()
    with server:
        assert server.url.startswith("http://127.0.0.1:") and chat(server, "x")["object"] == "chat.completion"


# -- litellm --------------------------------------------------------------------


def test_litellm_openai_models_use_the_server(llm_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Quiet and offline before the import (FACTS.md).
    monkeypatch.setenv("LITELLM_OFFLINE_MODE", "true")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    monkeypatch.setenv("LITELLM_LOG", "ERROR")
    litellm = pytest.importorskip("litellm")
    litellm.suppress_debug_info = True
    llm_server.script(r"Is Paris", {"verdict": "yes"})
    llm_server.inject(Fault.rate_limit(retry_after=1), match="second")
    base = {"model": "openai/test-model", "api_base": llm_server.url, "api_key": "k", "max_retries": 0}

    response = litellm.completion(messages=user("Is Paris in France?"), **base)
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(messages=user("second call"), **base)

    assert json.loads(response.choices[0].message.content) == {"verdict": "yes"}
    assert response.usage.prompt_tokens == 4
    assert llm_server.requests_by_path == {CHAT: 2}
    assert llm_server.received[0].headers["authorization"] == "Bearer k"
