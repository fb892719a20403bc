"""Production logs: the documented schema, malformed lines with line numbers, windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pytest_llmops.drift import DriftInputError, LogFormatError, iter_windows, read_log, select_window
from pytest_llmops.drift.logs import parse_duration, parse_time, window_texts


def write_log(path, rows):
    path.write_text(
        "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n", encoding="utf-8"
    )
    return path


def test_records_follow_the_documented_schema(tmp_path):
    log = write_log(
        tmp_path / "app.jsonl",
        [
            {
                "timestamp": "2024-06-01T12:00:00Z",
                "prompt": "Reset my password",
                "response": "Open settings.",
                "latency_ms": 812.5,
                "prompt_tokens": 12,
                "completion_tokens": 40,
                "model": "gpt-4o-mini",
                "id": 7,
                "user_tier": "gold",
            },
            "",
            {
                "timestamp": 1717243260,
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Where is my order?"},
                ],
            },
            {"response": "Only a response, no time"},
        ],
    )
    records = read_log(log).records
    first, second, third = records
    assert first.timestamp == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert (first.latency_ms, first.prompt_tokens, first.completion_tokens) == (812.5, 12, 40)
    assert first.id == "7" and first.extra == {"user_tier": "gold"}
    assert first.text("pair") == "Reset my password\n\nOpen settings."
    assert second.line == 3 and second.prompt == "Where is my order?"  # the system message is not the user's words
    assert second.timestamp == datetime(2024, 6, 1, 12, 1, tzinfo=UTC)
    assert third.timestamp is None and third.text("prompt") is None
    assert window_texts(records, "prompt") == ["Reset my password", "Where is my order?"]


def test_malformed_lines_are_reported_with_their_numbers(tmp_path):
    log = write_log(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "fine"},
            "{not json",
            {"prompt": "x", "latency_ms": -3},
            {"prompt": "x", "prompt_tokens": 1.5},
            {"model": "no text at all"},
            ["not", "an", "object"],
            {"prompt": "x", "timestamp": "yesterday"},
        ],
    )
    with pytest.raises(LogFormatError) as caught:
        read_log(log)
    message = str(caught.value)
    assert "6 malformed line(s)" in message
    for expected in (
        "bad.jsonl:2: not valid JSON",
        "bad.jsonl:3: 'latency_ms' must be a finite number >= 0",
        "bad.jsonl:4: 'prompt_tokens' must be a whole number",
        "bad.jsonl:5: the record has neither 'prompt' nor 'response'",
        "bad.jsonl:6: expected a JSON object, got list",
        "bad.jsonl:7: 'yesterday' is not an ISO 8601 time",
        "allow_malformed=True",
    ):
        assert expected in message

    skipped = read_log(log, allow_malformed=True)
    assert [r.line for r in skipped.records] == [1]
    assert [p.line for p in skipped.problems] == [2, 3, 4, 5, 6, 7]


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(LogFormatError, match="cannot read log"):
        read_log(tmp_path / "missing.jsonl")
    binary = tmp_path / "latin1.jsonl"
    binary.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(LogFormatError, match="latin1.jsonl:2: not UTF-8"):
        read_log(binary)
    assert [r.prompt for r in read_log(binary, allow_malformed=True).records] == ["ok"]


def hourly_records(tmp_path, hours=10):
    start = datetime(2024, 6, 1, tzinfo=UTC)
    rows = [{"timestamp": (start + timedelta(hours=h)).isoformat(), "prompt": f"p{h}"} for h in range(hours)]
    return read_log(write_log(tmp_path / "hourly.jsonl", rows)).records


def test_windows_by_count_and_by_time(tmp_path):
    records = hourly_records(tmp_path)
    texts = lambda chosen: [r.prompt for r in chosen]  # noqa: E731
    assert texts(select_window(records, last=3)) == ["p7", "p8", "p9"]
    assert texts(select_window(records, since="2024-06-01T02:00:00Z", until="2024-06-01T05:00:00Z")) == [
        "p2",
        "p3",
        "p4",
    ]
    # A duration ends with the newest record: the last 3 hours hold p7, p8, p9.
    assert texts(select_window(records, duration="3h")) == ["p7", "p8", "p9"]
    assert texts(select_window(records, duration="3h", until="2024-06-01T05:00:00")) == ["p2", "p3", "p4"]
    assert texts(select_window(records, since="2024-06-01T06:00:00Z", last=2)) == ["p8", "p9"]
    assert len(select_window(records)) == 10


def test_consecutive_windows(tmp_path):
    records = hourly_records(tmp_path)
    by_count = iter_windows(records, size=4)
    assert [len(w.records) for w in by_count] == [4, 4, 2]
    assert by_count[0].label == "lines 1-4"
    by_time = iter_windows(records, every="4h")
    assert [[r.prompt for r in w.records] for w in by_time] == [
        ["p0", "p1", "p2", "p3"],
        ["p4", "p5", "p6", "p7"],
        ["p8", "p9"],
    ]
    assert by_time[1].label.startswith("2024-06-01T04:00:00+00:00 to 2024-06-01T08:00:00")


def test_time_windows_need_timestamps(tmp_path):
    records = read_log(write_log(tmp_path / "t.jsonl", [{"prompt": "a", "timestamp": 0}, {"prompt": "b"}])).records
    with pytest.raises(DriftInputError, match="line 2 has none"):
        select_window(records, duration="1h")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800), ("1.5h", 5400)]
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "3", "h", "-2h", "0m", "2 hours"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_naive_times_are_utc():
    assert parse_time("2024-06-01T00:00:00") == datetime(2024, 6, 1, tzinfo=UTC)
    assert parse_time("2024-06-01T02:00:00+02:00") == datetime(2024, 6, 1, tzinfo=UTC)
