"""Validate the reference-based metrics on public data.

1. REALSumm (abstractive systems, 1,400 summaries of 100 CNN/DM articles):
   ROUGE-1/2/L from pytest-llmops against the ROUGE-1.5.5 (Perl, via pyrouge)
   numbers stored with the data, after removing the ``<t> </t>`` sentence
   tags. The Perl ROUGE-L is summary-level (union LCS over the sentences), so
   it is compared with both our ``rougeL`` (one sequence) and ``rougeLsum``
   (sentences from the tags), with and without Porter stemming.
2. WMT23 en-de (12 systems, 557 segments; ``refA`` left out): corpus BLEU
   and chrF per system through the corpus-group API (collect, then finalize),
   checked equal to sacrebleu called directly, and their system-level Pearson
   correlation with the mean human score.

Usage: python benchmarks/metrics_validation.py [DATASETS_DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_data import datasets_dir, realsumm, wmt23  # noqa: E402

from pytest_llmops.metrics import CorpusRegistry, collect_corpus_bleu, collect_corpus_chrf, rouge_scores  # noqa: E402

VARIANTS = [  # ours, stored prefix
    ("rouge1", "rouge_1"),
    ("rouge2", "rouge_2"),
    ("rougeL", "rouge_l"),
    ("rougeLsum", "rouge_l"),
]
MEASURES = [("fmeasure", "f_score"), ("precision", "precision"), ("recall", "recall")]


def validate_realsumm(datasets: Path) -> None:
    pairs = realsumm(datasets)
    print(f"REALSumm abstractive: {len(pairs)} summaries, {len({p.system for p in pairs})} systems")
    print(
        "mean |ours - ROUGE-1.5.5| (mean signed diff) per variant;"
        " share of summaries with equal F (to 1e-4) and within 0.01"
    )
    for stem in (False, True):
        started = time.perf_counter()
        diffs: dict[tuple[str, str], list[float]] = {(v, m): [] for v, _ in VARIANTS for m, _ in MEASURES}
        for pair in pairs:
            scores = rouge_scores(
                "\n".join(pair.summary),
                "\n".join(pair.reference),
                rouge_types=[v for v, _ in VARIANTS],
                use_stemmer=stem,
                lsum_split="newline",  # the tags give the sentences
            )
            for ours, stored in VARIANTS:
                for measure, suffix in MEASURES:
                    diffs[(ours, measure)].append(scores[ours].details[measure] - pair.scores[f"{stored}_{suffix}"])
        print(f"  use_stemmer={stem} ({time.perf_counter() - started:.1f} s)")
        for ours, stored in VARIANTS:
            cells = []
            for measure, _ in MEASURES:
                values = diffs[(ours, measure)]
                mad = statistics.fmean(abs(d) for d in values)
                cells.append(f"{measure[0].upper()} {mad:.4f} ({statistics.fmean(values):+.4f})")
            f_diffs = diffs[(ours, "fmeasure")]
            exact = sum(abs(d) < 1e-4 for d in f_diffs) / len(pairs)
            close = sum(abs(d) <= 0.01 for d in f_diffs) / len(pairs)
            print(
                f"    {ours:<9} vs {stored}: " + "  ".join(cells) + f"  F equal: {exact:.0%}, within 0.01: {close:.0%}"
            )


def validate_wmt23(datasets: Path) -> None:
    import sacrebleu

    references, systems = wmt23(datasets)
    print(f"\nWMT23 en-de: {len(systems)} systems (refA left out), {len(references)} segments")
    registry = CorpusRegistry()
    started = time.perf_counter()
    for system in systems:
        for hyp, ref in zip(system.outputs, references):
            collect_corpus_bleu(hyp, ref, group=f"bleu:{system.name}", registry=registry)
            collect_corpus_chrf(hyp, ref, group=f"chrf:{system.name}", registry=registry)
    ours = {score.details["group"]: score for score in registry.finalize()}
    elapsed = time.perf_counter() - started

    human, bleu, chrf = [], [], []
    equal = True
    print(f"  {'system':<14} {'human':>6} {'BLEU':>7} {'chrF':>7}  (ours; sacrebleu called directly is identical: =)")
    for system in systems:
        direct_bleu = sacrebleu.corpus_bleu(system.outputs, [references]).score
        direct_chrf = sacrebleu.corpus_chrf(system.outputs, [references]).score
        our_bleu = ours[f"bleu:{system.name}"].value
        our_chrf = ours[f"chrf:{system.name}"].value
        same = our_bleu == direct_bleu and our_chrf == direct_chrf
        equal &= same
        human.append(system.human)
        bleu.append(our_bleu)
        chrf.append(our_chrf)
        print(
            f"  {system.name:<14} {system.human:6.2f} {our_bleu:7.2f} {our_chrf:7.2f}  {'=' if same else 'DIFFERENT'}"
        )
    print(f"  signature: {ours[f'bleu:{systems[0].name}'].signature}")
    print(f"  signature: {ours[f'chrf:{systems[0].name}'].signature}")
    print(f"  all equal to sacrebleu: {equal}  ({elapsed:.1f} s for both metrics)")
    print(
        f"  system-level Pearson with human: BLEU {statistics.correlation(bleu, human):.3f}, "
        f"chrF {statistics.correlation(chrf, human):.3f}"
    )
    if not equal:
        raise SystemExit("our corpus scores differ from sacrebleu's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="?", default=None)
    args = parser.parse_args()
    datasets = datasets_dir(args.datasets)
    validate_realsumm(datasets)
    validate_wmt23(datasets)


if __name__ == "__main__":
    main()
