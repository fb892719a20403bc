"""Drift over time: each run (or window of runs) of a drift check tested against a reference run.

The history keeps, per run and drift check (test node id and score name), an
embedding summary of the answers the check saw (``pytest_llmops.drift.summary``).
This module puts those summaries through the project's drift tests again:

* ``against="first"``: every window against the first one (drift since then);
* ``against="previous"``: every window against the one before it (sudden jumps);
* ``against=RUN_ID``: every window against that run (e.g. the last release).

A window is ``window`` consecutive runs of the check, their samples pooled.
A window embedded by another embedder than its reference is not compared, and
the point says so; so is a window whose runs mix embedders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmops.history.store import HistoryError, HistoryStore

if TYPE_CHECKING:
    from pytest_llmops.drift.result import DriftResult


@dataclass(frozen=True)
class DriftPoint:
    """One window of one drift check, tested against its reference (or why it was not)."""

    check: str
    window: int
    run_ids: tuple[str, ...]
    finished_at: float
    git_revision: str | None
    embedder: str | None
    n: int
    reference: tuple[str, ...]
    method: str
    #: The reference window itself: nothing to test.
    is_reference: bool = False
    statistic: float | None = None
    statistic_name: str | None = None
    p_value: float | None = None
    alpha: float | None = None
    drifted: bool | None = None
    #: Cosine distance between the means of all the answers (not only the kept sample).
    centroid_shift: float | None = None
    #: Why the window was not compared; empty when it was.
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "window": self.window, "run_ids": list(self.run_ids),
            "finished_at": self.finished_at, "git_revision": self.git_revision, "embedder": self.embedder,
            "n": self.n, "reference": list(self.reference), "method": self.method,
            "is_reference": self.is_reference, "statistic": self.statistic, "statistic_name": self.statistic_name,
            "p_value": self.p_value, "alpha": self.alpha, "drifted": self.drifted,
            "centroid_shift": self.centroid_shift, "note": self.note,
        }


@dataclass
class _Window:
    run_ids: list[str]
    rows: list[dict[str, Any]]

    @property
    def embedders(self) -> set[str | None]:
        return {row["embedder"] for row in self.rows}


def check_name(nodeid: str, name: str) -> str:
    """How a drift check is named in tables: its test and its score."""
    return f"{nodeid} {name}"


def drift_over_time(
    store: HistoryStore,
    *,
    against: str = "first",
    window: int = 1,
    check: str | None = None,
    method: str | None = None,
    suite: str | None = None,
    branch: str | None = None,
    since: float | None = None,
    limit: int | None = None,
) -> dict[str, list[DriftPoint]]:
    """Per drift check (``"NODEID drift.METHOD"``): its windows oldest first, each tested against the reference.

    ``check`` keeps the checks whose name contains it. ``method`` re-tests with
    another drift method than the check used (``mmd``, ``centroid``, ``ks``...).
    ``suite``/``branch``/``since``/``limit`` choose the runs as the report's
    history does. Raises :class:`HistoryError` for a bad ``against``, ``window`` or ``method``.
    """
    from pytest_llmops.drift.methods import METHODS

    if window < 1:
        raise HistoryError(f"trend drift --window {window}: a window holds at least 1 run")
    if method is not None and method not in METHODS:
        raise HistoryError(f"trend drift --method: unknown drift method {method!r}; choose one of: {', '.join(METHODS)}")
    reference_run = None if against in ("first", "previous") else store.full_id(against)
    by_check: dict[str, list[dict[str, Any]]] = {}
    for row in store.drift_summaries(suite=suite, branch=branch, since=since, limit=limit):
        name = check_name(row["nodeid"], row["name"])
        if check is None or check in name:
            by_check.setdefault(name, []).append(row)
    if reference_run is not None and by_check:
        # The reference run may be older than --since or the limit: fetch its summaries on their own.
        for row in store.drift_summaries(run_id=reference_run):
            name = check_name(row["nodeid"], row["name"])
            if name in by_check and all(r["run_id"] != reference_run for r in by_check[name]):
                by_check[name].insert(0, row)
    return {
        name: _points(name, rows, against=against, reference_run=reference_run, size=window, method=method)
        for name, rows in sorted(by_check.items())
    }


def _points(
    name: str, rows: list[dict[str, Any]], *, against: str, reference_run: str | None, size: int, method: str | None
) -> list[DriftPoint]:
    reference: _Window | None = None
    if reference_run is not None:
        mine = [row for row in rows if row["run_id"] == reference_run]
        reference = _Window([reference_run], mine) if mine else None
        rows = [row for row in rows if row["run_id"] != reference_run]
    windows = [_Window([r["run_id"] for r in rows[i:i + size]], rows[i:i + size]) for i in range(0, len(rows), size)]
    points = []
    for index, current in enumerate(windows):
        if against == "first":
            ref = windows[0]
        elif against == "previous":
            ref = windows[index - 1] if index else current
        else:
            ref = reference
        points.append(_compare(name, index + 1, current, ref, against=against, method=method))
    return points


def _compare(
    name: str, index: int, current: _Window, ref: _Window | None, *, against: str, method: str | None
) -> DriftPoint:
    from pytest_llmops.drift.result import DriftInputError

    last = current.rows[-1]
    chosen = method or last["method"]
    common = {
        "check": name, "window": index, "run_ids": tuple(current.run_ids), "finished_at": last["finished_at"],
        "git_revision": last["git_revision"], "embedder": last["embedder"],
        "n": sum(row["n"] for row in current.rows), "method": chosen, "alpha": last["alpha"],
    }
    if ref is None:
        return DriftPoint(**common, reference=(against,), note=f"not compared: run {against} has no summary of this check")
    common["reference"] = tuple(ref.run_ids)
    if ref is current:
        return DriftPoint(**common, is_reference=True)
    if len(current.embedders) > 1:
        return DriftPoint(**common, note="not compared: the runs of this window were embedded by different embedders "
                          f"({', '.join(sorted(str(e) for e in current.embedders))})")
    if len(ref.embedders) > 1:
        return DriftPoint(**common, note="not compared: the reference window mixes embedders")
    (mine,), (theirs,) = current.embedders, ref.embedders
    if mine != theirs:
        return DriftPoint(**common, note=f"not compared: embedded by {mine!r}, the reference by {theirs!r}")
    try:
        result, shift = _test(current.rows, ref.rows, chosen, last)
    except DriftInputError as error:
        return DriftPoint(**common, note=f"not compared: {error}")
    return DriftPoint(
        **common, statistic=result.statistic, statistic_name=result.statistic_name, p_value=result.p_value,
        drifted=result.drifted, centroid_shift=shift, details=result.to_dict(),
    )


def _test(
    current: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]], method: str, last: dict[str, Any]
) -> tuple[DriftResult, float | None]:
    """The drift test on the pooled samples, and the cosine distance between the full means."""
    from pytest_llmops.drift._deps import need
    from pytest_llmops.drift.methods import drift_test
    from pytest_llmops.drift.result import DriftInputError
    from pytest_llmops.drift.samples import EmbeddingSample, as_sample
    from pytest_llmops.drift.summary import EmbeddingSummary

    np = need("numpy", "numpy", purpose="drift over time")

    def pooled(rows: Sequence[dict[str, Any]], label: str) -> tuple[EmbeddingSample, Any]:
        summaries = [
            EmbeddingSummary.from_bytes(
                embedder=r["embedder"], n=r["n"], dim=r["dim"], rows=r["rows"], dtype=r["dtype"],
                mean=r["mean"], sample=r["sample"], seed=r["sample_seed"],
            )
            for r in rows
        ]
        dims = {s.dim for s in summaries}
        if len(dims) > 1:
            raise DriftInputError(f"the {label} runs' vectors have different dimensions ({sorted(dims)})")
        sample = as_sample(np.vstack([s.sample for s in summaries]), role=label)
        # The mean of all the answers: each run's mean weighted by how many it had.
        mean = sum(s.mean * s.n for s in summaries) / sum(s.n for s in summaries)
        return sample, mean

    cur, cur_mean = pooled(current, "current")
    ref, ref_mean = pooled(reference, "reference")
    if cur.dim != ref.dim:
        raise DriftInputError(f"{cur.dim} dimensions here, {ref.dim} in the reference")
    # The check's own permutations when it is re-tested with its own method; else the method's default.
    permutations = last["n_permutations"] if method == last["method"] else None
    result = drift_test(cur, ref, method, alpha=last["alpha"], seed=last["seed"], n_permutations=permutations)
    norms = float(np.linalg.norm(cur_mean) * np.linalg.norm(ref_mean))
    shift = float(1.0 - np.dot(cur_mean, ref_mean) / norms) if norms > 0 else None
    return result, shift
