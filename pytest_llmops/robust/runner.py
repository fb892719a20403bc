"""Run ``@pytest.mark.llm_robust`` tests: hypothesis properties whose body is an ``async def`` eval case.

Hypothesis calls its test synchronously, and an ``llm`` client lives on the
plugin's event loop, so the engine runs in a worker thread and each example's
coroutine is sent to the loop (``run_coroutine_threadsafe``); other eval cases
keep running there meanwhile. Two passes:

1. **count**: up to ``max_examples`` distinct examples (explicit, stored,
   generated and targeted ones), every one run to its end: a broken example
   is recorded, not raised, so the attack success rate is counted on a full
   sample rather than stopped at the first failure;
2. **shrink** (only when the case fails): hypothesis runs again with the same
   seed, meets the first broken example again (a replay from the call cache,
   so free), shrinks it, and saves the minimal one in the example database
   under ``.llmops/hypothesis``, where the next run tries it first.

The failure message shows the original input, the minimal breaking one, the
edits between them, the answers and the failed check.

A drawn value that only a model can finish (a paraphrase, a translation: it
has an ``llmops_resolve(client)`` coroutine) is resolved in the example's task
on the loop, by the ``llmops_paraphraser`` client, before the body runs; a
failed or invalid answer makes the example unmeasured.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_llmops.case import current_case, record_score
from pytest_llmops.robust import _probe
from pytest_llmops.robust.asr import ASR, Tally
from pytest_llmops.verdict import Score, UnmeasuredError, hide_check_frames

__tracebackhide__ = hide_check_frames

MARKER = "llm_robust"
MARKER_HELP = (
    "llm_robust(max_examples=25, deadline=None, max_asr=None, seed=None): a hypothesis property "
    "(@given) over an async eval case, run on pytest-llmops' loop; deadline is seconds per example; the case fails "
    "when an example breaks it (or, with max_asr, when the attack success rate exceeds max_asr)."
)
_ALLOWED = ("max_examples", "deadline", "max_asr", "seed")
#: Serialises the runs of one test function (hypothesis keeps its settings on the function object);
#: per event loop, as an asyncio lock belongs to one loop.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Lock]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class RobustPlan:
    max_examples: int = 25
    deadline: float | None = None
    max_asr: float | None = None
    seed: int | None = None


def plan_for(marker: pytest.Mark, nodeid: str) -> RobustPlan:
    """The plan of a test's ``llm_robust`` marker; a bad argument is a usage error naming the test."""
    def bad(problem: str) -> pytest.UsageError:
        return pytest.UsageError(
            f"{nodeid}: @pytest.mark.llm_robust {problem}; e.g. @pytest.mark.llm_robust(max_examples=25, deadline=30)"
        )

    if marker.args:
        raise bad("takes keyword arguments only")
    unknown = sorted(set(marker.kwargs) - set(_ALLOWED))
    if unknown:
        raise bad(f"got unknown argument(s) {', '.join(unknown)} (allowed: {', '.join(_ALLOWED)})")
    kwargs = marker.kwargs
    examples = kwargs.get("max_examples", 25)
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise bad(f"max_examples={examples!r}: give a whole number of 1 or more")
    deadline = kwargs.get("deadline")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not deadline > 0
                                 or deadline != deadline or deadline == float("inf")):
        raise bad(f"deadline={deadline!r}: give finite seconds above 0 per example, or None for no limit")
    max_asr = kwargs.get("max_asr")
    if max_asr is not None and (isinstance(max_asr, bool) or not isinstance(max_asr, (int, float)) or not 0 <= max_asr <= 1):
        raise bad(f"max_asr={max_asr!r}: give a rate between 0 and 1")
    seed = kwargs.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad(f"seed={seed!r}: give a whole number")
    return RobustPlan(examples, None if deadline is None else float(deadline),
                      None if max_asr is None else float(max_asr), seed)


def is_robust_test(item: pytest.Item) -> bool:
    """An ``llm_robust`` test whose ``@given`` wraps an ``async def`` body."""
    if item.get_closest_marker(MARKER) is None:
        return False
    inner = getattr(getattr(getattr(item, "obj", None), "hypothesis", None), "inner_test", None)
    return inner is not None and (inspect.iscoroutinefunction(inner) or getattr(inner, "_llmops_async", None) is not None)


def check_item(item: pytest.Item) -> None:
    """At collection: the marker's arguments, and a body hypothesis and the loop can run."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return
    plan_for(marker, item.nodeid)
    if not is_robust_test(item):
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.llm_robust needs an `async def` test under hypothesis' @given, e.g.\n"
            "    @pytest.mark.llm_robust(max_examples=25)\n"
            "    @given(question=perturbations('What is the capital of France?'))\n"
            "    async def test_capital(llm, question): ..."
        )
    from hypothesis import HealthCheck, settings

    wrapped = item.obj
    current = getattr(wrapped, "_hypothesis_internal_use_settings", None)
    # Fixtures are shared by the examples on purpose (the llm client), and model calls are slow:
    # both are expected here. The pytest-side health check reads these settings, so they stay.
    wrapped._hypothesis_internal_use_settings = settings(
        current, suppress_health_check=[*(current.suppress_health_check if current else ()),
                                        HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                        HealthCheck.differing_executors],
    )


def _strategy_of(kwargs: dict[str, Any]) -> str:
    names = [str(getattr(value, "strategy")) for value in kwargs.values() if hasattr(value, "strategy")]
    return "+".join(names) or "examples"


def _describe(kwargs: dict[str, Any], probe: _probe.Probe | None, error: BaseException) -> list[str]:
    lines = []
    for name, value in kwargs.items():
        original = getattr(value, "original", None)
        if original is not None:
            lines += [f"  {name} original: {original!r}", f"  {name} breaking: {str(value)!r}",
                      f"  {name} edits:    {value.describe()}"]
        elif hasattr(value, "carrier"):
            lines += [f"  {name}: {value.strategy} (payload {value.payload!r})", f"  {name} carrier: {value.carrier!r}"]
        else:
            lines.append(f"  {name}: {value!r}")
    for answer in (probe.answers if probe else []):
        lines.append(f"  answer: {answer!r}")
    for text in (probe.notes if probe else []):
        lines.append(f"  note: {text}")
    lines.append(f"  check: {type(error).__name__}: {error}")
    return lines


async def run_robust(item: pytest.Function, plan: RobustPlan, arguments: dict[str, Any]) -> None:
    """The body of an ``llm_robust`` test (see the module docstring)."""
    from datetime import timedelta

    import hypothesis
    from hypothesis import Phase, settings
    from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase
    from hypothesis.errors import DeadlineExceeded

    from pytest_llmops.statedir import configured_state_dir

    wrapped = item.obj
    inner = getattr(wrapped.hypothesis.inner_test, "_llmops_async", wrapped.hypothesis.inner_test)
    loop = asyncio.get_running_loop()
    tally = Tally()
    failures: list[tuple[dict[str, Any], _probe.Probe, BaseException]] = []
    unmeasured: list[UnmeasuredError] = []
    unmade: list[UnmeasuredError] = []  # examples whose paraphrase or translation the model could not make

    paraphraser: list[Any] = []  # built on first use, for the tests that draw model-written values

    def paraphraser_client() -> Any:
        if not paraphraser:
            from pytest_llmops.fixtures import role_client

            paraphraser.append(role_client(item.config, item, "paraphraser"))
        return paraphraser[0]

    async def example(args: tuple[Any, ...], kwargs: dict[str, Any], probe: _probe.Probe) -> None:
        _probe.bind(probe)  # the task has its own context: this binding ends with it
        resolved = dict(kwargs)
        for name, value in kwargs.items():
            resolve = getattr(value, "llmops_resolve", None)
            if name not in arguments and resolve is not None:
                try:
                    resolved[name] = await resolve(paraphraser_client())
                except UnmeasuredError as exc:
                    unmade.append(exc)
                    raise
        probe.resolved = resolved
        await inner(*args, **resolved)

    def make_inner(counting: bool, tallied: bool = True) -> Any:
        def sync_inner(*args: Any, **kwargs: Any) -> None:
            probe = _probe.Probe()
            future = asyncio.run_coroutine_threadsafe(example(args, kwargs, probe), loop)
            error: BaseException | None = None
            try:
                future.result()
            except (AssertionError, pytest.fail.Exception) as exc:
                error = exc
            except UnmeasuredError as exc:
                if not counting:
                    # Neither a break nor a pass: shrinking must not move toward it, nor stop on it.
                    hypothesis.reject()
                unmeasured.append(exc)
                return
            finally:
                # In hypothesis' own thread, where its build context is.
                for label, value in probe.targets.items():
                    hypothesis.target(value, label=label)
                for text in probe.notes:
                    hypothesis.note(text)
            shown = probe.resolved if probe.resolved is not None else kwargs
            drawn = {name: value for name, value in shown.items() if name not in arguments}  # not the fixtures
            if counting and tallied:
                tally.add(_strategy_of(drawn), repr(sorted(drawn.items())), error is not None)
            if error is not None:
                failures.append((drawn, probe, error))
                if not counting:
                    raise error

        sync_inner._llmops_async = inner  # type: ignore[attr-defined]
        return sync_inner

    state = configured_state_dir() or Path(".llmops")
    base = wrapped._hypothesis_internal_use_settings
    database = DirectoryBasedExampleDatabase(str(state / "hypothesis"))
    common = dict(
        max_examples=plan.max_examples,
        deadline=None if plan.deadline is None else timedelta(seconds=plan.deadline),
        derandomize=False,
        report_multiple_bugs=False,
        print_blob=False,
    )
    seed = plan.seed if plan.seed is not None else int.from_bytes(hashlib.sha256(item.nodeid.encode()).digest()[:8], "big")
    key = hashlib.sha256(f"pytest-llmops|{item.nodeid}".encode()).digest()

    def run_pass(counting: bool, phases: tuple[Any, ...], tallied: bool = True) -> None:
        wrapped.hypothesis.inner_test = make_inner(counting, tallied)
        # The counting pass only reads the database: examples it stored (hypothesis keeps the best ones
        # of each target) would change what the next run generates, and so cost new calls.
        store = ReadOnlyDatabase(database) if counting else database
        wrapped._hypothesis_internal_use_settings = settings(base, phases=phases, database=store, **common)
        wrapped._hypothesis_internal_use_seed = seed  # same examples in the same order on every pass and run
        wrapped._hypothesis_internal_database_key = key
        try:
            wrapped(**arguments)
        finally:
            wrapped.hypothesis.inner_test = inner
            wrapped._hypothesis_internal_use_settings = base
            wrapped._hypothesis_internal_use_seed = None

    record = current_case()
    first_score = len(record.scores) if record is not None else 0

    def drop_example_scores() -> None:
        # Each example's checks record scores; the case keeps their summary (robust.asr*) instead, so a
        # gate over a check's score is not skewed by how many examples (and shrink steps) ran.
        if record is not None:
            with record._lock:
                del record.scores[first_score:]

    lock = _locks.setdefault(loop, {}).setdefault(id(wrapped), asyncio.Lock())
    async with lock:
        try:
            # The minimal examples stored by earlier runs first, apart: replaying them must not shift
            # the seeded examples generated next (which the call cache then answers for free).
            if next(iter(database.fetch(key)), None) is not None:
                await asyncio.to_thread(run_pass, True, (Phase.reuse,), False)
            replayed = len(failures)
            await asyncio.to_thread(run_pass, True, (Phase.explicit, Phase.generate, Phase.target))
        except DeadlineExceeded as exc:
            raise AssertionError(f"llm_robust: an example ran past deadline={plan.deadline:g}s: {exc}") from None
        broken, trials = tally.total()
        drop_example_scores()
        failing = trials > 0 and (broken + replayed > 0 if plan.max_asr is None else broken / trials > plan.max_asr)
        if unmade and not failing:
            # The strategy asked for model-written inputs: passing on the others alone would be a silent pass.
            reason = (f"llm_robust: the paraphraser could not make {len(unmade)} example(s) (their model-written "
                      f"paraphrase or translation); first: {unmade[0]}")
            record_score(Score.unmeasured(ASR, reason))
            raise UnmeasuredError(reason)
        for score in tally.scores(plan.max_asr):
            record_score(score)
        if trials == 0:
            first = unmeasured[0] if unmeasured else "no example ran"
            raise UnmeasuredError(f"llm_robust: every example was unmeasured; first: {first}")
        if not failing:
            return
        first = failures[0]
        del failures[:]
        try:
            await asyncio.to_thread(run_pass, False, (Phase.explicit, Phase.reuse, Phase.generate, Phase.target,
                                                      Phase.shrink))
        except (AssertionError, pytest.fail.Exception):
            pass
        except DeadlineExceeded:
            pass
        finally:
            if record is not None:
                with record._lock:
                    kept = [s for s in record.scores[first_score:] if s.name == ASR or s.name.startswith(ASR + ".")]
                    record.scores[first_score:] = kept
    kwargs, probe, error = failures[-1] if failures else first
    how = "hypothesis shrank it to" if failures else "not reproduced on the shrinking pass (a nondeterministic model?); first one"
    rate = f"attack success rate {broken / trials:.3f}" + ("" if plan.max_asr is None else f" > max_asr {plan.max_asr:g}")
    again = f"; {replayed} stored example(s) from .llmops/hypothesis broke it again" if replayed else ""
    lines = [f"llm_robust: {broken} of {trials} distinct examples broke the model ({rate}){again}; "
             f"{how}:", *_describe(kwargs, probe, error)]
    if unmeasured:
        lines.append(f"  ({len(unmeasured)} unmeasured examples not counted)")
    raise AssertionError("\n".join(lines))


