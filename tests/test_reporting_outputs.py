"""Writing the reports: HTML and Markdown files replaced atomically, the GitHub step summary appended."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from reporting_runs import make_run

from pytest_llmops.reporting.markdown import render_markdown
from pytest_llmops.reporting.outputs import STEP_SUMMARY_VARIABLE, ReportWriteError, write_atomic, write_outputs


@pytest.fixture
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    # The project's own CI may run under GitHub Actions; its summary file is not ours to write in these tests.
    monkeypatch.delenv(STEP_SUMMARY_VARIABLE, raising=False)


def test_both_reports_are_written_where_asked(tmp_path: Path, no_step_summary: None):
    run = make_run("failing")
    html_path = tmp_path / "reports" / "llmops.html"
    markdown_path = tmp_path / "reports" / "llmops.md"

    written = write_outputs(run, html_path=html_path, markdown_path=markdown_path)

    assert written == [html_path, markdown_path]
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert markdown_path.read_text(encoding="utf-8") == render_markdown(run)
    assert sorted(p.name for p in html_path.parent.iterdir()) == ["llmops.html", "llmops.md"]


def test_nothing_is_written_when_nothing_is_asked(tmp_path: Path, no_step_summary: None):
    assert write_outputs(make_run("passing"), html_path=None, markdown_path=None) == []
    assert list(tmp_path.iterdir()) == []


def test_the_step_summary_is_appended_after_what_earlier_steps_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("## Lint\n\nall clean\n", encoding="utf-8")
    monkeypatch.setenv(STEP_SUMMARY_VARIABLE, str(summary))
    run = make_run("regression")

    written = write_outputs(run, html_path=None, markdown_path=None)
    write_outputs(run, html_path=None, markdown_path=None)

    assert written == [summary]
    text = summary.read_text(encoding="utf-8")
    markdown = render_markdown(run).rstrip("\n")
    assert text == f"## Lint\n\nall clean\n\n{markdown}\n\n{markdown}\n"


def test_the_step_summary_is_created_when_the_file_does_not_exist_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv(STEP_SUMMARY_VARIABLE, str(summary))
    markdown_path = tmp_path / "out.md"

    written = write_outputs(make_run("passing"), html_path=None, markdown_path=markdown_path)

    assert written == [markdown_path, summary]
    assert summary.read_text(encoding="utf-8") == markdown_path.read_text(encoding="utf-8").rstrip("\n") + "\n"


def test_step_summary_false_leaves_the_summary_file_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv(STEP_SUMMARY_VARIABLE, str(summary))

    assert write_outputs(make_run("passing"), html_path=None, markdown_path=None, step_summary=False) == []
    assert not summary.exists()


def test_an_unwritable_step_summary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(STEP_SUMMARY_VARIABLE, str(tmp_path / "missing-folder" / "summary.md"))

    with pytest.raises(ReportWriteError, match=r"\$GITHUB_STEP_SUMMARY=.*missing-folder.*Unset GITHUB_STEP_SUMMARY or point it"):
        write_outputs(make_run("passing"), html_path=None, markdown_path=None)


def test_an_unwritable_report_path_names_the_option(tmp_path: Path, no_step_summary: None):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be", encoding="utf-8")

    with pytest.raises(ReportWriteError, match=r"not-a-folder/report.html \(from --llmops-html\).*writable folder"):
        write_outputs(make_run("passing"), html_path=blocker / "report.html", markdown_path=None)


def test_a_reader_of_the_old_report_never_sees_a_half_written_one(tmp_path: Path, no_step_summary: None):
    path = tmp_path / "report.html"
    write_outputs(make_run("passing"), html_path=path, markdown_path=None)
    old = path.read_text(encoding="utf-8")

    with path.open(encoding="utf-8") as reader:
        write_outputs(make_run("failing"), html_path=path, markdown_path=None)
        # The file was replaced whole: the open handle still reads the complete old report.
        assert reader.read() == old
    assert path.read_text(encoding="utf-8") != old
    assert "FAILED" in path.read_text(encoding="utf-8")


def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "report.md"
    path.write_text("the previous report\n", encoding="utf-8")

    # A lone surrogate cannot be encoded: the write fails after the temporary file was opened.
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "# new report\n" + "x" * 100_000 + "\ud800")

    assert path.read_text(encoding="utf-8") == "the previous report\n"
    assert os.listdir(tmp_path) == ["report.md"]


def test_the_report_modules_import_nothing_heavy():
    # The plugin imports write_outputs at session end; the renderers read a RunResult without importing pydantic.
    probe = (
        "import sys, pytest_llmops.reporting.outputs, pytest_llmops.reporting.markdown, pytest_llmops.reporting.html\n"
        "print(' '.join(m for m in ('pydantic', 'numpy', 'litellm', 'jinja2', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == ""


REAL_RUN = """
import pytest

@pytest.mark.llm_eval
def test_answer_mentions_the_question(llm):
    assert "refund" in llm.complete_sync("What is the refund policy?")

@pytest.mark.llm_eval
def test_answer_is_exact(llm):
    assert llm.complete_sync("Say exactly: <b>yes</b> | no") == "<b>yes</b> | no"
"""


def test_reports_of_a_real_plugin_run_read_back_from_its_results_file(
    pytester: pytest.Pytester, server, api_key: str, monkeypatch: pytest.MonkeyPatch, no_step_summary: None
):
    from pytest_llmops.results.models import read_results

    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makepyfile(REAL_RUN)
    pytester.runpytest("--llmops-model=openai/test-model", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider")
    run = read_results(pytester.path / ".llmops" / "results.json")

    html_path, markdown_path = write_outputs(run, html_path=pytester.path / "r.html", markdown_path=pytester.path / "r.md")

    markdown = markdown_path.read_text(encoding="utf-8")
    assert markdown.splitlines()[0] == "# ❌ pytest-llmops: FAILED: 1 case failed"
    assert "| passed | 1 |" in markdown and "| failed | 1 |" in markdown
    assert "`test_reports_of_a_real_plugin_run_read_back_from_its_results_file.py::test_answer_is_exact` | failed" in markdown
    html = html_path.read_text(encoding="utf-8")
    assert 'data-name="test_reports_of_a_real_plugin_run_read_back_from_its_results_file.py::test_answer_is_exact"' in html
    assert "Latency of the model under test over 2 calls" in html
    assert html.count("<script") == 1 and "<b>yes</b>" not in html
