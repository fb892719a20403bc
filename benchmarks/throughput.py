"""Throughput of async eval tests through pytest (workload W1), and where the time goes.

Starts the local OpenAI-compatible test server with a fixed latency (300 ms by
default) and generates a test file of 100 ``async def`` eval cases, each making
two judge-style calls in sequence. Each configuration runs ``pytest -m llm_eval``
in a subprocess:

* ``--llmops-concurrency`` 1, 4, 16 and 32, nothing cached (record mode off);
* a fully cached re-run (a run at 32 records into a fresh cache, then runs again);
* ``-n 2`` (pytest-xdist: each worker keeps pytest's one-test-at-a-time path).

For each it prints the subprocess wall time, pytest's own session time, the
run loop's wall time (setup, bodies, reports and teardown of all cases), the
ideal time (calls x latency / in flight), the loop/ideal ratio, the requests the
server served and the most it saw in flight. litellm's import is timed on its
own (the generated conftest imports it at session start, so the loop time is
the eval work only; the fully cached run does not import it at all).

The W1 run at 16 and 32 is repeated with the direct OpenAI-compatible backend
(``pytest_llmops.models.openai_http``, chosen with ``--llmops-client=direct``;
it is not the default). Last, a client-side comparison in one
process: the model client over litellm, the model client over the direct
backend, and bare httpx, to tell how much is client CPU rather than waiting.

    python benchmarks/throughput.py [--cases 100] [--latency 0.3] [--skip-serial] [--skip-xdist]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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
    if os.environ.get("BENCH_PREIMPORT") == "1":
        started = time.perf_counter()
        from pytest_llmops.models.litellm_backend import load_litellm
        load_litellm()
        session.config._bench["litellm_import_s"] = time.perf_counter() - started

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


def run_pytest(folder: Path, server: LLMTestServer, *args: str, backend: str = "litellm", preimport: bool = True) -> dict:
    """One ``pytest -m llm_eval`` run in a subprocess; its timings and the server's counters.

    ``preimport`` imports litellm at session start (timed apart), so the loop time is the
    eval work; a fully cached run never needs litellm and is measured without it.
    """
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    env = {
        **os.environ, "BENCH_OUT": str(out), "OPENAI_API_KEY": "sk-bench",
        "BENCH_PREIMPORT": "1" if preimport else "0",
    }
    server.reset_counters()
    command = [
        sys.executable, "-m", "pytest", "-m", "llm_eval", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
        "--llmops-judge=openai/bench-judge", f"--llmops-judge-api-base={server.url}", "--llmops-progress=off",
        "--llmops-client=" + ("direct" if backend == "openai-http" else "litellm"), *args,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
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
        "litellm_import_s": max((p.get("litellm_import_s", float("nan")) for p in parts), default=float("nan")),
        "requests": server.requests,
        "max_in_flight": server.max_in_flight,
    }


def print_row(label: str, row: dict, ideal: float | None) -> None:
    ratio = f"{row['loop_s'] / ideal:6.2f}" if ideal else "     -"
    ideal_text = f"{ideal:7.2f}" if ideal else "      -"
    print(
        f"{label:<22} {row['wall_s']:8.2f} {row['session_s']:9.2f} {row['loop_s']:8.2f} {ideal_text} {ratio} "
        f"{row['requests']:9d} {row['max_in_flight']:10d} {row['litellm_import_s']:9.2f}"
    )


# -- the client alone: litellm backend vs bare httpx -------------------------------------


async def _through_client(server: LLMTestServer, calls: int, in_flight: int) -> None:
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

    runtime = ModelRuntime(concurrency=in_flight)
    client = LLMClient(ModelConfig(model="openai/bench-judge", api_base=server.url, api_key="sk-bench"), runtime)
    await asyncio.gather(*(client.complete(f"client path call {i}") for i in range(calls)))


async def _through_client_direct(server: LLMTestServer, calls: int, in_flight: int) -> None:
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

    runtime = ModelRuntime(concurrency=in_flight, client="direct")
    client = LLMClient(ModelConfig(model="openai/bench-judge", api_base=server.url, api_key="sk-bench"), runtime)
    await asyncio.gather(*(client.complete(f"direct path call {i}") for i in range(calls)))


async def _through_httpx(server: LLMTestServer, calls: int, in_flight: int) -> None:
    import httpx

    limit = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=in_flight)) as http:

        async def one(i: int) -> None:
            async with limit:
                response = await http.post(
                    "/chat/completions",
                    json={"model": "bench-judge", "messages": [{"role": "user", "content": f"httpx call {i}"}]},
                    headers={"Authorization": "Bearer sk-bench"},
                )
                response.raise_for_status()
                response.json()["choices"][0]["message"]["content"]

        await asyncio.gather(*(one(i) for i in range(calls)))


def client_paths(server: LLMTestServer, calls: int, in_flight: int) -> None:
    from pytest_llmops.models.litellm_backend import load_litellm

    load_litellm()
    ideal = calls * server.latency / in_flight
    print(f"\nclient paths, one process: {calls} calls, {in_flight} in flight, latency {server.latency:g} s, "
          f"ideal {ideal:.2f} s")
    print(f"{'path':<22} {'wall s':>8} {'cpu s':>8} {'cpu ms/call':>12} {'wall/ideal':>11}")
    paths = (
        ("client + litellm", _through_client),
        ("client + openai_http", _through_client_direct),
        ("bare httpx", _through_httpx),
    )
    for label, job in paths:
        asyncio.run(job(server, 8, 8))  # warm: connections, lazy imports
        server.reset_counters()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        asyncio.run(job(server, calls, in_flight))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(f"{label:<22} {wall:8.2f} {cpu:8.2f} {1000 * cpu / calls:12.2f} {wall / ideal:11.2f}"
              f"   (requests {server.requests}, max in flight {server.max_in_flight})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--skip-serial", action="store_true", help="skip concurrency 1 (cases x 2 x latency seconds)")
    parser.add_argument("--skip-xdist", action="store_true")
    parser.add_argument("--skip-client", action="store_true")
    args = parser.parse_args()

    calls = args.cases * CALLS_PER_CASE
    with LLMTestServer(latency=args.latency) as server, tempfile.TemporaryDirectory(prefix="bench-w1-") as tmp:
        folder = Path(tmp)
        (folder / "test_w1.py").write_text(textwrap.dedent(TESTS.format(cases=args.cases)))
        (folder / "conftest.py").write_text(textwrap.dedent(CONFTEST))
        print(f"W1: {args.cases} async eval cases x {CALLS_PER_CASE} judge calls, server latency {args.latency:g} s, "
              f"{os.cpu_count()} CPUs")
        print(f"{'run':<22} {'wall s':>8} {'session s':>9} {'loop s':>8} {'ideal s':>7} {'ratio':>6} "
              f"{'requests':>9} {'in flight':>10} {'litellm s':>9}")
        for concurrency in (1, 4, 16, 32):
            if concurrency == 1 and args.skip_serial:
                continue
            row = run_pytest(folder, server, f"--llmops-concurrency={concurrency}", "--llmops-record-mode=off")
            print_row(f"concurrency {concurrency}", row, calls * args.latency / concurrency)
        cache = folder / "cache.sqlite"
        recorded = run_pytest(folder, server, "--llmops-concurrency=32", f"--llmops-cache-path={cache}")
        print_row("32, recording", recorded, calls * args.latency / 32)
        cached = run_pytest(folder, server, "--llmops-concurrency=32", f"--llmops-cache-path={cache}", preimport=False)
        print_row("32, fully cached", cached, None)
        for concurrency in (16, 32):
            row = run_pytest(folder, server, f"--llmops-concurrency={concurrency}", "--llmops-record-mode=off",
                             backend="openai-http")
            print_row(f"{concurrency}, direct httpx", row, calls * args.latency / concurrency)
        if not args.skip_xdist:
            row = run_pytest(folder, server, "-n", "2", "--llmops-record-mode=off")
            print_row("-n 2 (serial workers)", row, calls * args.latency / 2)
        print("wall = subprocess; session = pytest's 'in N s'; loop = pytest_runtestloop (all cases' setup, "
              "bodies, reports, teardown; litellm already imported); ratio = loop / ideal")
        if not args.skip_client:
            client_paths(server, calls, 32)


if __name__ == "__main__":
    main()
