"""Broken test code is an error of the suite, not a failure of the model (issue 15, item 5).

A case fails when the model's answer failed a check: an ``AssertionError``
(from ``assert``, ``require`` or an ``assert_*`` helper) or ``pytest.fail``.
Any other exception (a template error, a corrupt cache entry, a ``KeyError``
or ``ValueError`` in test code) ends the case in state ``error`` with the
exception's type, is shown as an error, and no gate excuses it: a
``pass_rate`` gate that tolerates failing cases never makes such a run exit 0.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

pytest_plugins = ["pytester"]

#: Nine passing cases and one whose body raises ``error``: under pass_rate>=0.5 only an assertion is excused.
ONE_BROKEN = """
import pytest
from pytest_llmops import Score, require

@pytest.mark.llm_eval
@pytest.mark.parametrize("i", range(9))
def test_fine(i):
    require(Score.measured("quality", 0.9, threshold=0.5))

@pytest.mark.llm_eval
def test_broken():
    {body}
"""


def results_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def case(pytester: pytest.Pytester, name: str) -> dict:
    return next(c for c in results_of(pytester)["cases"] if c["nodeid"].endswith(name))


def test_an_assertion_failure_is_the_models_failure_and_a_pass_rate_gate_may_excuse_it(pytester):
    pytester.makepyfile(ONE_BROKEN.format(body='require(Score.measured("quality", 0.1, threshold=0.5))'))
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate=pass_rate>=0.5")
    assert result.ret == 0
    result.assert_outcomes(passed=9, failed=1)
    assert case(pytester, "test_broken")["state"] == "failed"
    assert case(pytester, "test_broken")["error_type"] is None


@pytest.mark.parametrize(
    ("body", "error_type", "message"),
    [
        ('{}["answer"]', "KeyError", "KeyError: 'answer'"),
        ('int("four")', "ValueError", "ValueError: invalid literal for int() with base 10: 'four'"),
        ('len(None)', "TypeError", "TypeError: object of type 'NoneType' has no len()"),
    ],
)
def test_an_exception_in_test_code_is_an_error_that_no_gate_excuses(pytester, body, error_type, message):
    pytester.makepyfile(ONE_BROKEN.format(body=body))
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate=pass_rate>=0.5",
                                "--llmops-gate=unmeasured_rate<=0.5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=9, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at call of test_broken*",
        "cases: 10 (9 passed, 1 error)",
        f"llmops: 1 case ended on an error of the test suite, not a failure of the model; no gate excuses it:",
        f"  ERROR *test_broken - {message}",
        "ERROR *::test_broken*",
    ])
    assert "left to the pass-rate gates" not in result.stdout.str()
    broken = case(pytester, "test_broken")
    assert (broken["state"], broken["error_type"], broken["reason"]) == ("error", error_type, message)
    assert results_of(pytester)["exit_status"] == 1


def test_a_template_error_is_an_error_of_the_suite(pytester):
    pytester.mkdir("prompts")
    pytester.path.joinpath("prompts", "qa.toml").write_text('version = "2"\ntemplate = "Q: {{ question }} C: {{ context }}"\n')
    pytester.makepyfile(ONE_BROKEN.format(body='pass').replace(
        "def test_broken():", "def test_broken(prompt):\n    prompt('qa', question='Where?')"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate=pass_rate>=0.5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    broken = case(pytester, "test_broken")
    assert (broken["state"], broken["error_type"]) == ("error", "PromptError")
    assert "qa@2" in broken["reason"] and "context" in broken["reason"]


def test_a_corrupt_cache_entry_is_an_error_of_the_suite(pytester, server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_ask(llm):
            assert llm.complete_sync("hello").startswith("Reply")
        """
    )
    args = ("-p", "no:cacheprovider", "--llmops-model=openai/test-model", f"--llmops-api-base={server.url}",
            "--llmops-gate=pass_rate>=0.0")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    with sqlite3.connect(pytester.path / ".llmops" / "cache.sqlite") as db:
        db.execute("UPDATE calls SET response = 'not json'")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    broken = case(pytester, "test_ask")
    assert (broken["state"], broken["error_type"]) == ("error", "CacheError")
    assert "is not valid JSON" in broken["reason"]
    assert len(server.received) == 1  # the broken entry was not papered over by a fresh call


def test_a_fixture_error_records_its_type_too(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def data():
            raise FileNotFoundError("cases.jsonl")

        @pytest.mark.llm_eval
        def test_case(data):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate=pass_rate>=0.0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    broken = case(pytester, "test_case")
    assert (broken["state"], broken["error_type"]) == ("error", "FileNotFoundError")
    assert broken["reason"] == "setup: FileNotFoundError: cases.jsonl"


def test_an_error_in_a_concurrent_async_case_and_in_a_repeat_is_an_error(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(3))
        async def test_async(i):
            if i == 1:
                raise ValueError("bad row 1")

        @pytest.mark.llm_eval(repeat=3, min_pass_rate=0.3)
        def test_repeated():
            raise KeyError("expected")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate=pass_rate>=0.0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, errors=2)
    states = {c["nodeid"].split("::")[-1]: (c["state"], c["error_type"]) for c in results_of(pytester)["cases"]}
    assert states == {
        "test_async[0]": ("passed", None),
        "test_async[1]": ("error", "ValueError"),
        "test_async[2]": ("passed", None),
        "test_repeated": ("error", "KeyError"),
    }


def test_an_error_is_an_error_under_xdist_too(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(ONE_BROKEN.format(body='{}["answer"]'))
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--llmops-gate=pass_rate>=0.5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    broken = case(pytester, "test_broken")
    assert (broken["state"], broken["error_type"]) == ("error", "KeyError")
