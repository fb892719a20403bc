"""Cached vs uncached provider calls through the model client.

Starts the local OpenAI-compatible test server with a fixed latency, then
times the same N distinct prompts three ways, side by side in one run:
uncached (record mode off), first run recording into an empty cache
(record mode new), and a replay from the cache. Prints per-call medians,
totals and ratios, and the requests the server saw.

    python benchmarks/cache.py [--calls 200] [--latency 0.05] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from pytest_llmops.models.cache import CallCache, RecordMode
from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
from pytest_llmops.testing import LLMTestServer


async def _run_all(client: LLMClient, prompts: list[str]) -> list[float]:
    async def one(prompt: str) -> float:
        started = time.perf_counter()
        await client.complete(prompt, temperature=0)
        return time.perf_counter() - started

    return list(await asyncio.gather(*(one(p) for p in prompts)))


def measure(server: LLMTestServer, cache_path: Path | None, mode: RecordMode, prompts: list[str], concurrency: int) -> tuple[float, list[float], int]:
    cache = CallCache(cache_path) if cache_path is not None else None
    runtime = ModelRuntime(cache=cache, record_mode=mode, concurrency=concurrency)
    client = LLMClient(ModelConfig(model="openai/bench-model", api_base=server.url, api_key="sk-bench"), runtime)
    before = server.requests
    started = time.perf_counter()
    per_call = runtime.run(_run_all(client, prompts))
    wall = time.perf_counter() - started
    runtime.close()
    return wall, per_call, server.requests - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    prompts = [f"benchmark prompt number {i}: say something" for i in range(args.calls)]
    with LLMTestServer(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.sqlite"
        # Warm up litellm (import, first client) outside the timed runs.
        measure(server, None, RecordMode.OFF, ["warm up"], 1)
        rows = [
            ("uncached (mode off)", *measure(server, None, RecordMode.OFF, prompts, args.concurrency)),
            ("recording (mode new, empty cache)", *measure(server, path, RecordMode.NEW, prompts, args.concurrency)),
            ("replay (mode new, warm cache)", *measure(server, path, RecordMode.NEW, prompts, args.concurrency)),
            ("replay only (mode none)", *measure(server, path, RecordMode.NONE, prompts, args.concurrency)),
        ]
    print(f"{args.calls} distinct calls, server latency {args.latency * 1000:.0f} ms, {args.concurrency} in flight")
    print(f"{'run':36} {'wall':>9} {'per call p50':>13} {'requests':>9}")
    for name, wall, per_call, requests in rows:
        print(f"{name:36} {wall:8.3f}s {statistics.median(per_call) * 1000:11.2f}ms {requests:9d}")
    uncached, replay = rows[0][1], rows[2][1]
    print(f"replay vs uncached wall ratio: {replay / uncached:.3f}  ({uncached / replay:.1f}x faster)")
    print(f"replay per-call median: {statistics.median(rows[2][2]) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
