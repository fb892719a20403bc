"""Scale: thousands of async eval cases through pytest against a 50 ms server, beside a bare client.

For each case count (1,000 and 5,000 by default) the project's test server
(``pytest_llmops/testing/server.py``) answers every chat request after a fixed
latency (50 ms). In the same run, one after the other on the same server:

* **bare**: a plain aiohttp client in a subprocess sends the same number of
  requests, at most ``--in-flight`` at a time: the throughput to compare with;
* **pytest**: ``pytest`` in a subprocess runs generated ``async def`` eval cases
  (one ``await llm.complete(...)`` each, spread over modules of
  ``--per-module`` cases) with ``--llmops-concurrency=<in-flight>``;
* **floor**: ``pytest`` runs as many trivial sync tests (no plugin work, no
  call): what pytest's own per-test protocol costs here.

Printed for each: wall time of the requests (for pytest, its run loop), cases
per second and the ratio to the bare client, the most requests the server saw
in flight, the seconds with no request in flight (the pipeline empty), and for
pytest the peak RSS, RSS growth per case over the run loop, and the event
loop's lag (p50/p99/max over a probe that sleeps 10 ms at a time on the loop
the cases run on), and each process's CPU time per case: the pytest process is
one thread, so its CPU per case bounds its rate whatever the waiting. Targets: >= 0.7x the bare client, max in flight = the limit,
RSS growth <= 2 KB per case.

The server runs in this process (thread per connection); each client in its
own process, so neither shares an interpreter lock with the server.

    python benchmarks/scale.py [--cases 1000 5000] [--in-flight 64] [--latency 0.05] [--repeats 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from pytest_llmops.testing import LLMTestServer

TESTS = """
import pytest
from bench_probe import start_probe

@pytest.mark.llm_eval
@pytest.mark.parametrize("case", range({start}, {stop}))
async def test_case(case, llm):
    start_probe()
    answer = await llm.complete(f"scale case {{case}}")
    assert answer
"""

# Loop lag: a task on the loop the cases run on sleeps 10 ms at a time and
# records how late it wakes up; RSS is sampled beside it.
PROBE = """
import asyncio, time

TICK = 0.01
LAGS = []
RSS = []  # (cases started so far, RSS bytes)
CASES = 0
_task = None

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

async def _probe():
    while True:
        before = time.perf_counter()
        await asyncio.sleep(TICK)
        LAGS.append(time.perf_counter() - before - TICK)
        if len(LAGS) % 10 == 0:
            RSS.append((CASES, rss_bytes()))

def start_probe():
    global _task, CASES
    CASES += 1
    loop = asyncio.get_running_loop()
    if _task is None or _task.get_loop() is not loop or _task.done():
        _task = loop.create_task(_probe())
"""

CONFTEST = """
import json, os, time
import pytest
import bench_probe

def _peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0

@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    import aiohttp  # the direct client's import, made before the loop is timed
    started, cpu = time.perf_counter(), time.process_time()
    rss_start = bench_probe.rss_bytes()
    try:
        return (yield)
    finally:
        loop_s = time.perf_counter() - started
        with open(os.environ["BENCH_OUT"], "w") as f:
            json.dump({"loop_s": loop_s, "cpu_s": time.process_time() - cpu, "rss_start": rss_start, "rss_end": bench_probe.rss_bytes(),
                       "rss_max_sampled": max((rss for _, rss in bench_probe.RSS), default=0),
                       "rss_samples": bench_probe.RSS, "peak_rss": _peak_rss(),
                       "lags": bench_probe.LAGS}, f)
"""

BARE = """
import asyncio, json, sys, time
import aiohttp

async def main(url, calls, in_flight):
    limit = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(i):
            async with limit:
                body = {"model": "bench", "messages": [{"role": "user", "content": f"scale case {i}"}]}
                async with http.post(url + "/chat/completions", json=body, headers={"Authorization": "Bearer sk"}) as r:
                    data = await r.json()
                    assert data["choices"][0]["message"]["content"]
        await one(-1)  # connection set-up and first-use costs, as pytest's run pays them before its loop
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}

print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
"""


def write_suite(folder: Path, cases: int, per_module: int) -> None:
    (folder / "bench_probe.py").write_text(PROBE)
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\n")
    for number, start in enumerate(range(0, cases, per_module)):
        stop = min(cases, start + per_module)
        (folder / f"test_scale_{number:03d}.py").write_text(textwrap.dedent(TESTS.format(start=start, stop=stop)))


def run_bare(server: LLMTestServer, cases: int, in_flight: int) -> dict:
    server.reset_counters()
    done = subprocess.run(
        [sys.executable, "-c", BARE, server.url, str(cases), str(in_flight)], check=True, capture_output=True, text=True
    )
    timing = json.loads(done.stdout)
    return {**timing, "max_in_flight": server.max_in_flight, "idle_s": server.idle_s}


def run_pytest(server: LLMTestServer, folder: Path, cases: int, in_flight: int) -> dict:
    out = folder / "bench-out.json"
    env = {**os.environ, "BENCH_OUT": str(out), "OPENAI_API_KEY": "sk-bench"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
        "--llmops-model=openai/bench", f"--llmops-api-base={server.url}", "--llmops-progress=off",
        f"--llmops-concurrency={in_flight}", "--llmops-record-mode=off",
    ]
    server.reset_counters()
    done = subprocess.run(command, check=False, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0 or f"{cases} passed" not in done.stdout:
        raise SystemExit(f"pytest failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    data = json.loads(out.read_text())
    lags = sorted(data["lags"]) or [float("nan")]
    return {
        "wall_s": data["loop_s"],
        "cpu_s": data["cpu_s"],
        "max_in_flight": server.max_in_flight,
        "idle_s": server.idle_s,
        "requests": server.requests,
        "peak_rss": data["peak_rss"],
        "growth_per_case": (max(data["rss_end"], data["rss_max_sampled"]) - data["rss_start"]) / cases,
        "slope_per_case": _steady_slope(data["rss_samples"], cases),
        "lag_p50": lags[len(lags) // 2],
        "lag_p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "lag_max": lags[-1],
    }


def _steady_slope(samples: list, cases: int) -> float:
    """RSS growth per case over the second half of the run: one-off costs (the first call's imports,
    the price table, pools and buffers reaching their size) are paid by then."""
    later = [(done, rss) for done, rss in samples if done >= cases // 2]
    if len(later) < 2 or later[-1][0] == later[0][0]:
        return float("nan")
    return (max(rss for _, rss in later) - later[0][1]) / (later[-1][0] - later[0][0])


FLOOR = """
import pytest

@pytest.mark.parametrize("case", range({cases}))
def test_floor(case):
    assert case >= 0
"""


def run_floor(cases: int) -> dict:
    """pytest alone: ``cases`` trivial sync tests, no provider call, through the same conftest probe."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        folder = Path(tmp)
        (folder / "bench_probe.py").write_text(PROBE)
        (folder / "conftest.py").write_text(CONFTEST)
        (folder / "test_floor.py").write_text(FLOOR.format(cases=cases))
        out = folder / "bench-out.json"
        env = {**os.environ, "BENCH_OUT": str(out)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"],
                       check=True, cwd=folder, env=env, capture_output=True)
        data = json.loads(out.read_text())
    return {"wall_s": data["loop_s"], "cpu_s": data["cpu_s"],
            "growth_per_case": (data["rss_end"] - data["rss_start"]) / cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--per-module", type=int, default=1000, help="cases per generated test module")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side per case count (medians shown)")
    args = parser.parse_args()
    print(f"server: pytest_llmops LLMTestServer, {args.latency * 1000:g} ms per request; "
          f"{args.in_flight} in flight; {args.per_module} cases per module; load {os.getloadavg()[0]:.1f}")
    header = (f"{'cases':>6} {'client':<7} {'wall s':>7} {'cases/s':>8} {'ratio':>6} {'ideal s':>7} {'cpu ms':>6} "
              f"{'max fl':>6} {'idle s':>6} {'peak MB':>7} {'KB/case':>7} {'2nd half':>8} {'lag p50':>8} {'p99':>6} {'max':>6}")
    print(header)
    with LLMTestServer(latency=args.latency) as server:
        for cases in args.cases:
            ideal = cases * args.latency / args.in_flight
            with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
                folder = Path(tmp)
                write_suite(folder, cases, args.per_module)
                bare_runs, pytest_runs, floor_runs = [], [], []
                for _ in range(args.repeats):
                    # Side by side, alternating, so all see the same machine load.
                    bare_runs.append(run_bare(server, cases, args.in_flight))
                    pytest_runs.append(run_pytest(server, folder, cases, args.in_flight))
                    floor_runs.append(run_floor(cases))
            bare, ours, floor = (
                {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                for runs in (bare_runs, pytest_runs, floor_runs)
            )
            bare_rate, our_rate = cases / bare["wall_s"], cases / ours["wall_s"]
            cpu = {name: side["cpu_s"] * 1000 / cases for name, side in (("bare", bare), ("pytest", ours), ("floor", floor))}
            print(f"{cases:>6} {'bare':<7} {bare['wall_s']:7.2f} {bare_rate:8.0f} {1:6.2f} {ideal:7.2f} {cpu['bare']:6.2f} "
                  f"{bare['max_in_flight']:6.0f} {bare['idle_s']:6.2f}")
            print(f"{cases:>6} {'pytest':<7} {ours['wall_s']:7.2f} {our_rate:8.0f} {our_rate / bare_rate:6.2f} "
                  f"{ideal:7.2f} {cpu['pytest']:6.2f} {ours['max_in_flight']:6.0f} {ours['idle_s']:6.2f} "
                  f"{ours['peak_rss'] / 2**20:7.0f} {ours['growth_per_case'] / 1024:7.2f} {ours['slope_per_case'] / 1024:8.2f} "
                  f"{ours['lag_p50'] * 1000:6.1f}ms {ours['lag_p99'] * 1000:4.0f}ms {ours['lag_max'] * 1000:4.0f}ms")
            print(f"{cases:>6} {'floor':<7} {floor['wall_s']:7.2f} {cases / floor['wall_s']:8.0f} {'':>6} {'':>7} "
                  f"{cpu['floor']:6.2f} {'':>6} {'':>6} {'':>7} {floor['growth_per_case'] / 1024:7.2f}")
            # The pytest process is one thread: its CPU per case bounds its rate, whatever the waiting.
            print(f"{'':>6} bound: pytest process CPU {cpu['pytest']:.2f} ms/case -> at most {1000 / cpu['pytest']:.0f} "
                  f"cases/s; pytest's own per-test work (floor) {cpu['floor']:.2f} ms + bare client "
                  f"{cpu['bare']:.2f} ms/request = {cpu['floor'] + cpu['bare']:.2f} ms")
            sys.stdout.flush()
    print("targets: ratio >= 0.70, max in flight = the limit, <= 2 KB RSS growth per case "
          "(floor: pytest's own growth for trivial tests)")


if __name__ == "__main__":
    main()
