"""The pytest face of pytest-llmops: options, the ``llm_eval`` marker, hooks.

pytest loads this module in every run of an environment where the package is
installed, so it stays inert unless used: it imports only the standard
library, pytest and the project's own light modules, opens no file and reaches
no network. The model client, the cache, pydantic and the provider SDKs load
the first time a test asks for them.

Precedence of settings: marker > command line > ini > default (see
``pytest_llmops.settings``).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from pytest_llmops import memo, redact
from pytest_llmops.case import CaseRecord, case_scope
from pytest_llmops.matrix import collect as matrix_collect
from pytest_llmops.results.collect import INTERRUPTED_REASON, CaseOutcome, case_payload
from pytest_llmops.retrieval import options as retrieval_options
from pytest_llmops.session import LLMOpsState, get_state, state_key
from pytest_llmops.settings import add_options, check_marker_args, resolve
from pytest_llmops.statedir import set_state_dir
from pytest_llmops.tracing import otlp, spans
from pytest_llmops.verdict import UnmeasuredError

#: Tests that use one of these fixtures are eval cases even without the marker.
LLMOPS_FIXTURES = frozenset({"llm", "judge", "reward_model", "prompt", "llmops_case", "llmops_trace", "llmops_otlp_receiver"})
#: Tests with one of these markers are eval cases.
EVAL_MARKERS = frozenset({"llm_eval", "llm_robust", "llm_matrix"})

MARKER_HELP = (
    "llm_eval(repeat=1, min_pass_rate=None, model=None, api_base=None, judge=None, judge_api_base=None, "
    "reward_model=None, reward_api_base=None, reward_api=None, paraphraser=None, paraphraser_api_base=None, "
    "timeout=None, deadline=None, retries=None, review=None): an LLM evaluation case. Keyword arguments override the "
    "run's settings for this test (marker > command line > ini > default)."
)

KNOWN_FAILURE_HELP = (
    "llm_known_failure(reason): a documented weakness of the model under test. The case runs and is "
    "judged as usual (a failure still counts against the pass rate); the summary lists it apart, and "
    "says so when it passes."
)


class _CaseState:
    """An eval case's state between its setup and its teardown, under one stash key.

    ``record`` is what the case measures; ``scores_sent`` and ``calls_sent`` how much
    of it earlier reports carried; ``verdict`` the verdict so far (for JUnit properties).
    One key, not one per field: an item's stash dict keeps the size it grew to for the
    whole session, and items live as long as the session.
    """

    __slots__ = ("record", "scores_sent", "calls_sent", "verdict")

    def __init__(self, record: CaseRecord) -> None:
        self.record = record
        self.scores_sent = 0
        self.calls_sent = 0
        self.verdict = CaseOutcome(record.nodeid)


_case_key = pytest.StashKey[_CaseState]()
_export_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    retrieval_options.add_options(parser)
    matrix_collect.add_options(parser)
    otlp.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", KNOWN_FAILURE_HELP)
    from pytest_llmops.robust.runner import MARKER_HELP as ROBUST_HELP

    config.addinivalue_line("markers", ROBUST_HELP)
    config.addinivalue_line("markers", matrix_collect.MARKER_HELP)
    state = config.stash[state_key] = LLMOpsState(config, resolve(config))
    state.dry_run = matrix_collect.dry_run(config)
    if state.dry_run and config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        # Each xdist worker would keep its own plan; the controller, which reports, would see none.
        raise pytest.UsageError("--llmops-dry-run counts the calls in one process: drop -n / --numprocesses "
                                "(a dry run sends nothing, so it needs no workers)")
    otlp.resolve(config)  # a bad collector URL stops the run now, not after it
    config.pluginmanager.register(_CaseCollector(state), "llmops-cases")
    # Drift baselines and other stored state live beside the cache.
    set_state_dir(config.rootpath / ".llmops")
    # Local metric values and vectors too: a warm run reads them back instead of loading models.
    mode = state.settings.record_mode
    state.memo_before = memo.configure(
        None if mode == "off" else state.settings.cache_path.with_name("computed.sqlite"), replay=mode != "all"
    )
    if state.settings.review_labels is not None:
        from pytest_llmops.review.overrides import use_labels

        use_labels(state.settings.review_labels)
    from pytest_llmops import fixtures
    from pytest_llmops.judges import fixtures as judge_fixtures
    from pytest_llmops.reporting import short_summary
    from pytest_llmops.retrieval import fixtures as retrieval_fixtures
    from pytest_llmops.testing import fixtures as server_fixtures
    from pytest_llmops.tracing import fixtures as trace_fixtures

    # Registered under their module names, so a `pytest_plugins = [...]` naming them is a no-op
    # (and one that ran first, from a conftest, is not registered twice).
    for module in (fixtures, server_fixtures, judge_fixtures, retrieval_fixtures, trace_fixtures, short_summary):
        if not config.pluginmanager.has_plugin(module.__name__):
            config.pluginmanager.register(module, module.__name__)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(state_key, None)
    if state is not None:
        state.close()
        path, replay = state.memo_before
        memo.configure(path, replay=replay)
        if state.settings.review_labels is not None:
            from pytest_llmops.review.overrides import use_labels

            use_labels(None)


def _is_eval_case(item: pytest.Item) -> bool:
    # One walk over the markers of the node chain (three get_closest_marker calls walked it three times).
    if any(mark.name in EVAL_MARKERS for mark in item.iter_markers()):
        return True
    return not LLMOPS_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    matrix_collect.raise_errors(config)
    for item in items:
        known = item.get_closest_marker("llm_known_failure")
        if known is not None:
            known_failure_reason(known, item.nodeid)  # a bad one stops the run before any call
        if item.get_closest_marker("llm_robust") is not None:
            from pytest_llmops.robust.runner import check_item

            check_item(item)
        marker = item.get_closest_marker("llm_eval")
        if marker is None:
            continue
        check_marker_args(marker.kwargs, marker.args, item.nodeid)
    shard = get_state(config).settings.shard
    if shard is not None:
        _select_shard(config, items, shard)


def _select_shard(config: pytest.Config, items: list[pytest.Item], shard: tuple[int, int]) -> None:
    """Keep the tests of shard ``i`` of ``n``, report the others as deselected (``pytest_llmops.shards``)."""
    from pytest_llmops.shards import assign, case_ids_hash, load_durations

    index, count = shard
    state = get_state(config)
    every_case = [item.nodeid for item in items if _is_eval_case(item)]
    durations, durations_hash = load_durations(state.settings.results)
    durations_from = f"results file {state.settings.results.name}" if durations else None
    if not durations and state.settings.history is not None:
        from pytest_llmops.shards import history_durations

        durations, durations_hash, durations_from = history_durations(state.settings.history, every_case)
    where = assign(every_case, count, durations)
    # Plain tests run in shard 1 only: once in all, and outside the balance of the eval cases.
    kept = [item for item in items if where.get(item.nodeid, 1) == index]
    dropped = [item for item in items if where.get(item.nodeid, 1) != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    state.shard = {
        "index": index,
        "count": count,
        "case_ids_hash": case_ids_hash(every_case),
        "cases_total": len(set(every_case)),
        "selected": sorted({item.nodeid for item in kept if _is_eval_case(item)}),
        "balanced_by": "duration" if durations else "hash",
        "durations_hash": durations_hash,
        "durations_from": durations_from,
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``llm_matrix`` run once per cell of their grid (``pytest_llmops.matrix``)."""
    matrix_collect.parametrize(metafunc)


def pytest_collection_finish(session: pytest.Session) -> None:
    _collect_suite_gates(session.config, session.items)


def _collect_suite_gates(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Gates the collected suites declare in their conftest.py (``llmops_gates = [...]``).

    Only gates with a selected test in their scope apply: running one file of a
    suite (or ``-k`` a few cases) is not refused for the gates of its other tests.
    """
    from pytest_llmops.gates.parse import GateSyntaxError
    from pytest_llmops.gates.scope import applies_to
    from pytest_llmops.gates.suites import suite_gates

    plugins = sorted(config.pluginmanager.get_plugins(), key=lambda plugin: str(getattr(plugin, "__file__", "")))
    try:
        gates = suite_gates(plugins, config.rootpath)
    except GateSyntaxError as exc:
        raise pytest.UsageError(str(exc)) from None
    selected = [(item.nodeid, [m.name for m in item.iter_markers()]) for item in items if _is_eval_case(item)]
    get_state(config).suite_gates = [gate for gate in gates if applies_to(gate, selected)]


# -- one record per eval case, current during each phase ---------------------


def _in_case(item: pytest.Item, *, start: bool = False) -> Any:
    record = _record_of(item)
    if record is None and start and _is_eval_case(item):
        record = CaseRecord(item.nodeid)
        item.stash[_case_key] = _CaseState(record)
        cell = matrix_collect.cell_of(item)
        if cell is not None:
            from pytest_llmops.matrix.cells import case_key

            # Every case records its cell, and a key shared by the same case in the other cells (for pairing).
            key = case_key(item.nodeid, item.callspec.id, cell.id)  # type: ignore[attr-defined]
            record.metadata["matrix"] = {**cell.to_dict(), "case": key}
        _plan_review(item, record)
        spans.start_root(record)
    if record is None:
        return (yield)
    with case_scope(record):
        return (yield)


def _record_of(item: pytest.Item) -> CaseRecord | None:
    """The record of an eval case between its setup and its teardown, else ``None``."""
    case = item.stash.get(_case_key, None)
    return None if case is None else case.record


def _plan_review(item: pytest.Item, record: CaseRecord) -> None:
    """With review on for this case (marker ``review=`` > ``--llmops-review-sample``), note its plan.

    Judge metrics then keep the texts they judged, and the end of the run marks the case
    for review when it is sampled or straddles a threshold (``pytest_llmops.review.select``).
    """
    marker = item.get_closest_marker("llm_eval")
    settings = get_state(item.config).settings
    rate = marker.kwargs.get("review") if marker is not None else None
    if rate is None:
        rate = settings.review_sample
    if rate is None:
        return
    from pytest_llmops.review.select import PLAN_KEY, ReviewPlan

    record.metadata[PLAN_KEY] = ReviewPlan(float(rate), settings.review_margin, settings.review_seed).to_dict()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    return (yield from _in_case(item, start=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    return (yield from _in_case(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    return (yield from _in_case(item))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Run consecutive async eval tests concurrently (see ``pytest_llmops.concurrent``), with a progress line."""
    from pytest_llmops import concurrent

    state = get_state(session.config)
    if not session.config.option.collectonly:
        from pytest_llmops.reporting import progress

        progress.install(session, state.settings.progress, _is_eval_case, state)
    if not concurrent.loop_applies(session.config, state.settings.tests_at_once):
        return None
    return concurrent.run_loop(
        session,
        eligible=runs_on_our_loop,
        body=eval_body,
        record_of=_record_of,
        runtime=state.runtime,
        concurrency=state.settings.tests_at_once,
    )


def runs_on_our_loop(item: pytest.Item) -> bool:
    """``async def`` eval tests (marked ``llm_eval`` or using an llmops fixture) run on the session's loop.

    Tests marked ``asyncio`` or ``anyio`` are left to those plugins.
    """
    if not isinstance(item, pytest.Function):
        return False
    if not inspect.iscoroutinefunction(item.obj) and not _is_robust(item):
        return False
    if not _is_eval_case(item):
        return False
    return item.get_closest_marker("asyncio") is None and item.get_closest_marker("anyio") is None


def _is_robust(item: pytest.Item) -> bool:
    if item.get_closest_marker("llm_robust") is None:
        return False
    from pytest_llmops.robust.runner import is_robust_test

    return is_robust_test(item)


def eval_body(item: pytest.Function) -> Any:
    """The test's body as pytest would call it, repeated when its marker asks for ``repeat=N``.

    For tests that run on our loop this returns a coroutine; for sync eval
    tests with a repeat plan, a callable; ``None`` when pytest's own call is right.
    """
    from pytest_llmops.repeat import plan_for, run_async, run_sync

    marker = item.get_closest_marker("llm_eval")
    plan = plan_for(dict(marker.kwargs)) if marker is not None else None
    arguments = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    state = get_state(item.config)
    cell = matrix_collect.cell_of(item)
    if plan is not None and cell is not None and cell.early_stop and not state.dry_run:
        from pytest_llmops.matrix.early_stop import stopping_plan

        plan = stopping_plan(plan, cell, state)
    # Each looks the markers up along the node chain: once per case is enough.
    robust, on_our_loop = _is_robust(item), runs_on_our_loop(item)
    if state.dry_run and robust:
        raise pytest.UsageError(
            f"{item.nodeid}: --llmops-dry-run cannot count the calls of an llm_robust test (hypothesis chooses its "
            "examples as it runs); deselect such tests with -m 'not llm_robust'"
        )
    if state.dry_run:
        from pytest_llmops.matrix.dry_run import dry_body

        return dry_body(item, arguments, on_our_loop=on_our_loop, plan=state.dry_plan)
    if robust and on_our_loop:
        from pytest_llmops.robust.runner import plan_for as robust_plan
        from pytest_llmops.robust.runner import run_robust

        if plan is not None:
            raise pytest.UsageError(f"{item.nodeid}: llm_eval(repeat=...) and llm_robust do not combine; use one")
        return run_robust(item, robust_plan(item.get_closest_marker("llm_robust"), item.nodeid), arguments)
    if on_our_loop:
        if plan is None:
            return item.obj(**arguments)
        return run_async(plan, lambda: item.obj(**arguments))
    if plan is None:
        return None
    if inspect.iscoroutinefunction(item.obj):
        raise pytest.UsageError(
            f"{item.nodeid}: llm_eval(repeat=...) runs async tests on pytest-llmops' own loop; "
            f"remove the asyncio/anyio marker from this test to repeat it"
        )
    return lambda: run_sync(plan, lambda: item.obj(**arguments))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run async eval tests on the session's loop, and repeated cases by their pass rate.

    A body that already ran concurrently (``pytest_llmops.concurrent``) gives back its outcome.
    """
    from pytest_llmops.concurrent import precomputed_call

    done = precomputed_call(pyfuncitem)
    if done is not None:
        return done
    body = eval_body(pyfuncitem)
    if body is None:
        return None
    if inspect.iscoroutine(body):
        get_state(pyfuncitem.config).runtime().run(body)
    else:
        body()
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        from pytest_llmops.concurrent import take_body_timing

        timing = take_body_timing(item)
        if timing is not None:
            # The body ran earlier, concurrently; its call phase only handed back the outcome.
            report.start, report.duration = timing
            report.stop = report.start + report.duration
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, UnmeasuredError) and report.when in ("setup", "call"):
        report.outcome = "failed"
        report.llmops_unmeasured = redact.redact_text(error.reason)
        report.longrepr = f"UNMEASURED: {report.llmops_unmeasured}"
    elif error is not None and _is_setup_problem(error) and not item.config.option.fulltrace:
        # The message names the problem and the fix; a traceback through our code adds nothing.
        report.longrepr = redact.redact_text(f"{type(error).__name__}: {error}")
    elif report.failed and report.longrepr is not None:
        _redact_longrepr(report)
    case = item.stash.get(_case_key, None)
    if case is not None:
        record = case.record
        if report.failed and error is not None and (report.when != "call" or is_suite_error(error)):
            # Outside the call, any exception is the suite's (a fixture, a teardown): so is its type.
            report.llmops_error = type(error).__name__
        # The verdict so far, for the JUnit properties: it needs the report's outcome, not its payload.
        case.verdict.absorb(report)
        # Each report carries only what the case added since the previous report.
        payload = case_payload(record, scores_from=case.scores_sent, calls_from=case.calls_sent)
        case.scores_sent += len(payload.get("scores", ()))
        case.calls_sent += len(payload.get("calls", ()))
        if report.when == "call" and report.failed and record.spans:
            from pytest_llmops.tracing.view import slowest_steps

            section = slowest_steps(record.spans)
            if section:
                report.sections.append(("llmops trace: slowest steps", section))
        if report.when == "teardown":
            # The tree travels once, whole, with the last report.
            spans.end_root(record)
            payload["spans"] = [span.to_row() for span in record.spans]
        if report.when == "setup":
            payload["markers"] = sorted({m.name for m in item.iter_markers()})
            known = item.get_closest_marker("llm_known_failure")
            if known is not None:
                payload.setdefault("metadata", {})["known_failure"] = known_failure_reason(known, item.nodeid)
        report.llmops = payload
        if report.when == "teardown":
            # pytest's JUnit XML writes the properties of the teardown report.
            report.user_properties.extend(junit_properties(case.verdict, record))
            # Everything the case measured now rides on its reports; items live for the whole
            # session, so keeping it here too would grow memory with every case.
            del item.stash[_case_key]
    return report


def known_failure_reason(marker: pytest.Mark, nodeid: str) -> str:
    """The reason of an ``llm_known_failure`` marker; a missing or empty one is a usage error."""
    reason = marker.args[0] if marker.args else marker.kwargs.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise pytest.UsageError(
            f"{nodeid}: @pytest.mark.llm_known_failure needs the weakness as a non-empty string, "
            f"e.g. llm_known_failure('answers 17: adds the pear trees')"
        )
    return reason.strip()


def _redact_longrepr(report: pytest.TestReport) -> None:
    """A failure's text goes to the terminal and the JUnit XML: a credential in it is replaced.

    The traceback keeps its structure (and colours) unless there was something to redact.
    """
    text = str(report.longrepr)
    clean = redact.redact_text(text)
    if clean != text:
        report.longrepr = clean


def junit_properties(outcome: CaseOutcome, record: CaseRecord) -> list[tuple[str, str]]:
    """The case's verdict and scores as JUnit ``<property>`` pairs, so CI systems show them (redacted)."""
    return [(name, redact.redact_text(value)) for name, value in _junit_properties(outcome, record)]


def _junit_properties(outcome: CaseOutcome, record: CaseRecord) -> list[tuple[str, str]]:
    properties = [("llmops.verdict", outcome.state)]
    if outcome.reason:
        properties.append(("llmops.reason", outcome.reason.splitlines()[0][:300]))
    seen: dict[str, int] = {}
    for score in record.scores:
        seen[score.name] = seen.get(score.name, 0) + 1
        name = score.name if seen[score.name] == 1 else f"{score.name}#{seen[score.name]}"
        value = "unmeasured" if score.value is None else f"{score.value:.6g}"
        if score.threshold is not None:
            value += f" ({score.verdict.value}; threshold {score.threshold:g})"
        properties.append((f"llmops.score.{name}", value))
    if record.calls:
        costs = [call.cost_usd for call in record.calls]
        properties.append(("llmops.calls", str(len(record.calls))))
        properties.append(("llmops.cost_usd", "unknown" if None in costs else f"{sum(costs):.6f}"))  # type: ignore[arg-type]
    return properties


def is_suite_error(error: BaseException) -> bool:
    """Whether an exception that ended a case is an error of the test suite rather than the model's failure.

    The model failed when a check of its answer failed: an ``AssertionError``
    (``assert``, ``require``, every ``assert_*`` helper) or ``pytest.fail``. An
    unmeasured check is its own verdict. Anything else (a template or cache
    error, a ``KeyError``, ``ValueError`` or ``TypeError`` in test code, a bad
    configuration) says the suite is broken, and no gate may excuse it.
    """
    return not isinstance(error, (AssertionError, UnmeasuredError, pytest.fail.Exception))


def _is_setup_problem(error: BaseException) -> bool:
    """A replay miss, an unusable cache, a bad prompt template or a missing or broken drift
    baseline: a user's setup, not a test's bug (``--fulltrace`` still shows the traceback)."""
    from pytest_llmops.models.cache import CacheError, CacheMissError

    if isinstance(error, (CacheError, CacheMissError)):
        return True
    # Only a run that loaded drift baselines can raise their error (the module needs numpy).
    baselines = sys.modules.get("pytest_llmops.drift.baseline")
    if baselines is not None and isinstance(error, baselines.BaselineError):
        return True
    return type(error).__name__ == "PromptError" and type(error).__module__.startswith("pytest_llmops.prompts")


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if getattr(report, "llmops_unmeasured", None) is not None:
        return "unmeasured", "U", ("UNMEASURED", {"yellow": True})
    if report.when == "call" and getattr(report, "llmops_error", None) is not None:
        # Counted and listed with pytest's errors ("ERROR at call of ..."), not with the failures.
        return "error", "E", ("ERROR", {"red": True})
    return None


class _CaseCollector:
    """Folds each eval case's reports into the run state.

    A plugin object rather than a module hook because ``pytest_runtest_logreport``
    is not handed the config. It runs on the controller under xdist too: the
    case's payload travels with the report.
    """

    def __init__(self, state: LLMOpsState) -> None:
        self.state = state
        #: Whether this run has set the previous run's files aside (see ``results.previous``).
        self.started = False

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.config.option.collectonly:
            return
        if any(_is_eval_case(item) for item in session.items):
            self.set_previous_aside(before_any_test=True)

    def set_previous_aside(self, *, before_any_test: bool) -> None:
        """As an eval run starts, move the last run's results and reports to ``NAME.previous``.

        Then a run killed before its end leaves no file that passes for its own.
        Before any test (no xdist) a file that cannot be moved or written is a
        usage error; under xdist the first case is already running when the
        controller hears of it, so the end of the run names the file instead.
        """
        if self.started or self.state.is_worker:
            return
        self.started = True
        from pytest_llmops.results.previous import set_aside
        from pytest_llmops.settings import OPTIONS_BY_NAME, unwritable_reason

        for name in ("results", "html", "markdown"):
            path = getattr(self.state.settings, name)
            if path is None:
                continue
            reason = unwritable_reason(path)
            if reason is None:
                try:
                    set_aside(path)
                    continue
                except OSError as exc:
                    reason = f"the file from the last run cannot be moved aside ({exc.strerror or exc})"
            if before_any_test:
                option = OPTIONS_BY_NAME[name]
                raise pytest.UsageError(
                    f"{option.flag} / {option.ini}: cannot write {path}: {reason}. Choose a path in a writable "
                    f"folder, e.g. {option.flag}={option.example}"
                )

    def restore_previous(self) -> None:
        """The run ended before any eval case reported (``-x``, a collection error): put the last files back."""
        if not self.started:
            return
        from pytest_llmops.results.previous import restore

        for name in ("results", "html", "markdown"):
            path = getattr(self.state.settings, name)
            if path is not None:
                restore(path)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, "llmops", None)
        if payload is None:
            if report.failed:
                # A failing test that is not an eval case: no gate may excuse it.
                self.state.other_failures += 1
            return
        # The xdist controller collects nothing: it learns of the run's first eval case here.
        self.set_previous_aside(before_any_test=False)
        case = self.state.outcome(report.nodeid)
        if report.when == "setup" and "markers" in payload:
            case.markers = list(payload["markers"])
        case.absorb(report)


def _case_collector(config: pytest.Config) -> _CaseCollector:
    return config.pluginmanager.get_plugin("llmops-cases")  # type: ignore[no-any-return]


# -- corpus-level metrics: one score per group of cases, computed at the end --------

_CORPUS_MODULE = "pytest_llmops.metrics._corpus"
_CORPUS_KEY = "llmops_corpus"
_GATES_KEY = "llmops_suite_gates"
_SHARD_KEY = "llmops_shard"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Controller under xdist: take in the corpus pairs and suite gates a worker collected."""
    shard = getattr(node, "workeroutput", {}).get(_SHARD_KEY)
    if shard:
        # Every worker collected the same tests, so any one's record stands for the run.
        get_state(node.config).shard = shard
    gates = getattr(node, "workeroutput", {}).get(_GATES_KEY)
    if gates:
        from pytest_llmops.gates.suites import from_wire, merge

        state = get_state(node.config)
        state.suite_gates = merge(state.suite_gates, from_wire(gates))
    exported = getattr(node, "workeroutput", {}).get(_CORPUS_KEY)
    if exported:
        from pytest_llmops.metrics._corpus import merge_corpus_state

        merge_corpus_state(exported)


def _finish_corpus_groups(session: pytest.Session, state: LLMOpsState) -> None:
    # Only a run whose tests collected corpus pairs has the module loaded.
    if _CORPUS_MODULE not in sys.modules:
        return
    corpus = sys.modules[_CORPUS_MODULE]
    if state.is_worker:
        session.config.workeroutput[_CORPUS_KEY] = corpus.export_corpus_state()  # type: ignore[attr-defined]
        return
    if state.settings.shard is not None:
        # A shard holds part of each corpus: its pairs are kept for `llmops results merge` to score whole.
        state.corpus_state = corpus.export_corpus_state()
        return
    state.group_scores = corpus.finalize_corpus_groups()
    if any(score.verdict.value != "pass" for score in state.group_scores) and session.exitstatus == 0:
        # A failing or unmeasured corpus score fails the run, even when every case passed.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    state.other_failures += sum(score.verdict.value != "pass" for score in state.group_scores)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(state_key, None)
    if state is None:
        return
    _finish_corpus_groups(session, state)
    if state.is_worker and state.shard is not None:
        session.config.workeroutput[_SHARD_KEY] = state.shard  # type: ignore[attr-defined]
    if state.is_worker and state.suite_gates:
        from pytest_llmops.gates.suites import to_wire

        session.config.workeroutput[_GATES_KEY] = to_wire(state.suite_gates)  # type: ignore[attr-defined]
    if state.is_worker:
        return
    if state.dry_run or not (state.cases or state.group_scores or state.shard):
        # A dry run sent nothing and judged nothing: the last run's files stay as they were.
        _case_collector(session.config).restore_previous()
        return
    from pytest_llmops.results.finish import finish_run

    interrupted = int(session.exitstatus) == pytest.ExitCode.INTERRUPTED
    for case in state.cases.values():
        # Set up, then cut short: without this the case would stand as passed.
        case.end_unfinished(
            INTERRUPTED_REASON if interrupted
            else "not finished: the case was set up but never reported its call"
        )
    state.end = finish_run(state, int(session.exitstatus), other_failures=state.other_failures)
    session.exitstatus = state.end.exit_status
    session.config.stash[_export_key] = otlp.export(state.cases.values(), otlp.resolve(session.config))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(state_key, None)
    if state is not None and state.dry_run:
        from pytest_llmops.matrix.dry_run import plan_lines

        terminalreporter.write_sep("=", "llmops dry run")
        for line in plan_lines(state.dry_plan):
            terminalreporter.write_line(line)
        return
    if state is None or state.end is None:
        return
    from pytest_llmops.reporting.terminal import write_summary

    write_summary(terminalreporter, state.settings, state.end, config.rootpath)
    exported = config.stash.get(_export_key, "")
    if exported:
        terminalreporter.write_line(redact.redact_text(exported), yellow="NOT" in exported or "not" in exported)
