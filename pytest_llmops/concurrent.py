"""Run ``async def`` eval tests concurrently on the session's event loop.

pytest runs one test at a time: its ``SetupState`` holds one function item set
up at a time, and each ``FixtureDef`` caches one function-scoped value. An eval
test mostly waits on a provider, so running them one by one wastes the time of
every call. This module replaces pytest's run loop (``pytest_runtestloop``)
when a run holds eligible tests, and walks the items in collection order:

* an item that is not eligible (sync, marked ``asyncio``/``anyio``, using a
  capture fixture...) goes through pytest's normal ``pytest_runtest_protocol``;
* consecutive eligible items with the same parent (module or class) and the
  same higher-scoped parameters form a *batch*. Each item of a batch is set up
  in turn with pytest's own ``call_and_report(item, "setup")``; right after,
  its entry on the setup stack and the state of its function-scoped fixtures
  (cached value, finalizers) are moved aside, so the next item gets fresh
  fixture instances while module- and session-scoped ones are shared as usual;
* each body starts as a task on the runtime's loop as soon as its item is set
  up (the loop runs only while this module drives it), at most
  ``--llmops-test-concurrency`` at a time (provider calls have their own limit,
  ``--llmops-concurrency``), each with its own case record current;
* in collection order, each item is reported as pytest would: log start, the
  setup report, the call phase through ``call_and_report`` (``pytest_pyfunc_call``
  re-raises the stored exception or returns, so tracebacks, ``makereport`` hooks
  and the llmops payloads stay right), teardown with the right ``nextitem``,
  log finish. Reporting of item *k* waits only for items up to *k*.

Standard library and pytest only: the plugin imports this at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.runner import call_and_report

from pytest_llmops.case import case_scope

#: Tests using these fixtures run serially: capture fixtures read their own test's output, which only the
#: serial path can give them; ``anyio_backend`` marks a test that anyio's plugin runs.
SERIAL_FIXTURES = frozenset({"capsys", "capsysbinary", "capfd", "capfdbinary", "caplog", "capteesys", "anyio_backend"})
#: A batch holds at most this many times ``--llmops-test-concurrency`` items (all set up at once).
BATCH_FACTOR = 4


@dataclass
class _Outcome:
    """What the body of a test did when it ran concurrently: ``error`` is ``None`` on success."""

    error: BaseException | None = None


_outcome_key = pytest.StashKey[_Outcome]()


def precomputed_call(item: pytest.Item) -> bool | None:
    """For ``pytest_pyfunc_call``: the outcome of a body that already ran concurrently.

    Returns ``True`` when it succeeded, raises its exception when it failed, and
    returns ``None`` when the item did not run here (the caller runs it).
    """
    outcome = item.stash.get(_outcome_key, None)
    if outcome is None:
        return None
    del item.stash[_outcome_key]
    error, outcome.error = outcome.error, None
    if error is not None:
        raise error
    return True


def uses_serial_fixture(item: pytest.Item) -> bool:
    return not SERIAL_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def loop_applies(config: pytest.Config, concurrency: int) -> bool:
    """Whether this process should run its own loop (else pytest's, unchanged)."""
    if concurrency <= 1 or config.option.collectonly:
        return False
    # Under xdist each worker keeps the serial path (workers already run in parallel);
    # the controller runs no tests at all.
    if hasattr(config, "workerinput") or config.pluginmanager.get_plugin("dsession") is not None:
        return False
    # Modes that step through tests one by one or never call them.
    for option in ("setuponly", "setupplan", "setupshow", "usepdb", "trace", "stepwise"):
        if config.getoption(option, False):
            return False
    return True


# -- the run loop ---------------------------------------------------------------------


def run_loop(
    session: pytest.Session,
    *,
    eligible: Callable[[pytest.Item], bool],
    body: Callable[[pytest.Item], Any],
    record_of: Callable[[pytest.Item], Any],
    runtime: Callable[[], Any],
    concurrency: int,
) -> bool | None:
    """``pytest_runtestloop``: returns ``None`` (pytest's loop runs) when no batch would form."""
    items = session.items
    flags = [isinstance(item, pytest.Function) and eligible(item) and not uses_serial_fixture(item) for item in items]
    if not any(flags[i] and flags[i + 1] and _same_batch(items[i], items[i + 1]) for i in range(len(items) - 1)):
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(
            f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} during collection"
        )
    most = max(2, BATCH_FACTOR * concurrency)
    index = 0
    while index < len(items):
        end = index + 1
        if flags[index]:
            while end < len(items) and end - index < most and flags[end] and _same_batch(items[index], items[end]):
                end += 1
        nextitem = items[end] if end < len(items) else None
        if end - index == 1:
            items[index].config.hook.pytest_runtest_protocol(item=items[index], nextitem=nextitem)
        else:
            _Batch(session, items[index:end], nextitem, body, record_of, runtime(), concurrency).run()
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        index = end
    return True


def _higher_scoped_params(item: pytest.Item) -> tuple[tuple[str, int], ...]:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ()
    scopes = getattr(callspec, "_arg2scope", {})
    return tuple(
        sorted(
            (name, index)
            for name, index in callspec.indices.items()
            if getattr(scopes.get(name), "value", "function") != "function"
        )
    )


def _same_batch(first: pytest.Item, other: pytest.Item) -> bool:
    # Same parent: no collector is set up or torn down inside a batch. Same
    # higher-scoped parameters: no module/session fixture is re-created under a live item.
    return other.parent is first.parent and _higher_scoped_params(other) == _higher_scoped_params(first)


# -- one batch ------------------------------------------------------------------------


@dataclass
class _Live:
    """An item of a batch between its setup and its teardown."""

    item: pytest.Function
    setup_report: pytest.TestReport
    stack_entry: Any
    fixtures: list[tuple[Any, Any, list[Any]]]
    outcome: _Outcome = field(default_factory=_Outcome)
    task: asyncio.Task[None] | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    done: bool = False


class _Batch:
    def __init__(
        self,
        session: pytest.Session,
        items: list[pytest.Item],
        nextitem: pytest.Item | None,
        body: Callable[[pytest.Item], Any],
        record_of: Callable[[pytest.Item], Any],
        runtime: Any,
        concurrency: int,
    ) -> None:
        self.body = body
        self.session = session
        self.config = session.config
        self.items = items
        self.nextitem = nextitem
        self.record_of = record_of
        self.runtime = runtime
        self.concurrency = concurrency
        self.live: list[_Live] = []
        #: Bodies started and not finished (waiting for a test slot or running).
        self.running = 0
        self.semaphore = asyncio.Semaphore(concurrency)
        self.progress = self.config.pluginmanager.get_plugin("llmops-progress")
        capture = self.config.getoption("capture", "no")
        self.capture = capture != "no" and self.config.pluginmanager.has_plugin("capturemanager")

    def run(self) -> None:
        try:
            with _protocol_context(self.items[0]):
                for item in self.items:
                    live = self._setup(item)  # type: ignore[arg-type]
                    self.live.append(live)
                    self._launch(live)
                for index, live in enumerate(self.live):
                    self._wait_for(live)
                    self._report(live, index)
                    if self.session.shouldfail or self.session.shouldstop:
                        break
                # A stop raised by a teardown report leaves later items set up: undo them.
                self._cancel()
                for live in self.live:
                    self._abandon(live)
        except BaseException:
            # Interrupted (Ctrl-C, pytest.exit, an internal error): stop the bodies still
            # running and undo the function-level set-up of the items not torn down.
            self._cancel()
            for live in self.live:
                if not live.done:
                    self._abandon(live)
            raise

    # -- set-up -----------------------------------------------------------------------
    def _setup(self, item: pytest.Function) -> _Live:
        if hasattr(item, "_request") and not item._request:
            item._initrequest()  # a re-run item (as pytest's own protocol allows)
        report = call_and_report(item, "setup", log=False)
        # Out of the stack and out of the fixture caches, so the next item sets up afresh.
        entry = self.session._setupstate.stack.pop(item, None)
        return _Live(item, report, entry, _set_aside(item))

    # -- running the bodies -----------------------------------------------------------
    def _launch(self, live: _Live) -> None:
        """Start a set-up item's body now, so its first request goes out while the next items set up."""
        if not live.setup_report.passed:
            return

        async def launch() -> None:
            live.item.stash[_outcome_key] = live.outcome
            live.task = asyncio.create_task(self._body(live), name=live.item.nodeid)
            await asyncio.sleep(0)  # one step: the body runs up to its first await

        with self._routing():
            self.runtime.run(launch())

    async def _body(self, live: _Live) -> None:
        item = live.item
        record = self.record_of(item)
        self.running += 1
        try:
            async with self.semaphore:
                # This task's own context: its record, its output buffers.
                _sinks.set(live)
                try:
                    with _case_scope(record):
                        # The test's coroutine as the plugin builds it (repeated when llm_eval(repeat=N) says so).
                        await self.body(item)
                except BaseException as error:  # noqa: BLE001 - re-raised in the call phase, by pytest's rules
                    live.outcome.error = error
                finally:
                    if self.progress is not None:
                        self.progress.case_finished(item.nodeid)
        finally:
            self.running -= 1

    def _wait_for(self, live: _Live) -> None:
        task = live.task
        if task is None or task.done():
            if self.running:
                # Still give the loop one turn: reporting a run of finished items back to back would
                # otherwise hold up the answers (and inflate the latency) of the bodies still running.
                with self._routing():
                    self.runtime.run(asyncio.sleep(0))
            return
        progress = self.progress

        async def wait() -> None:
            while not task.done():
                await asyncio.wait({task}, timeout=0.25 if progress is not None else None)
                if progress is not None and not task.done():
                    progress.draw()

        try:
            with self._routing():
                self.runtime.run(wait())
        finally:
            if progress is not None:
                progress.clear()

    @contextlib.contextmanager
    def _routing(self) -> Iterator[None]:
        """Send what the bodies print or log to their own item's report while the loop runs."""
        if not self.capture:
            yield
            return
        saved = sys.stdout, sys.stderr
        sys.stdout = _Router(saved[0], "stdout")  # type: ignore[assignment]
        sys.stderr = _Router(saved[1], "stderr")  # type: ignore[assignment]
        handler = _LogRouter(self.config)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            sys.stdout, sys.stderr = saved

    def _cancel(self) -> None:
        pending = [live.task for live in self.live if live.task is not None and not live.task.done()]
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(BaseException):
                self.runtime.run(asyncio.wait(pending))

    # -- reporting, in collection order ------------------------------------------------
    def _report(self, live: _Live, index: int) -> None:
        item = live.item
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        ihook.pytest_runtest_logreport(report=live.setup_report)
        _restore(live)
        if live.setup_report.passed:
            for name, lines in (("stdout", live.stdout), ("stderr", live.stderr), ("log", live.log)):
                if lines:
                    item.add_report_section("call", name, "".join(lines) if name != "log" else "\n".join(lines))
            call_and_report(item, "call", log=True)
        if _outcome_key in item.stash:  # the call phase stopped before the body's outcome was taken
            del item.stash[_outcome_key]
        nextitem = self.items[index + 1] if index + 1 < len(self.items) else self.nextitem
        if self.session.shouldfail or self.session.shouldstop:
            # As pytest does: a stopping session tears everything down. The items still
            # set up ran, but are not reported (as with -x, nothing after the stop is).
            self._cancel()
            live.fixtures = _set_aside(item)  # the others' state goes through the same FixtureDefs
            for other in self.live[index + 1 :]:
                self._abandon(other)
            _restore(live)
            nextitem = None
        if live.stack_entry is not None:
            self.session._setupstate.stack[item] = live.stack_entry
        live.done = True
        try:
            call_and_report(item, "teardown", log=True, nextitem=nextitem)
        finally:
            item._request = False
            item.funcargs = None
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)

    def _abandon(self, live: _Live) -> None:
        """Tear down an item's function-level state without reporting it (interrupts, -x)."""
        if live.done:
            return
        live.done = True
        _restore(live)
        if live.stack_entry is not None:
            finalizers = live.stack_entry[0]
            while finalizers:
                with contextlib.suppress(Exception):
                    finalizers.pop()()
        live.item._request = False
        live.item.funcargs = None


# -- function-scoped fixture state ----------------------------------------------------


def _function_fixturedefs(item: pytest.Function) -> list[Any]:
    request = getattr(item, "_request", None)
    found: dict[int, Any] = {}
    for fixturedef in getattr(request, "_fixture_defs", {}).values():
        found[id(fixturedef)] = fixturedef
    for chain in item._fixtureinfo.name2fixturedefs.values():
        for fixturedef in chain:
            found.setdefault(id(fixturedef), fixturedef)
    return [fd for fd in found.values() if fd.scope == "function"]


def _set_aside(item: pytest.Function) -> list[tuple[Any, Any, list[Any]]]:
    """Take an item's function-scoped fixture values and finalizers out of the shared ``FixtureDef``s."""
    saved = []
    for fixturedef in _function_fixturedefs(item):
        saved.append((fixturedef, fixturedef.cached_result, list(fixturedef._finalizers)))
        fixturedef.cached_result = None
        fixturedef._finalizers.clear()
    return saved


def _restore(live: _Live) -> None:
    """Put an item's function-scoped fixture state back, for its call and teardown."""
    for fixturedef, cached, finalizers in live.fixtures:
        fixturedef.cached_result = cached
        fixturedef._finalizers[:] = finalizers
    live.fixtures = []


# -- what pytest's per-item protocol wrappers set up -----------------------------------


@contextlib.contextmanager
def _protocol_context(item: pytest.Item) -> Iterator[None]:
    """Assertion-rewriting explanations and warning capture, as ``pytest_runtest_protocol`` wrappers give.

    A batch does not go through ``pytest_runtest_protocol``; without these, ``assert a == b``
    would lose its detailed diff and warnings would skip the warnings summary.
    """
    manager = item.config.pluginmanager
    with contextlib.ExitStack() as stack:
        if manager.has_plugin("warnings"):
            from _pytest.warnings import catch_warnings_for_item

            stack.enter_context(catch_warnings_for_item(item.config, ihook=item.ihook, when="runtest", item=None))
        assertion = manager.get_plugin("assertion")
        wrapper = getattr(assertion, "pytest_runtest_protocol", None)
        if wrapper is not None:
            stack.enter_context(_drive(wrapper, item))
        yield


@contextlib.contextmanager
def _drive(wrapper: Callable[..., Any], item: pytest.Item) -> Iterator[None]:
    generator = wrapper(item=item)
    next(generator)
    try:
        yield
    finally:
        with contextlib.suppress(StopIteration):
            generator.send(True)


# -- routing output and logs to the running item ---------------------------------------

_sinks: contextvars.ContextVar[_Live | None] = contextvars.ContextVar("llmops_concurrent_sink", default=None)


class _Router(io.TextIOBase):
    """A ``sys.stdout``/``sys.stderr`` that writes to the running item's buffer, else through."""

    def __init__(self, through: Any, name: str) -> None:
        self.through = through
        self.name = name

    def write(self, text: str) -> int:
        live = _sinks.get()
        if live is None:
            return self.through.write(text)
        getattr(live, self.name).append(text)
        return len(text)

    def flush(self) -> None:
        if _sinks.get() is None:
            self.through.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.through, "encoding", "utf-8")


class _LogRouter(logging.Handler):
    """Keeps the log records of the running item for its "Captured log call" section."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__()
        plugin = config.pluginmanager.get_plugin("logging-plugin")
        formatter = getattr(plugin, "formatter", None)
        if formatter is not None:
            self.setFormatter(formatter)
        level = getattr(plugin, "log_level", None)
        if level is not None:
            self.setLevel(level)

    def emit(self, record: logging.LogRecord) -> None:
        live = _sinks.get()
        if live is not None:
            live.log.append(self.format(record))


def _case_scope(record: Any) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext() if record is None else case_scope(record)
