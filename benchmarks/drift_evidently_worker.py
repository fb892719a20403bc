"""Evidently's embedding-drift methods on the samples chosen by ``drift_calibration.py``.

Run by ``drift_calibration.py --evidently-python PYTHON`` in a separate
environment that has ``evidently`` (0.7.x) and ``pandas<3`` installed (Evidently
does not import with pandas 3); it needs nothing from pytest-llmops::

    PYTHON drift_evidently_worker.py POOLS.npz TASKS.json OUT.json

Each task names the rows of the pools that form its current and baseline
samples. Every Evidently method runs twice: with its fixed default threshold
(what a user gets by default) and with ``bootstrap=True`` (its own resampling
test, where it has one).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict

import numpy as np
import pandas as pd
from evidently.legacy.metrics.data_drift import embedding_drift_methods as methods

VARIANTS = {
    "model>0.55": methods.model(),
    "model+boot": methods.model(bootstrap=True),
    "distance>0.2": methods.distance(),
    "distance+boot": methods.distance(bootstrap=True),
    "ratio>0.2": methods.ratio(),
    "mmd>0.015": methods.mmd(),
    "mmd+boot": methods.mmd(bootstrap=True),
}


def main(pool_path: str, task_path: str, out_path: str) -> None:
    with np.load(pool_path, allow_pickle=False) as archive:
        pools = {name: archive[name] for name in archive.files}
    with open(task_path, encoding="utf-8") as stream:
        tasks = json.load(stream)
    detected: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    runs: dict[tuple, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    for done, task in enumerate(tasks):
        if done and done % 100 == 0:
            print(f"evidently: {done} of {len(tasks)} samples", file=sys.stderr, flush=True)
        a, b = pools[task["pool_a"]], pools[task["pool_b"]]
        current = np.concatenate([a[task["a"]], b[task["b"]]]) if task["b"] else a[task["a"]]
        baseline = a[task["base"]]
        key = (task["shift"], task["share"], task["n"])
        runs[key] += 1
        for name, method in VARIANTS.items():
            columns = [f"e{i}" for i in range(current.shape[1])]
            started = time.perf_counter()
            # Evidently adds a column to the frames it is given: fresh frames for every call.
            _, drifted, _ = method(pd.DataFrame(current, columns=columns), pd.DataFrame(baseline, columns=columns))
            seconds[name] += time.perf_counter() - started
            detected[key][name] += bool(drifted)
    header = f"{'shift':<8}{'mix':>5}{'n':>6}{'runs':>6}" + "".join(f"{name:>15}" for name in VARIANTS)
    lines = []
    for key in sorted(runs, key=lambda k: (k[0] != "none", k[0], k[1], k[2])):
        shift, share, n = key
        cells = "".join(f"{detected[key][name] / runs[key]:>15.2f}" for name in VARIANTS)
        lines.append(f"{shift:<8}{share:>5.0%}{n:>6}{runs[key]:>6}{cells}")
    total = sum(runs.values())
    lines.append("mean seconds per call: " + ", ".join(f"{name} {seconds[name] / total:.3f}" for name in VARIANTS))
    rates = [
        {
            "shift": k[0],
            "share": k[1],
            "n": k[2],
            "runs": runs[k],
            "rate": {v: detected[k][v] / runs[k] for v in VARIANTS},
        }
        for k in runs
    ]
    with open(out_path, "w", encoding="utf-8") as stream:
        json.dump({"header": header, "lines": lines, "rates": rates}, stream)


if __name__ == "__main__":
    main(*sys.argv[1:4])
