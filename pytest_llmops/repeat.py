"""Repeated cases: ``@pytest.mark.llm_eval(repeat=N, min_pass_rate=p)``.

A stochastic model or judge passes a check some of the time; one run of it
is luck. A repeated case runs its test body N times (async bodies
concurrently, sync ones in turn) on the same fixtures; each repetition is a
fresh sample (its provider calls get their own cache entries). The case
passes when the share of passing repetitions among the measured ones reaches
``min_pass_rate`` (all of them when not given). Unmeasured repetitions are
counted apart: they are neither passes nor failures, and a case whose every
repetition is unmeasured ends unmeasured. The pass rate, its Wilson interval
and the counts are recorded as the score ``repeat_pass_rate``.

Standard library only (the plugin imports it at start-up).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pytest_llmops.case import record_score, sample_scope
from pytest_llmops.verdict import Score, UnmeasuredError, hide_check_frames

# A failing check is shown from the test's line (see verdict.hide_check_frames).
__tracebackhide__ = hide_check_frames


@dataclass(frozen=True)
class RepeatPlan:
    """How often to run a case and the share of passes it needs.

    With ``stop`` (matrix early stopping), the repetitions run one after
    another; before each one after the first, ``stop()`` may end the case
    early, and ``observe(passed)`` hears each measured repetition's verdict.
    """

    repeat: int
    min_pass_rate: float | None
    stop: Callable[[], bool] | None = None
    observe: Callable[[bool], None] | None = None

    @property
    def needed(self) -> float:
        return 1.0 if self.min_pass_rate is None else self.min_pass_rate


def plan_for(marker_kwargs: dict) -> RepeatPlan | None:
    """The repeat plan of a case's ``llm_eval`` marker, or None for a plain single run."""
    repeat = int(marker_kwargs.get("repeat", 1))
    rate = marker_kwargs.get("min_pass_rate")
    if repeat == 1 and rate is None:
        return None
    return RepeatPlan(repeat=repeat, min_pass_rate=None if rate is None else float(rate))


@dataclass
class _Outcome:
    index: int
    error: BaseException | None = None

    @property
    def state(self) -> str:
        if self.error is None:
            return "passed"
        if isinstance(self.error, UnmeasuredError):
            return "unmeasured"
        return "failed"


def run_sync(plan: RepeatPlan, body: Callable[[], object]) -> None:
    """Run a sync test body ``plan.repeat`` times and settle the case on the pass rate."""
    outcomes = []
    for index in range(plan.repeat):
        if index and plan.stop is not None and plan.stop():
            break
        with sample_scope(index):
            outcomes.append(_attempt(index, body))
        if plan.observe is not None and outcomes[-1].state != "unmeasured":
            plan.observe(outcomes[-1].state == "passed")
    settle(plan, outcomes)


async def run_async(plan: RepeatPlan, body: Callable[[], Awaitable[object]]) -> None:
    """Run an async test body ``plan.repeat`` times concurrently and settle the case on the pass rate."""
    if plan.stop is not None:
        await _run_stopping(plan, body)
        return

    async def one(index: int) -> _Outcome:
        with sample_scope(index):
            try:
                await body()
            except (AssertionError, UnmeasuredError) as error:
                return _Outcome(index, error)
            return _Outcome(index)

    # Each repetition in its own copy of the context, so their sample indices do not mix.
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(one(i), context=contextvars.copy_context()) for i in range(plan.repeat)]
    try:
        outcomes = list(await asyncio.gather(*tasks))
    except BaseException:
        # A bug in one repetition ends the case; the others must not run on after it.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    settle(plan, outcomes)


async def _run_stopping(plan: RepeatPlan, body: Callable[[], Awaitable[object]]) -> None:
    """Repetitions one after another, asking ``plan.stop()`` before each one after the first."""
    assert plan.stop is not None
    outcomes: list[_Outcome] = []
    for index in range(plan.repeat):
        if index and plan.stop():
            break
        with sample_scope(index):
            try:
                await body()
                outcome = _Outcome(index)
            except (AssertionError, UnmeasuredError) as error:
                outcome = _Outcome(index, error)
        outcomes.append(outcome)
        if plan.observe is not None and outcome.state != "unmeasured":
            plan.observe(outcome.state == "passed")
    settle(plan, outcomes)


def _attempt(index: int, body: Callable[[], object]) -> _Outcome:
    try:
        body()
    except (AssertionError, UnmeasuredError) as error:
        return _Outcome(index, error)
    return _Outcome(index)


def settle(plan: RepeatPlan, outcomes: list[_Outcome]) -> None:
    """Record the pass-rate score and raise the case's verdict.

    Only assertion failures and unmeasured checks count as a repetition's
    verdict; any other exception is a bug in the test and propagates at once
    (from the repetition that raised it), as it would without ``repeat``.
    """
    from pytest_llmops.results.stats import wilson_interval

    passed = sum(o.state == "passed" for o in outcomes)
    failed = [o for o in outcomes if o.state == "failed"]
    unmeasured = [o for o in outcomes if o.state == "unmeasured"]
    measured = passed + len(failed)
    saved = plan.repeat - len(outcomes)
    counts = f"{passed} passed, {len(failed)} failed, {len(unmeasured)} unmeasured of {plan.repeat} repetitions"
    if saved:
        counts = (f"{passed} passed, {len(failed)} failed, {len(unmeasured)} unmeasured of {len(outcomes)} repetitions "
                  f"({saved} of {plan.repeat} saved: the matrix cell was already decided)")
    if measured == 0:
        first = unmeasured[0].error
        score = record_score(Score.unmeasured("repeat_pass_rate", f"every repetition was unmeasured; first: {first}"))
        raise UnmeasuredError(f"{counts}; first reason: {first}", score=score)
    low, high = wilson_interval(passed, measured)
    score = record_score(
        Score.measured(
            "repeat_pass_rate",
            passed / measured,
            threshold=plan.needed,
            reason=f"{counts}; Wilson 95% interval [{low:.3f}, {high:.3f}]",
            signature=f"repeat={plan.repeat}|min_pass_rate={plan.needed:g}|unmeasured excluded",
            details={"passed": passed, "failed": len(failed), "unmeasured": len(unmeasured), "repeat": plan.repeat,
                     "wilson_low": low, "wilson_high": high,
                     # Early stopping (llm_matrix(early_stop=True)) says how many repetitions it saved.
                     **({"ran": len(outcomes), "saved": saved} if plan.stop is not None else {})},
        )
    )
    if score.passed:
        return
    first = failed[0]
    raise AssertionError(
        f"pass rate {passed}/{measured} = {passed / measured:.3f} is below min_pass_rate {plan.needed:g} "
        f"({counts}; unmeasured not counted)\nfirst failing repetition (#{first.index}): {first.error}"
    )
