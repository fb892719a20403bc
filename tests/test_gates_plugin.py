"""Release gates in a real pytest run: exit codes, tolerated failures, xdist, JUnit, quiet output.

Exit status 6 means "the gates refused the run" (a failing or unmeasured gate,
or a significant regression against the baseline), also when every test passed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

SCORED = """
import pytest
from pytest_llmops import Score, require

@pytest.mark.llm_eval
@pytest.mark.parametrize("value", {values})
def test_quality(value):
    require(Score.measured("quality", value, threshold=0.5))
"""


def scored(pytester: pytest.Pytester, values: list[float]) -> None:
    pytester.makepyfile(test_scored=SCORED.format(values=values))


def results_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def test_a_failing_gate_fails_a_run_whose_tests_all_passed(pytester):
    scored(pytester, [0.6, 0.7, 0.8])
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate", "quality.mean>=0.9",
                                "--llmops-gate", "pass_rate>=0.9")
    assert result.ret == 6
    result.stdout.fnmatch_lines([
        "gates: 1 passed, 1 failed",
        "  FAIL * quality.mean>=0.9 * 0.7  mean over 3 scores",
        "  PASS * pass_rate>=0.9 * 1  3/3 passed; Wilson 95% interval ?0.439, 1.000?",
        "exit status 6: the release gates refused this run*",
        "*3 passed*",
    ])
    gates = results_of(pytester)["gates"]
    assert [(g["expression"], g["verdict"]) for g in gates] == [("quality.mean>=0.9", "fail"), ("pass_rate>=0.9", "pass")]
    assert results_of(pytester)["exit_status"] == 6


def test_a_pass_rate_gate_takes_responsibility_for_failing_cases(pytester):
    scored(pytester, [0.9] * 9 + [0.1])
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate", "pass_rate>=0.9")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["cases: 10 (9 passed, 1 failed); 1 failing case(s) left to the pass-rate gates"])
    below = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate", "pass_rate>=0.95")
    assert below.ret == 6


def test_a_failing_plain_test_is_never_excused_by_a_gate(pytester):
    scored(pytester, [0.9, 0.9])
    pytester.makepyfile(test_plain="def test_plain():\n    assert False\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate", "pass_rate>=0.5")
    assert result.ret == 1


def test_unmeasured_cases_fail_the_run_unless_a_gate_bounds_their_share(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_llmops import unmeasured

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(9))
        def test_fine(i):
            pass

        @pytest.mark.llm_eval
        def test_judge_down():
            unmeasured("the judge did not answer")
        """
    )
    without = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate", "pass_rate>=0.9")
    assert without.ret == 1  # a pass-rate gate does not speak for unmeasured cases
    bounded = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate", "pass_rate>=0.9",
                                 "--llmops-gate", "unmeasured_rate<=0.2")
    assert bounded.ret == 0
    bounded.stdout.fnmatch_lines(["*PASS * unmeasured_rate<=0.2 * 0.1  1/10 unmeasured*"])


def test_a_malformed_gate_in_the_ini_file_is_a_usage_error_pointing_at_it(pytester):
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nllmops_gates = ["pass_rate>=0.9", "latency.p95<=2kg"]\n')
    scored(pytester, [0.9])
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*llmops_gates in *pyproject.toml: bad gate 'latency.p95<=2kg': a time is given in s or ms, got 'kg'",
        "    latency.p95<=2kg",
        "                  ^",
        "  valid examples: *",
    ])


def test_gates_from_the_ini_file_apply_and_are_checked_once_under_xdist(pytester):
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nllmops_gates = ["quality.min>=0.5", "pass_rate>=1"]\n')
    scored(pytester, [0.6, 0.7, 0.4, 0.9])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    assert result.ret == 6
    output = result.stdout.str()
    assert output.count("gates: 0 passed, 2 failed") == 1
    gates = results_of(pytester)["gates"]
    assert [g["value"] for g in gates] == [pytest.approx(0.4), pytest.approx(0.75)]
    assert gates[0]["n"] == 4


def test_a_run_without_eval_cases_ignores_the_gates(pytester):
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nllmops_gates = ["pass_rate>=1"]\n')
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert "gates:" not in result.stdout.str()


def test_junit_xml_carries_each_case_verdict_and_scores(pytester):
    scored(pytester, [0.2, 0.8])
    pytester.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml")
    root = ET.parse(pytester.path / "junit.xml").getroot()
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in root.iter("testcase")
    }
    assert properties["test_quality[0.8]"] == {
        "llmops.verdict": "passed",
        "llmops.score.quality": "0.8 (pass; threshold 0.5)",
    }
    failing = properties["test_quality[0.2]"]
    assert failing["llmops.verdict"] == "failed"
    assert failing["llmops.score.quality"] == "0.2 (fail; threshold 0.5)"
    assert "quality = 0.2 (needs >= 0.5: fail)" in failing["llmops.reason"]


def test_a_failing_case_shows_the_score_and_inputs_from_the_tests_line_in_a_few_lines(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_llmops.assertions import assert_contains

        @pytest.mark.llm_eval
        def test_answer():
            assert_contains("The capital of France is Lyon.", "Paris")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    output = result.stdout.str()
    failure = output[output.index("___ test_answer ___"):output.index("=== llmops ===")]
    assert len(failure.strip().splitlines()) <= 15
    assert "assert_contains(" in failure and "Paris" in failure
    assert "pytest_llmops/" not in failure  # no frames from inside the helper


def test_a_hundred_passing_cases_print_at_most_thirty_lines_with_every_gate_visible(pytester):
    scored(pytester, [0.9] * 100)
    gates = ["pass_rate.lower>=0.9", "quality.p10>=0.5", "quality.mean>=0.8", "unmeasured_rate<=0"]
    args = ["-p", "no:cacheprovider"] + [f"--llmops-gate={g}" for g in gates]
    result = pytester.runpytest(*args)
    assert result.ret == 0
    lines = result.stdout.str().strip().splitlines()
    assert len(lines) <= 30, "\n".join(lines)
    for expression in gates:
        assert any(expression in line and "PASS" in line for line in lines)


def suite_with_gates(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("suite_a")
    pytester.path.joinpath("suite_a", "conftest.py").write_text('llmops_gates = ["quality.min>=0.5", "pass_rate>=1"]\n')
    pytester.path.joinpath("suite_a", "test_a.py").write_text(SCORED.format(values=[0.9, 0.3]))
    pytester.mkpydir("suite_b")
    pytester.path.joinpath("suite_b", "test_b.py").write_text(SCORED.format(values=[0.9]))


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_suite_declares_its_gates_in_its_conftest_scoped_to_its_folder(pytester, workers):
    suite_with_gates(pytester)
    both = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    assert both.ret == 6
    both.stdout.fnmatch_lines(["  FAIL * quality.min>=0.5 * 0.3  min over 2 scores"])
    gates = results_of(pytester)["gates"]
    assert [(g["expression"], g["scope"]) for g in gates] == [
        ("quality.min>=0.5", "suite=suite_a"), ("pass_rate>=1", "suite=suite_a")]
    assert gates[1]["detail"].startswith("1/2 passed")
    other = pytester.runpytest_subprocess("-p", "no:cacheprovider", "suite_b", *workers)
    assert other.ret == 0
    assert "gates:" not in other.stdout.str()


def test_a_test_scoped_gate_of_one_suite_ignores_a_same_named_test_in_another(pytester):
    # Both suites name their test test_quality; suite_a's gate is about suite_a's test only.
    pytester.mkpydir("suite_a")
    pytester.path.joinpath("suite_a", "conftest.py").write_text('llmops_gates = ["[test=test_quality] quality.min>=0.5"]\n')
    pytester.path.joinpath("suite_a", "test_a.py").write_text(SCORED.format(values=[0.9, 0.8]))
    pytester.mkpydir("suite_b")
    pytester.path.joinpath("suite_b", "test_b.py").write_text(SCORED.format(values=[0.9, 0.1]))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "suite_a/test_a.py::test_quality",
                                           "suite_b/test_b.py::test_quality[0.9]")
    assert result.ret == 0
    [gate] = results_of(pytester)["gates"]
    assert (gate["value"], gate["n"], gate["within"]) == (0.8, 2, "suite_a")


def test_llmops_gate_on_a_stored_run_decides_as_the_run_did(pytester, capsys):
    from pytest_llmops.cli import main

    suite_with_gates(pytester)  # suite_a: quality.min>=0.5 (fails: 0.3) and pass_rate>=1, scoped to its folder
    pytester.path.joinpath("suite_a", "conftest.py").write_text('llmops_gates = ["pass_rate>=0.5"]\n')
    pytester.path.joinpath("suite_b", "test_b.py").write_text(SCORED.format(values=[0.1, 0.2, 0.3]))
    # suite_a passes 1 of 2 (gate passes); over every case it would be 1 of 5 and fail.
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "suite_a")
    assert run.ret == 0
    capsys.readouterr()

    assert main(["gate", str(pytester.path / ".llmops" / "results.json")]) == 0
    assert "PASS       pass_rate>=0.5  = 0.5  (1/2 passed" in capsys.readouterr().out


def test_a_malformed_suite_gate_names_its_conftest(pytester):
    pytester.makeconftest('llmops_gates = ["quality.mean>>0.5"]\n')
    scored(pytester, [0.9])
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*conftest.py: llmops_gates: bad gate 'quality.mean>>0.5': expected a number*"])


def test_a_run_writes_the_html_report_the_markdown_summary_and_the_step_summary(pytester, monkeypatch):
    step_summary = pytester.path / "step_summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    scored(pytester, [0.9, 0.2])
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-gate=pass_rate>=0.5",
                                "--llmops-html=out/report.html", "--llmops-markdown=out/summary.md")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["results: .llmops/results.json   report: out/report.html   report: out/summary.md*"])
    html = (pytester.path / "out" / "report.html").read_text()
    assert "pass_rate&gt;=0.5" in html or "pass_rate>=0.5" in html
    assert "test_quality[0.2]" in html
    markdown = (pytester.path / "out" / "summary.md").read_text()
    assert "pass_rate>=0.5" in markdown
    appended = step_summary.read_text()
    assert appended.startswith("earlier step\n") and markdown.strip() in appended
