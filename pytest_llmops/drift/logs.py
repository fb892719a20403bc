"""Production logs: read JSONL records of prompts and responses, and cut them into windows.

Schema: one JSON object per line (blank lines are ignored)::

    {"timestamp": "2024-06-01T12:00:00Z",   # ISO 8601 (no zone = UTC) or Unix seconds
     "prompt": "How do I reset my password?",  # a string, or a list of chat messages
     "response": "Open Settings > Account ...",
     "latency_ms": 812.5,                      # optional, >= 0
     "prompt_tokens": 42,                      # optional, integer >= 0
     "completion_tokens": 128,                 # optional, integer >= 0
     "model": "gpt-4o-mini",                   # optional
     "id": "req-123"}                          # optional; any other key is kept in ``extra``

At least one of ``prompt`` and ``response`` must be present. A chat
``prompt`` (a list of ``{"role", "content"}`` messages) counts as the text of
its user messages, joined by blank lines. ``timestamp`` is optional, but time
windows need it on every record.

A malformed line (bad JSON, a field of the wrong type) is an error that names
the file and line. With ``allow_malformed=True`` such lines are skipped and
listed in :attr:`LogFile.problems` instead; nothing is dropped silently.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_llmops.drift.result import DriftInputError

FIELDS = ("prompt", "response", "pair")
_KNOWN = {"timestamp", "prompt", "response", "latency_ms", "prompt_tokens", "completion_tokens", "model", "id"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class LogFormatError(DriftInputError):
    """A log file has malformed lines (each named ``path:line: problem``) or cannot be read."""


@dataclass(frozen=True)
class LogProblem:
    """A line that could not be read as a record, and why."""

    line: int
    message: str

    def describe(self, path: str | os.PathLike[str]) -> str:
        return f"{os.fspath(path)}:{self.line}: {self.message}"


@dataclass(frozen=True)
class LogRecord:
    """One prompt/response exchange from a production log."""

    line: int
    timestamp: datetime | None = None
    prompt: str | None = None
    response: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def text(self, which: str = "prompt") -> str | None:
        """The text to embed: ``prompt``, ``response`` or ``pair`` (prompt, blank line, response)."""
        if which == "prompt":
            return self.prompt
        if which == "response":
            return self.response
        if which == "pair":
            if self.prompt is None or self.response is None:
                return None
            return f"{self.prompt}\n\n{self.response}"
        raise DriftInputError(f"log field must be one of {', '.join(FIELDS)}, got {which!r}")


@dataclass(frozen=True)
class LogFile:
    """The records of one log file, in file order, and the lines that were skipped."""

    path: Path
    records: tuple[LogRecord, ...]
    problems: tuple[LogProblem, ...] = ()

    def __len__(self) -> int:
        return len(self.records)


def parse_time(value: str | float | int | datetime) -> datetime:
    """A timezone-aware datetime from ISO 8601 text (no zone means UTC), Unix seconds or a datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError(f"expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected a time, got {value!r}")
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time (e.g. 2024-06-01T12:00:00Z)") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"expected an ISO 8601 string or Unix seconds, got {type(value).__name__}")


def parse_duration(value: str | timedelta) -> timedelta:
    """``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"`` as a timedelta."""
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"a duration must be positive, got {value}")
        return value
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write a number and a unit: 90s, 15m, 24h, 7d or 2w")
    amount = float(match.group(1))
    if amount <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return timedelta(seconds=amount * _UNIT_SECONDS[match.group(2)])


def _chat_text(messages: list[Any]) -> str:
    parts = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("content", ""), str):
            raise ValueError(f"'prompt'[{index}] must be a message object with a string 'content'")
        if message.get("role", "user") == "user":
            parts.append(message.get("content", ""))
    if not parts:
        raise ValueError("'prompt' is a list of messages with no user message")
    return "\n\n".join(parts)


def _number(raw: Mapping[str, Any], key: str, *, integer: bool) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{key!r} must be {kind}, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{key!r} must be a finite number >= 0, got {value!r}")
    return int(value) if integer else float(value)


def _optional_text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    if key == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{key!r} must be a string, got {type(value).__name__}")


def parse_record(raw: Any, line: int) -> LogRecord:
    """One decoded JSON value as a :class:`LogRecord`; ``ValueError`` says what is wrong with it."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    prompt = raw.get("prompt")
    if isinstance(prompt, list):
        prompt = _chat_text(prompt)
    elif prompt is not None and not isinstance(prompt, str):
        raise ValueError(f"'prompt' must be a string or a list of chat messages, got {type(prompt).__name__}")
    response = _optional_text(raw, "response")
    if prompt is None and response is None:
        raise ValueError("the record has neither 'prompt' nor 'response'")
    timestamp = raw.get("timestamp")
    return LogRecord(
        line=line,
        timestamp=None if timestamp is None else parse_time(timestamp),
        prompt=prompt,
        response=response,
        latency_ms=_number(raw, "latency_ms", integer=False),
        prompt_tokens=_number(raw, "prompt_tokens", integer=True),
        completion_tokens=_number(raw, "completion_tokens", integer=True),
        model=_optional_text(raw, "model"),
        id=_optional_text(raw, "id"),
        extra={k: v for k, v in raw.items() if k not in _KNOWN},
    )


def _renamed(raw: Any, fields: Mapping[str, str]) -> Any:
    """The record with the log's own keys (``{"response": "output"}``: its ``output``) under the schema's names."""
    if not isinstance(raw, dict):
        return raw
    renamed = {key: value for key, value in raw.items() if key not in fields and key not in fields.values()}
    for schema_key, log_key in fields.items():
        if log_key in raw:
            renamed[schema_key] = raw[log_key]
    return renamed


def iter_log(path: str | os.PathLike[str], *, fields: Mapping[str, str] | None = None) -> Iterator[LogRecord | LogProblem]:
    """Each non-blank line of a JSONL log as a record, or as the problem that stopped it being one.

    ``fields`` maps schema names to the log's own keys, e.g. ``{"response": "output", "timestamp": "ts"}``
    for the logs ``llmops score`` reads.
    """
    source = Path(path)
    try:
        stream = source.open("rb")
    except OSError as error:
        raise LogFormatError(f"cannot read log {source}: {error.strerror or error}") from error
    with stream:
        # Bytes, decoded line by line, so a bad byte costs one line, with its number.
        for line_number, raw_line in enumerate(stream, start=1):
            try:
                line = raw_line.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                yield LogProblem(line_number, f"not UTF-8 text ({error.reason} at byte {error.start})")
                continue
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                yield LogProblem(line_number, f"not valid JSON ({error.msg} at column {error.colno})")
                continue
            try:
                yield parse_record(_renamed(raw, fields) if fields else raw, line_number)
            except ValueError as error:
                yield LogProblem(line_number, str(error))


def read_log(
    path: str | os.PathLike[str], *, allow_malformed: bool = False, max_reported: int = 10,
    fields: Mapping[str, str] | None = None,
) -> LogFile:
    """Read a JSONL log of prompt/response records (see the module docstring for the schema).

    Malformed lines raise :class:`LogFormatError` listing them (up to
    ``max_reported``) with their line numbers, unless ``allow_malformed``,
    which skips them and keeps them in :attr:`LogFile.problems`. ``fields``: as in :func:`iter_log`.
    """
    records: list[LogRecord] = []
    problems: list[LogProblem] = []
    for item in iter_log(path, fields=fields):
        (records if isinstance(item, LogRecord) else problems).append(item)  # type: ignore[arg-type]
    if problems and not allow_malformed:
        shown = [problem.describe(path) for problem in problems[:max_reported]]
        more = f"\n  ... and {len(problems) - max_reported} more" if len(problems) > max_reported else ""
        raise LogFormatError(
            f"{len(problems)} malformed line(s) in {os.fspath(path)}:\n  "
            + "\n  ".join(shown)
            + more
            + "\nFix them, or skip them with allow_malformed=True (CLI: --allow-malformed)."
        )
    return LogFile(path=Path(path), records=tuple(records), problems=tuple(problems))


def _require_timestamps(records: Sequence[LogRecord], why: str) -> None:
    for record in records:
        if record.timestamp is None:
            raise DriftInputError(f"{why} needs a 'timestamp' on every record; line {record.line} has none")


def select_window(
    records: Sequence[LogRecord],
    *,
    last: int | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    duration: str | timedelta | None = None,
) -> list[LogRecord]:
    """The records of one window, in file order.

    ``since`` (inclusive) and ``until`` (exclusive) bound the time;
    ``duration`` (``"24h"``) takes the span of that length that ends with the
    newest record (or at ``until``); ``last`` then keeps the last N records.
    With no option, every record.
    """
    chosen = list(records)
    if duration is not None and since is not None:
        raise DriftInputError("give either since or duration for a window, not both")
    if since is not None or until is not None or duration is not None:
        _require_timestamps(chosen, "a time window")
        start = parse_time(since) if since is not None else None
        end = parse_time(until) if until is not None else None
        if duration is not None:
            if end is None:
                # Anchored at the newest record, which belongs to the window.
                newest = max((r.timestamp for r in chosen if r.timestamp is not None), default=None)
                end = None if newest is None else newest + timedelta(microseconds=1)
            start = None if end is None else end - parse_duration(duration)
        chosen = [
            r
            for r in chosen
            if r.timestamp is not None
            and (start is None or r.timestamp >= start)
            and (end is None or r.timestamp < end)
        ]
    if last is not None:
        if isinstance(last, bool) or not isinstance(last, int) or last < 1:
            raise DriftInputError(f"last must be a positive number of records, got {last!r}")
        chosen = chosen[-last:]
    return chosen


@dataclass(frozen=True)
class Window:
    """A run of consecutive records, with a label saying which lines or which time span."""

    label: str
    records: tuple[LogRecord, ...]


def iter_windows(
    records: Sequence[LogRecord], *, size: int | None = None, every: str | timedelta | None = None,
    origin: datetime | None = None,
) -> list[Window]:
    """Split records into consecutive windows: ``size`` records each, or spans of ``every`` (e.g. "1d").

    Time windows start at ``origin`` (default: the oldest record's time; the Unix epoch gives UTC days,
    the windows of ``llmops score --window``); empty spans are left out.
    The last window by count may be shorter than ``size``.
    """
    if (size is None) == (every is None):
        raise DriftInputError("give exactly one of size (records per window) or every (a duration such as 1d)")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise DriftInputError(f"size must be a positive number of records, got {size!r}")
        return [
            Window(f"lines {chunk[0].line}-{chunk[-1].line}", tuple(chunk))
            for chunk in (records[i : i + size] for i in range(0, len(records), size))
        ]
    span = parse_duration(every)  # type: ignore[arg-type]
    _require_timestamps(records, "a time window")
    ordered = sorted(records, key=lambda r: (r.timestamp, r.line))
    if not ordered:
        return []
    origin = origin or ordered[0].timestamp
    buckets: dict[int, list[LogRecord]] = {}
    for record in ordered:
        buckets.setdefault(int((record.timestamp - origin) / span), []).append(record)  # type: ignore[operator]
    windows = []
    for index in sorted(buckets):
        start = origin + index * span  # type: ignore[operator]
        label = f"{start.isoformat(timespec='seconds')} to {(start + span).isoformat(timespec='seconds')}"
        windows.append(Window(label, tuple(buckets[index])))
    return windows


def window_texts(records: Sequence[LogRecord], which: str = "prompt") -> list[str]:
    """The texts of ``which`` field of each record; records without that field are left out."""
    if which not in FIELDS:
        raise DriftInputError(f"log field must be one of {', '.join(FIELDS)}, got {which!r}")
    return [text for text in (record.text(which) for record in records) if text is not None]
