"""Settings that cannot work stop the run at start-up (exit 4), before any test or provider call.

Issue 15, items 3, 6 and 7: a results path or baseline name that only fails
at the end of a (possibly paid) run, an empty or impossible gate, and values
such as ``timeout=inf`` or ``api_base=not-a-url`` are all usage errors that
name the option (command line, ini or marker) and show the fix.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: A test that leaves a file behind when it runs: a usage error must stop the run before it.
RAN = """
import pathlib
import pytest

@pytest.mark.llm_eval
def test_case():
    pathlib.Path("ran.txt").write_text("ran")
"""


def usage_error(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest and check it stopped with a usage error before running the test."""
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "ran.txt").exists()
    return result


# -- item 3: what the end of the run writes is checked at its start -------------------------------


@pytest.mark.parametrize("name", ["../x", "a/b", ""])
def test_a_baseline_name_that_cannot_be_saved_is_refused_before_the_run(pytester, name):
    pytester.makepyfile(RAN)
    result = usage_error(pytester, f"--llmops-save-baseline={name}")
    if name.strip():
        result.stderr.fnmatch_lines(["*--llmops-save-baseline: baseline name * must be letters, digits*"
                                     "(e.g. --llmops-save-baseline=main)"])
    else:
        # What `--llmops-save-baseline=$NAME` becomes in CI when NAME is unset: not "no baseline".
        result.stderr.fnmatch_lines(["*--llmops-save-baseline: expected a baseline name, got ''. "
                                     "Example: --llmops-save-baseline=main"])


def test_a_compare_name_that_cannot_name_a_baseline_is_refused_before_the_run(pytester):
    pytester.makepyfile(RAN)
    pytester.makefile(".ini", tox="[pytest]\nllmops_compare = ../main\n")
    result = usage_error(pytester)
    result.stderr.fnmatch_lines(["*llmops_compare in *tox.ini: baseline name '../main' must be letters*"])


def test_a_results_path_under_a_file_is_refused_before_the_run(pytester):
    pytester.makepyfile(RAN)
    pytester.path.joinpath("reports").write_text("a file, not a folder")
    result = usage_error(pytester, "--llmops-results=reports/llmops.json")
    result.stderr.fnmatch_lines([
        "*--llmops-results: cannot write *reports/llmops.json: *reports is not a folder. "
        "Choose a path in a writable folder, e.g. --llmops-results=reports/llmops.json*"
    ])


def test_a_report_path_that_is_a_folder_is_refused_before_the_run(pytester):
    pytester.makepyfile(RAN)
    pytester.mkdir("report.html")
    pytester.makefile(".ini", tox="[pytest]\nllmops_html = report.html\n")
    result = usage_error(pytester)
    result.stderr.fnmatch_lines(["*llmops_html in *tox.ini: cannot write *report.html: it is a folder.*"])


def test_a_markdown_path_under_a_file_is_refused_before_the_run(pytester):
    pytester.makepyfile(RAN)
    pytester.path.joinpath("out").write_text("")
    result = usage_error(pytester, "--llmops-markdown=out/deep/summary.md")
    result.stderr.fnmatch_lines(["*--llmops-markdown: cannot write *out/deep/summary.md: *out is not a folder*"])


def test_good_output_settings_still_run(pytester):
    pytester.makepyfile(RAN)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-save-baseline=main-1.2",
                                "--llmops-results=new/folder/results.json", "--llmops-html=new/report.html")
    assert result.ret == 0, result.stdout.str()
    assert (pytester.path / "new" / "folder" / "results.json").is_file()
    assert (pytester.path / ".llmops" / "baselines" / "main-1.2.json").is_file()


# -- item 6: an empty gate, or one that can never pass ----------------------------------------------


def test_an_empty_gate_on_the_command_line_is_a_usage_error_not_no_gate(pytester):
    # What `--llmops-gate=$GATE` becomes in CI when GATE is unset.
    pytester.makepyfile(RAN)
    result = usage_error(pytester, "--llmops-gate=")
    result.stderr.fnmatch_lines(["*--llmops-gate: bad gate '': the gate is empty", "    ", "    ^", "*valid examples: *"])


@pytest.mark.parametrize(
    ("gate", "problem", "caret"),
    [
        ("latency.p95<=-2s", "latency.p95 is never negative, so <= -2 can never pass", 13),
        ("pass_rate.lower>1", "a rate is at most 1, so > 1 can never pass", 16),
        ("unmeasured_rate<0", "a rate is at least 0, so < 0 can never pass", 16),
        ("faithfulness.pass_rate>=1.5", "a rate is between 0 and 1 (or 0% and 100%), got 1.5", 24),
        ("cost.total<0", "cost.total is never negative, so < 0 can never pass", 11),
        ("calls.total==-1", "calls.total is never negative, so == -1 can never pass", 13),
        ("latency.p95<=1e999s", "the threshold must be a finite number, got inf", 13),
    ],
)
def test_a_gate_that_can_never_pass_is_a_usage_error_with_a_caret(pytester, gate, problem, caret):
    pytester.makepyfile(RAN)
    result = usage_error(pytester, f"--llmops-gate={gate}")
    result.stderr.fnmatch_lines([f"*--llmops-gate: bad gate {gate!r}: {problem}", f"    {gate}", "    " + " " * caret + "^"])


def test_a_gate_that_can_never_pass_in_the_ini_names_the_ini(pytester):
    pytester.makepyfile(RAN)
    pytester.makefile(".ini", tox="[pytest]\nllmops_gates =\n    pass_rate>=0.5\n    ttft.p95<-1ms\n")
    result = usage_error(pytester)
    result.stderr.fnmatch_lines(["*llmops_gates in *tox.ini: bad gate 'ttft.p95<-1ms': ttft.p95 is never negative*"])


# -- item 7: values that cannot work, in every form -----------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("--llmops-timeout=inf", "*--llmops-timeout: expected a number of seconds between 0 and 86400, got 'inf'. "
                                 "Example: --llmops-timeout=30"),
        ("--llmops-timeout=nan", "*--llmops-timeout: expected a number of seconds between 0 and 86400, got 'nan'*"),
        ("--llmops-deadline=1e999", "*--llmops-deadline: expected a number of seconds between 0 and 86400, got '1e999'*"),
        ("--llmops-deadline=-5", "*--llmops-deadline: expected a number of seconds between 0 and 86400, got '-5'*"),
        ("--llmops-retries=1000000", "*--llmops-retries: expected a whole number between 0 and 20, got '1000000'*"),
        ("--llmops-retries=-1", "*--llmops-retries: expected a whole number between 0 and 20, got '-1'*"),
        ("--llmops-max-cost=-1", "*--llmops-max-cost: expected an amount in USD > 0, got '-1'. Example: --llmops-max-cost=1.50"),
        ("--llmops-max-cost=nan", "*--llmops-max-cost: expected an amount in USD > 0, got 'nan'*"),
        ("--llmops-max-cost=inf", "*--llmops-max-cost: expected an amount in USD > 0, got 'inf'*"),
        ("--llmops-max-cost=2s", "*--llmops-max-cost: expected an amount in USD > 0, got '2s'*"),
        ("--llmops-api-base=not-a-url", "*--llmops-api-base: expected an http:// or https:// URL with a host, "
                                        "got 'not-a-url'. Example: --llmops-api-base=http://127.0.0.1:8000/v1"),
        ("--llmops-judge-api-base=127.0.0.1:8000/v1", "*--llmops-judge-api-base: expected an http:// or https:// URL*"),
        ("--llmops-paraphraser-api-base=localhost:8000", "*--llmops-paraphraser-api-base: expected an http:// or "
                                                        "https:// URL*"),
        ("--llmops-results=", "*--llmops-results: expected a file path, got ''. Example: --llmops-results=reports/llmops.json"),
        ("--llmops-cache-path=", "*--llmops-cache-path: expected a file path, got ''*"),
    ],
)
def test_values_that_cannot_work_are_usage_errors_on_the_command_line(pytester, arg, expected):
    pytester.makepyfile(RAN)
    usage_error(pytester, arg).stderr.fnmatch_lines([expected])


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        ("llmops_timeout = inf", "*llmops_timeout in *tox.ini: expected a number of seconds between 0 and 86400*"),
        ("llmops_retries = 1000000", "*llmops_retries in *tox.ini: expected a whole number between 0 and 20*"),
        ("llmops_max_cost = -0.5", "*llmops_max_cost in *tox.ini: expected an amount in USD > 0, got '-0.5'*"),
        ("llmops_api_base = localhost:8000", "*llmops_api_base in *tox.ini: expected an http:// or https:// URL*"),
    ],
)
def test_values_that_cannot_work_are_usage_errors_in_the_ini(pytester, ini, expected):
    pytester.makepyfile(RAN)
    pytester.makefile(".ini", tox=f"[pytest]\n{ini}\n")
    usage_error(pytester).stderr.fnmatch_lines([expected])


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ('timeout=float("inf")', "*@pytest.mark.llm_eval(timeout=...) on *::test_marked: expected a number of seconds "
                                 "between 0 and 86400, got inf*"),
        ("deadline=1e999", "*llm_eval(deadline=...) on *::test_marked: expected a number of seconds between 0 and 86400*"),
        ("retries=1000000", "*llm_eval(retries=...) on *::test_marked: expected a whole number between 0 and 20*"),
        ('api_base="not-a-url"', "*llm_eval(api_base=...) on *::test_marked: expected an http:// or https:// URL*"),
    ],
)
def test_marker_values_that_cannot_work_stop_the_run_and_name_the_test(pytester, marker, expected):
    pytester.makepyfile(
        f"""
        import pathlib
        import pytest

        def test_first():
            pathlib.Path("ran.txt").write_text("ran")

        @pytest.mark.llm_eval({marker})
        def test_marked():
            pass
        """
    )
    usage_error(pytester).stderr.fnmatch_lines([expected])


def test_sensible_values_are_accepted(pytester):
    pytester.makepyfile(RAN)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-timeout=30s", "--llmops-deadline=86400",
                                "--llmops-retries=0", "--llmops-max-cost=$1.50", "--llmops-api-base=https://example.com/v1")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


def test_the_default_results_path_is_checked_as_an_eval_run_starts(pytester):
    pytester.makepyfile(RAN)
    pytester.path.joinpath(".llmops").write_text("a file where the state folder goes")
    result = usage_error(pytester)
    result.stderr.fnmatch_lines([
        "*--llmops-results / llmops_results: cannot write */.llmops/results.json: */.llmops is not a folder. "
        "Choose a path in a writable folder, e.g. --llmops-results=reports/llmops.json"
    ])


def test_a_plain_run_does_not_check_the_default_results_path(pytester):
    # The plugin loads in every run of the environment: a run without eval cases writes nothing, so checks nothing.
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.path.joinpath(".llmops").write_text("a file where the state folder goes")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_gate_parser_refuses_an_empty_gate_in_a_list_too():
    # `llmops gate results.json --gate "$GATE"` with GATE unset.
    from pytest_llmops.gates.parse import GateSyntaxError, parse_gates

    with pytest.raises(GateSyntaxError, match="--gate: bad gate '': the gate is empty"):
        parse_gates(["pass_rate>=0.9", ""], source="--gate")
