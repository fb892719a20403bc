"""What users see from the plugin: options, summary, results file, errors, unmeasured verdicts.

Each test runs pytest inside pytest (``pytester``) against the local
OpenAI-compatible test server, and pins the lines a user reads.
"""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

EVAL_TESTS = """
import pytest

@pytest.mark.llm_eval
async def test_async_answer(llm):
    answer = await llm.complete("hello from async")
    assert answer.startswith("Reply")

@pytest.mark.llm_eval
def test_sync_answer(llm):
    answer = llm.complete_sync("hello from sync")
    assert "sync" in answer

@pytest.mark.llm_eval
def test_wrong_answer(llm):
    assert llm.complete_sync("hello again") == "something else"

def test_unrelated():
    assert 1 + 1 == 2
"""


@pytest.fixture
def eval_args(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    return ["--llmops-model=openai/test-model", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider"]


def results_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def test_help_lists_the_options_with_their_ini_names(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "LLM evaluation (pytest-llmops):",
            "*--llmops-model=MODEL*model under test*",
            "*--llmops-judge=JUDGE*",
            "*--llmops-cache-path=CACHE_PATH*",
            "*--llmops-record-mode=RECORD_MODE*",
            "*--llmops-concurrency=CONCURRENCY*",
            "*--llmops-timeout=TIMEOUT*",
            "*--llmops-retries=RETRIES*",
            "*--llmops-results=RESULTS*",
            "*llmops_model (string):*",
        ]
    )


def test_an_unrelated_run_is_untouched(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "= llmops =" not in result.stdout.str()
    assert not (pytester.path / ".llmops").exists()


def test_an_eval_run_prints_a_summary_and_writes_results(pytester, server, eval_args):
    pytester.makepyfile(EVAL_TESTS)
    result = pytester.runpytest(*eval_args)

    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= llmops =*",
            "cases: 3 (2 passed, 1 failed)",
            "model: openai/test-model   judge: none   cache: new (.llmops/cache.sqlite)",
            "calls: 3 (0 cache hits, 0 failed, 3 attempts sent)   tokens: * in / * out   cost: unknown*",
            "latency (model under test): p50 *, p95 *",
            "results: .llmops/results.json",
        ]
    )
    data = results_of(pytester)
    assert data["schema_version"] == 1
    assert data["settings"]["model"] == "openai/test-model"
    assert data["settings"]["sources"]["model"] == "command line"
    assert "pytest" in data["environment"]["packages"]
    states = {case["nodeid"].split("::")[1]: case["state"] for case in data["cases"]}
    assert states == {"test_async_answer": "passed", "test_sync_answer": "passed", "test_wrong_answer": "failed"}
    calls = [call for case in data["cases"] for call in case["calls"]]
    assert len(calls) == 3 and all(call["role"] == "llm" and call["tokens_out"] > 0 for call in calls)
    assert server.requests == 3


def test_a_second_run_is_served_from_the_cache(pytester, server, eval_args):
    pytester.makepyfile(EVAL_TESTS)
    pytester.runpytest(*eval_args)
    result = pytester.runpytest(*eval_args)
    result.stdout.fnmatch_lines(["calls: 3 (3 cache hits, 0 failed, 0 attempts sent)*"])
    assert server.requests == 3


def test_replay_only_mode_fails_a_case_with_no_recording_and_names_it(pytester, server, eval_args):
    pytester.makepyfile(EVAL_TESTS)
    result = pytester.runpytest(*eval_args, "--llmops-record-mode=none", "-k", "test_sync_answer")
    # A missing recording is the suite's set-up, not the model: an error no gate excuses.
    result.assert_outcomes(errors=1, deselected=3)
    result.stdout.fnmatch_lines(
        ["CacheMissError: no recorded answer for test case *::test_sync_answer*--llmops-record-mode=new to record it"]
    )
    assert "Traceback" not in result.stdout.str() and "client.py" not in result.stdout.str()
    assert server.requests == 0


def test_a_judge_check_with_no_judge_ends_unmeasured_and_fails_the_run(pytester, eval_args):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        async def test_judged(judge):
            await judge.complete("Is this answer grounded?")
        """
    )
    result = pytester.runpytest(*eval_args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*U*",
            "UNMEASURED test_a_judge*.py::test_judged - no judge model is configured: set llmops_judge = *"
            "or pass --llmops-judge=<model>",
            "*1 unmeasured in*",
        ]
    )
    assert results_of(pytester)["cases"][0]["state"] == "unmeasured"


def test_a_provider_that_keeps_failing_ends_unmeasured_with_the_reason(pytester, server, eval_args):
    from pytest_llmops.testing import Fault

    server.inject(Fault.status(401, "invalid api key"), times=None)
    pytester.makepyfile(EVAL_TESTS)
    result = pytester.runpytest(*eval_args, "-k", "test_sync_answer")
    result.stdout.fnmatch_lines(["UNMEASURED *test_sync_answer - openai/test-model: AuthenticationError*"])
    case = results_of(pytester)["cases"][0]
    assert case["state"] == "unmeasured"
    assert case["calls"][0]["error_type"] == "AuthenticationError"


def test_settings_precedence_marker_over_command_line_over_ini(pytester, server, eval_args):
    pytester.makeini(
        f"""
        [pytest]
        llmops_model = openai/ini-model
        llmops_api_base = {server.url}
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval(model="openai/marker-model")
        def test_marked(llm):
            assert llm.complete_sync("a").call.model == "openai/marker-model"

        @pytest.mark.llm_eval
        def test_plain(llm, request):
            expected = request.config.getoption("llmops_model") or "openai/ini-model"
            assert llm.complete_sync("b").call.model == expected
        """
    )
    no_cache = ("-p", "no:cacheprovider", "--llmops-record-mode=off")
    pytester.runpytest(*no_cache).assert_outcomes(passed=2)
    pytester.runpytest(*no_cache, "--llmops-model=openai/cli-model").assert_outcomes(passed=2)
    models = sorted(request.body["model"] for request in server.received)
    assert models == ["cli-model", "ini-model", "marker-model", "marker-model"]


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--llmops-concurrency=abc"], "", "*--llmops-concurrency: expected a whole number, got 'abc'. Example: --llmops-concurrency=8"),
        (["--llmops-timeout=-1"], "", "*--llmops-timeout: expected a number of seconds between 0 and 86400, got '-1'*"),
        ([], "llmops_retries = many", "*llmops_retries in *tox.ini: expected a whole number, got 'many'*"),
        ([], "llmops_record_mode = sometimes", "*llmops_record_mode in *tox.ini: expected one of off, new, none, all*"),
    ],
    ids=["cli-int", "cli-float", "ini-int", "ini-choice"],
)
def test_bad_settings_are_usage_errors_that_name_the_option_and_the_fix(pytester, args, ini, expected):
    if ini:
        pytester.makefile(".ini", tox=f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_an_unknown_marker_argument_names_the_test(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval(modle="openai/x")
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_an_unknown_marker*.py::test_typo: unknown @pytest.mark.llm_eval argument(s) modle; allowed: model*"])


def test_a_missing_template_variable_names_the_template_and_variable(pytester, eval_args):
    pytester.mkdir("prompts")
    pytester.path.joinpath("prompts", "qa.toml").write_text(
        'version = "2"\ntemplate = "Context: {{ context }}\\nQuestion: {{ question }}"\n'
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_render(prompt, llm):
            llm.complete_sync(prompt("qa", question="Where?"))
        """
    )
    result = pytester.runpytest(*eval_args)
    result.assert_outcomes(errors=1)  # a broken template is an error of the suite
    result.stdout.fnmatch_lines(["*qa@2*context*"])


def test_rendered_prompts_are_recorded_with_their_hash(pytester, server, eval_args):
    pytester.mkdir("prompts")
    pytester.path.joinpath("prompts", "qa.toml").write_text(
        'version = "2"\ntemperature = 0.0\ntemplate = "Question: {{ question }}"\n'
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_render(prompt, llm):
            llm.complete_sync(prompt("qa", question="Where?"))
        """
    )
    pytester.runpytest(*eval_args).assert_outcomes(passed=1)
    case = results_of(pytester)["cases"][0]
    assert [(p["name"], p["version"]) for p in case["prompts"]] == [("qa", "2")]
    assert len(case["prompts"][0]["hash"]) == 64
    assert case["calls"][0]["params"] == {"temperature": 0.0}
    assert server.received[-1].body["messages"] == [{"role": "user", "content": "Question: Where?"}]


def test_a_corrupt_cache_is_a_clear_error(pytester, eval_args):
    pytester.mkdir(".llmops")
    pytester.path.joinpath(".llmops", "cache.sqlite").write_bytes(b"this is not a database" * 100)
    pytester.makepyfile(EVAL_TESTS)
    result = pytester.runpytest(*eval_args, "-k", "test_sync_answer")
    result.assert_outcomes(errors=1, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "CacheError: llmops cache */.llmops/cache.sqlite is not a SQLite database (file is not a database). "
            "Delete the file, or point --llmops-cache-path / llmops_cache_path elsewhere.",
        ]
    )
    assert "session.py" not in result.stdout.str()


def test_results_are_merged_from_xdist_workers(pytester, server, eval_args):
    pytest.importorskip("xdist")
    pytester.makepyfile(EVAL_TESTS)
    result = pytester.runpytest_subprocess(*eval_args, "-n", "2")
    result.stdout.fnmatch_lines(["cases: 3 (2 passed, 1 failed)", "calls: 3 *"])
    assert len(results_of(pytester)["cases"]) == 3


BUDGET_TESTS = """
import pytest

@pytest.mark.llm_eval
@pytest.mark.parametrize("n", range(4))
def test_ask(llm, n):
    llm.complete_sync(f"question {n}")
"""


def test_the_call_budget_stops_new_calls_and_fails_the_run(pytester, server, eval_args):
    pytester.makepyfile(BUDGET_TESTS)
    result = pytester.runpytest(*eval_args, "--llmops-max-calls=2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "cases: 4 (2 passed, 2 unmeasured)",
            "UNMEASURED *test_ask[[]2] - not run: the run's call budget is spent (2 provider calls, --llmops-max-calls=2)*",
        ]
    )
    assert server.requests == 2


def test_the_cost_budget_counts_priced_calls_and_lets_cache_hits_through(pytester, server, eval_args):
    pytester.makepyfile(BUDGET_TESTS)
    priced = [*eval_args[1:], "--llmops-model=openai/gpt-4o-mini"]
    pytester.runpytest(*priced, "-k", "test_ask[0]")  # record one answer
    result = pytester.runpytest(*priced, "--llmops-max-cost=0.0000001")
    # The recorded case replays for free; one new call spends the budget; the rest are not sent.
    result.stdout.fnmatch_lines(["cases: 4 (2 passed, 2 unmeasured)", "*the run's cost budget is spent*"])
    assert server.requests == 2


def test_an_async_test_using_llm_runs_without_the_marker_too(pytester, server, eval_args):
    pytester.makepyfile(
        """
        async def test_unmarked(llm):
            assert (await llm.complete("hi")).startswith("Reply")
        """
    )
    pytester.runpytest(*eval_args).assert_outcomes(passed=1)
