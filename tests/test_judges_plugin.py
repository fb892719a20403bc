"""Judge-backed assertions inside real pytest runs (pytester), with the judge set on the command line."""

from __future__ import annotations

import json
import re

import pytest

EVAL_TESTS = """
import pytest
from pytest_llmops.assertions import assert_faithful

CONTEXT = "The Eiffel Tower is in Paris. It was completed in 1889."

@pytest.mark.llm_eval
async def test_grounded(judge):
    await assert_faithful("The Eiffel Tower is in Paris.", context=CONTEXT, judge=judge)

@pytest.mark.llm_eval
async def test_hallucinated(judge):
    await assert_faithful("The Eiffel Tower is painted gold.", context=CONTEXT, judge=judge)
"""


def script_judge(server):
    """The judge: one claim per response; supported when the context mentions its last word."""

    def claims(body):
        response = re.search(
            r"<response>\n(.*?)\n</response>",
            body["messages"][-1]["content"],
            re.DOTALL,
        ).group(1)
        return {"claims": [response]}

    def verify(body):
        text = body["messages"][-1]["content"]
        claim = re.search(r"<claims>\n1\. (.*?)\n", text).group(1)
        supported = "Paris" in claim
        return {
            "verdicts": [
                {
                    "claim": claim,
                    "supported": supported,
                    "reason": "checked against the context",
                }
            ],
            "all_supported": supported,
        }

    server.script("List every claim made in the text", claims)
    server.script("Claims to check", verify)


@pytest.fixture
def run_args(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    return [
        "-p",
        "no:cacheprovider",
        "--llmops-model=openai/model-under-test",
        f"--llmops-api-base={server.url}",
    ]


def test_judged_assertions_pass_and_fail_with_a_judge(pytester, server, run_args):
    script_judge(server)
    pytester.makepyfile(EVAL_TESTS)
    result = pytester.runpytest(*run_args, "--llmops-judge", "openai/x", "--llmops-judge-api-base", server.url)

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*faithfulness = 0 (needs >= 1: fail) - 0 of 1 claims supported by the context; "
                "unsupported: 'The Eiffel Tower is painted gold. (checked against the context)'*"
            )
        ]
    )
    cases = {
        c["nodeid"].split("::")[1]: c
        for c in json.loads((pytester.path / ".llmops" / "results.json").read_text())["cases"]
    }
    score = cases["test_grounded"]["scores"][0]
    assert score["verdict"] == "pass" and "judge:openai/x|template:claims@1#" in score["signature"]
    assert score["details"]["judge_model"] == "openai/x"
    assert all(call["role"] == "judge" for call in cases["test_grounded"]["calls"])
    assert server.requests_by_path["/v1/chat/completions"] == 4


def test_judged_assertions_end_unmeasured_without_a_judge(pytester, server, run_args):
    pytester.makepyfile(EVAL_TESTS)
    result = pytester.runpytest(*run_args)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "UNMEASURED *test_grounded - faithfulness: unmeasured - no judge model is configured*",
            "*2 unmeasured in*",
        ]
    )
    assert server.requests == 0


def test_judge_calibration_fixture_refuses_an_uncalibrated_judge(pytester, server, run_args):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        async def test_needs_calibration(judge, judge_calibration):
            judge_calibration.require("faithfulness", min_kappa=0.6)
        """
    )
    result = pytester.runpytest(*run_args, "--llmops-judge", "openai/x", "--llmops-judge-api-base", server.url)
    result.stdout.fnmatch_lines(
        ["UNMEASURED *test_needs_calibration - judge openai/x has no calibration for faithfulness*"]
    )


def test_judge_calibration_fixture_calibrates_then_accepts_the_judge(pytester, server, run_args):
    def rubric_judge(body):
        passed = "right" in body["messages"][-1]["content"].split("<response>")[1]
        return {"reasoning": "checked", "score": 5 if passed else 1, "verdict": "pass" if passed else "fail"}

    server.script("Score the response from", rubric_judge)
    labels = [("right", "pass"), ("wrong", "fail"), ("right too", "pass"), ("wrong too", "pass")]
    pytester.makefile(
        ".jsonl", labels="\n".join(json.dumps({"input": "q", "output": o, "label": lab}) for o, lab in labels)
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        async def test_calibrate_then_require(judge, judge_calibration):
            report = await judge_calibration.run("labels.jsonl", metric="rubric", criteria="Correct.")
            assert (report.n_items, report.accuracy, report.repeat_agreement) == (4, 0.75, 1.0)
            judge_calibration.require("rubric", criteria="Correct.", min_kappa=0.4)
            judge_calibration.require("rubric", criteria="Correct.", min_kappa=0.9)
        """
    )
    result = pytester.runpytest(*run_args, "--llmops-judge", "openai/x", "--llmops-judge-api-base", server.url)
    # kappa = (0.75 - 0.5) / (1 - 0.5) = 0.5: accepted at 0.4, refused at 0.9.
    result.stdout.fnmatch_lines(
        ["UNMEASURED *test_calibrate_then_require - judge openai/x is not calibrated well enough*"]
    )
    assert len(list((pytester.path / ".llmops" / "calibration").glob("*.json"))) == 1
