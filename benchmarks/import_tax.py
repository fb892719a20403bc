"""The cost of having pytest-llmops installed, for a run that does not use it.

Runs the same suite of plain tests with the plugin loaded and with
``-p no:llmops``, alternating the two so that machine noise hits both alike,
and prints the medians and their ratio (target: <= 1.10). It also lists any
heavy module the plugin pulled into that run.

    python benchmarks/import_tax.py [--tests 200] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("litellm", "openai", "httpx", "torch", "transformers", "numpy", "scipy", "sklearn", "pydantic", "jinja2", "llama_cpp")

PROBE = """
import sys
def pytest_sessionfinish(session):
    heavy = [m for m in {heavy!r} if m in sys.modules]
    print("\\nHEAVY:", ",".join(heavy) or "none")
"""


def make_suite(folder: Path, tests: int) -> None:
    body = "\n\n".join(f"def test_{i}():\n    assert {i} + 1 == {i + 1}" for i in range(tests))
    (folder / "test_plain.py").write_text(body + "\n")
    (folder / "conftest.py").write_text(PROBE.format(heavy=HEAVY))


def run_once(folder: Path, with_plugin: bool) -> tuple[float, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(folder)]
    if not with_plugin:
        command[5:5] = ["-p", "no:llmops"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"run failed:\n{result.stdout}\n{result.stderr}")
    heavy = next((line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.startswith("HEAVY:")), "?")
    return elapsed, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_suite(folder, args.tests)
        run_once(folder, True)  # warm the file cache and the bytecode of both variants
        run_once(folder, False)
        with_plugin: list[float] = []
        without: list[float] = []
        heavy_seen = set()
        for _ in range(args.repeats):
            elapsed, heavy = run_once(folder, True)
            with_plugin.append(elapsed)
            heavy_seen.add(heavy)
            without.append(run_once(folder, False)[0])
    median_with = statistics.median(with_plugin)
    median_without = statistics.median(without)
    print(f"plain suite of {args.tests} tests, {args.repeats} alternating runs each")
    print(f"  with pytest-llmops loaded : median {median_with * 1000:7.1f} ms  (min {min(with_plugin) * 1000:.1f})")
    print(f"  with -p no:llmops         : median {median_without * 1000:7.1f} ms  (min {min(without) * 1000:.1f})")
    print(f"  ratio of medians          : {median_with / median_without:.3f}  (target <= 1.10)")
    print(f"  heavy modules in the run  : {', '.join(sorted(heavy_seen))}")


if __name__ == "__main__":
    main()
