"""The end of a run never crashes and never leaves old files looking current (issue 15, items 3 and 9).

* A file that cannot be written at the end (its folder turned into a file
  during the run) is named in the summary; the summary is still printed, the
  other files are still written, and the exit status is still the run's verdict.
* A run killed with SIGKILL leaves no results, HTML or Markdown that pass for
  its own: the previous run's files were moved aside to ``NAME.previous`` as
  it started, and ``llmops results show`` says the run did not finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def test_a_results_folder_that_breaks_during_the_run_is_reported_and_the_reports_still_written(pytester):
    pytester.makepyfile(
        """
        import pathlib
        import pytest

        @pytest.mark.llm_eval
        def test_case():
            # What a clean-up step, a full disk or a mount can do while a long run is in progress.
            pathlib.Path("out").write_text("no longer a folder")
            pathlib.Path(".llmops").mkdir(exist_ok=True)
            pathlib.Path(".llmops", "baselines").write_text("no longer a folder")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-results=out/results.json",
                                "--llmops-save-baseline=main", "--llmops-html=report.html", "--llmops-markdown=report.md")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "cases: 1 (1 passed)",
        "llmops: cannot write the results file */out/results.json (--llmops-results / llmops_results): *. "
        "This run's results are not saved; choose a path in a writable folder.",
        "llmops: baseline 'main' not saved: cannot write */.llmops/baselines/main.json: *",
        "report: report.html   report: report.md",
    ])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "PASSED: 1 case passed" in (pytester.path / "report.md").read_text()
    assert (pytester.path / "report.html").read_text().startswith("<!DOCTYPE html>")


# -- a run killed with SIGKILL --------------------------------------------------------------------

#: An eval case that can be made to hang, and one that passes; "started" tells the test the run is in its case.
SUITE = """
import os
import pathlib
import time
import pytest

@pytest.mark.llm_eval
def test_case():
    pathlib.Path("started").write_text(str(os.getpid()))
    if os.environ.get("HANG_FOR_KILL"):
        time.sleep(120)
"""
OUTPUTS = ("--llmops-html=reports/llmops.html", "--llmops-markdown=reports/llmops.md")


def run_pytest(folder: Path, *, hang: bool = False) -> subprocess.Popen:
    env = {**os.environ, "HANG_FOR_KILL": "1" if hang else ""}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *OUTPUTS],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def results_show(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_llmops.cli", "results", "show"],
                          cwd=folder, capture_output=True, text=True, timeout=120)


def test_a_run_killed_with_sigkill_leaves_no_old_file_that_looks_current(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    results = tmp_path / ".llmops" / "results.json"
    html, markdown = tmp_path / "reports" / "llmops.html", tmp_path / "reports" / "llmops.md"

    first = run_pytest(tmp_path)
    assert first.wait(timeout=300) == 0, first.stdout.read()
    first_started = json.loads(results.read_text())["started_at"]
    assert html.is_file() and markdown.is_file()

    (tmp_path / "started").unlink()
    killed = run_pytest(tmp_path, hang=True)
    deadline = time.monotonic() + 300
    while not (tmp_path / "started").exists():
        assert killed.poll() is None, killed.stdout.read()
        assert time.monotonic() < deadline, "the second run never reached its test"
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL

    # Nothing at the usual places: the last complete run's files are kept, under names no reader mistakes.
    assert not results.exists() and not html.exists() and not markdown.exists()
    previous = tmp_path / ".llmops" / "results.json.previous"
    assert json.loads(previous.read_text())["started_at"] == first_started
    assert (tmp_path / "reports" / "llmops.html.previous").is_file()
    assert (tmp_path / "reports" / "llmops.md.previous").is_file()
    shown = results_show(tmp_path)
    assert shown.returncode == 2
    assert ("no results: the run that was to write them started but did not finish (it is still running, "
            "or it was killed); the previous run's results are in .llmops/results.json.previous") in shown.stderr

    # The next run that finishes writes its files and clears the set-aside ones.
    third = run_pytest(tmp_path)
    assert third.wait(timeout=300) == 0, third.stdout.read()
    assert json.loads(results.read_text())["started_at"] > first_started
    assert html.is_file() and markdown.is_file()
    assert not previous.exists() and not (tmp_path / "reports" / "llmops.html.previous").exists()
    assert results_show(tmp_path).returncode == 0


def test_a_run_without_eval_cases_leaves_the_last_results_alone(pytester):
    pytester.mkdir(".llmops")
    results = pytester.path / ".llmops" / "results.json"
    results.write_text('{"kept": true}')
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert results.read_text() == '{"kept": true}'
    assert not (pytester.path / ".llmops" / "results.json.previous").exists()


def test_a_run_stopped_before_any_eval_case_reported_puts_the_last_results_back(pytester):
    pytester.mkdir(".llmops")
    results = pytester.path / ".llmops" / "results.json"
    results.write_text('{"kept": true}')
    pytester.makepyfile(
        """
        import pytest

        def test_plain_fails_first():
            assert False

        @pytest.mark.llm_eval
        def test_case():
            pass
        """
    )
    pytester.runpytest("-p", "no:cacheprovider", "-x").assert_outcomes(failed=1)
    assert results.read_text() == '{"kept": true}'
    assert not (pytester.path / ".llmops" / "results.json.previous").exists()


def test_llmops_gate_never_excuses_an_error_of_the_suite(pytester, capsys):
    from pytest_llmops.cli import main

    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(4))
        def test_case(i):
            if i == 0:
                {}["answer"]
        """
    )
    pytester.runpytest("-p", "no:cacheprovider")
    capsys.readouterr()
    results = str(pytester.path / ".llmops" / "results.json")
    assert main(["gate", results, "--gate", "pass_rate>=0.5"]) == 1
    out = capsys.readouterr().out
    assert "PASS       pass_rate>=0.5" in out
    assert "REFUSED    1 case ended on an error of the test suite, not a failure of the model" in out
    assert "ERROR test_llmops_gate_never_excuses_an_error_of_the_suite.py::test_case[0] - KeyError: 'answer'" in out
