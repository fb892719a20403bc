"""Where records are scored: this machine's processes (``local``) or a Ray cluster (``ray``, Ray Data).

Both hand out chunks of records to :func:`score_chunk` and return the scored records in input order,
so the two engines give the same output for the same records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pytest_llmops.scoring.checks import Check
from pytest_llmops.scoring.records import score_records

CHUNK = 256


def score_chunk(payload: tuple[list[dict[str, Any]], list[Check], dict[str, Any]]) -> list[dict[str, Any]]:
    records, checks, options = payload
    return score_records(records, checks, **options)


def _chunks(records: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(records[i:i + size]) for i in range(0, len(records), size)]


def run_local(records: Sequence[dict[str, Any]], checks: list[Check], *, workers: int = 1,
              chunk: int = CHUNK, **options: Any) -> list[dict[str, Any]]:
    """Score in ``workers`` processes (1: in this process); results in input order.

    ``options`` go to :func:`score_records` (``id_field``, ``concurrency``, ``cache_path``).
    """
    if workers <= 1 or len(records) <= chunk:
        return score_records(records, checks, **options)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the caller may hold threads (an event loop, a thread pool) that fork would copy broken.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = pool.map(score_chunk, [(part, checks, options) for part in _chunks(records, chunk)])
        return [item for part in parts for item in part]


class RayUnavailable(RuntimeError):
    """Ray is not installed or the cluster cannot be reached."""


def run_ray(records: Sequence[dict[str, Any]], checks: list[Check], *, address: str | None = None,
            workers: int = 2, chunk: int = CHUNK, **options: Any) -> list[dict[str, Any]]:
    """Score on Ray Data: records as JSON strings in blocks, ``map_batches`` over them, order kept.

    Each actor scores its batches with :func:`score_records` (``options`` as there): judge checks go
    through that actor's own client, cache and concurrency limit.
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayUnavailable(f"--engine ray needs ray ({exc}); install it: pip install 'pytest-llmops[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except Exception as exc:  # ConnectionError, RuntimeError, ...: named, never a traceback
            raise RayUnavailable(f"cannot start or reach Ray at {address or 'a local cluster'}: {exc}") from None
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        data = ray.data.from_items([{"i": i, "record": json.dumps(r)} for i, r in enumerate(records)],
                                   override_num_blocks=max(1, min(len(records) // chunk + 1, 64)))
        scored = data.map_batches(_ScoreBatch, fn_constructor_args=(checks, options), batch_size=chunk,
                                  batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=workers))
        rows = sorted(scored.take_all(), key=lambda row: row["i"])
        return [json.loads(row["scored"]) for row in rows]
    finally:
        if started_here:
            ray.shutdown()


class _ScoreBatch:
    """A Ray Data actor: loads the checks' models once, then scores batch after batch."""

    def __init__(self, checks: list[Check], options: dict[str, Any]) -> None:
        self.checks, self.options = checks, options

    def __call__(self, batch: Any) -> Any:
        records = [json.loads(text) for text in batch["record"]]
        scored = score_records(records, self.checks, **self.options)
        return batch.assign(scored=[json.dumps(item) for item in scored]).drop(columns=["record"])
