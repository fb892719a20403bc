"""``llm_eval(repeat=N, min_pass_rate=p)``: a stochastic case passes on its rate, not on luck."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def results_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def score_of(pytester: pytest.Pytester, test_name: str) -> dict:
    case = next(c for c in results_of(pytester)["cases"] if c["nodeid"].endswith(test_name))
    return next(s for s in case["scores"] if s["name"] == "repeat_pass_rate")


def test_a_repeated_case_passes_on_its_rate_and_records_it_with_an_interval(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_llmops.case import current_sample

        @pytest.mark.llm_eval(repeat=5, min_pass_rate=0.6)
        def test_flaky_but_good_enough():
            assert current_sample() not in (1, 3), "this sample was off"

        @pytest.mark.llm_eval(repeat=5, min_pass_rate=0.8)
        def test_too_flaky():
            assert current_sample() not in (1, 3), "this sample was off"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "E   AssertionError: pass rate 3/5 = 0.600 is below min_pass_rate 0.8 "
        "(3 passed, 2 failed, 0 unmeasured of 5 repetitions; unmeasured not counted)",
        "E   first failing repetition (#1): this sample was off*",
    ])
    good = score_of(pytester, "test_flaky_but_good_enough")
    assert good["value"] == pytest.approx(0.6) and good["verdict"] == "pass"
    assert good["details"]["wilson_low"] == pytest.approx(0.23072, abs=1e-4)
    assert "Wilson 95% interval [0.231, 0.882]" in good["reason"]


def test_unmeasured_repetitions_are_counted_apart_and_all_unmeasured_is_unmeasured(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_llmops import unmeasured
        from pytest_llmops.case import current_sample

        @pytest.mark.llm_eval(repeat=4, min_pass_rate=1.0)
        def test_judge_sometimes_down():
            if current_sample() == 0:
                unmeasured("judge timed out")

        @pytest.mark.llm_eval(repeat=3)
        def test_judge_always_down():
            unmeasured("judge timed out")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "UNMEASURED *::test_judge_always_down - 0 passed, 0 failed, 3 unmeasured of 3 repetitions; "
        "first reason: judge timed out",
        "*1 passed, 1 unmeasured*",
    ])
    sometimes = score_of(pytester, "test_judge_sometimes_down")
    assert sometimes["value"] == 1.0
    assert sometimes["details"] == {"passed": 3, "failed": 0, "unmeasured": 1, "repeat": 4,
                                    "wilson_low": pytest.approx(0.43850, abs=1e-4), "wilson_high": 1.0}
    states = {c["nodeid"].split("::")[1]: c["state"] for c in results_of(pytester)["cases"]}
    assert states == {"test_judge_sometimes_down": "passed", "test_judge_always_down": "unmeasured"}


def test_async_repetitions_run_concurrently_each_as_a_fresh_cached_sample(pytester, server, api_key, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    server.latency = 0.3
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval(repeat=6, min_pass_rate=0.5)
        async def test_sampled(llm):
            answer = await llm.complete("same prompt every time", temperature=0.9)
            assert answer
        """
    )
    args = ["-p", "no:cacheprovider", "--llmops-model=openai/test-model", f"--llmops-api-base={server.url}"]
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=1)
    # Six distinct samples (not one answer replayed six times), sent at the same time.
    assert server.requests == 6
    assert server.max_in_flight == 6
    again = pytester.runpytest(*args)
    again.assert_outcomes(passed=1)
    assert server.requests == 6  # the second run replays every sample from the cache


def test_a_bad_repeat_argument_names_the_test(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval(repeat=0)
        def test_never():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_never: llm_eval(repeat=...) must be a whole number >= 1, got 0"])


def test_a_bug_in_one_async_repetition_ends_the_case_and_stops_the_others(pytester):
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from pytest_llmops.case import current_sample

        FINISHED = []

        @pytest.mark.llm_eval(repeat=3)
        async def test_buggy():
            if current_sample() == 1:
                raise KeyError("a bug, not a verdict")
            await asyncio.sleep(0.5)
            FINISHED.append(current_sample())

        @pytest.mark.llm_eval
        async def test_the_others_were_stopped():
            # Runs on the same loop: repetitions left running would finish during this sleep.
            await asyncio.sleep(1.0)
            assert FINISHED == []
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-concurrency=1")
    result.assert_outcomes(passed=1, errors=1)  # the bug is an error of the suite, not a failed repetition
    result.stdout.fnmatch_lines(["*KeyError: 'a bug, not a verdict'*"])
