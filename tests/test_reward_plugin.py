"""Reward scores inside real pytest runs (pytester): settings, gates over ``reward.mean``, results records."""

from __future__ import annotations

import json

import pytest

EVAL_TESTS = """
import pytest
from pytest_llmops.assertions import assert_reward, assert_reward_preferred
from pytest_llmops.metrics import reward_score
from pytest_llmops import record_score

QUESTION = "What is the capital of France?"

@pytest.mark.llm_eval
@pytest.mark.parametrize("answer", ["Paris is the capital of France.", "Paris.", "I do not know."])
async def test_reward_of_answer(answer, reward_model):
    record_score(await reward_score(QUESTION, answer, model=reward_model))

@pytest.mark.llm_eval
async def test_polite_answer_is_rewarded(reward_model):
    await assert_reward(QUESTION, "Paris is the capital of France.", model=reward_model, min_score=0.5)

@pytest.mark.llm_eval
async def test_new_answer_beats_the_old_one(reward_model):
    await assert_reward_preferred(QUESTION, "Paris is the capital of France.", "I do not know.", model=reward_model)
"""


def scripted_reward(prompt: str, answer: str) -> float:
    """The reward the test server plays: 0.9 for an answer naming Paris, 0.3 otherwise."""
    return 0.9 if "Paris" in answer else 0.3


@pytest.fixture
def run_args(server):
    server.reward_script(scripted_reward)
    return ["-p", "no:cacheprovider", "--llmops-reward-model=hosted_vllm/reward-model",
            f"--llmops-reward-api-base={server.url}"]


def results_of(pytester):
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def test_gates_over_reward_mean_pass_and_fail(pytester, server, run_args):
    pytester.makepyfile(EVAL_TESTS)

    passing = pytester.runpytest(*run_args, "--llmops-gate", "reward.mean>=0.6", "--llmops-gate", "reward.min>=0.3")
    passing.assert_outcomes(passed=5)
    assert passing.ret == 0
    passing.stdout.fnmatch_lines([
        "model: local/smollm2   judge: none   reward: hosted_vllm/reward-model   cache: new (.llmops/cache.sqlite)",
        "*",
        "gates: 2 passed",
        "*PASS*reward.mean>=0.6*0.75  mean over 4 scores",
    ])

    failing = pytester.runpytest(*run_args, "--llmops-gate", "reward.mean>=0.8")
    assert failing.ret == 6
    failing.stdout.fnmatch_lines(["*FAIL*reward.mean>=0.8*0.75  mean over 4 scores"])
    gates = results_of(pytester)["gates"]
    assert [(g["expression"], g["verdict"]) for g in gates] == [("reward.mean>=0.8", "fail")]


def test_results_keep_reward_scores_and_calls(pytester, server, run_args):
    pytester.makepyfile(EVAL_TESTS)
    pytester.runpytest(*run_args, "--llmops-reward-api=score")

    cases = {case["nodeid"].split("::")[-1]: case for case in results_of(pytester)["cases"]}
    reward = cases["test_reward_of_answer[I do not know.]"]
    assert [(s["name"], s["value"], s["signature"]) for s in reward["scores"]] == [
        ("reward", 0.3, "reward|model:hosted_vllm/reward-model|api:score|label:only")
    ]
    calls = reward["calls"]
    assert [(c["kind"], c["role"], c["params"]["api"]) for c in calls] == [("reward", "reward", "score")]
    preferred = cases["test_new_answer_beats_the_old_one"]["scores"][0]
    assert (preferred["name"], preferred["value"], preferred["verdict"]) == ("reward_pairwise", 1.0, "pass")
    assert set(server.requests_by_path) == {"/score"}


def test_each_reward_call_is_an_evaluator_span_of_the_case(pytester, server, run_args):
    pytester.makepyfile("""
        import pytest
        from pytest_llmops.assertions import assert_reward_preferred

        @pytest.mark.llm_eval
        async def test_new_answer_beats_the_old_one(reward_model):
            await assert_reward_preferred("What is the capital of France?", "Paris is the capital of France.",
                                          "I do not know.", model=reward_model)
    """)
    pytester.runpytest(*run_args)

    [case] = results_of(pytester)["cases"]
    root, *children = case["spans"]
    spans = [s for s in children if s["kind"] == "evaluator"]
    assert [s["name"] for s in spans] == ["reward hosted_vllm/reward-model"] * 2
    assert all(s["parent_id"] == root["span_id"] and s["status"] == "ok" for s in spans)
    scored = sorted(json.loads(s["attributes"]["input.value"])["answer"] for s in spans)
    assert scored == ["I do not know.", "Paris is the capital of France."]
    paris = next(s["attributes"] for s in spans if "Paris" in s["attributes"]["input.value"])
    assert paris["openinference.span.kind"] == "EVALUATOR"
    assert paris["gen_ai.operation.name"] == "reward" and paris["llmops.role"] == "reward"
    assert json.loads(paris["output.value"]) == {"values": [0.9], "label": "LABEL_0"}
    assert (paris["llmops.attempts"], paris["llmops.cache_hit"]) == (1, False)

def test_a_reward_below_the_bar_fails_with_the_score_and_inputs(pytester, server, run_args):
    pytester.makepyfile("""
        import pytest
        from pytest_llmops.assertions import assert_reward

        @pytest.mark.llm_eval
        async def test_vague_answer(reward_model):
            await assert_reward("What is the capital of France?", "I do not know.", model=reward_model, min_score=0.5)
    """)

    result = pytester.runpytest(*run_args)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*reward = 0.3 (needs >= 0.5: fail)*", "*answer*I do not know.*"])


def test_a_reward_server_that_stays_down_ends_the_case_unmeasured(pytester, server, run_args):
    from pytest_llmops.testing import Fault

    server.inject(Fault.server_error(), times=None)
    pytester.makepyfile(EVAL_TESTS)

    result = pytester.runpytest(*run_args, "--llmops-retries=1", "-k", "polite")

    assert result.ret == 1
    result.stdout.fnmatch_lines(["*UNMEASURED*reward: unmeasured - the reward model did not answer*HTTP 500*"])
    case = results_of(pytester)["cases"][0]
    assert case["state"] == "unmeasured"
    assert [c["attempts"] for c in case["calls"]] == [2]
    assert server.requests_by_path == {"/classify": 2}
    [span] = [s for s in case["spans"] if s["kind"] == "evaluator"]
    assert span["status"] == "error" and "ProviderError" in span["error"]
    assert span["attributes"]["llmops.attempts"] == 2


def test_without_a_reward_model_reward_checks_are_unmeasured_naming_the_setting(pytester):
    pytester.makepyfile(EVAL_TESTS)

    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "polite")

    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no reward model is configured: set llmops_reward_model*--llmops-reward-model=<model>*"])


def test_a_marker_points_one_test_at_another_reward_api(pytester, server, run_args):
    pytester.makepyfile("""
        import pytest
        from pytest_llmops.assertions import assert_reward

        @pytest.mark.llm_eval(reward_api="pooling")
        async def test_pooled(reward_model):
            await assert_reward("capital of France?", "Paris.", model=reward_model, min_score=0.5)
    """)

    result = pytester.runpytest(*run_args)

    result.assert_outcomes(passed=1)
    assert server.requests_by_path == {"/pooling": 1}


def test_a_bad_reward_api_is_a_usage_error_before_any_call(pytester, server, run_args):
    pytester.makepyfile(EVAL_TESTS)

    result = pytester.runpytest(*run_args, "--llmops-reward-api=rerank")

    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmops-reward-api*invalid choice: 'rerank'*"])
    assert server.requests == 0


def test_a_dry_run_plans_reward_requests_and_sends_none(pytester, server, run_args):
    pytester.makepyfile(EVAL_TESTS)

    dry = pytester.runpytest(*run_args, "--llmops-dry-run")

    assert server.requests == 0
    dry.assert_outcomes(skipped=5)
    dry.stdout.fnmatch_lines(["dry run: no call was sent. 6 calls planned*"])


def test_reward_comparisons_become_preference_pairs(pytester, server, run_args, tmp_path, capsys):
    from pytest_llmops.cli import main

    pytester.makepyfile("""
        import pytest
        from pytest_llmops.assertions import assert_reward_preferred

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("new, old", [("Paris.", "Lyon."), ("Lyon.", "Paris."), ("Paris!", "Paris.")])
        async def test_new_answer(new, old, reward_model):
            await assert_reward_preferred("What is the capital of France?", new, old, model=reward_model)
    """)
    pytester.runpytest(*run_args, "--llmops-review-sample=0").assert_outcomes(passed=2, failed=1)
    out = tmp_path / "prefs.jsonl"

    code = main(["export", "preferences", str(pytester.path / ".llmops" / "results.json"), "--format", "trl",
                 "--out", str(out)])

    assert code == 0, capsys.readouterr()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # Both decided comparisons give a pair, whichever side won; the tie (0.9 vs 0.9) gives none.
    assert rows == [
        {"prompt": "What is the capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
        {"prompt": "What is the capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
    ]
    assert "dropped 1 pair(s) called a tie (by the judge in both orders, or rewards within the margin)" in capsys.readouterr().out
