"""What one eval case records while it runs: scores, provider calls, prompts.

The plugin opens a ``CaseRecord`` around each test and makes it current
through a context variable, so code deep inside a test (an ``assert_*``
helper, the model client) can attach what it measured without being handed a
fixture. Context variables follow asyncio tasks, so concurrent async cases
each see their own record.

Standard library only: the plugin imports this at start-up.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_llmops.verdict import Score, UnmeasuredError, Verdict, hide_check_frames

# A failing check is shown from the test's line (see verdict.hide_check_frames).
__tracebackhide__ = hide_check_frames

if TYPE_CHECKING:
    from pytest_llmops.models.call import Call
    from pytest_llmops.tracing.spans import Span


@dataclass(frozen=True)
class PromptUse:
    """A prompt template rendered during a case: which one, which version, its hash."""

    name: str
    version: str
    hash: str


@dataclass
class CaseRecord:
    """Everything one test case measured. Appended to from one case only."""

    nodeid: str
    scores: list[Score] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    prompts: list[PromptUse] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The case's span tree, root first (``pytest_llmops.tracing``).
    spans: list[Span] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_score(self, score: Score) -> None:
        with self._lock:
            self.scores.append(score)

    def add_call(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def add_span(self, span: Span) -> None:
        with self._lock:
            self.spans.append(span)

    def add_prompt(self, use: PromptUse) -> None:
        with self._lock:
            if use not in self.prompts:
                self.prompts.append(use)


T = TypeVar("T")

_current: contextvars.ContextVar[CaseRecord | None] = contextvars.ContextVar("llmops_current_case", default=None)
_sample: contextvars.ContextVar[int] = contextvars.ContextVar("llmops_sample", default=0)


@contextmanager
def _bound(variable: contextvars.ContextVar[T], value: T) -> Iterator[T]:
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)


def current_case() -> CaseRecord | None:
    """The record of the case running in this context, or ``None`` outside one."""
    return _current.get()


def case_scope(record: CaseRecord) -> AbstractContextManager[CaseRecord]:
    """Make ``record`` current for the code run inside the ``with`` block."""
    return _bound(_current, record)


def current_sample() -> int:
    """Which repetition of a ``repeat=N`` case is running (0 for the first, and outside repeats)."""
    return _sample.get()


def sample_scope(index: int) -> AbstractContextManager[int]:
    """Run the block as repetition ``index``: provider calls made in it get their own cache entries."""
    return _bound(_sample, index)


def record_score(score: Score) -> Score:
    """Attach ``score`` to the current case (a no-op outside a case) and return it."""
    record = _current.get()
    if record is not None:
        record.add_score(score)
    return score


def _format_inputs(inputs: Mapping[str, Any], limit: int = 300) -> list[str]:
    lines = []
    for key, value in inputs.items():
        text = value if isinstance(value, str) else repr(value)
        if len(text) > limit:
            text = text[:limit] + f"... [{len(text) - limit} more chars]"
        lines.append(f"  {key}: {text}")
    return lines


def require(score: Score, **inputs: Any) -> Score:
    """Record ``score`` and turn its verdict into the test's outcome.

    A failing score raises ``AssertionError`` whose message shows the score,
    the threshold, the reason and the ``inputs`` that mattered; an unmeasured
    one raises ``UnmeasuredError``. Every ``assert_*`` helper ends here.
    """
    record_score(score)
    if score.verdict is Verdict.PASS:
        return score
    message = "\n".join([score.describe(), *_format_inputs(inputs)])
    if score.verdict is Verdict.UNMEASURED:
        raise UnmeasuredError(message, score=score)
    raise AssertionError(message)
