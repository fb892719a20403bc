"""Results of deterministic local computations, kept across runs.

BERTScore's raw triples, METEOR values and MiniLM sentence vectors depend
only on their inputs and on the versions of the code and weights that
computed them. A warm run of a suite asks for the same ones again; reading
them back means it never loads torch, the MiniLM weights or WordNet (about
ten seconds of a warm main job here).

Entries are keyed by a *signature* (what computed the value: metric, options
and package versions, as in the scores' own signatures) and a digest of the
inputs. A changed library version or option is a new signature, so its values
are computed afresh.

The plugin points the store at ``computed.sqlite`` beside the call cache at
start-up (``llmops_record_mode=off``: no store; ``all``: recompute and
overwrite). Outside pytest nothing is kept on disk unless :func:`configure`
is called. Safe for xdist workers and concurrent runs (SQLite WAL); a store
that cannot be opened or written is skipped with one warning, since the values
can always be computed again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_path: Path | None = None
_replay = True
_db: Any = None
_broken = False


def configure(path: str | Path | None, *, replay: bool = True) -> tuple[Path | None, bool]:
    """Keep values in SQLite at ``path`` (``None``: keep nothing); ``replay=False`` recomputes and overwrites.

    Returns the previous ``(path, replay)``, so a nested pytest run (pytester)
    can put back its host run's store when it ends.
    """
    global _path, _replay, _db, _broken
    with _lock:
        previous = (_path, _replay)
        if _db is not None:
            _db.close()
        _path = None if path is None else Path(path)
        _replay = replay
        _db = None
        _broken = False
    return previous


def configured_path() -> Path | None:
    """Where values are kept now, if anywhere."""
    return _path


def digest(*parts: Any) -> str:
    """A stable digest of JSON-serialisable inputs (strings, numbers, lists)."""
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _connect() -> Any:
    global _db, _broken
    if _db is None and _path is not None and not _broken:
        import sqlite3

        try:
            _path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(_path), timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS computed (signature TEXT, digest TEXT, value BLOB, "
                "PRIMARY KEY (signature, digest))"
            )
            db.commit()
        except (OSError, sqlite3.Error) as exc:
            _give_up(f"cannot open {_path} ({exc})")
            return None
        _db = db
    return _db


def _give_up(why: str) -> None:
    global _broken, _db
    _broken = True
    _db = None
    warnings.warn(
        f"pytest-llmops: the store of computed metric values is not used: {why}; values are computed each run "
        "(delete the file to start a new one)",
        RuntimeWarning,
        stacklevel=3,
    )


def get_many(signature: str, digests: Iterable[str]) -> dict[str, bytes]:
    """The stored values of ``digests`` under ``signature`` (missing ones are left out)."""
    wanted = sorted(set(digests))
    found: dict[str, bytes] = {}
    if not wanted or not _replay:
        return found
    import sqlite3

    with _lock:
        db = _connect()
        if db is None:
            return found
        try:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                rows = db.execute(
                    f"SELECT digest, value FROM computed WHERE signature = ? AND digest IN ({','.join('?' * len(part))})",
                    [signature, *part],
                ).fetchall()
                found.update((key, bytes(value)) for key, value in rows)
        except sqlite3.Error as exc:
            _give_up(f"reading {_path} failed ({exc})")
            return {}
    return found


def put_many(signature: str, values: Mapping[str, bytes]) -> None:
    """Keep ``values`` (digest -> bytes) under ``signature``."""
    if not values:
        return
    import sqlite3

    with _lock:
        db = _connect()
        if db is None:
            return
        try:
            db.executemany(
                "INSERT OR REPLACE INTO computed VALUES (?, ?, ?)",
                [(signature, key, value) for key, value in values.items()],
            )
            db.commit()
        except sqlite3.Error as exc:
            _give_up(f"writing {_path} failed ({exc})")


def get_json(signature: str, key: str) -> Any:
    """One stored JSON value, or ``None``."""
    blob = get_many(signature, [key]).get(key)
    return None if blob is None else json.loads(blob)


def put_json(signature: str, key: str, value: Any) -> None:
    """Keep one JSON-serialisable value."""
    put_many(signature, {key: json.dumps(value).encode("utf-8")})
