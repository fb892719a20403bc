"""The content-addressed on-disk cache of provider calls.

An answer is stored under a key that hashes everything that shapes it (call
kind, model, api_base, messages or texts, and the parameters that change the
answer), so a changed prompt or temperature is a miss, never a stale hit. The
store is one SQLite file in WAL mode, shared by every pytest-xdist worker:
readers never wait for writers, and writers queue on SQLite's own lock with a
generous ``busy_timeout``.

Concurrency model: one connection per thread (``threading.local``). The
asyncio event loop thread and the worker threads each get their own, so a
read on the loop is never held up behind another thread's write that is
waiting for a busy file. Connections opened before a ``fork`` are never used
or closed in the child (SQLite forbids carrying a connection across a fork);
the child opens its own.

API keys are never stored: they are not part of the key, and the request kept
for inspection is scrubbed of credentials before it is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_llmops.redact import redact, redact_url, scrub

__all__ = [
    "APPLICATION_ID",
    "NON_SEMANTIC_PARAMS",
    "SCHEMA_VERSION",
    "CacheEntry",
    "CacheError",
    "CacheMissError",
    "CallCache",
    "RecordMode",
    "cache_key",
    "scrub_secrets",
]

#: Written to the SQLite header (``PRAGMA application_id``) so a foreign database is recognised: ASCII "LLMo".
APPLICATION_ID = int.from_bytes(b"LLMo", "big")
#: ``PRAGMA user_version`` of the files this version writes. Bump it (with a migration) when the table changes.
SCHEMA_VERSION = 1
#: Part of every key; bump it when the canonical form changes so old entries miss instead of colliding.
KEY_VERSION = 1
#: Seconds a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 30.0

#: Request parameters that never change the answer, so they are left out of the key:
#: transport settings (timeouts, retries, deadline, streaming), credentials and
#: headers (a rotated API key must not invalidate the cache, and must never be
#: hashed or stored), and bookkeeping the provider echoes without reading
#: (``metadata``, ``user``). A streamed and a plain call with the same prompt
#: therefore share one entry.
NON_SEMANTIC_PARAMS = frozenset(
    {
        "timeout",
        "api_key",
        "max_retries",
        "num_retries",
        "metadata",
        "stream",
        "stream_options",
        "user",
        "extra_headers",
        "headers",
        "request_timeout",
        "deadline",
    }
)

_FIX = "Delete the file, or point --llmops-cache-path / llmops_cache_path elsewhere."


class RecordMode(str, Enum):
    """How the cache is used, after pytest-recording's record modes.

    ``off``: no cache read or write. ``new`` (default): replay hits, record
    misses. ``none``: replay only, a miss is an error (hermetic CI). ``all``:
    never read, always call the provider and overwrite.
    """

    OFF = "off"
    NEW = "new"
    NONE = "none"
    ALL = "all"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str, *, source: str) -> RecordMode:
        """Read a record mode from user input; ``source`` names where it came from in the error."""
        if isinstance(value, cls):
            return value
        text = value.strip().lower() if isinstance(value, str) else value
        for mode in cls:
            if mode.value == text:
                return mode
        raise ValueError(
            f"{source}: invalid record mode {value!r}; use one of: "
            "'off' (no cache), 'new' (replay hits, record misses; the default), "
            "'none' (replay only, a miss is an error), 'all' (re-record everything)"
        )

    @property
    def reads(self) -> bool:
        """Whether cached answers are replayed."""
        return self in (RecordMode.NEW, RecordMode.NONE)

    @property
    def writes(self) -> bool:
        """Whether answers from the provider are recorded."""
        return self in (RecordMode.NEW, RecordMode.ALL)


class CacheError(Exception):
    """The cache file cannot be used; the message names the path, the problem and the fix."""


class CacheMissError(Exception):
    """Replay-only mode (``none``) found no recorded answer for a call."""

    def __init__(self, *, key: str, model: str, nodeid: str | None) -> None:
        self.key = key
        self.model = model
        self.nodeid = nodeid
        where = f"test case {nodeid}" if nodeid else "a call made outside any test case"
        super().__init__(
            f"no recorded answer for {where} (model {model!r}, cache key {key[:12]}...) "
            "and the record mode is 'none' (replay only); "
            "re-run once with --llmops-record-mode=new to record it"
        )


# --- keys ------------------------------------------------------------------


class _Unhashable(TypeError):
    """A value ``_canonical`` cannot turn into JSON; ``path`` is filled in on the way out."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.path: list[str] = []


def _canonical(value: Any) -> Any:
    """Turn ``value`` into plain JSON data with one spelling per meaning.

    Mappings of any type become dicts with string keys (``logit_bias`` may use
    int token ids), tuples and lists become lists, and integral floats become
    ints, since JSON providers cannot tell ``0`` from ``0.0``. Raises
    ``_Unhashable`` with the path to a value it cannot take; the path is built
    only then, not for every element (a cache key is made for every call).
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, Enum):
        return _canonical(value.value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            try:
                out[str(k)] = _canonical(v)
            except _Unhashable as error:
                error.path.insert(0, f".{k}")
                raise
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_canonical(v))
            except _Unhashable as error:
                error.path.insert(0, f"[{i}]")
                raise
        return items
    if isinstance(value, Set):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
    # A pydantic model class as response_format (as litellm accepts): its JSON schema is what is sent.
    if isinstance(value, type) and callable(getattr(value, "model_json_schema", None)):
        return _canonical(value.model_json_schema())
    if callable(getattr(value, "model_dump", None)):
        return _canonical(value.model_dump(mode="json"))
    raise _Unhashable(type(value).__name__)


def _canonical_payload(payload: Mapping[str, Any]) -> Any:
    try:
        return _canonical(payload)
    except _Unhashable as error:
        raise TypeError(
            f"cache_key: cannot hash payload{''.join(error.path)} of type {error.kind}; "
            "pass JSON data (dicts, lists, strings, numbers) instead"
        ) from None


def _semantic(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the non-semantic parameters from the top level and from a nested ``params`` mapping.

    Only those two levels: deeper down (tool schemas, message bodies) a field
    named ``user`` or ``timeout`` is content and must stay in the key.
    """
    kept = {str(k): v for k, v in payload.items() if k not in NON_SEMANTIC_PARAMS}
    params = kept.get("params")
    if isinstance(params, Mapping):
        kept["params"] = {str(k): v for k, v in params.items() if k not in NON_SEMANTIC_PARAMS}
    return kept


def _normalise_api_base(api_base: str | None) -> str | None:
    if api_base is None:
        return None
    # Credentials in the URL (?api-key=..., user:key@) do not shape the answer: a rotated key keeps its entries.
    return redact_url(api_base.strip().rstrip("/")) or None


def cache_key(kind: str, model: str, api_base: str | None, payload: Mapping[str, Any]) -> str:
    """The cache key of a call: a sha256 hex digest over its canonical JSON form.

    ``payload`` holds the messages (or texts) and the call's parameters, either
    flat or under ``params``. Key order, tuple-versus-list, ``0`` versus ``0.0``
    and a trailing ``/`` on ``api_base`` do not change the key; any parameter
    that changes the answer does, and those in ``NON_SEMANTIC_PARAMS`` do not.
    """
    material = {
        "v": KEY_VERSION,
        "kind": kind,
        "model": model,
        "api_base": _normalise_api_base(api_base),
        "payload": _canonical_payload(_semantic(payload)),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- scrubbing -------------------------------------------------------------

#: Kept under its old name: the one scrubber lives in ``pytest_llmops.redact``.
scrub_secrets = scrub


# --- the store -------------------------------------------------------------


@dataclass(frozen=True)
class CacheEntry:
    """One recorded answer: the provider's response and the ``Call`` record it produced."""

    key: str
    kind: str
    model: str
    response: dict
    call: dict
    created_at: float


_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS calls (
        key        TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        model      TEXT NOT NULL,
        request    TEXT NOT NULL,
        response   TEXT NOT NULL,
        call       TEXT NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS calls_created_at ON calls (created_at)",
)


def _dumps(value: Mapping[str, Any], what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise TypeError(f"CallCache.put: {what} is not JSON data: {err}") from None


class CallCache:
    """Provider answers on disk, keyed by ``cache_key``; safe across threads and processes.

    The file is opened on first use (its folder is created) and checked: a file
    that is not a SQLite database, another application's database, or a cache
    written by a newer version raises ``CacheError``. Every SQLite failure
    surfaces as ``CacheError`` naming the path and the fix.

    Each thread gets its own connection, kept open until ``close()``; call
    ``close()`` when no other thread is using the cache. The cache may be used
    again after ``close()``: it reopens on the next call.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path).expanduser().absolute()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pid = os.getpid()
        # Every open connection of this process, with its owning thread, so close() reaches them all.
        self._conns: list[tuple[sqlite3.Connection, weakref.ref[threading.Thread]]] = []
        self._generation = 0
        # Connections inherited across a fork: kept referenced, never used or closed (see module doc).
        self._inherited: list[Any] = []

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"CallCache({str(self._path)!r})"

    # --- connections ---

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            self._after_fork()
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.generation == self._generation:
            return conn
        conn = self._open()
        thread = threading.current_thread()
        with self._lock:
            self._close_dead_threads()
            self._conns.append((conn, weakref.ref(thread)))
            local.generation = self._generation
        local.conn = conn
        return conn

    def _after_fork(self) -> None:
        self._inherited.append((self._conns, self._local))
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._conns = []

    def _close_dead_threads(self) -> None:
        """Close the connections of threads that have ended (called with the lock held)."""
        alive = []
        for conn, thread_ref in self._conns:
            thread = thread_ref()
            if thread is not None and thread.is_alive():
                alive.append((conn, thread_ref))
            else:
                conn.close()
        self._conns = alive

    def _open(self) -> sqlite3.Connection:
        path = self._path
        if path.is_dir():
            raise CacheError(
                f"llmops cache {path} is a folder, not a file. "
                "Point --llmops-cache-path / llmops_cache_path at a file path."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(
                f"llmops cache {path}: cannot create its folder ({err.strerror or err}). "
                "Point --llmops-cache-path / llmops_cache_path at a writable location."
            ) from None
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # autocommit: each statement is its own short transaction
                check_same_thread=False,  # only close() touches another thread's connection
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._check(conn)
            self._initialise(conn)
            conn.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode except on power loss
            return conn
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            raise self._error("opening", err) from None
        except CacheError:
            if conn is not None:
                conn.close()
            raise

    def _state(self, conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
        """The file's application_id, schema version and tables, read from one snapshot.

        Called inside a transaction, or opens a read transaction of its own: three
        separate reads could straddle another process's initialisation.
        """
        own_transaction = not conn.in_transaction
        if own_transaction:
            conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
        finally:
            if own_transaction and conn.in_transaction:
                conn.execute("COMMIT")
        return app_id, version, tables

    def _check(self, conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
        """Refuse another application's database or a newer schema; return the file's state."""
        app_id, version, tables = self._state(conn)
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "") or "none"
            found = f"application_id {app_id:#x}" if app_id else "no application_id"
            raise CacheError(
                f"llmops cache {self._path} is another application's SQLite database "
                f"({found}, tables: {shown}), not a pytest-llmops cache. "
                "Point --llmops-cache-path / llmops_cache_path elsewhere, "
                "or delete the file if nothing else needs it."
            )
        if version > SCHEMA_VERSION:
            raise CacheError(
                f"llmops cache {self._path} was written by a newer pytest-llmops "
                f"(cache schema version {version}; this version reads up to {SCHEMA_VERSION}). "
                "Upgrade pytest-llmops, delete the file, "
                "or point --llmops-cache-path / llmops_cache_path elsewhere."
            )
        return app_id, version, tables

    def _initialise(self, conn: sqlite3.Connection) -> None:
        app_id, version, _ = self._state(conn)
        if app_id != APPLICATION_ID or version != SCHEMA_VERSION:
            # IMMEDIATE takes the write lock first, so of several processes opening a new
            # file at once exactly one creates the table; the others see it when they look again.
            conn.execute("BEGIN IMMEDIATE")
            try:
                app_id, version, _ = self._check(conn)
                if app_id != APPLICATION_ID or version != SCHEMA_VERSION:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self._use_wal(conn)

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL mode (persistent; a no-op once done).

        SQLite does not send the switch through the busy handler: while another
        connection is opening the same new file it fails at once with "database
        is locked", so wait and try again here, up to the busy timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        pause = 0.001
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err).lower() or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _error(self, doing: str, err: sqlite3.Error) -> CacheError:
        text = str(err)
        lowered = text.lower()
        if "not a database" in lowered:
            return CacheError(f"llmops cache {self._path} is not a SQLite database ({text}). {_FIX}")
        if "malformed" in lowered or "corrupt" in lowered:
            return CacheError(f"llmops cache {self._path} is corrupt ({text}). {_FIX}")
        if "locked" in lowered or "busy" in lowered:
            return CacheError(
                f"llmops cache {self._path}: {doing} failed, the file stayed locked by another "
                f"process for more than {BUSY_TIMEOUT_S:g} s ({text}). Make sure no stuck process "
                "holds it, or point --llmops-cache-path / llmops_cache_path elsewhere."
            )
        if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
            return CacheError(
                f"llmops cache {self._path}: {doing} failed ({text}). Make the file and its folder "
                "writable, or point --llmops-cache-path / llmops_cache_path elsewhere."
            )
        return CacheError(f"llmops cache {self._path}: {doing} failed ({text}). {_FIX}")

    def _query(self, doing: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._connection()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise self._error(doing, err) from None

    def _change(self, doing: str, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run a statement that writes; return the number of rows it changed."""
        conn = self._connection()
        try:
            return conn.execute(sql, params).rowcount
        except sqlite3.Error as err:
            raise self._error(doing, err) from None

    # --- public API ---

    def get(self, key: str) -> CacheEntry | None:
        """The recorded answer under ``key``, or ``None``."""
        rows = self._query(
            "reading",
            "SELECT kind, model, response, call, created_at FROM calls WHERE key = ?",
            (key,),
        )
        if not rows:
            return None
        kind, model, response, call, created_at = rows[0]
        try:
            return CacheEntry(key, kind, model, json.loads(response), json.loads(call), created_at)
        except json.JSONDecodeError as err:
            raise CacheError(
                f"llmops cache {self._path}: the entry {key[:12]}... is not valid JSON ({err}). {_FIX}"
            ) from None

    def put(
        self,
        key: str,
        *,
        kind: str,
        model: str,
        request: Mapping[str, Any],
        response: Mapping[str, Any],
        call: Mapping[str, Any],
    ) -> None:
        """Record an answer under ``key``, replacing any earlier one.

        ``request`` is kept for inspection only, with credentials removed; the
        ``params`` and ``extra`` of ``call`` are scrubbed the same way, and its
        other fields (``api_base``, ``error``) redacted. The answer is stored
        as it came: replaying it must give what the provider said.
        """
        call_data = redact(dict(call))
        for field in ("params", "extra"):
            if isinstance(call.get(field), Mapping):
                call_data[field] = scrub(call[field])
        row = (
            key,
            kind,
            model,
            _dumps(scrub(request), "request"),
            _dumps(response, "response"),
            _dumps(call_data, "call"),
            time.time(),
        )
        self._change(
            "writing",
            "INSERT OR REPLACE INTO calls (key, kind, model, request, response, call, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def stats(self) -> dict[str, Any]:
        """Counts and sizes: ``path``, ``entries``, ``by_model``, ``by_kind``, ``bytes``,
        ``oldest_created_at`` and ``newest_created_at`` (``None`` when empty)."""
        by_model = {
            model: count
            for model, count in self._query(
                "reading", "SELECT model, COUNT(*) FROM calls GROUP BY model ORDER BY model"
            )
        }
        by_kind = {
            kind: count
            for kind, count in self._query("reading", "SELECT kind, COUNT(*) FROM calls GROUP BY kind ORDER BY kind")
        }
        ((oldest, newest),) = self._query("reading", "SELECT MIN(created_at), MAX(created_at) FROM calls")
        size = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                size += os.path.getsize(f"{self._path}{suffix}")
            except OSError:
                pass  # the -wal and -shm files come and go with connections
        return {
            "path": str(self._path),
            "entries": sum(by_model.values()),
            "by_model": by_model,
            "by_kind": by_kind,
            "bytes": size,
            "oldest_created_at": oldest,
            "newest_created_at": newest,
        }

    def clear(self) -> int:
        """Remove every entry; return how many there were."""
        return self._change("clearing", "DELETE FROM calls")

    def prune(self, *, older_than_s: float) -> int:
        """Remove entries recorded more than ``older_than_s`` seconds ago; return how many."""
        if not isinstance(older_than_s, (int, float)) or not math.isfinite(older_than_s) or older_than_s < 0:
            raise ValueError(f"prune: older_than_s must be a finite number of seconds >= 0, got {older_than_s!r}")
        cutoff = time.time() - older_than_s
        return self._change("pruning", "DELETE FROM calls WHERE created_at < ?", (cutoff,))

    def vacuum(self) -> None:
        """Give the space of removed entries back to the file system."""
        self._query("vacuuming", "VACUUM")
        self._query("vacuuming", "PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close every connection this process opened; the next call reopens."""
        if os.getpid() != self._pid:
            self._after_fork()
            return
        with self._lock:
            conns, self._conns = self._conns, []
            self._generation += 1
            for conn, _ in conns:
                conn.close()

    def __enter__(self) -> CallCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
