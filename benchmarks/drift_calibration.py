"""Drift tests on real embeddings: false alarms, power under controlled shifts, speed.

Run from the repository root (takes a few minutes on 2 cores; the MiniLM
embeddings of the pools are cached after the first run)::

    python benchmarks/drift_calibration.py                      # everything
    python benchmarks/drift_calibration.py --quick              # fewer seeds, a smoke run
    python benchmarks/drift_calibration.py --evidently-python /tmp/evidently-venv/bin/python

What it measures (all at alpha 0.05, with the package's default settings):

* **Calibration**: baseline and current drawn without overlap from one pool
  of ordinary prompts (``benign_prompts/``), 200 seeds per test; the
  false-positive rate should stay within [0.02, 0.08].
* **Power**: a baseline from pool A against a current sample that mixes in
  10%, 30% or 50% from pool B, for n = 50, 200 and 1000 per sample:
  ``tweets`` (A: benign prompts, B: Davidson tweets) and ``german``
  (A: English deepset prompts, B: German deepset prompts; the pool is small,
  so sizes it cannot fill are marked n/a).
* **Speed**: the ``mmd`` test with 1,000 permutations on 5,000 vs 5,000
  unit vectors of 384 dimensions: wall time and peak memory.
* Optionally, **Evidently**'s embedding-drift methods (``model``,
  ``distance``, ``ratio``, ``mmd``, with their fixed thresholds) on the very
  same samples, run by ``drift_evidently_worker.py`` in a separate Python
  environment that has ``evidently`` and ``pandas<3`` installed.

Datasets are read from ``../shared/datasets`` (``--datasets`` to change it);
nothing from them is copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_llmops.drift import drift_test, mmd_test  # noqa: E402
from pytest_llmops.drift._deps import version_of  # noqa: E402

ALPHA = 0.05
METHODS = ("mmd", "mmd-exact", "centroid", "centroid-cosine", "classifier", "ks")
#: mmd-exact costs O(n^2) per permutation: run it where that stays cheap.
EXACT_MAX_N = 200
_GERMAN = frozenset(
    "und der die das ist nicht ich ein eine mit für sie zu wie was auf den dem des sich auch mir mich bitte über".split()  # noqa: SIM905
)
_ENGLISH = frozenset("the and is of to in for what how you a are my with this that be it on".split())  # noqa: SIM905


def is_german(text: str) -> bool:
    """A stop-word vote: good enough to split deepset's prompts (about a third German) by language."""
    words = re.findall(r"[a-zäöüß]+", text.lower())
    return sum(w in _GERMAN for w in words) > sum(w in _ENGLISH for w in words)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def load_texts(datasets: Path, seed: int = 0) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    benign = [row["text"] for path in sorted((datasets / "benign_prompts").glob("*.jsonl")) for row in read_jsonl(path)]
    benign = [benign[i] for i in rng.choice(len(benign), size=min(4000, len(benign)), replace=False)]
    with (datasets / "toxicity" / "davidson_labeled_data.csv").open(encoding="utf-8") as stream:
        tweets = [row["tweet"] for row in csv.DictReader(stream)]
    tweets = [tweets[i] for i in rng.choice(len(tweets), size=1500, replace=False)]
    deepset = [row["text"] for row in read_jsonl(datasets / "prompt_injection" / "deepset_train.jsonl")]
    return {
        "benign": benign,
        "tweets": tweets,
        "english": [t for t in deepset if not is_german(t)],
        "german": [t for t in deepset if is_german(t)],
    }


def load_pools(datasets: Path, cache: Path) -> dict[str, np.ndarray]:
    """MiniLM embeddings of each pool, cached in ``cache`` (an .npz keyed by the texts' hash)."""
    import hashlib

    from pytest_llmops.drift import MiniLMEmbedder

    texts = load_texts(datasets)
    digest = hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()[:16]
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as archive:
            if str(archive["digest"]) == digest:
                return {name: archive[name] for name in texts}
    embedder = MiniLMEmbedder()
    started = time.perf_counter()
    pools = {name: embedder(rows) for name, rows in texts.items()}
    total = sum(len(rows) for rows in texts.values())
    print(f"embedded {total} texts with MiniLM in {time.perf_counter() - started:.0f} s (cached in {cache})")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, digest=np.array(digest), **pools)
    return pools


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a binomial proportion."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def split_same_pool(pool: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(pool))
    return pool[order[:n]], pool[order[n : 2 * n]]


def mixed_sample(
    pool_a: np.ndarray, pool_b: np.ndarray, n: int, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """Baseline: n from A. Current: n - k from A (disjoint from the baseline) and k = round(share n) from B."""
    k = int(round(share * n))
    if n + (n - k) > len(pool_a) or k > len(pool_b):
        return None
    rng = np.random.default_rng(seed)
    order_a = rng.permutation(len(pool_a))
    pick_b = rng.choice(len(pool_b), size=k, replace=False)
    baseline_idx, current_a = order_a[:n], order_a[n : 2 * n - k]
    current = np.concatenate([pool_a[current_a], pool_b[pick_b]])
    return current, pool_a[baseline_idx], {"a": current_a.tolist(), "b": pick_b.tolist(), "base": baseline_idx.tolist()}


def calibration(
    pools: dict[str, np.ndarray], seeds: int, sizes: list[tuple[int, tuple[str, ...]]], results: dict, tasks: list
) -> None:
    print(f"\n== Calibration: no shift, {seeds} seeds per test, alpha {ALPHA} (target FPR in [0.02, 0.08]) ==")
    print(f"{'n per sample':>12}  {'method':<16}{'FPR':>7}  {'95% CI':<15}{'mean p':>7}{'s/test':>8}")
    for n, methods in sizes:
        for seed in range(min(seeds, 100)):  # the same no-shift samples, for Evidently's false alarms
            order = np.random.default_rng(seed).permutation(len(pools["benign"]))
            tasks.append(
                {
                    "shift": "none",
                    "share": 0.0,
                    "n": n,
                    "rep": seed,
                    "pool_a": "benign",
                    "pool_b": "benign",
                    "a": order[:n].tolist(),
                    "b": [],
                    "base": order[n : 2 * n].tolist(),
                }
            )
        for method in methods:
            alarms, p_values, started = 0, [], time.perf_counter()
            for seed in range(seeds):
                current, baseline = split_same_pool(pools["benign"], n, seed)
                result = drift_test(current, baseline, method, alpha=ALPHA, seed=seed)
                alarms += result.drifted
                p_values.append(result.p_value)
            elapsed = (time.perf_counter() - started) / seeds
            low, high = wilson(alarms, seeds)
            rate = alarms / seeds
            flag = "" if 0.02 <= rate <= 0.08 else "  <- outside target"
            print(
                f"{n:>12}  {method:<16}{rate:>7.3f}  [{low:.3f}, {high:.3f}]{np.mean(p_values):>9.3f}{elapsed:>8.3f}{flag}"
            )
            results.setdefault("calibration", []).append(
                {
                    "n": n,
                    "method": method,
                    "seeds": seeds,
                    "fpr": rate,
                    "ci": [low, high],
                    "mean_p": float(np.mean(p_values)),
                    "seconds": elapsed,
                }
            )


SHIFTS = {"tweets": ("benign", "tweets"), "german": ("english", "german")}


def power(pools: dict[str, np.ndarray], reps: dict[int, int], shares: list[float], results: dict, tasks: list) -> None:
    print(f"\n== Power: share of runs that detect drift at alpha {ALPHA} ==")
    header = "".join(f"{m:>16}" for m in METHODS)
    print(f"{'shift':<8}{'mix':>5}{'n':>6}{'runs':>6}{header}")
    for shift, (a, b) in SHIFTS.items():
        for share in shares:
            for n, runs in reps.items():
                row = f"{shift:<8}{share:>5.0%}{n:>6}"
                if mixed_sample(pools[a], pools[b], n, share, 0) is None:
                    print(row + f"{'':>6}" + "".join(f"{'n/a':>16}" for _ in METHODS) + "   (pool too small)")
                    continue
                detected = {m: 0 for m in METHODS}
                for rep in range(runs):
                    current, baseline, picks = mixed_sample(pools[a], pools[b], n, share, 1000 * rep + n)
                    tasks.append(
                        {"shift": shift, "share": share, "n": n, "rep": rep, "pool_a": a, "pool_b": b, **picks}
                    )
                    for method in METHODS:
                        if method == "mmd-exact" and n > EXACT_MAX_N:
                            continue
                        detected[method] += drift_test(current, baseline, method, alpha=ALPHA, seed=rep).drifted
                cells = "".join(
                    f"{'-':>16}" if (m == "mmd-exact" and n > EXACT_MAX_N) else f"{detected[m] / runs:>16.2f}"
                    for m in METHODS
                )
                print(row + f"{runs:>6}" + cells)
                results.setdefault("power", []).append(
                    {
                        "shift": shift,
                        "share": share,
                        "n": n,
                        "runs": runs,
                        "rate": {m: detected[m] / runs for m in METHODS if not (m == "mmd-exact" and n > EXACT_MAX_N)},
                    }
                )


def speed(results: dict, repeats: int = 3) -> None:
    print("\n== Speed: mmd, 1,000 permutations, 5,000 vs 5,000 unit vectors of 384 dimensions ==")
    rng = np.random.default_rng(0)
    current = rng.normal(size=(5000, 384)).astype(np.float32)
    baseline = rng.normal(size=(5000, 384)).astype(np.float32)
    current /= np.linalg.norm(current, axis=1, keepdims=True)
    baseline /= np.linalg.norm(baseline, axis=1, keepdims=True)
    mmd_test(current[:50], baseline[:50])  # imports and first-call costs out of the timing
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = mmd_test(current, baseline, n_permutations=1000)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    tracemalloc.start()
    mmd_test(current, baseline, n_permutations=1000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    load = os.getloadavg()[0]
    print(
        f"wall time: best {min(times):.2f} s, median {np.median(times):.2f} s over {repeats} runs "
        f"(p = {result.p_value:.3f}, {result.details['n_components']} Nystroem components)"
    )
    # One BLAS thread: CPU time is what the wall time would be on an otherwise idle machine.
    print(
        f"CPU time: best {min(cpu):.2f} s (the test runs on one core; load average at the time {load:.1f} "
        f"on {os.cpu_count()} CPUs)"
    )
    print(
        f"peak memory allocated by the test: {peak / 2**20:.0f} MiB (tracemalloc); "
        f"process max RSS so far {_max_rss_mib():.0f} MiB"
    )
    results["speed"] = {
        "best_s": min(times),
        "median_s": float(np.median(times)),
        "cpu_s": min(cpu),
        "load_average": load,
        "peak_mib": peak / 2**20,
    }


def _max_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evidently(python: str, pools: dict[str, np.ndarray], tasks: list, results: dict) -> None:
    print("\n== Evidently's embedding-drift methods (fixed thresholds) on the same samples ==")
    with tempfile.TemporaryDirectory() as folder:
        pool_file = Path(folder) / "pools.npz"
        task_file = Path(folder) / "tasks.json"
        out_file = Path(folder) / "out.json"
        np.savez(pool_file, **pools)
        task_file.write_text(json.dumps(tasks))
        worker = Path(__file__).with_name("drift_evidently_worker.py")
        completed = subprocess.run([python, str(worker), str(pool_file), str(task_file), str(out_file)], check=False)
        if completed.returncode != 0:
            print(f"evidently worker failed (exit {completed.returncode}); see its output above")
            return
        rows = json.loads(out_file.read_text())
    print(rows["header"])
    for line in rows["lines"]:
        print(line)
    results["evidently"] = rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--cache", type=Path, default=ROOT / ".llmops" / "cache" / "drift_benchmark_embeddings.npz")
    parser.add_argument("--seeds", type=int, default=200, help="seeds per test for calibration")
    parser.add_argument("--runs", type=int, default=30, help="runs per power cell (half that at n=1000)")
    parser.add_argument("--quick", action="store_true", help="20 seeds and 10 runs: a smoke run")
    parser.add_argument("--skip", action="append", default=[], choices=("speed", "calibration", "power"))
    parser.add_argument("--evidently-python", help="a Python with evidently and pandas<3 installed")
    parser.add_argument("--out", type=Path, help="write all figures as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.runs = 20, 10
    print(
        f"pytest-llmops drift benchmark | python {platform.python_version()} | numpy {np.__version__} | "
        f"scikit-learn {version_of('scikit-learn')} | scipy {version_of('scipy')} | {os.cpu_count()} CPUs"
    )
    results: dict = {}
    if "speed" not in args.skip:
        speed(results)
    pools = load_pools(args.datasets, args.cache)
    print("pools (MiniLM, 384 dimensions): " + ", ".join(f"{name} {len(v)}" for name, v in pools.items()))
    tasks: list = []
    if "calibration" not in args.skip:
        calibration(pools, args.seeds, [(200, METHODS), (1000, ("mmd",)), (50, METHODS)], results, tasks)
    if "power" not in args.skip:
        power(pools, {50: args.runs, 200: args.runs, 1000: max(5, args.runs // 2)}, [0.1, 0.3, 0.5], results, tasks)
    if args.evidently_python and tasks:
        evidently(args.evidently_python, pools, tasks, results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nfigures written to {args.out}")


if __name__ == "__main__":
    main()
