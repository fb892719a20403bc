"""Wall time of the main job (``pytest -m llm_eval evalsuites``): cold, then warm.

The cold run starts from an empty call cache, store of computed values and
retrieval cache (all in a temporary folder); the warm runs reuse what it left.
Each run is a subprocess as README's first command starts it, and its exit
status is checked (the main job must end 0). Python writes bytecode as it does
on a user's machine unless ``--no-bytecode`` keeps this sandbox's
``PYTHONDONTWRITEBYTECODE``.

    python benchmarks/main_job.py               # 1 cold + 3 warm runs
    python benchmarks/main_job.py --warm 5 --no-cold

Target (issue 14): warm <= 15 s wall. The machine is shared: read the median.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM_TARGET_S = 15.0


def run_main_job(state: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the run, exit status, pytest's last line) of one main job."""
    command = [
        sys.executable, "-m", "pytest", "-m", "llm_eval", "evalsuites", "-q", "-p", "no:cacheprovider",
        f"--llmops-cache-path={state / 'cache.sqlite'}",
        f"--llmops-retrieval-path={state / 'retrieval'}",
        f"--llmops-history={state / 'history.sqlite'}",
        f"--llmops-results={state / 'results.json'}",
        f"--llmops-html={state / 'report.html'}",
        f"--llmops-markdown={state / 'summary.md'}",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return wall, cpu, done.returncode, lines[-1] if lines else done.stderr[-300:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", type=int, default=3, help="warm runs after the cold one (default 3)")
    parser.add_argument("--no-cold", action="store_true", help="fill the caches without timing the cold run")
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as set")
    args = parser.parse_args()

    env = dict(os.environ)
    if not args.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    failed = False
    with tempfile.TemporaryDirectory(prefix="llmops-main-job-") as folder:
        state = Path(folder)
        wall, cpu, status, last = run_main_job(state, env)
        label = "cold (filling the caches)" if args.no_cold else "cold"
        print(f"{label:28s} wall {wall:6.1f} s  cpu {cpu:6.1f} s  exit {status}  {last}")
        failed |= status != 0
        walls = []
        for index in range(args.warm):
            wall, cpu, status, last = run_main_job(state, env)
            walls.append(wall)
            print(f"warm {index + 1:<23d} wall {wall:6.1f} s  cpu {cpu:6.1f} s  exit {status}  {last}")
            failed |= status != 0
    if walls:
        median = statistics.median(walls)
        print(f"warm median {median:.1f} s wall; target <= {WARM_TARGET_S:.0f} s: "
              f"{'met' if median <= WARM_TARGET_S else 'missed'} ({median / WARM_TARGET_S:.2f}x of the target)")
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
