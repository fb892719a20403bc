"""Unmeasured tests in pytest's "short test summary info", with their reasons.

pytest lists the reports of its own categories there (``-r`` chars ``fEsxXp``);
an unmeasured test is a category of this plugin, so pytest would print only
``U`` and "1 unmeasured". This plugin module adds one line per unmeasured test,
``UNMEASURED nodeid - reason``, right after pytest's own lines, when ``-r``
asks for failures (``f``, the default ``fE``, ``a``, ``A``), skips (``s``) or
for unmeasured tests alone (``u``). ``-rN`` shows none. Standard library and
pytest only: the plugin registers it at start-up.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator

import pytest

#: ``-r`` characters that list unmeasured tests (after pytest expands ``a`` and ``A``).
REPORT_CHARS = frozenset("fsu")
#: Characters of a reason kept however narrow the terminal.
MIN_REASON = 20
#: What pytest's short summary lists for each of its ``-r`` characters (``_pytest/terminal.py``).
_PYTEST_STATS = {"f": "failed", "E": "error", "s": "skipped", "x": "xfailed", "X": "xpassed", "p": "passed"}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None, None, None]:
    # The outermost wrapper: what follows the yield runs after pytest wrote its short summary.
    try:
        return (yield)
    finally:
        _write_unmeasured(terminalreporter)


def _write_unmeasured(terminal: pytest.TerminalReporter) -> None:
    chars = set(terminal.reportchars)
    reports = [r for r in terminal.stats.get("unmeasured", []) if getattr(r, "llmops_unmeasured", None) is not None]
    if not reports or not chars & REPORT_CHARS or terminal.config.option.no_summary:
        return
    if not any(terminal.stats.get(_PYTEST_STATS[c]) for c in chars if c in _PYTEST_STATS):
        # pytest had nothing to list, so it wrote no header: ours starts the section.
        terminal.write_sep("=", "short test summary info", cyan=True, bold=True)
    # Like pytest's lines: cut to the terminal's width unless -vv or on CI.
    full = terminal.config.get_verbosity() >= 2 or bool(os.environ.get("CI"))
    width = shutil.get_terminal_size().columns
    for report in reports:
        where = report.nodeid if report.when == "call" else f"at {report.when} of {report.nodeid}"
        lines = str(report.llmops_unmeasured).strip().splitlines()
        reason = lines[0] if lines else "(no reason recorded)"
        room = max(width - len(f"UNMEASURED {where} - "), MIN_REASON)
        if not full and len(reason) > room:
            reason = reason[: room - 3].rstrip() + "..."
        terminal.write_line(f"UNMEASURED {where} - {reason}", yellow=True)
