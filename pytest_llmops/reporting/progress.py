"""A progress status for long eval runs: cases done / total, calls in flight, cost so far.

pytest's own output (dots and ``[ 40%]`` in the default mode, one line per test
with ``-v``) is left exactly as it is. The status is drawn after the last thing
pytest wrote on the current line, with the cursor moved back to where it was,
and erased (``ESC [K``) before pytest writes again; while async eval tests run
concurrently it is redrawn a few times a second. It never changes what a log
file or CI captures: ``auto`` draws only on a terminal, not in verbose mode,
not with ``-s`` (tests write to the same line) and not under xdist;
``--llmops-progress=off`` turns it off, ``on`` forces it.

Standard library and pytest only: the plugin imports this at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

PLUGIN_NAME = "llmops-progress"
#: Erase from the cursor to the end of the line.
ERASE = "\x1b[K"
#: A status shorter than this is not worth drawing.
MIN_WIDTH = 16


def wanted(config: pytest.Config, mode: str) -> bool:
    """Whether to show the status for this run, given ``--llmops-progress``."""
    if mode == "off" or hasattr(config, "workerinput"):
        return False
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return False
    if mode == "on":
        return True
    if config.pluginmanager.get_plugin("dsession") is not None or config.getoption("capture", "fd") == "no":
        return False
    return bool(reporter.isatty()) and config.get_verbosity() <= 0


def install(session: pytest.Session, mode: str, is_case: Callable[[pytest.Item], bool], state: Any) -> Progress | None:
    """Register the status for this session when ``wanted``; returns it (or ``None``)."""
    config = session.config
    if not wanted(config, mode) or config.pluginmanager.has_plugin(PLUGIN_NAME):
        return None
    cases = {item.nodeid for item in session.items if is_case(item)}
    if not cases:
        return None
    progress = Progress(config.pluginmanager.get_plugin("terminalreporter"), cases, state)
    config.pluginmanager.register(progress, PLUGIN_NAME)
    return progress


class Progress:
    """The status line; also a pytest plugin that erases and redraws it around pytest's output."""

    def __init__(self, reporter: Any, cases: set[str], state: Any) -> None:
        self.writer = reporter._tw
        self.file = getattr(self.writer, "_file", None)
        self.cases = cases
        self.done: set[str] = set()
        self.state = state
        self.drawn = False

    # -- what is shown ------------------------------------------------------------------
    def case_finished(self, nodeid: str) -> None:
        """A case's body finished (its report may come later, in collection order)."""
        if nodeid in self.cases:
            self.done.add(nodeid)

    def text(self) -> str:
        parts = [f"llmops {len(self.done)}/{len(self.cases)} cases"]
        if self.state.runtime_started:
            runtime = self.state.runtime()
            in_flight = sum(limit.in_use for limit in list(getattr(runtime, "_limits", {}).values()))
            parts.append(f"{in_flight} in flight")
            parts.append(f"{runtime.call_count} calls")
            if runtime.any_priced:
                parts.append(f"${runtime.budget.spent_usd:.4f}")
        return " | ".join(parts)

    # -- drawing ----------------------------------------------------------------------
    def draw(self) -> None:
        """Show the status after what is on the current line, cursor left where pytest expects it."""
        if self.file is None:
            return
        self.clear()
        room = self.writer.fullwidth - self.writer.width_of_current_line - 3
        if room < MIN_WIDTH:
            return
        text = f" [{self.text()}]"[:room]
        self.file.write(text + "\b" * len(text))
        self.file.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn and self.file is not None:
            self.file.write(ERASE)
            self.file.flush()
        self.drawn = False

    # -- hooks: erase before pytest writes, redraw after a test -------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self) -> None:
        self.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self) -> None:
        self.clear()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.case_finished(nodeid)
        if len(self.done) < len(self.cases):
            self.draw()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        self.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_internalerror(self) -> None:
        self.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self) -> None:
        self.clear()
