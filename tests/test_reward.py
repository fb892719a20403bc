"""Reward-model scores against the local test server playing a vLLM reward server.

The server answers ``/classify``, ``/score`` and ``/pooling`` in vLLM's shapes with
a reward scripted by each test (a function of the prompt and the answer), so
every path (scores read back, label choice, cache replay, a malformed answer,
a server error) runs over real sockets through the real model client.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from pytest_llmops.metrics import reward_compare, reward_score
from pytest_llmops.models.backend import ModelConfigError
from pytest_llmops.models.client import LLMClient
from pytest_llmops.models.openai_http import reward_root
from pytest_llmops.testing import Fault
from pytest_llmops.verdict import Verdict

PROMPT = "What is the capital of France?"
GOOD = "The capital of France is Paris."
BAD = "I like bananas."


def politeness(prompt: str, answer: str) -> float:
    """A scripted reward: 0.9 for an answer that names Paris, 0.2 otherwise."""
    return 0.9 if "Paris" in answer else 0.2


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def reward_client(make_client):
    def make(api: str = "classify", **kwargs):
        client = make_client(model="hosted_vllm/reward-model", role="reward", **kwargs)
        return LLMClient(replace(client.config, reward_api=api), client.runtime)

    return make


@pytest.mark.parametrize("api", ["classify", "score", "pooling"])
def test_each_vllm_reward_api_is_read_back_as_a_score(server, reward_client, api):
    server.reward_script(politeness)
    client = reward_client(api)

    good = run(reward_score(PROMPT, GOOD, model=client, min_score=0.5))
    bad = run(reward_score(PROMPT, BAD, model=client, min_score=0.5))

    assert (good.value, good.verdict) == (0.9, Verdict.PASS)
    assert (bad.value, bad.verdict) == (0.2, Verdict.FAIL)
    assert good.signature == f"reward|model:hosted_vllm/reward-model|api:{api}|label:only"
    # vLLM serves these routes at the root, beside /v1 (the api_base ends in /v1).
    assert server.requests_by_path == {f"/{api}": 2}


def test_requests_have_the_shapes_vllm_documents(server, reward_client):
    for api in ("classify", "score", "pooling"):
        run(reward_client(api).reward(PROMPT, GOOD))
    bodies = {r.path: r.body for r in server.received}

    conversation = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": GOOD}]
    assert bodies["/classify"] == {"model": "reward-model", "messages": conversation}
    assert bodies["/pooling"] == {"model": "reward-model", "messages": conversation}
    assert bodies["/score"] == {"model": "reward-model", "text_1": PROMPT, "text_2": GOOD}


def test_the_call_is_recorded_like_any_other_provider_call(server, reward_client):
    result = run(reward_client().reward(PROMPT, GOOD))

    call = result.call
    assert (call.kind, call.role, call.model, call.params["api"]) == ("reward", "reward", "hosted_vllm/reward-model", "classify")
    assert call.ok and call.latency_s is not None and call.latency_s > 0
    assert call.tokens_in == 12 and call.cache_hit is False  # the server counts prompt + answer words


def test_several_class_probabilities_need_a_label_index(server, reward_client):
    server.reward_script(lambda prompt, answer: [0.3, 0.7])
    client = reward_client("classify")

    unnamed = run(reward_score(PROMPT, GOOD, model=client))
    named = run(reward_score(PROMPT, GOOD, model=client, label=1, min_score=0.5))
    out_of_range = run(reward_score(PROMPT, GOOD, model=client, label=2))

    assert unnamed.verdict is Verdict.UNMEASURED
    assert "gave 2 values [0.3, 0.7] (one per class); pass label=INDEX" in unnamed.reason
    assert (named.value, named.verdict, named.details["label"]) == (0.7, Verdict.PASS, "LABEL_1")
    assert out_of_range.verdict is Verdict.UNMEASURED and "label=2" in out_of_range.reason


def test_token_rows_from_pooling_keep_the_last_tokens_value(server, reward_client):
    server.reward_script(lambda prompt, answer: {"object": "list", "data": [{"index": 0, "data": [[0.1], [0.4], [0.8]]}]})

    score = run(reward_score(PROMPT, GOOD, model=reward_client("pooling")))

    assert score.value == 0.8


def test_cache_replay_sends_no_new_request(server, reward_client, tmp_path):
    server.reward_script(politeness)
    cache = tmp_path / "rewards.sqlite"
    first = run(reward_client(cache_path=cache).reward(PROMPT, GOOD))
    assert server.requests == 1

    replayed = run(reward_client(cache_path=cache, record_mode="none").reward(PROMPT, GOOD))

    assert server.requests == 1
    assert replayed.values == first.values == (0.9,)
    assert replayed.call.cache_hit is True and replayed.call.kind == "reward"


def test_another_api_is_another_cache_entry(server, reward_client, tmp_path):
    cache = tmp_path / "rewards.sqlite"
    run(reward_client("classify", cache_path=cache).reward(PROMPT, GOOD))
    run(reward_client("score", cache_path=cache).reward(PROMPT, GOOD))

    assert server.requests_by_path == {"/classify": 1, "/score": 1}


@pytest.mark.parametrize(
    "answer, problem",
    [
        ({"object": "list", "data": []}, "no 'data' list of results"),
        ({"data": [{"index": 0, "probs": float("nan")}]}, "'probs' holds nan, not a finite number"),
        ({"data": [{"index": 0, "probs": ["high"]}]}, "'probs' holds 'high', not a finite number"),
        ({"data": [{"index": 0, "label": "x"}]}, "'probs' is null, expected a non-empty list of numbers"),
    ],
)
def test_a_malformed_answer_ends_the_score_unmeasured_without_a_retry(server, reward_client, answer, problem):
    server.reward_script(lambda prompt, text: answer)
    client = reward_client("classify")

    score = run(reward_score(PROMPT, GOOD, model=client, min_score=0.5))

    assert score.verdict is Verdict.UNMEASURED and score.value is None
    assert problem in score.reason
    assert score.reason.startswith("the reward model did not answer: hosted_vllm/reward-model: the /classify answer is malformed")
    assert server.requests == 1  # the same server would say the same again


def test_a_body_that_is_not_json_is_retried_then_unmeasured(server, reward_client):
    server.inject(Fault.malformed_json(), times=None)

    score = run(reward_score(PROMPT, GOOD, model=reward_client(retries=2)))

    assert score.verdict is Verdict.UNMEASURED and "the answer is not JSON" in score.reason
    assert server.requests == 3


def test_a_server_error_is_retried_then_unmeasured_with_every_attempt_logged(server, reward_client):
    server.inject(Fault.server_error(), times=None)
    client = reward_client(retries=2)

    score = run(reward_score(PROMPT, GOOD, model=client, min_score=0.5))

    assert score.verdict is Verdict.UNMEASURED
    assert "InternalServerError: HTTP 500" in score.reason
    assert server.requests_by_path == {"/classify": 3}
    failed = client.runtime.calls[-1]
    assert (failed.kind, failed.attempts, failed.error_type) == ("reward", 3, "InternalServerError")
    assert [a["status"] for a in failed.attempt_log] == [500, 500, 500]


def test_a_server_error_once_is_retried_and_the_reward_read(server, reward_client):
    server.reward_script(politeness)
    server.inject(Fault.server_error(), times=1)

    result = run(reward_client(retries=2).reward(PROMPT, GOOD))

    assert result.values == (0.9,) and result.call.attempts == 2
    assert [a.get("status") for a in result.call.attempt_log] == [500, None]


def test_pairwise_comparison_by_reward(server, reward_client):
    server.reward_script(lambda prompt, answer: {"Paris.": 0.9, "Lyon.": 0.85, "Bananas.": 0.1}[answer])
    client = reward_client("score")

    a_wins = run(reward_compare(PROMPT, "Paris.", "Bananas.", model=client))
    b_wins = run(reward_compare(PROMPT, "Bananas.", "Paris.", model=client))
    tie = run(reward_compare(PROMPT, "Paris.", "Lyon.", model=client, margin=0.1, threshold=1.0))

    assert (a_wins.value, a_wins.verdict, a_wins.details["winner"]) == (1.0, Verdict.PASS, "a")
    assert a_wins.reason == "answer A has the higher reward: 0.9 vs 0.1"
    assert (b_wins.value, b_wins.verdict) == (0.0, Verdict.FAIL)
    assert (tie.value, tie.verdict, tie.details["winner"]) == (0.5, Verdict.FAIL, "tie")
    assert tie.details["difference"] == pytest.approx(0.05)
    assert server.requests_by_path == {"/score": 3}  # three distinct answers, each scored once: the rest from the cache


def test_pairwise_is_unmeasured_when_one_answer_gets_no_reward(server, reward_client):
    server.reward_script(lambda prompt, answer: 0.9 if answer == "Paris." else {"data": []})

    score = run(reward_compare(PROMPT, "Paris.", "Bananas.", model=reward_client()))

    assert score.verdict is Verdict.UNMEASURED
    assert score.reason.startswith("answer B: the reward model did not answer")
    assert score.details["reward_a"] == 0.9 and score.details["reward_b"] is None


def test_a_model_litellm_would_serve_is_a_configuration_error_naming_the_alternative(make_client):
    client = make_client(model="anthropic/claude-3-5-haiku-latest", role="reward")

    with pytest.raises(ModelConfigError, match=r"give the reward model as hosted_vllm/<name> .*--llmops-reward-api-base"):
        run(client.reward(PROMPT, GOOD))
    assert client.runtime.calls[-1].error_type == "RewardUnsupported"


@pytest.mark.parametrize(
    "api_base, root",
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://gw.example/rm/v1?api-version=1", "https://gw.example/rm?api-version=1"),
        ("https://u:p@gw.example/v1", "https://u:p@gw.example"),
    ],
)
def test_reward_routes_go_to_the_server_root(api_base, root):
    assert reward_root(api_base) == root


def test_identical_reward_requests_in_flight_are_sent_once(server, reward_client):
    server.reward_script(politeness)
    server.latency = 0.2
    client = reward_client()

    async def both():
        return await asyncio.gather(client.reward(PROMPT, GOOD), client.reward(PROMPT, GOOD))

    first, second = run(both())

    assert server.requests == 1
    assert first.values == second.values == (0.9,)
    assert sorted(bool(r.call.extra.get("coalesced")) for r in (first, second)) == [False, True]


def test_the_key_goes_out_as_a_header_and_into_no_record(server, reward_client, tmp_path, api_key):
    cache = tmp_path / "rewards.sqlite"
    result = run(reward_client(cache_path=cache).reward(PROMPT, GOOD))

    assert server.received[-1].headers["authorization"] == f"Bearer {api_key}"
    assert api_key not in json.dumps(result.call.to_dict())
    assert api_key.encode() not in cache.read_bytes()


def test_the_test_server_refuses_a_reward_request_it_cannot_read(server):
    request = urllib.request.Request(
        server.root + "/score", data=json.dumps({"text_1": PROMPT, "text_2": [GOOD, BAD]}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)

    assert refused.value.code == 400
    assert "'text_1' and 'text_2' must be strings" in json.loads(refused.value.read())["error"]["message"]
