"""Known weaknesses are data: marked cases run, count against pass rates, and are listed apart."""

from __future__ import annotations

import json

import pytest

from pytest_llmops import case_params, load_cases
from pytest_llmops.cases import CaseFileError

CASES_JSONL = "\n".join([
    json.dumps({"id": "easy", "answer": "yes"}),
    json.dumps({"id": "hard", "answer": "no", "known_failure": "answers yes to everything"}),
    json.dumps({"id": "lucky", "answer": "yes", "known_failure": "used to answer no"}),
]) + "\n"

SUITE = """
import pytest
from pytest_llmops import case_params, load_cases, require, Score

CASES = load_cases("cases.jsonl")

@pytest.mark.llm_eval
@pytest.mark.parametrize("case", case_params(CASES))
def test_says_yes(case):
    require(Score.measured("said_yes", float(case.answer == "yes"), threshold=1.0))
"""


def test_case_params_marks_the_cases_whose_data_documents_a_weakness(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(CASES_JSONL)

    params = case_params(load_cases(path))

    assert [p.id for p in params] == ["easy", "hard", "lucky"]
    marks = {p.id: [(m.name, m.args) for m in p.marks] for p in params}
    assert marks["easy"] == []
    assert marks["hard"] == [("llm_known_failure", ("answers yes to everything",))]


def test_case_params_takes_a_mapping_and_refuses_ids_that_are_not_cases(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(CASES_JSONL)
    cases = load_cases(path)

    params = case_params(cases, known={"easy": "a weakness of another test"})
    assert [m.args for m in params[0].marks] == [("a weakness of another test",)]
    assert list(params[1].marks) == []  # the mapping replaces the data's own field

    with pytest.raises(CaseFileError, match="not in the cases: gone"):
        case_params(cases, known={"gone": "a case that was removed"})


def test_a_run_counts_known_failures_and_lists_them_with_the_one_that_now_passes(pytester):
    pytester.makefile(".jsonl", cases=CASES_JSONL)
    pytester.makepyfile(test_suite=SUITE)

    result = pytester.runpytest("-m", "llm_eval", "--llmops-gate=pass_rate>=0.6", "-p", "no:cacheprovider")

    # 2 of 3 pass: the gate (not each case) decides, and the documented failure still counts.
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "cases: 3 (2 passed, 1 failed)*left to the pass-rate gates",
        "known weaknesses (llm_known_failure): 2 documented (1 failed, 1 passed)",
        "  now passes: test_suite.py::test_says_yes[[]lucky[]]*",
        "*PASS*pass_rate>=0.6*0.6667*2/3 passed*",
    ])
    run = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    by_id = {case["nodeid"].split("[")[1].rstrip("]"): case for case in run["cases"]}
    assert by_id["hard"]["state"] == "failed"
    assert by_id["hard"]["metadata"]["known_failure"] == "answers yes to everything"
    assert "known_failure" not in by_id["easy"]["metadata"]
    assert run["summary"]["known_failures"] == {
        "documented": 2, "by_state": {"failed": 1, "passed": 1}, "passed": [by_id["lucky"]["nodeid"]],
    }


def test_a_known_failure_marker_without_a_reason_stops_the_run_before_any_test(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        @pytest.mark.llm_known_failure("  ")
        def test_x():
            pass
        """
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x: @pytest.mark.llm_known_failure needs the weakness as a non-empty string*"])


def test_suite_gates_apply_only_when_a_test_in_their_scope_was_selected(pytester):
    pytester.makeconftest(
        """
        llmops_gates = ["[test=test_a] pass_rate>=1", "[test=test_b] pass_rate>=1"]
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_a():
            pass

        @pytest.mark.llm_eval
        def test_b():
            pass
        """
    )

    only_a = pytester.runpytest("-m", "llm_eval", "-k", "test_a", "-p", "no:cacheprovider")
    both = pytester.runpytest("-m", "llm_eval", "-p", "no:cacheprovider")

    assert only_a.ret == 0
    only_a.stdout.fnmatch_lines(["gates: 1 passed", "*[[]test=test_a[]] pass_rate>=1*"])
    only_a.stdout.no_fnmatch_line("*test=test_b*")
    both.stdout.fnmatch_lines(["gates: 2 passed"])
