"""Splitting a run's cases across CI jobs: ``--llmops-shard=i/n``.

Each job runs a stable part of the collected tests: a test's shard follows
from a hash of its node id, so every job computes the same split without
talking to the others. When the previous results file has per-case
``duration_s``, the split is balanced by those durations instead (longest
first, each to the least loaded shard); without that file, the durations of
the latest run of the same suite in the run history are used. Every job must
then see the same durations, which is why their hash is recorded and checked
by ``llmops results merge``.

Plain tests (no eval case: no llmops marker or fixture) all run in shard 1:
they are not eval cases to merge, and their unknown durations would skew the
balance of the cases that are.

Standard library only: the plugin imports this at start-up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path


class ShardSyntaxError(ValueError):
    """``--llmops-shard`` is not ``i/n`` with ``1 <= i <= n``."""


def parse_shard(text: str) -> tuple[int, int]:
    """``'2/3'`` -> ``(2, 3)``; anything else raises ``ShardSyntaxError``."""
    index, sep, count = str(text).strip().partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ShardSyntaxError("a shard as i/n, e.g. 2/3") from None
    if not sep or not 1 <= i <= n:
        raise ShardSyntaxError("a shard as i/n with 1 <= i <= n, e.g. 2/3")
    return i, n


def case_ids_hash(nodeids: Sequence[str]) -> str:
    """A hash of the set of node ids: equal in every shard of one suite, whatever their order."""
    digest = hashlib.sha256()
    for nodeid in sorted(set(nodeids)):
        digest.update(nodeid.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _bucket(nodeid: str, count: int) -> int:
    # sha256, not hash(): Python salts str hashes per process.
    return int.from_bytes(hashlib.sha256(nodeid.encode("utf-8")).digest()[:8], "big") % count


def assign(nodeids: Sequence[str], count: int, durations: Mapping[str, float] | None = None) -> dict[str, int]:
    """The shard (1-based) of each node id.

    Without durations: by hash. With durations: longest first, each to the
    least loaded shard (ties by shard number); a test with no recorded
    duration weighs the mean of the recorded ones. Deterministic for equal inputs.
    """
    ids = sorted(set(nodeids))
    known = [durations[n] for n in ids if durations and n in durations]
    if not known:
        return {n: _bucket(n, count) + 1 for n in ids}
    assert durations is not None
    mean = sum(known) / len(known)
    weight = {n: float(durations.get(n, mean)) for n in ids}
    loads = [0.0] * count
    result: dict[str, int] = {}
    for nodeid in sorted(ids, key=lambda n: (-weight[n], n)):
        shard = min(range(count), key=lambda s: (loads[s], s))
        loads[shard] += weight[nodeid]
        result[nodeid] = shard + 1
    return result


def load_durations(path: Path) -> tuple[dict[str, float], str | None]:
    """Per-case ``duration_s`` of a previous results file, and that file's hash; empty when there is none.

    A file that cannot be read gives no durations (the split falls back to the hash) rather than an error:
    a broken old file must not stop a new run.
    """
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        durations = {str(c["nodeid"]): float(c["duration_s"]) for c in data.get("cases", ())}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}, None
    if not durations:
        return {}, None
    return durations, hashlib.sha256(raw).hexdigest()[:16]


def durations_hash(durations: Mapping[str, float]) -> str:
    """A short hash of a set of durations: equal in every job that balanced by the same ones."""
    text = json.dumps(sorted(durations.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def history_durations(path: Path, nodeids: Sequence[str]) -> tuple[dict[str, float], str | None, str | None]:
    """Durations of the latest run of the suite these node ids make up, in the history at ``path``.

    Returns (durations, their hash, where they came from); empty when the history has no such run.
    An unreadable history gives no durations, as a broken results file does (the split falls back to the hash).
    """
    if not path.is_file() or not nodeids:
        return {}, None, None
    from pytest_llmops.history.record import suite_of_ids
    from pytest_llmops.history.store import HistoryError, HistoryStore

    suite = suite_of_ids(list(nodeids))
    try:
        with HistoryStore(path) as store:
            found = store.latest_durations(suite)
    except HistoryError:
        return {}, None, None
    if not found or not found[1]:
        return {}, None, None
    run_id, durations = found
    return durations, durations_hash(durations), f"history run {run_id} of suite {suite or '.'!r}"
