"""Tri-state verdicts and the immutable ``Score`` every check returns.

A check ends in one of three states: it passed, it failed, or it could not be
measured (a judge that did not answer, a provider that was down, a metric with
no input to work on). "Unmeasured" is never folded into a pass or turned into a
NaN: it travels as its own verdict with a reason, and a test that ends
unmeasured is reported as such by the plugin.

This module is imported by the plugin at start-up, so it uses the standard
library only.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any


class Verdict(str, Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    UNMEASURED = "unmeasured"


class UnmeasuredError(Exception):
    """Raised when a check cannot be measured.

    The plugin reports a test that raises it with the ``unmeasured`` status
    (shown apart from passed and failed, and failing the run unless the user's
    gates allow it). ``reason`` says what went wrong and, where it can, the fix.
    """

    def __init__(self, reason: str, *, score: Score | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.score = score


def unmeasured(reason: str) -> None:
    """End the current check as unmeasured, like ``pytest.skip`` ends it skipped."""
    raise UnmeasuredError(reason)


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _real(name: str, what: str, value: Any) -> float:
    """``value`` as a plain float: any real number (int, float, a numpy scalar, a Fraction), not a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"score {name!r}: {what} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _threshold(name: str, threshold: Any) -> float | None:
    """A threshold as a plain finite float (or None); NaN would make every comparison silently fail."""
    if threshold is None:
        return None
    limit = _real(name, "the threshold", threshold)
    if not math.isfinite(limit):
        shown = "NaN" if math.isnan(limit) else repr(limit)
        raise ValueError(
            f"score {name!r}: the threshold is {shown}; pass a number (finite) or None for a score with no threshold"
        )
    return limit


@dataclass(frozen=True)
class Score:
    """The immutable result of one metric on one input.

    ``value`` is ``None`` exactly when the verdict is unmeasured. ``signature``
    says how the number was computed (metric, options, library versions), so
    two scores are only compared when they were computed the same way.
    """

    name: str
    value: float | None
    verdict: Verdict
    threshold: float | None = None
    higher_is_better: bool = True
    reason: str = ""
    signature: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "details", _frozen_mapping(self.details))
        if self.verdict is Verdict.UNMEASURED:
            if self.value is not None:
                raise ValueError(f"score {self.name!r}: an unmeasured score carries no value")
            if not self.reason:
                raise ValueError(f"score {self.name!r}: an unmeasured score needs a reason")
            return
        object.__setattr__(self, "threshold", _threshold(self.name, self.threshold))
        if self.value is None:
            raise ValueError(f"score {self.name!r}: a {self.verdict.value} score needs a value")
        value = _real(self.name, "value", self.value)
        if not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else repr(value)
            raise ValueError(f"score {self.name!r}: value is {shown}; a score is finite: report it as unmeasured with a reason")
        object.__setattr__(self, "value", value)

    @classmethod
    def measured(
        cls,
        name: str,
        value: float,
        *,
        threshold: float | None = None,
        higher_is_better: bool = True,
        reason: str = "",
        signature: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> Score:
        """A measured score; the verdict follows from ``value`` and ``threshold``.

        ``value`` and ``threshold`` may be any real numbers (numpy scalars too) and
        are stored as plain floats. With no threshold the score is informational
        and passes. A NaN value is turned into an unmeasured score rather than a
        silent number; an infinite value or a NaN threshold is a ``ValueError``.
        """
        threshold = _threshold(name, threshold)
        if math.isnan(_real(name, "value", value)):
            return cls.unmeasured(name, reason or "the metric returned NaN", signature=signature, details=details)
        if threshold is None:
            verdict = Verdict.PASS
        elif higher_is_better:
            verdict = Verdict.PASS if value >= threshold else Verdict.FAIL
        else:
            verdict = Verdict.PASS if value <= threshold else Verdict.FAIL
        return cls(
            name=name,
            value=value,
            verdict=verdict,
            threshold=threshold,
            higher_is_better=higher_is_better,
            reason=reason,
            signature=signature,
            details=details or {},
        )

    @classmethod
    def unmeasured(
        cls,
        name: str,
        reason: str,
        *,
        signature: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> Score:
        """A score that could not be measured, with the reason why."""
        return cls(
            name=name,
            value=None,
            verdict=Verdict.UNMEASURED,
            reason=reason,
            signature=signature,
            details=details or {},
        )

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def describe(self) -> str:
        """One line for humans: name, value, the threshold it was held to, and why."""
        if self.verdict is Verdict.UNMEASURED:
            text = f"{self.name}: unmeasured"
        else:
            text = f"{self.name} = {self.value:.4g}"
            if self.threshold is not None:
                op = ">=" if self.higher_is_better else "<="
                text += f" (needs {op} {self.threshold:.4g}: {self.verdict.value})"
        if self.reason:
            text += f" - {self.reason}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the results file stores scores this way)."""
        return {
            "name": self.name,
            "value": self.value,
            "verdict": self.verdict.value,
            "threshold": self.threshold,
            "higher_is_better": self.higher_is_better,
            "reason": self.reason,
            "signature": self.signature,
            "details": dict(self.details),
        }


def hide_check_frames(excinfo: Any) -> bool:
    """pytest's ``__tracebackhide__`` for modules of checks: a failing or unmeasured check is shown
    from the test's line, not from inside the helper (its message already has the score, threshold,
    reason and inputs); any other exception, a bug, keeps its full traceback. ``--fulltrace`` shows all."""
    return isinstance(getattr(excinfo, "value", None), (AssertionError, UnmeasuredError))
