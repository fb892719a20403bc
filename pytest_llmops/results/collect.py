"""Per-case results assembled from pytest's reports.

Each test's scores, calls and prompts ride on its reports as a plain dict
(``report.llmops``), so they reach the controller unchanged under
pytest-xdist; the controller folds the reports of each test into one
``CaseOutcome``. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmops.case import CaseRecord

#: The verdict of a whole case, as the results file and the summary show it.
CASE_STATES = ("passed", "failed", "unmeasured", "error", "skipped", "xfailed")
_SEVERITY = {"passed": 0, "skipped": 1, "xfailed": 1, "unmeasured": 2, "failed": 3, "error": 3}


def case_payload(record: CaseRecord, *, scores_from: int = 0, calls_from: int = 0) -> dict[str, Any]:
    """The plain-dict form of what a case measured (JSON-ready, picklable).

    ``scores_from`` and ``calls_from`` skip what an earlier report already carried.
    """
    return {
        "scores": [score.to_dict() for score in record.scores[scores_from:]],
        "calls": [call.to_dict() for call in record.calls[calls_from:]],
        "prompts": [{"name": p.name, "version": p.version, "hash": p.hash} for p in record.prompts],
        "metadata": dict(record.metadata),
    }


@dataclass
class CaseOutcome:
    """One test's verdict and measurements, merged over its setup, call and teardown."""

    nodeid: str
    state: str = "passed"
    reason: str = ""
    duration_s: float = 0.0
    scores: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)

    def absorb(self, report: Any) -> None:
        """Fold one phase's report into the case."""
        self.duration_s += float(getattr(report, "duration", 0.0) or 0.0)
        payload = getattr(report, "llmops", None)
        if payload:
            # Each phase carries only what was added since the previous one.
            self.scores.extend(payload.get("scores", []))
            self.calls.extend(payload.get("calls", []))
            for prompt in payload.get("prompts", []):
                if prompt not in self.prompts:
                    self.prompts.append(prompt)
            self.metadata.update(payload.get("metadata", {}))
        unmeasured = getattr(report, "llmops_unmeasured", None)
        if unmeasured is not None:
            self._set("unmeasured", unmeasured)
        elif report.when == "call":
            if report.passed:
                self._set("passed", "")
            elif report.failed:
                self._set("failed", _reason(report))
            elif report.skipped and hasattr(report, "wasxfail"):
                self._set("xfailed", str(report.wasxfail))
            elif report.skipped:
                self._set("skipped", _reason(report))
        elif report.failed:
            self._set("error", f"{report.when}: {_reason(report)}")
        elif report.skipped:
            self._set("skipped", _reason(report))

    def _set(self, state: str, reason: str) -> None:
        # The most severe phase decides; on a tie the first one stays (a failed
        # call is not renamed by a teardown error after it).
        if _SEVERITY[state] > _SEVERITY[self.state]:
            self.state = state
            self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "state": self.state,
            "reason": self.reason,
            "duration_s": round(self.duration_s, 6),
            "markers": self.markers,
            "scores": self.scores,
            "calls": self.calls,
            "prompts": self.prompts,
            "metadata": self.metadata,
        }


def _reason(report: Any) -> str:
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2])
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip()
    text = str(getattr(report, "longreprtext", "") or "").strip()
    return text.splitlines()[-1] if text else ""
