"""Compute the BERTScore rescaling baseline for all-MiniLM-L6-v2.

bert-score rescales a raw score ``s`` to ``(s - b) / (1 - b)``, where ``b``
is the average score of *unrelated* sentence pairs, per layer; it ships ``b``
for the models it knows, not for MiniLM. This script computes ``b`` the same
way for MiniLM:

* sentences: the English source side of WMT23 en-de (news, social, speech and
  literary segments; Apache-2.0, ``translation/wmt23_en-de/source.txt`` in
  the shared datasets), split into sentences with Punkt, keeping those of 5
  to 60 words;
* pairs: the sentences shuffled with a fixed seed and paired off, skipping
  pairs from the same segment, so no pair is related;
* scores: ``bert_score.BERTScorer(model_type=<MiniLM>, num_layers=L)`` for
  L = 0..6, no idf; ``b`` is the mean precision, recall and F1.

It writes ``pytest_llmops/metrics/data/bertscore_baseline_minilm.csv`` in
bert-score's own format (``LAYER,P,R,F``; row ``L`` is layer ``L``), so it can
also be given to ``BERTScorer(..., baseline_path=...)``.

Usage: python benchmarks/metrics_bertscore_baseline.py [DATASETS_DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "pytest_llmops" / "metrics" / "data" / "bertscore_baseline_minilm.csv"
SEED = 20240607


def unrelated_pairs(datasets: Path) -> tuple[list[str], list[str]]:
    from pytest_llmops.metrics._nltk_data import sentence_splitter

    source = datasets / "translation" / "wmt23_en-de" / "source.txt"
    if not source.is_file():
        raise SystemExit(f"{source} not found: pass the shared datasets folder as the first argument")
    splitter = sentence_splitter("english")
    sentences = []
    for segment, line in enumerate(source.read_text(encoding="utf-8").splitlines()):
        for sentence in splitter.tokenize(line.strip()):
            if 5 <= len(sentence.split()) <= 60:
                sentences.append((segment, sentence))
    random.Random(SEED).shuffle(sentences)
    cands, refs = [], []
    for (seg_a, a), (seg_b, b) in zip(sentences[0::2], sentences[1::2]):
        if seg_a != seg_b:
            cands.append(a)
            refs.append(b)
    return cands, refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="?", default="/work/shared/datasets", type=Path)
    parser.add_argument("--out", default=DEFAULT_OUT, type=Path)
    args = parser.parse_args()

    from pytest_llmops.models import minilm

    minilm.configure_torch()
    import bert_score

    cands, refs = unrelated_pairs(args.datasets)
    print(f"{len(cands)} unrelated sentence pairs from WMT23 en source (seed {SEED})")
    rows = []
    for layer in range(7):
        started = time.perf_counter()
        scorer = bert_score.BERTScorer(model_type=str(minilm.model_path()), num_layers=layer, device="cpu")
        p, r, f = scorer.score(cands, refs, batch_size=64)
        means = [statistics.fmean(t.tolist()) for t in (p, r, f)]
        rows.append((layer, *means))
        print(
            f"layer {layer}: P {means[0]:.6f}  R {means[1]:.6f}  F {means[2]:.6f}"
            f"  ({time.perf_counter() - started:.1f} s)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["LAYER,P,R,F"] + [f"{layer},{p:.6f},{r:.6f},{f:.6f}" for layer, p, r, f in rows]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
