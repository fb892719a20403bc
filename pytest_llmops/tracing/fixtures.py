"""The ``llmops_trace`` fixture: the running case's trace, for app steps and for checks on it.

Registered by the plugin at start-up; standard library and pytest only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_llmops.case import current_case
from pytest_llmops.tracing import view
from pytest_llmops.tracing.spans import Span, _check_kind, open_span


class CaseTrace:
    """The span tree of the running case.

    ``with llmops_trace.span("plan", kind="chain"):`` adds a step of the app;
    ``spans``, ``steps()`` and ``trajectory()`` read what was recorded so far.
    """

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    @property
    def spans(self) -> list[Span]:
        """Every span of the case, root first, in the order they were opened."""
        record = current_case()
        return list(record.spans) if record is not None else []

    @contextmanager
    def span(self, name: str, kind: str = "chain", **attributes: Any) -> Iterator[Span]:
        """A span for the ``with`` block, child of the current one. Keyword arguments become attributes."""
        _check_kind(kind)
        with open_span(name, kind, attributes) as span:
            if span is None:  # pragma: no cover - the fixture exists only inside a case
                raise RuntimeError("llmops_trace.span() is only available while its case runs")
            yield span

    def steps(self) -> list[Span]:
        """The app's steps so far: tool, retriever and model-under-test spans (see ``view.is_step``)."""
        return view.steps(self.spans)

    def trajectory(self, kinds: Sequence[str] = ("tool",)) -> list[str]:
        """Names of the spans of ``kinds`` in the order they started (the tools called, by default)."""
        return view.trajectory(self.spans, kinds)


@pytest.fixture
def llmops_trace(request: pytest.FixtureRequest) -> CaseTrace:
    """The running case's trace: add app steps with ``.span(...)``, read them with ``.steps()``."""
    return CaseTrace(request.node.nodeid)


@pytest.fixture
def llmops_otlp_receiver() -> Iterator[Any]:
    """An OTLP/HTTP receiver on 127.0.0.1 for this case: a black-box app sends its traces to
    ``.endpoint``; ``.wait(min_spans=...)`` adds them to the case's tree (``tracing.receiver``)."""
    try:
        from pytest_llmops.tracing.receiver import OTLPReceiver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise pytest.UsageError(f"llmops_otlp_receiver needs opentelemetry ({exc}): pip install 'pytest-llmops[otel]'") from None
    receiver = OTLPReceiver()
    try:
        yield receiver
    finally:
        receiver.close()

