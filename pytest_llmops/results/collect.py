"""Per-case results assembled from pytest's reports.

Each test's scores, calls and prompts ride on its reports as a plain dict
(``report.llmops``; its span tree as rows of ``SPAN_FIELDS``), so they reach
the controller unchanged under pytest-xdist; the controller folds the reports
of each test into one ``CaseOutcome``. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmops.case import CaseRecord
from pytest_llmops.tracing.spans import SPAN_FIELDS

#: The verdict of a whole case, as the results file and the summary show it.
CASE_STATES = ("passed", "failed", "unmeasured", "error", "skipped", "xfailed")
#: The reason of a case that was set up but cut short when the run was interrupted.
INTERRUPTED_REASON = "not finished: the run was interrupted before this case ended"
#: An error of the suite outranks the model's failure: no gate may excuse it, so it must not hide behind one.
_SEVERITY = {"passed": 0, "skipped": 1, "xfailed": 1, "unmeasured": 2, "failed": 3, "error": 4}


def case_payload(record: CaseRecord, *, scores_from: int = 0, calls_from: int = 0) -> dict[str, Any]:
    """The plain-dict form of what a case measured (JSON-ready, picklable).

    ``scores_from`` and ``calls_from`` skip what an earlier report already carried.
    Only what there is: an empty ``scores``, ``calls``, ``prompts`` or ``metadata`` is
    left out (pytest keeps every report, three a case, for the whole session).
    """
    payload: dict[str, Any] = {}
    if len(record.scores) > scores_from:
        payload["scores"] = [score.to_dict() for score in record.scores[scores_from:]]
    if len(record.calls) > calls_from:
        payload["calls"] = [call.to_dict() for call in record.calls[calls_from:]]
    if record.prompts:
        payload["prompts"] = [{"name": p.name, "version": p.version, "hash": p.hash} for p in record.prompts]
    if record.metadata:
        payload["metadata"] = dict(record.metadata)
    return payload


@dataclass(slots=True)
class CaseOutcome:
    """One test's verdict and measurements, merged over its setup, call and teardown."""

    nodeid: str
    state: str = "passed"
    reason: str = ""
    #: For state "error": the type of the exception that ended the case (``KeyError``, ``PromptError``).
    error_type: str | None = None
    duration_s: float = 0.0
    scores: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The case's span tree (root first) as rows of ``SPAN_FIELDS``, sent with its teardown report;
    #: ``spans`` gives them as dicts.
    span_rows: list[tuple[Any, ...]] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    #: Whether the case ran to a verdict: its call was reported, or its setup did not pass.
    finished: bool = False

    def absorb(self, report: Any) -> None:
        """Fold one phase's report into the case."""
        self.duration_s += float(getattr(report, "duration", 0.0) or 0.0)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.finished = True
        payload = getattr(report, "llmops", None)
        if payload:
            # Each phase carries only what was added since the previous one.
            self.scores.extend(payload.get("scores", []))
            self.calls.extend(payload.get("calls", []))
            for prompt in payload.get("prompts", []):
                if prompt not in self.prompts:
                    self.prompts.append(prompt)
            self.metadata.update(payload.get("metadata", {}))
            # Rows (``Span.to_row``); a list again once they crossed from an xdist worker.
            self.span_rows.extend(tuple(row) for row in payload.get("spans", ()))
        unmeasured = getattr(report, "llmops_unmeasured", None)
        # Set by the plugin when the exception was not a failed check but a broken suite.
        error_type = getattr(report, "llmops_error", None)
        if unmeasured is not None:
            self._set("unmeasured", unmeasured)
        elif report.when == "call":
            if report.passed:
                self._set("passed", "")
            elif report.failed and error_type is not None:
                self._set("error", _reason(report), error_type)
            elif report.failed:
                self._set("failed", _reason(report))
            elif report.skipped and hasattr(report, "wasxfail"):
                self._set("xfailed", str(report.wasxfail))
            elif report.skipped:
                self._set("skipped", _reason(report))
        elif report.failed:
            self._set("error", f"{report.when}: {_reason(report)}", error_type)
        elif report.skipped:
            self._set("skipped", _reason(report))

    @property
    def spans(self) -> list[dict[str, Any]]:
        """The case's span tree (root first), one dict per span."""
        return [dict(zip(SPAN_FIELDS, row)) for row in self.span_rows]

    def end_unfinished(self, reason: str) -> None:
        """A case set up but never run to a verdict (the run was interrupted) is unmeasured, not passed."""
        if not self.finished:
            self._set("unmeasured", reason)
            self.finished = True

    def _set(self, state: str, reason: str, error_type: str | None = None) -> None:
        # The most severe phase decides; on a tie the first one stays (a first
        # error is not renamed by a teardown error after it).
        if _SEVERITY[state] > _SEVERITY[self.state]:
            self.state = state
            self.reason = reason
            self.error_type = error_type

    def to_dict(self) -> dict[str, Any]:
        # The matrix cell rides in the metadata while the case runs; the results file gives it its own field.
        metadata = dict(self.metadata)
        matrix = metadata.pop("matrix", None)
        return {
            "nodeid": self.nodeid,
            "state": self.state,
            "reason": self.reason,
            "error_type": self.error_type,
            "duration_s": round(self.duration_s, 6),
            "markers": self.markers,
            "scores": self.scores,
            "calls": self.calls,
            "prompts": self.prompts,
            "metadata": metadata,
            "matrix": matrix,
            "spans": self.spans,
        }


def _reason(report: Any) -> str:
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2])
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip()
    text = str(getattr(report, "longreprtext", "") or "").strip()
    return text.splitlines()[-1] if text else ""
