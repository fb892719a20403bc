"""Issue 15, item 8: what a user reads when something went wrong.

A drift-baseline error shows its message, not pages of plugin traceback; an
unmeasured case shows its reason in the llmops section and in pytest's short
summary; an interrupted run says so in every summary; an unknown token count
reads "unknown", never 0; ``Score`` takes numpy scalars and refuses NaN
thresholds and values with a clear message. Runs go through ``pytester``
against the local test server.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy
import pytest

from pytest_llmops.verdict import Score, Verdict

pytest_plugins = ["pytester"]


@pytest.fixture
def eval_args(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    return ["--llmops-model=openai/test-model", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider"]


def results_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def failure_section(lines: list[str]) -> list[str]:
    """The lines of the FAILURES section, up to the next section."""
    start = next(i for i, line in enumerate(lines) if "FAILURES" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("=="))
    return lines[start:end]


# -- drift baselines: the message, not the plugin's traceback ---------------------------
# (In a subprocess: an in-process inner run would unload the drift modules it imported.)


def test_a_missing_drift_baseline_shows_its_message_and_no_plugin_traceback(pytester):
    pytester.makepyfile(
        test_d="""
        from pytest_llmops.assertions.drift import assert_no_drift

        def test_drift():
            assert_no_drift(["a question", "another one", "a third"], "never-saved")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    section = failure_section(result.stdout.lines)
    text = "\n".join(section)
    assert "BaselineError: no baseline 'never-saved'" in text
    assert "save_baseline(...)" in text  # the fix is still named
    assert "drift/baseline.py" not in text and "def load_baseline" not in text
    assert len(section) < 8, text
    result.stdout.fnmatch_lines(["FAILED test_d.py::test_drift - BaselineError: no baseline 'never-saved'*"])


def test_a_corrupt_drift_baseline_shows_one_message_not_the_traceback_of_its_cause(pytester):
    pytester.makepyfile(
        """
        import numpy
        from pytest_llmops.assertions.drift import assert_no_drift
        from pytest_llmops.drift.baseline import save_baseline

        def test_drift(tmp_path):
            vectors = numpy.random.default_rng(0).normal(size=(20, 8))
            save_baseline("corrupt", vectors, embedder="vectors:test", root=tmp_path)
            (tmp_path / "baselines" / "corrupt.npz").write_bytes(b"not a zip file")
            assert_no_drift(vectors, "corrupt", root=tmp_path)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    section = failure_section(result.stdout.lines)
    text = "\n".join(section)
    assert "BaselineError: baseline 'corrupt'" in text and "corrupt.npz" in text
    # Neither numpy's frames nor the chained cause ("The above exception was the direct cause").
    assert "site-packages" not in text and "direct cause" not in text
    assert len(section) < 8, text


def test_fulltrace_still_shows_the_whole_traceback_of_a_baseline_error(pytester):
    pytester.makepyfile(
        """
        from pytest_llmops.assertions.drift import assert_no_drift

        def test_drift():
            assert_no_drift(["a", "b", "c"], "never-saved")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fulltrace")
    assert "def load_baseline" in result.stdout.str()


# -- unmeasured cases: the reason in the llmops section and the short summary -------------

UNMEASURED_TESTS = """
import pytest
from pytest_llmops import unmeasured

@pytest.mark.llm_eval
@pytest.mark.parametrize("i", range({n}))
def test_judged(i):
    unmeasured(f"the judge did not answer case {{i}}: 503 from judge-model")

def test_plain():
    unmeasured("no embedder configured: set llmops_embedder")
"""


def test_an_unmeasured_case_shows_its_reason_in_the_llmops_section_and_short_summary(pytester, eval_args):
    pytester.makepyfile(test_u=UNMEASURED_TESTS.format(n=2))
    result = pytester.runpytest(*eval_args, "-rA")
    result.stdout.fnmatch_lines(
        [
            "*= llmops =*",
            "cases: 2 (2 unmeasured)",
            "*",
            "UNMEASURED test_u.py::test_judged[[]0] - the judge did not answer case 0: 503 from judge-model",
            "UNMEASURED test_u.py::test_judged[[]1] - the judge did not answer case 1: 503 from judge-model",
            "results: .llmops/results.json",
            "*short test summary info*",
            "UNMEASURED test_u.py::test_judged[[]0] - the judge did not answer case 0*",
            "UNMEASURED test_u.py::test_judged[[]1] - the judge did not answer case 1*",
            "UNMEASURED test_u.py::test_plain - no embedder configured: set llmops_embedder",
            "*3 unmeasured*",
        ]
    )


def test_the_default_short_summary_lists_unmeasured_cases_like_failures(pytester, eval_args):
    pytester.makepyfile(test_u=UNMEASURED_TESTS.format(n=1))
    result = pytester.runpytest(*eval_args)  # pytest's default is -rfE
    result.stdout.fnmatch_lines(
        [
            "*short test summary info*",
            "UNMEASURED *::test_judged[[]0] - the judge did not answer case 0*",
            "UNMEASURED *::test_plain - no embedder configured*",
        ]
    )
    quiet = pytester.runpytest(*eval_args, "-rN")
    assert "short test summary info" not in quiet.stdout.str()
    assert "UNMEASURED *::test_plain" not in quiet.stdout.str()


def test_the_short_summary_of_unmeasured_cases_follows_pytests_own_lines(pytester, eval_args):
    pytester.makepyfile(
        test_f="""
        from pytest_llmops import unmeasured

        def test_fails():
            assert 1 == 2

        def test_unmeasured():
            unmeasured("provider down")
        """
    )
    result = pytester.runpytest(*eval_args)
    lines = result.stdout.lines
    header = [i for i, line in enumerate(lines) if "short test summary info" in line]
    assert len(header) == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*short test summary info*", "FAILED *::test_fails - assert 1 == 2", "UNMEASURED *::test_unmeasured - provider down"]
    )


def test_a_long_list_of_unmeasured_cases_is_capped_with_a_pointer_to_the_results(pytester, eval_args):
    pytester.makepyfile(test_u=UNMEASURED_TESTS.format(n=14))
    result = pytester.runpytest(*eval_args, "-rN")
    result.stdout.fnmatch_lines(
        [
            "cases: 14 (14 unmeasured)",
            "*",
            "UNMEASURED *::test_judged[[]9] - the judge did not answer case 9*",
            "... and 4 more unmeasured: every reason is in .llmops/results.json",
        ]
    )
    assert "test_judged[10]" not in result.stdout.str()
    assert len(results_of(pytester)["cases"]) == 14


# -- an interrupted run says so everywhere ---------------------------------------------


def test_an_interrupted_run_says_so_in_every_summary(pytester, eval_args):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_first(llm):
            assert llm.complete_sync("hello").startswith("Reply")

        @pytest.mark.llm_eval
        def test_second(llm):
            raise KeyboardInterrupt

        @pytest.mark.llm_eval
        def test_never_run(llm):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        *eval_args, "--llmops-html=report.html", "--llmops-markdown=summary.md"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*= llmops =*",
            "INTERRUPTED: the run was stopped before its end; 1 case(s) finished, 1 cut short (counted unmeasured)*",
            "cases: 2 (1 passed, 1 unmeasured)",
        ]
    )
    data = results_of(pytester)
    assert data["interrupted"] is True
    # The test running when the run stopped was set up and never ended: not a pass.
    states = {case["nodeid"].split("::")[1]: (case["state"], case["reason"]) for case in data["cases"]}
    assert states == {
        "test_first": ("passed", ""),
        "test_second": ("unmeasured", "not finished: the run was interrupted before this case ended"),
    }
    assert "the run was interrupted" in (pytester.path / "summary.md").read_text()
    assert "the run was interrupted" in (pytester.path / "report.html").read_text()


# -- unknown token counts ------------------------------------------------------------------


def test_unknown_token_counts_read_unknown_not_zero(pytester, eval_args, server):
    server.report_usage = False  # a provider that says nothing about tokens
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_answer(llm):
            assert llm.complete_sync("hello").startswith("Reply")
        """
    )
    result = pytester.runpytest(*eval_args, "--llmops-markdown=summary.md", "--llmops-html=report.html")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["calls: 1 (0 cache hits, 0 failed, 1 attempts sent)   tokens: unknown   cost: unknown*"])
    assert "0 in / 0 out" not in result.stdout.str()
    data = results_of(pytester)
    call = data["cases"][0]["calls"][0]
    assert call["tokens_in"] is None and call["tokens_out"] is None
    assert data["summary"]["tokens_in"] is None and data["summary"]["calls_unknown_tokens"] == 1
    group = data["latency"][0]
    assert group["tokens_in"] is None and group["tokens_out"] is None
    markdown = (pytester.path / "summary.md").read_text()
    # The latency table's "tokens in / out" cell, then its "cost" cell (no price for the test model).
    assert "| unknown | unknown |" in markdown and "0 / 0" not in markdown
    html = (pytester.path / "report.html").read_text()
    # Neither the latency table (it said "0 / 0") nor the call's row (it said "- / -") makes up a count.
    assert "0 / 0" not in html and "- / -" not in html


def test_partly_unknown_token_counts_say_how_many_calls_are_not_counted(pytester, eval_args, server):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_counted(llm):
            llm.complete_sync("counted")
        """
    )
    assert pytester.runpytest(*eval_args).ret == pytest.ExitCode.OK
    server.report_usage = False
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_counted(llm):
            llm.complete_sync("counted")  # replayed from the cache, with the counts recorded then

        @pytest.mark.llm_eval
        def test_uncounted(llm):
            llm.complete_sync("not counted")
        """
    )
    result = pytester.runpytest(*eval_args)
    result.stdout.fnmatch_lines(["*tokens: * in / * out + unknown for 1 call(s)*"])
    summary = results_of(pytester)["summary"]
    assert summary["tokens_out"] > 0 and summary["calls_unknown_tokens"] == 1


# -- Score: numpy scalars in, NaN refused ----------------------------------------------


@pytest.mark.parametrize(
    "value", [numpy.float32(0.75), numpy.float64(0.75), numpy.int64(1), Fraction(3, 4)],
    ids=lambda v: type(v).__name__,
)
def test_a_score_takes_any_real_number_and_stores_a_plain_float(value):
    score = Score.measured("rouge", value, threshold=0.5)
    assert type(score.value) is float and score.value == float(value)
    assert score.verdict is Verdict.PASS
    json.dumps(score.to_dict())  # a plain float is JSON-ready


def test_a_numpy_threshold_is_stored_as_a_plain_float():
    score = Score.measured("rouge", 0.4, threshold=numpy.float32(0.5))
    assert type(score.threshold) is float and score.verdict is Verdict.FAIL


@pytest.mark.parametrize("threshold", [math.nan, numpy.float32("nan")], ids=["float", "numpy"])
def test_a_nan_threshold_is_refused_with_a_clear_error(threshold):
    with pytest.raises(ValueError, match=r"score 'rouge': the threshold is NaN; pass a number .*or None"):
        Score.measured("rouge", 0.8, threshold=threshold)


@pytest.mark.parametrize("value", [math.inf, -math.inf, numpy.float32("inf")], ids=["inf", "-inf", "numpy-inf"])
def test_an_infinite_value_is_refused_with_a_clear_error(value):
    with pytest.raises(ValueError, match=r"score 'rouge': value is -?inf; .*unmeasured"):
        Score.measured("rouge", value, threshold=0.5)


def test_a_nan_value_from_numpy_is_unmeasured_not_a_number():
    score = Score.measured("rouge", numpy.float32("nan"), threshold=0.5)
    assert score.verdict is Verdict.UNMEASURED and score.value is None
    assert "NaN" in score.reason


@pytest.mark.parametrize("value", ["0.5", True, None, [0.5]], ids=repr)
def test_a_value_that_is_not_a_real_number_is_still_a_type_error(value):
    with pytest.raises((TypeError, ValueError), match="score 'rouge'"):
        Score(name="rouge", value=value, verdict="pass")
