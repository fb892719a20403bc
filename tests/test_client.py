"""The model client against a real local OpenAI-compatible server: records, cache, retries, faults."""

from __future__ import annotations

import time

import pytest

from pytest_llmops.case import CaseRecord, case_scope
from pytest_llmops.models.backend import ProviderError, ProviderTimeout
from pytest_llmops.models.cache import CacheMissError
from pytest_llmops.testing import Fault



def test_a_call_returns_text_with_its_record(make_client, server):
    client = make_client()
    answer = client.complete_sync("What is the capital of France?", temperature=0.0, max_tokens=20)

    assert isinstance(answer, str) and answer.startswith("Reply")
    call = answer.call
    assert call.model == "openai/test-model"
    assert call.api_base == server.url
    assert call.params == {"temperature": 0.0, "max_tokens": 20}
    assert call.tokens_in > 0 and call.tokens_out > 0
    assert call.latency_s is not None and call.latency_s > 0
    assert call.attempts == 1 and not call.cache_hit and call.error is None
    assert len(call.prompt_hash) == 64
    # The test server's model has no price: unknown, not zero.
    assert call.cost_usd is None and not call.cost_known
    assert client.runtime.calls == [call]


def test_a_known_model_gets_its_price_from_litellm(make_client):
    answer = make_client(model="openai/gpt-4o-mini").complete_sync("price me")
    assert answer.call.cost_usd is not None and answer.call.cost_usd > 0


def test_the_api_key_reaches_the_provider_but_no_record_or_cache(make_client, server, tmp_path, api_key):
    client = make_client(cache_path=tmp_path / "c.sqlite")
    answer = client.complete_sync("secret?")
    assert server.received[-1].headers.get("authorization") == f"Bearer {api_key}"
    assert api_key not in repr(answer.call.to_dict())
    client.runtime.close()
    for file in tmp_path.glob("c.sqlite*"):
        assert api_key.encode() not in file.read_bytes()


def test_calls_attach_to_the_running_case(make_client):
    client = make_client()
    record = CaseRecord("tests/x.py::test_case")
    with case_scope(record):
        answer = client.complete_sync("hi")
    assert record.calls == [answer.call]
    assert answer.call.nodeid == "tests/x.py::test_case"


def test_a_second_identical_call_is_replayed_from_the_cache(make_client, server):
    client = make_client()
    first = client.complete_sync("cache me", temperature=0)
    second = client.complete_sync("cache me", temperature=0)

    assert second == first
    assert server.requests == 1
    assert second.call.cache_hit and second.call.attempts == 0
    # Replays keep the timings and usage recorded when the answer was obtained.
    assert second.call.latency_s == first.call.latency_s
    assert second.call.tokens_out == first.call.tokens_out
    assert second.call.extra["replayed"] is True


def test_a_changed_parameter_misses_the_cache(make_client, server):
    client = make_client()
    client.complete_sync("cache me", temperature=0)
    client.complete_sync("cache me", temperature=0.7)
    assert server.requests == 2


def test_record_mode_none_refuses_a_miss_and_names_the_case(make_client, server, tmp_path):
    path = tmp_path / "shared.sqlite"
    make_client(cache_path=path).complete_sync("recorded")
    replay = make_client(cache_path=path, record_mode="none")

    assert replay.complete_sync("recorded").call.cache_hit
    with case_scope(CaseRecord("tests/test_qa.py::test_new_case")):
        with pytest.raises(CacheMissError) as caught:
            replay.complete_sync("never recorded")
    message = str(caught.value)
    assert "tests/test_qa.py::test_new_case" in message and "--llmops-record-mode=new" in message
    assert server.requests == 1


def test_record_mode_all_re_records(make_client, server, tmp_path):
    path = tmp_path / "c.sqlite"
    make_client(cache_path=path).complete_sync("again")
    again = make_client(cache_path=path, record_mode="all").complete_sync("again")
    assert not again.call.cache_hit
    assert server.requests == 2


def test_record_mode_off_never_touches_the_cache(make_client, server):
    client = make_client(record_mode="off")
    client.complete_sync("x")
    client.complete_sync("x")
    assert server.requests == 2


def test_a_rate_limit_is_retried_after_the_time_the_provider_asked_for(make_client, server):
    server.inject(Fault.rate_limit(retry_after=0.3))
    answer = make_client().complete_sync("busy?")

    call = answer.call
    assert call.attempts == 2 and call.error is None
    assert call.backoff_s == pytest.approx(0.3, abs=0.01)
    # Backoff is kept out of the latency that budgets see.
    assert call.latency_s < 0.3
    assert server.requests == 2


@pytest.mark.parametrize(
    "fault",
    [Fault.server_error(), Fault.unavailable(), Fault.malformed_json(), Fault.empty_body(), Fault.drop_connection()],
    ids=["500", "503", "malformed-json", "empty-body", "dropped-connection"],
)
def test_transient_faults_end_as_a_retried_success(make_client, server, fault):
    server.inject(fault)
    answer = make_client().complete_sync("flaky")
    assert answer.startswith("Reply")
    assert answer.call.attempts == 2


def test_a_hanging_attempt_times_out_and_the_retry_succeeds(make_client, server):
    server.inject(Fault.hang())
    started = time.monotonic()
    answer = make_client(timeout_s=0.5).complete_sync("slow")
    assert answer.call.attempts == 2
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried_and_end_unmeasured(make_client, server, status):
    server.inject(Fault.status(status, "no"))
    client = make_client()
    with pytest.raises(ProviderError) as caught:
        client.complete_sync("bad request")
    error = caught.value
    assert error.status == status and not error.retryable
    assert server.requests == 1
    # The failed call is recorded, with its error, and never cached.
    assert error.call.error and error.call.attempts == 1
    assert client.runtime.calls == [error.call]
    assert client.runtime.cache.stats()["entries"] == 0


def test_retries_give_up_after_the_configured_attempts(make_client, server):
    server.inject(Fault.server_error(), times=10)
    with pytest.raises(ProviderError) as caught:
        make_client(retries=2).complete_sync("down")
    assert caught.value.call.attempts == 3
    assert server.requests == 3


def test_nothing_hangs_past_the_deadline(make_client, server):
    server.inject(Fault.hang(), times=10)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        make_client(timeout_s=30, deadline_s=1.0).complete_sync("stuck")
    assert time.monotonic() - started < 3
    assert "deadline" in str(caught.value)


async def _collect(client, prompt):
    return [piece async for piece in client.stream(prompt)]


def test_streaming_measures_time_to_first_token(make_client, server):
    client = make_client(record_mode="off")
    # litellm loads its streaming code on the first streamed call; measure a later one.
    client.complete_sync("warm up", stream=True)
    server.ttft = 0.2
    server.chunk_delay = 0.01
    answer = client.complete_sync("stream this please", stream=True)
    assert answer.call.ttft_s == pytest.approx(0.2, abs=0.15)
    assert answer.call.latency_s >= answer.call.ttft_s


def test_stream_yields_pieces_that_join_to_the_answer(make_client, server):
    client = make_client()
    pieces = client.runtime.run(_collect(client, "tell me a story"))
    assert len(pieces) > 1
    plain = make_client(record_mode="off").complete_sync("tell me a story")
    assert "".join(pieces) == plain
    assert client.runtime.calls[-1].ttft_s is not None


def test_embeddings_are_vectors_in_order_and_cached(make_client, server):
    client = make_client(model="openai/text-embedding-3-small")
    vectors = client.embed_sync(["alpha", "beta"])
    assert len(vectors) == 2 and len(vectors[0]) == server.embedding_dim
    assert vectors[0] != vectors[1]
    assert client.embed_sync(["alpha", "beta"]) == vectors
    assert server.requests == 1
    assert client.runtime.calls[-1].kind == "embedding" and client.runtime.calls[-1].cache_hit


def test_sync_calls_inside_a_running_loop_are_refused_with_the_fix(make_client):
    client = make_client()

    async def misuse():
        client.complete_sync("x")

    import asyncio

    with pytest.raises(RuntimeError, match="await llm.complete"):
        asyncio.run(misuse())


def test_prompts_can_be_message_lists(make_client, server):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    make_client().complete_sync(messages)
    assert server.received[-1].body["messages"] == messages


def test_a_bad_prompt_type_is_a_clear_error(make_client):
    with pytest.raises(TypeError, match="a prompt must be"):
        make_client().complete_sync(42)


def test_latency_excludes_waiting_for_a_concurrency_slot(make_client, server, tmp_path):
    import asyncio

    from pytest_llmops.models.client import ModelRuntime

    server.latency = 0.2
    client = make_client(runtime=ModelRuntime(concurrency=1))

    async def three():
        return await asyncio.gather(*(client.complete(f"queued {i}") for i in range(3)))

    answers = client.runtime.run(three())
    # One in flight at a time: the third waited ~0.4 s for its slot, yet each latency is one request's.
    assert server.max_in_flight == 1
    assert all(0.2 <= a.call.latency_s < 0.38 for a in answers), [a.call.latency_s for a in answers]


def test_identical_requests_in_flight_are_sent_once(make_client, server):
    import asyncio

    server.latency = 0.3
    client = make_client(record_mode="off")

    async def five_same_and_one_other():
        return await asyncio.gather(*(client.complete("same question") for _ in range(5)), client.complete("other"))

    *same, other = client.runtime.run(five_same_and_one_other())
    assert server.requests == 2
    assert len(set(same)) == 1 and other != same[0]
    leaders = [a.call for a in same if not a.call.extra.get("coalesced")]
    followers = [a.call for a in same if a.call.extra.get("coalesced")]
    assert len(leaders) == 1 and len(followers) == 4
    # Followers sent nothing and cost nothing, but waited as long and got the same tokens.
    assert all(f.attempts == 0 and f.tokens_out == leaders[0].tokens_out for f in followers)


def test_a_failed_request_fails_its_followers_too(make_client, server):
    import asyncio

    server.latency = 0.2
    server.inject(Fault.status(400, "bad"))
    client = make_client(record_mode="off")

    async def three_same():
        return await asyncio.gather(*(client.complete("doomed") for _ in range(3)), return_exceptions=True)

    results = client.runtime.run(three_same())
    assert server.requests == 1
    assert all(isinstance(r, ProviderError) for r in results)
    assert len(client.runtime.calls) == 3 and all(c.error for c in client.runtime.calls)
