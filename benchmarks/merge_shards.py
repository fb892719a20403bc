"""A sharded run merged equals the unsharded run: N cases, S shards, same gates and corpus scores.

Writes a suite of N parametrized cases (each adds a pair to a corpus-BLEU
group; a fixed share fail a check), runs it once whole and once as S shards
(``--llmops-shard=i/S``), merges the shards with ``llmops results merge`` and
compares: case counts, every gate's value and verdict, the corpus score.
Prints the figures and the wall time of each step.

    python benchmarks/merge_shards.py [--cases 1000] [--shards 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = '''
import pytest
from pytest_llmops.assertions import collect_corpus_bleu

WORDS = "the a cat dog sat ran on under mat tree big small red old new".split()
CASES = [(" ".join(WORDS[(i + k) % len(WORDS)] for k in range(6)),
          " ".join(WORDS[(i + k + (k == 5 and i % 2)) % len(WORDS)] for k in range(6)), i)
         for i in range({cases})]

@pytest.mark.llm_eval
@pytest.mark.parametrize("hypothesis,reference,i", CASES)
def test_case(hypothesis, reference, i):
    collect_corpus_bleu(hypothesis, reference, group="bench", min_score=20)
    assert i % 13 != 0  # about 8% fail
'''
GATES = ["--llmops-gate=pass_rate.lower>=0.85", "--llmops-gate=pass_rate>=0.95"]


def pytest_run(folder: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--llmops-history=off",
                    "--llmops-progress=off", *GATES, *args], cwd=folder, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    from pytest_llmops.cli import main as llmops

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_bench.py").write_text(SUITE.replace("{cases}", str(args.cases)))
        whole_s = pytest_run(folder, "--llmops-results=whole.json")
        shard_s = [pytest_run(folder, f"--llmops-shard={i}/{args.shards}", f"--llmops-results=shard-{i}.json")
                   for i in range(1, args.shards + 1)]
        started = time.perf_counter()
        status = llmops(["results", "merge", *(str(folder / f"shard-{i}.json") for i in range(1, args.shards + 1)),
                         "-o", str(folder / "merged.json")])
        merge_s = time.perf_counter() - started
        if status != 0:
            return status
        whole, merged = (json.loads((folder / name).read_text()) for name in ("whole.json", "merged.json"))
        sizes = [len(json.loads((folder / f"shard-{i}.json").read_text())["cases"]) for i in range(1, args.shards + 1)]
    gates = lambda run: [(g["expression"], g["value"], g["verdict"]) for g in run["gates"]]  # noqa: E731
    same_gates = gates(whole) == gates(merged)
    same_corpus = [s["value"] for s in whole["group_scores"]] == [s["value"] for s in merged["group_scores"]]
    same_counts = whole["summary"]["counts"] == merged["summary"]["counts"]
    print(f"{args.cases} cases, {args.shards} shards: sizes {sizes} (min {min(sizes)}, max {max(sizes)})")
    print(f"unsharded run {whole_s:.1f} s; shards {sum(shard_s):.1f} s in all, slowest {max(shard_s):.1f} s; "
          f"merge {merge_s:.2f} s")
    for expression, value, verdict in gates(merged):
        print(f"gate {expression}: {value:.4f} {verdict}")
    print(f"corpus BLEU whole {whole['group_scores'][0]['value']:.4f}, merged {merged['group_scores'][0]['value']:.4f}")
    print(f"equal: counts {same_counts}, gates {same_gates}, corpus {same_corpus}")
    return 0 if same_gates and same_corpus and same_counts else 1


if __name__ == "__main__":
    sys.exit(main())
