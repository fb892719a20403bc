"""Throughput of async eval tests through pytest (workload W1), and where the time goes.

Starts the local OpenAI-compatible test server with a fixed latency (300 ms by
default) and generates a test file of 100 ``async def`` eval cases, each making
two judge-style calls in sequence. Each configuration runs ``pytest -m llm_eval``
in a subprocess:

* ``--llmops-concurrency`` (calls in flight) 1, 4, 16 and 32 on the default
  client (OpenAI-compatible base: the direct aiohttp path), nothing cached;
  tests run at once default to twice that; one row at 32 with
  ``--llmops-test-concurrency=32`` shows what the extra open tests buy;
* 16 and 32 with ``--llmops-client=litellm``;
* a fully cached re-run (a run at 32 records into a fresh cache, then runs again);
* ``-n 2`` (pytest-xdist: each worker keeps pytest's one-test-at-a-time path);
* the floor: ``pytest`` running one empty test in the same environment.

For each it prints the subprocess wall time, pytest's own session time, the
run loop's wall time (setup, bodies, reports and teardown of all cases), the
ideal time (calls x latency / calls in flight), loop/ideal and wall/ideal, the
requests the server served and the most it saw in flight. The HTTP client's
import (aiohttp for the direct path, litellm for the litellm path) is made at
session start and timed on its own, so the loop time is the eval work; the
fully cached run imports neither.

Python writes and reuses bytecode by default, so a second run of anything
starts from compiled modules; these machines set ``PYTHONDONTWRITEBYTECODE=1``,
which makes every start-up compile the plugin and pytest from source again
(~0.7 s here). The subprocesses run with Python's default unless
``--no-bytecode`` is given.

Last, a client-side comparison in one process: the model client over litellm
and over the direct backend, bare httpx and bare aiohttp, to tell how much is
client CPU rather than waiting.

    python benchmarks/throughput.py [--cases 100] [--latency 0.3] [--skip-serial] [--skip-xdist]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from pytest_llmops.testing import LLMTestServer

CALLS_PER_CASE = 2

TESTS = """
import pytest

@pytest.mark.llm_eval
@pytest.mark.parametrize("case", range({cases}))
async def test_w1(case, judge):
    # Two judge-style calls in sequence: grade the answer, then check the grade's reason.
    verdict = await judge.complete(f"Grade answer {{case}} for question {{case}}: score 1-5 and why")
    check = await judge.complete(f"Is this grade justified for case {{case}}? {{verdict[:40]}}")
    assert verdict and check
"""

# Times the parts of a run that the benchmark cannot see from outside, per process.
CONFTEST = """
import json, os, time
import pytest

def pytest_sessionstart(session):
    session.config._bench = {}
    preimport = os.environ.get("BENCH_PREIMPORT")
    if preimport:
        started = time.perf_counter()
        if preimport == "litellm":
            from pytest_llmops.models.litellm_backend import load_litellm
            load_litellm()
        else:
            __import__(preimport)
        session.config._bench["import_s"] = time.perf_counter() - started

@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        session.config._bench["loop_s"] = time.perf_counter() - started
        out = os.environ["BENCH_OUT"]
        with open(os.path.join(out, f"{os.getpid()}.json"), "w") as f:
            json.dump(session.config._bench, f)
"""


def run_pytest(
    folder: Path, server: LLMTestServer, *args: str, client: str = "direct", preimport: bool = True, bytecode: bool = True
) -> dict:
    """One ``pytest -m llm_eval`` run in a subprocess; its timings and the server's counters.

    ``preimport`` imports the client's HTTP library at session start (timed apart), so the
    loop time is the eval work; a fully cached run needs neither and is measured without.
    """
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    env = {
        **os.environ, "BENCH_OUT": str(out), "OPENAI_API_KEY": "sk-bench",
        "BENCH_PREIMPORT": ("litellm" if client == "litellm" else "aiohttp") if preimport else "",
    }
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    server.reset_counters()
    command = [
        sys.executable, "-m", "pytest", "-m", "llm_eval", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
        "--llmops-judge=openai/bench-judge", f"--llmops-judge-api-base={server.url}", "--llmops-progress=off",
        f"--llmops-client={client}", *args,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    parts = [json.loads(p.read_text()) for p in out.glob("*.json")]
    passed = re.search(r"(\d+) passed", done.stdout)
    if done.returncode != 0:
        # The cases' timings stand if they all passed and only something after them broke.
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["?"]
        print(f"  ! pytest exited {done.returncode} ({passed.group(0) if passed else 'no pass count'}): {last[0][:150]}")
        if not parts:
            raise SystemExit(f"pytest failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    session = re.search(r" in ([\d.]+)s", done.stdout)
    return {
        "wall_s": wall,
        "session_s": float(session.group(1)) if session else float("nan"),
        # Under xdist every worker has its own loop; the slowest one bounds the run.
        "loop_s": max((p["loop_s"] for p in parts if "loop_s" in p), default=float("nan")),
        "import_s": max((p.get("import_s", float("nan")) for p in parts), default=float("nan")),
        "requests": server.requests,
        "max_in_flight": server.max_in_flight,
    }


def start_up_floor(bytecode: bool) -> float:
    """Median wall time of ``pytest`` running one empty test here: what any run pays before and after its tests."""
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        Path(tmp, "test_empty.py").write_text("def test_empty():\n    pass\n")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
        walls = []
        for _ in range(4):  # the first one compiles the test file
            started = time.perf_counter()
            subprocess.run(command, check=True, cwd=tmp, env=env, capture_output=True)
            walls.append(time.perf_counter() - started)
    return statistics.median(walls[1:])


def print_row(label: str, row: dict, ideal: float | None) -> None:
    ratios = f"{row['loop_s'] / ideal:6.2f} {row['wall_s'] / ideal:6.2f}" if ideal else "     -      -"
    ideal_text = f"{ideal:7.2f}" if ideal else "      -"
    print(
        f"{label:<24} {row['wall_s']:7.2f} {row['session_s']:9.2f} {row['loop_s']:7.2f} {ideal_text} {ratios} "
        f"{row['requests']:9d} {row['max_in_flight']:10d} {row['import_s']:9.2f}"
    )


# -- the client alone: model client over each backend vs bare HTTP libraries ---------------


def _client(server: LLMTestServer, in_flight: int, client: str) -> object:
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

    runtime = ModelRuntime(concurrency=in_flight, client=client)
    return LLMClient(ModelConfig(model="openai/bench-judge", api_base=server.url, api_key="sk-bench"), runtime)


async def _through_client(server: LLMTestServer, calls: int, in_flight: int, client: str) -> None:
    model = _client(server, in_flight, client)
    try:
        await asyncio.gather(*(model.complete(f"{client} path call {i}") for i in range(calls)))
    finally:
        for backend in model.runtime._backends.values():
            if hasattr(backend, "aclose"):
                await backend.aclose()


def _payload(i: int) -> dict:
    return {"model": "bench-judge", "messages": [{"role": "user", "content": f"bare call {i}"}]}


async def _through_httpx(server: LLMTestServer, calls: int, in_flight: int) -> None:
    import httpx

    limit = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=in_flight)) as http:

        async def one(i: int) -> None:
            async with limit:
                response = await http.post("/chat/completions", json=_payload(i), headers={"Authorization": "Bearer sk"})
                response.raise_for_status()
                response.json()["choices"][0]["message"]["content"]

        await asyncio.gather(*(one(i) for i in range(calls)))


async def _through_aiohttp(server: LLMTestServer, calls: int, in_flight: int) -> None:
    import aiohttp

    limit = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(i: int) -> None:
            async with limit:
                url = server.url + "/chat/completions"
                async with http.post(url, json=_payload(i), headers={"Authorization": "Bearer sk"}) as response:
                    response.raise_for_status()
                    (await response.json())["choices"][0]["message"]["content"]

        await asyncio.gather(*(one(i) for i in range(calls)))


def client_paths(server: LLMTestServer, calls: int, in_flight: int) -> None:
    from pytest_llmops.models.litellm_backend import load_litellm

    load_litellm()
    ideal = calls * server.latency / in_flight
    print(f"\nclient paths, one process: {calls} calls, {in_flight} in flight, latency {server.latency:g} s, "
          f"ideal {ideal:.2f} s")
    print(f"{'path':<24} {'wall s':>8} {'cpu s':>8} {'cpu ms/call':>12} {'wall/ideal':>11}")
    paths = (
        ("client + litellm", lambda *a: _through_client(*a, client="litellm")),
        ("client + direct aiohttp", lambda *a: _through_client(*a, client="direct")),
        ("bare httpx", _through_httpx),
        ("bare aiohttp", _through_aiohttp),
    )
    for label, job in paths:
        asyncio.run(job(server, 8, 8))  # warm: connections, lazy imports
        server.reset_counters()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        asyncio.run(job(server, calls, in_flight))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(f"{label:<24} {wall:8.2f} {cpu:8.2f} {1000 * cpu / calls:12.2f} {wall / ideal:11.2f}"
              f"   (requests {server.requests}, max in flight {server.max_in_flight})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--skip-serial", action="store_true", help="skip concurrency 1 (cases x 2 x latency seconds)")
    parser.add_argument("--skip-xdist", action="store_true")
    parser.add_argument("--skip-client", action="store_true")
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE from the environment")
    args = parser.parse_args()

    calls = args.cases * CALLS_PER_CASE
    bytecode = not args.no_bytecode
    with LLMTestServer(latency=args.latency) as server, tempfile.TemporaryDirectory(prefix="bench-w1-") as tmp:
        folder = Path(tmp)
        (folder / "test_w1.py").write_text(textwrap.dedent(TESTS.format(cases=args.cases)))
        (folder / "conftest.py").write_text(textwrap.dedent(CONFTEST))

        def ideal(in_flight: int) -> float:
            return calls * args.latency / in_flight

        def row(label: str, in_flight: int | None, *flags: str, **options) -> None:
            result = run_pytest(folder, server, *flags, bytecode=bytecode, **options)
            print_row(label, result, ideal(in_flight) if in_flight else None)

        print(f"W1: {args.cases} async eval cases x {CALLS_PER_CASE} judge calls, server latency {args.latency:g} s, "
              f"{os.cpu_count()} CPUs, bytecode {'written and reused' if bytecode else 'off (PYTHONDONTWRITEBYTECODE)'}")
        print(f"{'run':<24} {'wall s':>7} {'session s':>9} {'loop s':>7} {'ideal s':>7} {'loop/i':>6} {'wall/i':>6} "
              f"{'requests':>9} {'in flight':>10} {'import s':>9}")
        run_pytest(folder, server, "--llmops-concurrency=32", "--llmops-record-mode=off", bytecode=bytecode)  # warm
        for concurrency in (1, 4, 16, 32):
            if concurrency == 1 and args.skip_serial:
                continue
            row(f"concurrency {concurrency}", concurrency, f"--llmops-concurrency={concurrency}", "--llmops-record-mode=off")
        row("32, tests at once 32", 32, "--llmops-concurrency=32", "--llmops-test-concurrency=32",
            "--llmops-record-mode=off")
        for concurrency in (16, 32):
            row(f"{concurrency}, litellm client", concurrency, f"--llmops-concurrency={concurrency}",
                "--llmops-record-mode=off", client="litellm")
        cache = folder / "cache.sqlite"
        row("32, recording", 32, "--llmops-concurrency=32", f"--llmops-cache-path={cache}")
        for attempt in (1, 2, 3):
            row(f"fully cached ({attempt})", None, "--llmops-concurrency=32", f"--llmops-cache-path={cache}",
                preimport=False)
        floor = start_up_floor(bytecode)
        print(f"{'pytest, one empty test':<24} {floor:7.2f}   (median of 3: start-up and exit floor of this environment)")
        if not args.skip_xdist:
            row("-n 2 (serial workers)", 2, "-n", "2", "--llmops-record-mode=off")
        print("wall = subprocess; session = pytest's 'in N s'; loop = pytest_runtestloop (all cases' setup, bodies, "
              "reports, teardown; the client's HTTP library imported beforehand, its import in 'import s'); "
              "loop/i and wall/i = loop and wall over ideal")
        if not args.skip_client:
            client_paths(server, calls, 32)


if __name__ == "__main__":
    main()
