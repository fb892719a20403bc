"""Writes the report files at the end of a run: the HTML report, the Markdown summary, the GitHub step summary."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_llmops.redact import redact_text

if TYPE_CHECKING:
    from pytest_llmops.history.drift_trend import DriftPoint
    from pytest_llmops.history.store import SuiteRun
    from pytest_llmops.results.models import RunResult

#: GitHub Actions names the file of the job's step summary in this variable; Markdown appended there is shown on the run page.
STEP_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"


class ReportWriteError(OSError):
    """A report file could not be written; the message names the file and what to do.

    From ``write_outputs``: ``problems`` has one message per report that failed
    and ``written`` the paths of those that were written all the same.
    """

    def __init__(self, message: str, *, problems: list[str] | None = None, written: list[Path] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]
        self.written = written or []


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_step_summary(markdown: str) -> Path | None:
    """Append ``markdown`` to the file named by ``$GITHUB_STEP_SUMMARY``; None when the variable is unset or empty.

    GitHub expects appends: earlier steps of the job may have written their
    own summaries to the same file.
    """
    name = os.environ.get(STEP_SUMMARY_VARIABLE, "").strip()
    if not name:
        return None
    path = Path(name)
    try:
        with path.open("a", encoding="utf-8", newline="\n") as out:
            # A blank line first, so this summary never runs into the end of an earlier one.
            out.write(("\n" if path.stat().st_size else "") + markdown.rstrip("\n") + "\n")
    except OSError as error:
        raise ReportWriteError(
            f"cannot append the llmops summary to ${STEP_SUMMARY_VARIABLE}={name}: {error.strerror or error}. "
            f"Unset {STEP_SUMMARY_VARIABLE} or point it at a writable file."
        ) from error
    return path


def write_outputs(
    run: RunResult,
    *,
    html_path: Path | None,
    markdown_path: Path | None,
    step_summary: bool = True,
    history: Sequence[SuiteRun] = (),
    drift: Mapping[str, Sequence[DriftPoint]] | None = None,
) -> list[Path]:
    """Write the reports asked for and return the paths written, in order: HTML, Markdown, step summary.

    ``html_path`` and ``markdown_path`` are written atomically (replaced
    whole); with ``step_summary`` the Markdown is also appended to the file
    named by ``$GITHUB_STEP_SUMMARY`` when that variable is set. Every text is
    redacted (``pytest_llmops.redact``) as it is written. ``history`` (the suite's earlier runs) feeds
    the HTML report's history chart, ``drift`` (each drift check's windows from
    ``pytest_llmops.history.drift_trend``) its drift-over-time charts. A report that cannot
    be written does not stop the others: the ``ReportWriteError`` raised at the
    end names every one that failed.
    """
    written: list[Path] = []
    problems: list[str] = []

    def attempt(write: Callable[[], Path | None]) -> None:
        try:
            path = write()
        except ReportWriteError as error:
            problems.append(str(error))
        else:
            if path is not None:
                written.append(path)

    if html_path is not None:
        from pytest_llmops.reporting.html import render_html

        attempt(lambda: _write(Path(html_path), redact_text(render_html(run, history, drift)), "--llmops-html"))
    summary_wanted = step_summary and os.environ.get(STEP_SUMMARY_VARIABLE, "").strip()
    if markdown_path is not None or summary_wanted:
        from pytest_llmops.reporting.markdown import render_markdown

        markdown = redact_text(render_markdown(run))
        if markdown_path is not None:
            attempt(lambda: _write(Path(markdown_path), markdown, "--llmops-markdown"))
        if summary_wanted:
            attempt(lambda: append_step_summary(markdown))
    if problems:
        raise ReportWriteError("; ".join(problems), problems=problems, written=written)
    return written


def _write(path: Path, text: str, option: str) -> Path:
    try:
        write_atomic(path, text)
    except OSError as error:
        raise ReportWriteError(
            f"cannot write the report {path} (from {option}): {error.strerror or error}. "
            f"Choose a path in a writable folder."
        ) from error
    return path
