"""The run history: every finished run appended to one SQLite file.

One row per run (who, when, what was evaluated, the verdict), one per case, one
per score and gate, one per drift check with the embedding summary it kept
(``pytest_llmops.drift.summary``: for drift over time), and the whole redacted results file as JSON text (plain, so
that a secrets scan of the file sees it as it sees results.json), so that an old
run can be read back exactly, e.g. as the baseline of a comparison.

Concurrency: the file is in WAL mode and every append is one ``BEGIN
IMMEDIATE`` transaction with a long busy timeout, so xdist controllers, two CI
jobs or a run and an ``llmops history import`` can write at once; readers never
block writers. A run's id is a digest of its results, so importing the same
results file twice, or a run that was already appended, adds nothing.

The schema is versioned (``PRAGMA user_version``); opening an older file
migrates it in place, in one transaction, before anything else is done.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmops.results.models import RunResult

#: Seconds a writer waits for another writer before giving up.
BUSY_TIMEOUT_S = 60.0


class HistoryError(ValueError):
    """A history file that cannot be opened, migrated or read; the message names the file and the fix."""


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # Not executescript: it commits first, and a migration must stay inside its transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, started_at REAL NOT NULL, finished_at REAL NOT NULL,
            git_revision TEXT, model TEXT, judge TEXT, exit_status INTEGER, interrupted INTEGER,
            n_cases INTEGER, counts TEXT, results TEXT NOT NULL
        );
        CREATE TABLE cases (
            run_id TEXT NOT NULL REFERENCES runs(run_id), nodeid TEXT NOT NULL, state TEXT NOT NULL,
            duration_s REAL, cost_usd REAL, PRIMARY KEY (run_id, nodeid)
        );
        CREATE TABLE scores (
            run_id TEXT NOT NULL REFERENCES runs(run_id), nodeid TEXT NOT NULL, name TEXT NOT NULL,
            value REAL, verdict TEXT NOT NULL, signature TEXT
        );
        CREATE INDEX scores_by_name ON scores(name, run_id);
        """
    )


def _v2(db: sqlite3.Connection) -> None:
    # v2: the branch (for `main@latest`), gates, prompt versions and models as the providers reported them.
    _run_script(
        db,
        """
        ALTER TABLE runs ADD COLUMN git_branch TEXT;
        ALTER TABLE runs ADD COLUMN suite TEXT;
        CREATE INDEX runs_by_branch ON runs(git_branch, finished_at);
        CREATE TABLE gates (
            run_id TEXT NOT NULL REFERENCES runs(run_id), expression TEXT NOT NULL, value REAL,
            verdict TEXT NOT NULL
        );
        CREATE TABLE prompts (
            run_id TEXT NOT NULL REFERENCES runs(run_id), name TEXT NOT NULL, version TEXT, hash TEXT NOT NULL,
            PRIMARY KEY (run_id, name, hash)
        );
        CREATE TABLE models (
            run_id TEXT NOT NULL REFERENCES runs(run_id), role TEXT NOT NULL, model TEXT NOT NULL,
            calls INTEGER NOT NULL, runtime TEXT
        );
        """
    )


def _v3(db: sqlite3.Connection) -> None:
    # v3: each drift check's embedding summary (pytest_llmops.drift.summary), so drift can be recomputed
    # between any two runs. Runs stored before keep theirs in the results text: they are read out here.
    _run_script(
        db,
        """
        CREATE TABLE drift_summaries (
            run_id TEXT NOT NULL REFERENCES runs(run_id), nodeid TEXT NOT NULL, name TEXT NOT NULL,
            embedder TEXT, method TEXT NOT NULL, alpha REAL NOT NULL, seed INTEGER NOT NULL,
            n_permutations INTEGER, n INTEGER NOT NULL, dim INTEGER NOT NULL, rows INTEGER NOT NULL,
            sample_seed INTEGER NOT NULL, dtype TEXT NOT NULL, mean BLOB NOT NULL, sample BLOB NOT NULL,
            PRIMARY KEY (run_id, nodeid, name)
        );
        CREATE INDEX drift_summaries_by_check ON drift_summaries(nodeid, name)
        """
    )
    for run_id, text in db.execute("SELECT run_id, results FROM runs").fetchall():
        try:
            cases = json.loads(text).get("cases") or []
        except (ValueError, AttributeError):
            continue  # a results text this version cannot read holds no summary it could use
        _insert_summaries(db, run_id, _summaries_in(
            (case.get("nodeid", ""), score) for case in cases for score in case.get("scores") or []
        ))


#: Migrations in order; the schema version of a file is how many of them it has had.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class RunRow:
    """One run of the history, as ``llmops history list`` shows it."""

    run_id: str
    started_at: float
    finished_at: float
    git_revision: str | None
    git_branch: str | None
    model: str | None
    judge: str | None
    exit_status: int | None
    interrupted: bool
    n_cases: int
    counts: dict[str, int]

    @property
    def verdict(self) -> str:
        if self.interrupted:
            return "interrupted"
        return "pass" if self.exit_status == 0 else f"fail (exit {self.exit_status})"


@dataclass(frozen=True)
class SuiteRun:
    """One earlier run of a suite, as the report's history section shows it."""

    run_id: str
    finished_at: float
    git_revision: str | None
    exit_status: int | None
    interrupted: bool
    #: passed / (passed + failed); None when no case was judged.
    pass_rate: float | None
    gates: dict[str, float | None]


def run_id_of(run: RunResult) -> str:
    """A stable id: the digest of the run's results, so the same run is never stored twice."""
    return hashlib.sha256(run.model_dump_json().encode()).hexdigest()[:16]


class HistoryStore:
    """The history file at ``path`` (created on first use, migrated when older)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"{self.path}: not a usable history file ({exc}); move it aside or set another path with "
                "--llmops-history=PATH"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock at once, so two writers queue instead of deadlocking on upgrade.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path} has history schema {version}, newer than this pytest-llmops knows "
                    f"({SCHEMA_VERSION}); upgrade pytest-llmops or use another --llmops-history path"
                )
            for migration in MIGRATIONS[version:]:
                migration(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- writing -------------------------------------------------------------------------------

    def append(self, run: RunResult, *, branch: str | None = None, suite: str | None = None) -> str:
        """Store ``run`` (already redacted); returns its id. A run already stored is left as it is."""
        run_id = run_id_of(run)
        text = run.model_dump_json()
        counts = run.summary.get("counts", {})
        with self._write() as db:
            if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                return run_id
            db.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, git_revision, git_branch, suite, model, judge,"
                " exit_status, interrupted, n_cases, counts, results) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id, run.started_at, run.finished_at, run.environment.git_revision, branch, suite,
                    run.settings.get("model"), run.settings.get("judge"), run.exit_status, int(run.interrupted),
                    len(run.cases), json.dumps(counts), text,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO cases VALUES (?,?,?,?,?)",
                [
                    (run_id, c.nodeid, c.state, c.duration_s, _sum(call.cost_usd for call in c.calls))
                    for c in run.cases
                ],
            )
            db.executemany(
                "INSERT INTO scores VALUES (?,?,?,?,?,?)",
                [(run_id, c.nodeid, s.name, s.value, s.verdict, s.signature) for c in run.cases for s in c.scores]
                + [(run_id, "", s.name, s.value, s.verdict, s.signature) for s in run.group_scores],
            )
            db.executemany(
                "INSERT INTO gates VALUES (?,?,?,?)", [(run_id, g.expression, g.value, g.verdict) for g in run.gates]
            )
            db.executemany(
                "INSERT OR IGNORE INTO prompts VALUES (?,?,?,?)",
                [(run_id, p.name, p.version, p.hash) for c in run.cases for p in c.prompts],
            )
            db.executemany("INSERT INTO models VALUES (?,?,?,?,?)", _models_of(run_id, run))
            _insert_summaries(db, run_id, _summaries_in(
                (case.nodeid, score.model_dump()) for case in run.cases for score in case.scores
            ))
        return run_id

    # -- reading -------------------------------------------------------------------------------

    def runs(self, *, branch: str | None = None, since: float | None = None, limit: int | None = None) -> list[RunRow]:
        """Runs, newest first."""
        sql = (
            "SELECT run_id, started_at, finished_at, git_revision, git_branch, model, judge, exit_status,"
            " interrupted, n_cases, counts FROM runs WHERE 1=1"
        )
        args: list[Any] = []
        if branch is not None:
            sql += " AND git_branch = ?"
            args.append(branch)
        if since is not None:
            sql += " AND finished_at >= ?"
            args.append(since)
        sql += " ORDER BY finished_at DESC, run_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [
            RunRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], json.loads(r[10] or "{}"))
            for r in self._db.execute(sql, args)
        ]

    def suite_history(self, suite: str, *, branch: str | None, limit: int = 20) -> list[SuiteRun]:
        """The last ``limit`` runs of ``suite`` on ``branch`` (any branch when None), oldest first,
        with their pass rate and gate values: the HTML report's history chart."""
        sql = "SELECT run_id, finished_at, git_revision, exit_status, interrupted, counts FROM runs WHERE suite = ?"
        args: list[Any] = [suite]
        if branch is not None:
            sql += " AND git_branch = ?"
            args.append(branch)
        rows = self._db.execute(sql + " ORDER BY finished_at DESC, run_id LIMIT ?", [*args, limit]).fetchall()
        found = []
        for run_id, finished_at, revision, exit_status, interrupted, counts_text in reversed(rows):
            counts = json.loads(counts_text or "{}")
            judged = counts.get("passed", 0) + counts.get("failed", 0)
            gates = {
                expression: value
                for expression, value in self._db.execute(
                    "SELECT expression, value FROM gates WHERE run_id = ?", (run_id,)
                )
            }
            found.append(SuiteRun(
                run_id, finished_at, revision, exit_status, bool(interrupted),
                counts.get("passed", 0) / judged if judged else None, gates,
            ))
        return found

    def latest_durations(self, suite: str) -> tuple[str, dict[str, float]] | None:
        """The newest run of ``suite`` (any branch) and its per-case ``duration_s``; None when it never ran."""
        row = self._db.execute(
            "SELECT run_id FROM runs WHERE suite = ? ORDER BY finished_at DESC, run_id LIMIT 1", (suite,)
        ).fetchone()
        if row is None:
            return None
        durations = {
            str(nodeid): float(duration)
            for nodeid, duration in self._db.execute(
                "SELECT nodeid, duration_s FROM cases WHERE run_id = ? AND duration_s IS NOT NULL", (row[0],)
            )
        }
        return str(row[0]), durations

    def full_id(self, prefix: str) -> str:
        """The id of the one run whose id starts with ``prefix``."""
        rows = self._db.execute("SELECT run_id FROM runs WHERE run_id LIKE ? LIMIT 6", (prefix + "%",)).fetchall()
        if not rows or not prefix:
            raise HistoryError(f"no run {prefix!r} in {self.path}; `llmops history list` shows the stored runs")
        if len(rows) > 1:
            raise HistoryError(f"run id {prefix!r} is ambiguous in {self.path}: {', '.join(r[0] for r in rows[:5])}")
        return str(rows[0][0])

    def load(self, run_id: str) -> RunResult:
        """The stored results of the run ``run_id`` (or a unique prefix of it)."""
        row = self._db.execute("SELECT results FROM runs WHERE run_id = ?", (self.full_id(run_id),)).fetchone()
        return RunResult.model_validate_json(row[0])

    def resolve(self, spec: str) -> tuple[str, RunResult]:
        """``BRANCH@latest``, ``@RUN_ID`` or ``@GIT_REV`` (a prefix will do) -> (run id, results)."""
        branch, _, ref = spec.partition("@")
        if branch and ref == "latest":
            rows = self._db.execute(
                "SELECT run_id FROM runs WHERE git_branch = ? AND interrupted = 0 ORDER BY finished_at DESC LIMIT 1",
                (branch,),
            ).fetchall()
            if not rows:
                known = [r[0] for r in self._db.execute("SELECT DISTINCT git_branch FROM runs WHERE git_branch IS NOT NULL")]
                raise HistoryError(
                    f"no finished run of branch {branch!r} in {self.path} (branches there: "
                    f"{', '.join(sorted(known)) or 'none'}); run the suites on {branch} first"
                )
            return rows[0][0], self.load(rows[0][0])
        if branch or not ref:
            raise HistoryError(f"{spec!r} is not a history reference: use BRANCH@latest, @RUN_ID or @GIT_REVISION")
        by_rev = self._db.execute(
            "SELECT run_id FROM runs WHERE git_revision LIKE ? AND interrupted = 0 ORDER BY finished_at DESC LIMIT 1",
            (ref + "%",),
        ).fetchone()
        run_id = by_rev[0] if by_rev else self.full_id(ref)
        return run_id, self.load(run_id)

    def trend(self, score: str, *, by: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Per run (oldest first): the mean of ``score`` over its cases, and how many cases had it.

        ``by="model"`` splits by the run's model, ``by="prompt"`` by prompt template version.
        ``score`` may name a family: ``drift`` (every ``drift.<method>`` score, one line each, so a
        drift check's statistic per run reads as drift over time) or ``PREFIX.*``.
        """
        if by not in (None, "model", "prompt"):
            raise HistoryError(f"trend --by {by!r}: use model or prompt")
        group = {"model": "r.model", "prompt": "p.name || '@' || p.version", None: "''"}[by]
        join = "JOIN prompts p ON p.run_id = r.run_id" if by == "prompt" else ""
        family = score.endswith(".*") or score == "drift"
        if family:
            # A family (``drift``, ``robust.asr.*``): one line per score of it, e.g. drift.mmd, drift.classifier.
            group = "s.name" if by is None else f"s.name || ' ' || {group}"
        sql = (
            f"SELECT r.run_id, r.finished_at, r.git_revision, r.git_branch, {group} AS grp,"
            " AVG(s.value), COUNT(s.value), SUM(s.verdict = 'pass'), COUNT(*)"
            f" FROM runs r JOIN scores s ON s.run_id = r.run_id {join}"
            + (" WHERE s.name LIKE ? ESCAPE '\\'" if family else " WHERE s.name = ?")
            + (" AND r.finished_at >= ?" if since is not None else "")
            + " GROUP BY r.run_id, grp ORDER BY r.finished_at, r.run_id, grp"
        )
        prefix = score.removesuffix(".*").removesuffix("*")
        wanted = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%" if family else score
        args: list[Any] = [wanted] + ([since] if since is not None else [])
        return [
            {
                "run_id": r[0], "finished_at": r[1], "git_revision": r[2], "git_branch": r[3], "group": r[4],
                "mean": r[5], "n": r[6], "passed": r[7], "cases": r[8],
            }
            for r in self._db.execute(sql, args)
        ]

    def drift_summaries(
        self, *, run_id: str | None = None, nodeid: str | None = None, name: str | None = None, suite: str | None = None,
        branch: str | None = None, since: float | None = None, limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Each stored drift-check summary with its run's time and revision, oldest run first.

        ``limit`` keeps the runs of the newest ``limit`` runs that have a summary. The bytes
        (``mean``, ``sample``) are as :meth:`EmbeddingSummary.from_bytes` takes them.
        """
        def runs_where(r: str) -> tuple[list[str], list[Any]]:
            # The run filters, on the runs table under the alias ``r`` (the limit's subquery uses its own).
            where, args = [], []
            for column, value in (("suite", suite), ("git_branch", branch)):
                if value is not None:
                    where.append(f"{r}.{column} = ?")
                    args.append(value)
            if since is not None:
                where.append(f"{r}.finished_at >= ?")
                args.append(since)
            return where, args

        where, args = runs_where("r")
        for column, value in (("d.run_id", run_id), ("d.nodeid", nodeid), ("d.name", name)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if limit is not None:
            inner, inner_args = runs_where("r2")
            where.append(
                "r.run_id IN (SELECT r2.run_id FROM runs r2 WHERE r2.run_id IN (SELECT run_id FROM drift_summaries)"
                + "".join(f" AND {condition}" for condition in inner)
                + " ORDER BY r2.finished_at DESC, r2.run_id LIMIT ?)"
            )
            args += [*inner_args, limit]
        where = where or ["1=1"]
        sql = (
            "SELECT d.run_id, r.finished_at, r.git_revision, d.nodeid, d.name, d.embedder, d.method, d.alpha, d.seed,"
            " d.n_permutations, d.n, d.dim, d.rows, d.sample_seed, d.dtype, d.mean, d.sample"
            " FROM drift_summaries d JOIN runs r ON r.run_id = d.run_id"
            f" WHERE {' AND '.join(where)} ORDER BY r.finished_at, d.run_id, d.nodeid, d.name"
        )
        keys = ("run_id", "finished_at", "git_revision", "nodeid", "name", "embedder", "method", "alpha", "seed",
                "n_permutations", "n", "dim", "rows", "sample_seed", "dtype", "mean", "sample")
        return [dict(zip(keys, row)) for row in self._db.execute(sql, args)]

    def models(self) -> list[dict[str, Any]]:
        """Each model (by role and runtime) evaluated: first and last run, runs, last verdict."""
        sql = (
            "SELECT m.role, m.model, m.runtime, COUNT(DISTINCT r.run_id), MIN(r.finished_at), MAX(r.finished_at),"
            " SUM(m.calls) FROM models m JOIN runs r ON r.run_id = m.run_id GROUP BY m.role, m.model, m.runtime"
            " ORDER BY MAX(r.finished_at) DESC"
        )
        out = []
        for role, model, runtime, runs, first, last, calls in self._db.execute(sql):
            latest = self._db.execute(
                "SELECT r.exit_status, r.interrupted FROM runs r JOIN models m ON m.run_id = r.run_id"
                " WHERE m.role = ? AND m.model = ? AND m.runtime IS ? ORDER BY r.finished_at DESC LIMIT 1",
                (role, model, runtime),
            ).fetchone()
            out.append({
                "role": role, "model": model, "runtime": json.loads(runtime) if runtime else None, "runs": runs,
                "first": first, "last": last, "calls": calls,
                "last_verdict": "interrupted" if latest[1] else ("pass" if latest[0] == 0 else "fail"),
            })
        return out

    def prompt_versions(self) -> list[dict[str, Any]]:
        """Each prompt template version evaluated: its hash, runs, first and last time."""
        sql = (
            "SELECT p.name, p.version, p.hash, COUNT(DISTINCT r.run_id), MIN(r.finished_at), MAX(r.finished_at)"
            " FROM prompts p JOIN runs r ON r.run_id = p.run_id GROUP BY p.name, p.version, p.hash"
            " ORDER BY p.name, MAX(r.finished_at) DESC"
        )
        return [
            {"name": r[0], "version": r[1], "hash": r[2], "runs": r[3], "first": r[4], "last": r[5]}
            for r in self._db.execute(sql)
        ]


#: The key of a drift score's details that holds its embedding summary (pytest_llmops.drift.summary).
_SUMMARY_KEY = "embedding_summary"


def _summaries_in(scores: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """(nodeid, score as JSON) -> the columns of each drift score's summary; standard library only,
    since every run is appended at its end and the plugin must not import numpy for it."""
    rows = []
    for nodeid, score in scores:
        details = score.get("details") or {}
        entry = details.get(_SUMMARY_KEY)
        if not isinstance(entry, dict) or not details.get("method"):
            continue
        try:
            rows.append((
                nodeid, score["name"], entry.get("embedder"), details["method"], float(details.get("alpha", 0.05)),
                int(details.get("seed") or 0), details.get("n_permutations"), int(entry["n"]), int(entry["dim"]),
                int(entry["rows"]), int(entry.get("seed") or 0), str(entry["dtype"]),
                base64.b64decode(entry["mean"], validate=True), base64.b64decode(entry["sample"], validate=True),
            ))
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue  # a damaged summary is left out; the run's trend then says it has none
    return rows


def _insert_summaries(db: sqlite3.Connection, run_id: str, rows: list[tuple[Any, ...]]) -> None:
    # A repeated case (repeat=N) checks the same drift once per sample: the first one stands for the run.
    db.executemany(
        "INSERT OR IGNORE INTO drift_summaries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(run_id, *row) for row in rows],
    )


def _sum(values: Iterator[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _models_of(run_id: str, run: RunResult) -> Sequence[tuple[str, str, str, int, str | None]]:
    """(role, model) -> calls, with the runtime the provider reported (the local model's build and weights)."""
    seen: dict[tuple[str, str, str | None], int] = {}
    for case in run.cases:
        for call in case.calls:
            runtime = call.extra.get("runtime")
            key = (call.role, call.model, json.dumps(runtime, sort_keys=True) if runtime else None)
            seen[key] = seen.get(key, 0) + 1
    return [(run_id, role, model, calls, runtime) for (role, model, runtime), calls in seen.items()]
