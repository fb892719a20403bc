"""Run ``async def`` eval tests concurrently on the session's event loop.

pytest runs one test at a time: its ``SetupState`` holds one function item set
up at a time, and each ``FixtureDef`` caches one function-scoped value. An eval
test mostly waits on a provider, so running them one by one wastes the time of
every call. This module replaces pytest's run loop (``pytest_runtestloop``)
when a run holds eligible tests, and walks the items in collection order:

* an item that is not eligible (sync, marked ``asyncio``/``anyio``, using a
  capture fixture...) goes through pytest's normal ``pytest_runtest_protocol``;
* consecutive eligible items with the same parent (module or class) and the
  same higher-scoped parameters form a *batch*, run as a pipeline: items are
  set up ahead of the one being reported, at most a window of
  ``WINDOW_FACTOR`` x ``--llmops-test-concurrency`` at a time, and each report
  frees room for the next set-up, so the test slots stay busy from the first
  item of a batch to its last. Each item is set up with pytest's own
  ``call_and_report(item, "setup")``; right after,
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

Between any two of these steps the loop runs until it has nothing left to do
but wait on the network (``_drain``), so answers are read and the next
requests go out while pytest sets up and reports; each body's own time (from
its test slot to its end) is its call phase's ``duration``.

Standard library and pytest only: the plugin imports this at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import io
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.runner import call_and_report

from pytest_llmops.case import case_scope

#: Tests using these fixtures run serially: capture fixtures read their own test's output, which only the
#: serial path can give them; ``anyio_backend`` marks a test that anyio's plugin runs.
SERIAL_FIXTURES = frozenset({"capsys", "capsysbinary", "capfd", "capfdbinary", "caplog", "capteesys", "anyio_backend"})
#: Items set up but not yet reported, as a multiple of ``--llmops-test-concurrency``: enough that
#: bodies are waiting for every test slot that frees while earlier items are reported.
WINDOW_FACTOR = 4
#: Most loop turns one ``_drain`` gives (each turn runs every callback that is ready).
DRAIN_TURNS = 32
#: The garbage collector's thresholds while the run loop runs (Python's default is 700, 10, 10).
#: A case allocates ~120 tracked objects; at the default a young collection runs every ~6 cases
#: and the full ones walk every object of the session. See ``_collect_less``.
GC_THRESHOLDS = (5000, 5, 10)


@dataclass(slots=True)
class _Outcome:
    """What the body of a test did when it ran concurrently: ``error`` is ``None`` on success.

    ``started`` (epoch seconds) and ``duration_s`` are the body's own run, from taking its
    test slot to its end, so a case's time is not the ~0 s of re-raising its outcome.
    ``taken`` says the call phase has handed the outcome back (``precomputed_call``); the
    timing stays on the item until its call report takes it (``take_body_timing``).
    """

    error: BaseException | None = None
    started: float | None = None
    duration_s: float | None = None
    taken: bool = False


#: One key for the outcome and its timing: an item's stash dict keeps the size it grew to.
_outcome_key = pytest.StashKey[_Outcome]()


def precomputed_call(item: pytest.Item) -> bool | None:
    """For ``pytest_pyfunc_call``: the outcome of a body that already ran concurrently.

    Returns ``True`` when it succeeded, raises its exception when it failed, and
    returns ``None`` when the item did not run here (the caller runs it).
    """
    outcome = item.stash.get(_outcome_key, None)
    if outcome is None or outcome.taken:
        return None
    outcome.taken = True
    error, outcome.error = outcome.error, None
    if error is not None:
        raise error
    return True


def take_body_timing(item: pytest.Item) -> tuple[float, float] | None:
    """``(start, duration)`` of a body that ran concurrently, for its call report; ``None`` otherwise."""
    outcome = item.stash.get(_outcome_key, None)
    if outcome is None:
        return None
    del item.stash[_outcome_key]
    if outcome.started is None or outcome.duration_s is None:
        return None
    return outcome.started, outcome.duration_s


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
    with _collect_less():
        _run_items(session, items, flags, body, record_of, runtime, concurrency)
    return True


def _run_items(
    session: pytest.Session,
    items: list[pytest.Item],
    flags: list[bool],
    body: Callable[[pytest.Item], Any],
    record_of: Callable[[pytest.Item], Any],
    runtime: Callable[[], Any],
    concurrency: int,
) -> None:
    index = 0
    while index < len(items):
        end = index + 1
        if flags[index]:
            while end < len(items) and flags[end] and _same_batch(items[index], items[end]):
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


@contextlib.contextmanager
def _collect_less() -> Iterator[None]:
    """Fewer, cheaper garbage collections while the items run; the previous settings after.

    What exists when the loop starts (modules, the collected items, fixtures) lives
    for the session: ``gc.freeze`` keeps the collector from walking it again and again
    (a full collection took ~50 ms at 1,000 cases, on the loop the calls run on), and
    young collections run less often. Cycles made during the run are still collected;
    what was frozen goes back to the collector when the loop ends.
    """
    before = gc.get_threshold()
    # A suite that turned the collector off (or tuned it higher) keeps its choice.
    tuned = gc.isenabled() and 0 < before[0] < GC_THRESHOLDS[0]
    # Frozen by someone else already: unfreezing at the end would undo their freeze too.
    freeze = tuned and gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    if tuned:
        gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        if tuned:
            gc.set_threshold(*before)
        if freeze:
            gc.unfreeze()


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
    """The items of one batch, set up, run and reported as a pipeline (see the module docstring)."""

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
        self.window = max(2, WINDOW_FACTOR * concurrency)
        #: One entry per item set up so far; ``None`` once reported (its state is not kept).
        self.live: list[_Live | None] = []
        #: Bodies launched and not finished (not started yet, waiting for a test slot, or running).
        self.running = 0
        self.semaphore = asyncio.Semaphore(concurrency)
        self.progress = self.config.pluginmanager.get_plugin("llmops-progress")
        capture = self.config.getoption("capture", "no")
        self.capture = capture != "no" and self.config.pluginmanager.has_plugin("capturemanager")
        #: One handler for the batch, added to the root logger only while the loop runs.
        self.log_router = _LogRouter(self.config) if self.capture else None

    def run(self) -> None:
        try:
            with _protocol_context(self.items[0]):
                for index in range(len(self.items)):
                    self._fill(index)
                    live = self.live[index]
                    assert live is not None
                    self._wait_for(live)
                    self._report(live, index)
                    self.live[index] = None
                    if self.session.shouldfail or self.session.shouldstop:
                        break
                # A stop raised by a teardown report leaves later items set up: undo them.
                self._cancel()
                for live in self._pending():
                    self._abandon(live)
        except BaseException:
            # Interrupted (Ctrl-C, pytest.exit, an internal error): stop the bodies still
            # running and undo the function-level set-up of the items not torn down.
            self._cancel()
            for live in self._pending():
                self._abandon(live)
            raise

    def _pending(self) -> list[_Live]:
        return [live for live in self.live if live is not None and not live.done]

    def _fill(self, reported: int) -> None:
        """Set up (and start) items until the window ahead of item ``reported`` is full."""
        while len(self.live) < len(self.items) and len(self.live) - reported < self.window:
            live = self._setup(self.items[len(self.live)])  # type: ignore[arg-type]
            self.live.append(live)
            self._launch(live)

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
        """Start a set-up item's body, so its first request goes out while the next items set up.

        With a test slot free the loop runs now, and the body up to its first wait on the
        network. With every slot taken the body would only queue for one: its task is made
        without running the loop, and starts (in launch order) in the next turn that frees
        a slot, saving a pass of the loop per item while the pipeline is full.
        """
        if not live.setup_report.passed:
            self._turn()
            return
        live.item.stash[_outcome_key] = live.outcome
        if self.running >= self.concurrency:
            self._start(live)
            return

        async def launch() -> None:
            self._start(live)
            await _drain()  # the body runs up to its first wait on the network, and others move on

        with self._routing():
            self.runtime.step(launch())

    def _start(self, live: _Live) -> None:
        live.task = self.runtime.loop().create_task(self._body(live), name=live.item.nodeid)
        # Counted from its start to its end, started or not (a task cancelled unstarted never runs ``_body``).
        self.running += 1
        live.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.running -= 1

    async def _body(self, live: _Live) -> None:
        item = live.item
        record = self.record_of(item)
        async with self.semaphore:
            # This task's own context: its record, its output buffers.
            _sinks.set(live)
            live.outcome.started = time.time()
            started = time.perf_counter()
            try:
                with _case_scope(record):
                    # The test's coroutine as the plugin builds it (repeated when llm_eval(repeat=N) says so).
                    await self.body(item)
            except BaseException as error:  # noqa: BLE001 - re-raised in the call phase, by pytest's rules
                live.outcome.error = error
            finally:
                live.outcome.duration_s = time.perf_counter() - started
                if self.progress is not None:
                    self.progress.case_finished(item.nodeid)

    def _turn(self) -> None:
        """Let the bodies still running move on (read answers, send requests) before pytest works again."""
        if self.running:
            with self._routing():
                self.runtime.step(_drain())

    def _wait_for(self, live: _Live) -> None:
        task = live.task
        if task is None or task.done():
            # Reporting a run of finished items back to back would otherwise hold up the
            # answers (and inflate the latency) of the bodies still running.
            self._turn()
            return
        progress = self.progress

        async def wait() -> None:
            while not task.done():
                await asyncio.wait({task}, timeout=0.25 if progress is not None else None)
                if progress is not None and not task.done():
                    progress.draw()

        try:
            with self._routing():
                self.runtime.step(wait())
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
        handler = self.log_router
        assert handler is not None
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            sys.stdout, sys.stderr = saved

    def _cancel(self) -> None:
        pending = [live.task for live in self.live if live is not None and live.task is not None and not live.task.done()]
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
        if _outcome_key in item.stash:  # the call report did not take the body's outcome and timing
            del item.stash[_outcome_key]
        nextitem = self.items[index + 1] if index + 1 < len(self.items) else self.nextitem
        if self.session.shouldfail or self.session.shouldstop:
            # As pytest does: a stopping session tears everything down. The items still
            # set up ran, but are not reported (as with -x, nothing after the stop is).
            self._cancel()
            live.fixtures = _set_aside(item)  # the others' state goes through the same FixtureDefs
            for other in self.live[index + 1 :]:
                if other is not None:
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


async def _drain() -> None:
    """Run the loop until only waits on the network (and timers) are left, at most ``DRAIN_TURNS`` turns.

    One turn (``sleep(0)``) polls the sockets once and runs what is ready; an answer
    takes a few turns to reach its test (read, parse, resume), a new request a few to
    go out. ``_ready`` is the loop's queue of runnable callbacks (asyncio's own loop).
    """
    loop = asyncio.get_running_loop()
    for _ in range(DRAIN_TURNS):
        await asyncio.sleep(0)
        if not getattr(loop, "_ready", None):
            return


def _case_scope(record: Any) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext() if record is None else case_scope(record)
