"""Traces of eval cases: spans, the ``@traced`` decorator, and assertions on trajectories.

Public names load on first use; nothing here imports opentelemetry unless
exporting (``--llmops-otlp``) or capturing the app's own OpenTelemetry spans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Span": "spans",
    "traced": "spans",
    "current_span": "spans",
    "CaseTrace": "fixtures",
    "assert_tool_called": "assertions",
    "assert_trajectory": "assertions",
    "assert_steps": "assertions",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmops.tracing.assertions import assert_steps, assert_tool_called, assert_trajectory
    from pytest_llmops.tracing.fixtures import CaseTrace
    from pytest_llmops.tracing.spans import Span, current_span, traced
