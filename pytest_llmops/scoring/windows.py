"""Windows of scored records inside one summary: ``llmops score ... --window 1h`` (or ``--window 500``).

A time window (``90m``, ``1h``, ``1d``, ``2w``) groups records by their time field into spans aligned
on the Unix epoch, so ``1d`` windows are UTC days and two logs scored apart get the same windows;
``llmops drift check --every`` cuts the same spans. A plain number N groups N consecutive records.
Each window carries the same per-check figures as the summary's totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

#: Where epoch-aligned windows start counting: 1970-01-01 UTC.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WindowSpec:
    """``every``: a span in seconds (windows by time), or ``size``: records per window."""

    text: str
    every: float | None = None
    size: int | None = None


def parse_window(text: str) -> WindowSpec:
    """``"1h"`` / ``"1d"`` / ``"90m"`` -> a time span; ``"500"`` -> 500 records a window; else ``ValueError``."""
    from pytest_llmops.drift.logs import parse_duration

    raw = str(text).strip()
    if raw.isdigit():
        if int(raw) < 1:
            raise ValueError(f"--window {text}: a window holds at least 1 record")
        return WindowSpec(raw, size=int(raw))
    try:
        span = parse_duration(raw)
    except ValueError as exc:
        raise ValueError(f"--window {text}: {exc}; or a number N for N records a window") from None
    return WindowSpec(raw, every=span.total_seconds())


def window_label(start: datetime, span: timedelta) -> str:
    """``START to END`` in ISO 8601, the label ``llmops drift`` prints for the same window."""
    return f"{start.isoformat(timespec='seconds')} to {(start + span).isoformat(timespec='seconds')}"


def window_start(moment: float, every: float) -> float:
    """The epoch-aligned start (seconds) of the window of length ``every`` that holds ``moment``."""
    return (moment // every) * every


def summarize_windows(
    scored: Sequence[Mapping[str, Any]], spec: WindowSpec, *, confidence: float = 0.95
) -> dict[str, Any]:
    """Per window: its label, bounds, record count and per-check figures (as :func:`summarize`).

    Time windows read each item's ``time`` (epoch seconds, put there by ``llmops score --time-field``);
    an item without one is counted in ``no_time`` and in no window.
    """
    from pytest_llmops.scoring.records import summarize

    groups: dict[float, list[Mapping[str, Any]]] = {}
    no_time = 0
    if spec.size is not None:
        for number in range(0, len(scored), spec.size):
            groups[float(number)] = list(scored[number:number + spec.size])
    else:
        assert spec.every is not None
        for item in scored:
            moment = item.get("time")
            if not isinstance(moment, (int, float)):
                no_time += 1
                continue
            groups.setdefault(window_start(float(moment), spec.every), []).append(item)
    windows = []
    for key in sorted(groups):
        figures = summarize(groups[key], confidence=confidence)
        entry: dict[str, Any] = {"records": figures["records"], "checks": figures["checks"]}
        if spec.size is not None:
            first = int(key)
            entry = {"label": f"records {first + 1}-{first + len(groups[key])}", **entry}
        else:
            assert spec.every is not None
            span = timedelta(seconds=spec.every)
            start = EPOCH + timedelta(seconds=key)
            entry = {"label": window_label(start, span), "start": start.isoformat(timespec="seconds"),
                     "end": (start + span).isoformat(timespec="seconds"), **entry}
        windows.append(entry)
    return {"window": spec.text, "by": "time" if spec.every is not None else "records", "no_time": no_time,
            "windows": windows}
