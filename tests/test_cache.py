"""The on-disk cache of provider calls: record modes, keys, storage, failure modes, concurrency."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import statistics
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_llmops.models.cache import (
    APPLICATION_ID,
    NON_SEMANTIC_PARAMS,
    SCHEMA_VERSION,
    CacheEntry,
    CacheError,
    CacheMissError,
    CallCache,
    RecordMode,
    cache_key,
)

MESSAGES = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "What is the capital of France?"},
]
PARAMS = {"temperature": 0.2, "max_tokens": 16, "top_p": 0.9, "seed": 7}
API_BASE = "http://127.0.0.1:8000/v1"


def chat_key(params: dict | None = None, *, messages=MESSAGES, model="gpt-4o-mini", api_base=API_BASE) -> str:
    return cache_key("chat", model, api_base, {"messages": messages, "params": PARAMS if params is None else params})


def record(cache: CallCache, key: str, text: str, *, model: str = "gpt-4o-mini", kind: str = "chat") -> None:
    cache.put(
        key,
        kind=kind,
        model=model,
        request={"messages": MESSAGES, "params": PARAMS},
        response={"text": text, "tokens_in": 12, "tokens_out": 1},
        call={"model": model, "kind": kind, "cache_key": key, "latency_s": 0.42, "params": PARAMS},
    )


@pytest.fixture
def cache(tmp_path: Path):
    with CallCache(tmp_path / "calls.sqlite") as opened:
        yield opened


# --- record modes -----------------------------------------------------------


@pytest.mark.parametrize("text", ["off", "new", "none", "all", " NEW ", "All"])
def test_record_mode_parses_its_values_ignoring_case_and_spaces(text):
    mode = RecordMode.parse(text, source="--llmops-record-mode")
    assert mode.value == text.strip().lower()
    assert str(mode) == mode.value


def test_record_mode_error_names_the_source_and_the_valid_values():
    with pytest.raises(ValueError) as excinfo:
        RecordMode.parse("replay", source="llmops_record_mode in pytest.ini")
    message = str(excinfo.value)
    assert message.startswith("llmops_record_mode in pytest.ini: invalid record mode 'replay'")
    for value in ("'off'", "'new'", "'none'", "'all'"):
        assert value in message


@pytest.mark.parametrize(
    ("mode", "reads", "writes"),
    [
        (RecordMode.OFF, False, False),
        (RecordMode.NEW, True, True),
        (RecordMode.NONE, True, False),
        (RecordMode.ALL, False, True),
    ],
)
def test_record_mode_says_whether_it_reads_and_writes(mode, reads, writes):
    assert (mode.reads, mode.writes) == (reads, writes)


def test_replay_miss_names_the_case_the_model_and_the_fix():
    key = chat_key()
    error = CacheMissError(key=key, model="gpt-4o-mini", nodeid="tests/test_qa.py::test_capital[paris]")
    message = str(error)
    assert "tests/test_qa.py::test_capital[paris]" in message
    assert "'gpt-4o-mini'" in message
    assert key[:12] in message and key not in message
    assert message.endswith("re-run once with --llmops-record-mode=new to record it")
    assert (error.key, error.model, error.nodeid) == (key, "gpt-4o-mini", "tests/test_qa.py::test_capital[paris]")
    assert "outside any test case" in str(CacheMissError(key=key, model="m", nodeid=None))


# --- keys ----------------------------------------------------------------------


def test_key_is_a_sha256_hex_digest_independent_of_dict_order():
    key = chat_key()
    assert len(key) == 64 and int(key, 16) >= 0
    reordered_messages = [dict(reversed(list(m.items()))) for m in MESSAGES]
    reordered_params = dict(reversed(list(PARAMS.items())))
    assert chat_key(reordered_params, messages=reordered_messages) == key
    flat = cache_key("chat", "gpt-4o-mini", API_BASE, {"params": PARAMS, "messages": MESSAGES})
    assert flat == key


def test_key_ignores_spelling_that_does_not_change_the_request():
    as_tuples = tuple(types.MappingProxyType(m) for m in MESSAGES)  # how ChatRequest holds them
    assert chat_key(messages=as_tuples) == chat_key()
    assert chat_key({"temperature": 0}) == chat_key({"temperature": 0.0})
    assert chat_key({"logit_bias": {50256: -100}}) == chat_key({"logit_bias": {"50256": -100}})


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.3},
        {"max_tokens": 17},
        {"top_p": 1.0},
        {"seed": 8},
        {"stop": ["\n"]},
        {"logprobs": True, "top_logprobs": 3},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "lookup"}}]},
    ],
    ids=lambda change: ",".join(change),
)
def test_every_parameter_that_changes_the_answer_changes_the_key(change):
    assert chat_key({**PARAMS, **change}) != chat_key()


def test_messages_model_kind_and_api_base_change_the_key():
    key = chat_key()
    other_question = [MESSAGES[0], {"role": "user", "content": "What is the capital of Spain?"}]
    assert chat_key(messages=other_question) != key
    assert chat_key(messages=[{**MESSAGES[0], "role": "user"}, MESSAGES[1]]) != key
    assert chat_key(model="gpt-4o") != key
    assert chat_key(api_base="http://127.0.0.1:9000/v1") != key
    assert chat_key(api_base=None) != key
    payload = {"messages": MESSAGES, "params": PARAMS}
    assert cache_key("embedding", "gpt-4o-mini", API_BASE, payload) != key


@pytest.mark.parametrize("name", sorted(NON_SEMANTIC_PARAMS))
def test_parameters_that_do_not_change_the_answer_are_left_out_of_the_key(name):
    value = {"x": 1} if "headers" in name or name == "metadata" else "some-value"
    assert chat_key({**PARAMS, name: value}) == chat_key()
    flat = {"messages": MESSAGES, **PARAMS}
    assert cache_key("chat", "m", None, {**flat, name: value}) == cache_key("chat", "m", None, flat)


def test_a_field_named_like_a_transport_setting_deep_inside_a_tool_schema_stays_in_the_key():
    def tools(field: str) -> list:
        schema = {"type": "object", "properties": {field: {"type": "string"}}}
        return [{"type": "function", "function": {"name": "lookup", "parameters": schema}}]

    assert chat_key({**PARAMS, "tools": tools("user")}) != chat_key({**PARAMS, "tools": tools("account")})


def test_api_base_trailing_slash_and_blank_do_not_change_the_key():
    assert chat_key(api_base=API_BASE + "/") == chat_key(api_base=API_BASE)
    assert chat_key(api_base="") == chat_key(api_base=None)


def test_a_parameter_that_is_not_json_data_is_a_clear_error():
    with pytest.raises(TypeError, match=r"payload\.params\.stop of type object"):
        chat_key({"stop": object()})


# --- storage ------------------------------------------------------------------


def test_round_trip(cache):
    key = chat_key()
    assert cache.get(key) is None
    before = time.time()
    record(cache, key, "Paris")
    entry = cache.get(key)
    assert isinstance(entry, CacheEntry)
    assert (entry.key, entry.kind, entry.model) == (key, "chat", "gpt-4o-mini")
    assert entry.response == {"text": "Paris", "tokens_in": 12, "tokens_out": 1}
    assert entry.call["latency_s"] == 0.42 and entry.call["cache_key"] == key
    assert before <= entry.created_at <= time.time()


def test_put_overwrites_the_entry_under_the_same_key(cache):
    key = chat_key()
    record(cache, key, "Lyon")
    record(cache, key, "Paris")
    assert cache.get(key).response["text"] == "Paris"
    assert cache.stats()["entries"] == 1


def test_unicode_survives_the_round_trip(cache):
    key = cache_key("chat", "m", None, {"messages": [{"role": "user", "content": "Ünïcödé ✓ 東京"}]})
    cache.put(key, kind="chat", model="m", request={}, response={"text": "東京 ✓"}, call={})
    assert cache.get(key).response == {"text": "東京 ✓"}


def test_a_response_that_is_not_json_data_is_refused(cache):
    with pytest.raises(TypeError, match="response is not JSON data"):
        cache.put("k", kind="chat", model="m", request={}, response={"text": object()}, call={})
    assert cache.get("k") is None


def test_file_is_wal_mode_with_the_project_application_id_and_schema_version(tmp_path):
    path = tmp_path / "nested" / "folder" / "calls.sqlite"  # the folder is created on first use
    with CallCache(path) as cache:
        record(cache, chat_key(), "Paris")
        raw = sqlite3.connect(path)
        try:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
            assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        finally:
            raw.close()


def test_close_releases_the_file_and_the_cache_reopens_on_next_use(tmp_path):
    path = tmp_path / "calls.sqlite"
    with CallCache(path) as cache:
        record(cache, chat_key(), "Paris")
        assert Path(f"{path}-wal").exists()
    # SQLite removes the write-ahead log once the last connection has closed.
    assert not Path(f"{path}-wal").exists()
    assert cache.get(chat_key()).response["text"] == "Paris"
    cache.close()


def test_a_warm_get_takes_well_under_a_millisecond(cache):
    key = chat_key()
    record(cache, key, "Paris")
    cache.get(key)
    timings = []
    for _ in range(300):
        start = time.perf_counter()
        cache.get(key)
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.001


# --- secrets --------------------------------------------------------------------


def test_api_keys_and_credentials_never_reach_the_file(tmp_path):
    path = tmp_path / "calls.sqlite"
    secrets = ["sk-test-SECRET-4242", "Bearer tok-SECRET-77", "hdr-SECRET-1", "aws-SECRET-9", "pw-SECRET-3"]
    request = {
        "model": "gpt-4o-mini",
        "api_key": secrets[0],
        "messages": MESSAGES,
        "params": {
            "max_tokens": 16,
            "top_logprobs": 2,
            "headers": {"Authorization": secrets[1]},
            "extra_headers": {"X-Api-Key": secrets[2]},
        },
        "provider": {"aws_secret_access_key": secrets[3], "password": secrets[4], "region": "eu-west-1"},
    }
    key = chat_key()
    with CallCache(path) as cache:
        cache.put(
            key,
            kind="chat",
            model="gpt-4o-mini",
            request=request,
            response={"text": "Paris"},
            call={"cache_key": key, "params": {"api_key": secrets[0], "max_tokens": 16}},
        )
        files_while_open = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert cache.get(key).call == {"cache_key": key, "params": {"max_tokens": 16}}
    for secret in secrets:
        assert secret.encode() not in files_while_open
        assert secret.encode() not in path.read_bytes()

    raw = sqlite3.connect(path)
    stored = raw.execute("SELECT request FROM calls").fetchone()[0]
    raw.close()
    # What shapes the answer is kept for inspection; max_tokens and top_logprobs are not credentials.
    assert '"max_tokens":16' in stored and '"top_logprobs":2' in stored
    assert '"region":"eu-west-1"' in stored and "What is the capital of France?" in stored


# --- maintenance ----------------------------------------------------------------


def test_stats_clear_and_prune(cache):
    assert cache.stats()["entries"] == 0
    assert cache.stats()["oldest_created_at"] is None

    record(cache, chat_key({"seed": 1}), "old", model="gpt-4o-mini")
    record(cache, chat_key({"seed": 2}), "new", model="gpt-4o-mini")
    record(cache, chat_key({"seed": 3}), "vector", model="text-embedding-3-small", kind="embedding")
    now = time.time()
    age_by_an_hour(cache.path, chat_key({"seed": 1}))

    stats = cache.stats()
    assert stats["entries"] == 3
    assert stats["by_model"] == {"gpt-4o-mini": 2, "text-embedding-3-small": 1}
    assert stats["by_kind"] == {"chat": 2, "embedding": 1}
    assert stats["oldest_created_at"] == pytest.approx(now - 3600, abs=5)
    assert stats["newest_created_at"] == pytest.approx(now, abs=5)
    assert stats["bytes"] > 0 and stats["path"] == str(cache.path)

    assert cache.prune(older_than_s=60) == 1
    assert cache.get(chat_key({"seed": 1})) is None
    assert cache.get(chat_key({"seed": 2})).response["text"] == "new"
    assert cache.clear() == 2
    assert cache.stats()["entries"] == 0


def age_by_an_hour(path: Path, key: str) -> None:
    """Make an entry look recorded an hour earlier, as another process would see it."""
    other = sqlite3.connect(path)
    other.execute("UPDATE calls SET created_at = created_at - 3600 WHERE key = ?", (key,))
    other.commit()
    other.close()


def test_prune_refuses_a_negative_age(cache):
    with pytest.raises(ValueError, match="older_than_s"):
        cache.prune(older_than_s=-1)


def test_vacuum_gives_space_back(cache):
    for i in range(200):
        record(cache, chat_key({"seed": i}), "x" * 2000)
    full = cache.stats()["bytes"]
    cache.clear()
    cache.vacuum()
    assert cache.stats()["bytes"] < full / 4


# --- unusable files -------------------------------------------------------------


def expect_cache_error(path: Path, *fragments: str) -> str:
    with pytest.raises(CacheError) as excinfo:
        CallCache(path).get(chat_key())
    message = str(excinfo.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    # No sqlite3 traceback chained under ours: the message says it all.
    error = excinfo.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return message


@pytest.mark.parametrize(
    "content",
    [b"just some notes, not a database\n" * 20, os.urandom(8192), b"SQLite format 3\x00" + b"\xff" * 200],
    ids=["text", "random-bytes", "broken-header"],
)
def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path, content):
    path = tmp_path / "calls.sqlite"
    path.write_bytes(content)
    expect_cache_error(path, "not a SQLite database", "Delete the file", "--llmops-cache-path", "llmops_cache_path")
    assert path.read_bytes() == content  # left as found


def test_a_cache_corrupted_after_recording_is_a_clear_error(tmp_path):
    path = tmp_path / "calls.sqlite"
    with CallCache(path) as cache:
        for i in range(50):
            record(cache, chat_key({"seed": i}), "Paris")
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size:] = os.urandom(len(data) - page_size)  # keep the header, ruin every page after it
    path.write_bytes(bytes(data))
    expect_cache_error(path, "is corrupt", "Delete the file")


def test_another_applications_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    other.commit()
    other.close()
    before = path.read_bytes()
    expect_cache_error(path, "another application's SQLite database", "tables: users", "--llmops-cache-path")
    assert path.read_bytes() == before


def test_a_database_with_a_foreign_application_id_is_refused(tmp_path):
    path = tmp_path / "app.db"
    other = sqlite3.connect(path)
    other.execute("PRAGMA application_id = 1196444237")
    other.commit()
    other.close()
    expect_cache_error(path, "application_id 0x47504a4d")


def test_a_cache_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "calls.sqlite"
    with CallCache(path) as cache:
        record(cache, chat_key(), "Paris")
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.commit()
    newer.close()
    expect_cache_error(path, f"schema version {SCHEMA_VERSION + 1}", "Upgrade pytest-llmops")


def test_a_folder_in_place_of_the_file_is_a_clear_error(tmp_path):
    expect_cache_error(tmp_path, "is a folder", "--llmops-cache-path")


def test_an_empty_file_becomes_a_cache(tmp_path):
    path = tmp_path / "calls.sqlite"
    path.touch()
    with CallCache(path) as cache:
        record(cache, chat_key(), "Paris")
        assert cache.get(chat_key()).response["text"] == "Paris"


# --- concurrency ----------------------------------------------------------------

WRITERS, PUTS_EACH, READERS = 4, 100, 2


def writer_key(writer: int, n: int) -> str:
    return cache_key("chat", "m", None, {"messages": [{"role": "user", "content": f"w{writer} n{n}"}]})


def write_entries(path: str, writer: int, start: threading.Event, errors) -> None:
    try:
        start.wait()
        cache = CallCache(path)
        for n in range(PUTS_EACH):
            key = writer_key(writer, n)
            cache.put(key, kind="chat", model=f"model-{writer}", request={}, response={"n": n}, call={})
        cache.close()
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent
        errors.put(f"writer {writer}: {err!r}")


def read_entries(path: str, start: threading.Event, writers_done, errors) -> None:
    try:
        start.wait()
        cache = CallCache(path)
        seen = 0
        while not writers_done.is_set():
            for writer in range(WRITERS):
                entry = cache.get(writer_key(writer, seen % PUTS_EACH))
                # Either not written yet or complete: never a partial row.
                assert entry is None or entry.response == {"n": seen % PUTS_EACH}
            seen += 1
        cache.close()
    except BaseException as err:  # noqa: BLE001
        errors.put(f"reader: {err!r}")


@pytest.mark.skipif(sys.platform == "win32", reason="uses fork to start processes quickly")
def test_several_processes_write_and_read_one_file_at_once(tmp_path):
    context = multiprocessing.get_context("fork")
    path = str(tmp_path / "shared.sqlite")  # new: the writers also race to create the table
    start, writers_done = context.Event(), context.Event()
    errors = context.Queue()
    writers = [context.Process(target=write_entries, args=(path, w, start, errors)) for w in range(WRITERS)]
    readers = [
        context.Process(target=read_entries, args=(path, start, writers_done, errors)) for _ in range(READERS)
    ]
    for process in writers + readers:
        process.start()
    start.set()
    for process in writers:
        process.join(60)
    writers_done.set()
    for process in readers:
        process.join(60)

    reported = []
    while not errors.empty():
        reported.append(errors.get())
    assert reported == []
    assert [p.exitcode for p in writers + readers] == [0] * (WRITERS + READERS)
    with CallCache(path) as cache:
        stats = cache.stats()
        assert stats["entries"] == WRITERS * PUTS_EACH
        assert stats["by_model"] == {f"model-{w}": PUTS_EACH for w in range(WRITERS)}
        assert all(cache.get(writer_key(w, n)).response == {"n": n} for w in range(WRITERS) for n in range(PUTS_EACH))


@pytest.mark.skipif(sys.platform == "win32", reason="fork only")
def test_a_cache_opened_before_a_fork_works_in_the_child_and_the_parent(tmp_path):
    context = multiprocessing.get_context("fork")
    cache = CallCache(tmp_path / "calls.sqlite")
    record(cache, chat_key(), "Paris")  # the parent's connection is open when the children fork
    errors = context.Queue()
    children = [
        context.Process(target=put_from_inherited_cache, args=(cache, child, errors)) for child in range(2)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    assert errors.empty()
    assert [child.exitcode for child in children] == [0, 0]
    assert cache.get(chat_key()).response["text"] == "Paris"
    assert cache.stats()["entries"] == 1 + 2 * 10
    cache.close()


def put_from_inherited_cache(cache: CallCache, child: int, errors) -> None:
    try:
        assert cache.get(chat_key()).response["text"] == "Paris"
        for n in range(10):
            cache.put(writer_key(child, n), kind="chat", model="m", request={}, response={"n": n}, call={})
        cache.close()
    except BaseException as err:  # noqa: BLE001
        errors.put(repr(err))


def test_threads_share_one_cache_object(cache):
    def work(thread: int) -> int:
        for n in range(50):
            key = writer_key(thread, n)
            cache.put(key, kind="chat", model="m", request={}, response={"n": n}, call={})
            assert cache.get(key).response == {"n": n}
        return thread

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(work, range(8))) == list(range(8))
    assert cache.stats()["entries"] == 8 * 50
    cache.close()
    assert not Path(f"{cache.path}-wal").exists()  # every thread's connection was closed
