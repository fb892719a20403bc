"""Benchmark the offline hallucination detector: quality per public set, and speed.

Prints:

1. The shipped detector (``detect_hallucination``, the model in
   ``pytest_llmops/hallucination/models/``) on each labelled source, as it
   runs: the share it answers (inside its competence region; the rest ends
   unmeasured), and on that part AUROC, false-alarm rate on consistent
   answers and recall at the shipped threshold, beside the whole-source
   AUROC; on the lexical path it takes by default and on the MiniLM path
   (``embeddings=True``, cached vectors), with the largest difference in
   probability between the two and how often they show the same context
   sentence as evidence. The shipped model was trained on HaluEval and the
   two SummaC sets, so those figures are in-sample; FaithBench it never saw.
2. With ``--heldout``: the leave-one-source-out evaluation of
   ``scripts/train_hallucination.py`` (retrained here, about a minute once
   the features are cached): per held-out source, coverage and the detector
   on the part it answers beside the TF-IDF + logistic-regression floor
   trained the same way, and the issue's targets met or missed.
3. Throughput, lexical path beside the MiniLM path (real, uncached
   MiniLM, one thread): answers per second on ``--speed-sample`` answers of
   each set, wall and process CPU time, median of ``--repeats`` runs (the
   two paths alternate, so a busy machine slows both alike).
4. With ``--misses N``: the N most confident misses of each kind per set.

Embeddings of the sets are cached in ``--cache`` (default
``/tmp/pytest-llmops-hallucination``), shared with the training script; the
first run embeds ~16k sentences (several minutes on one core).

Usage::

    nice -n 10 python benchmarks/hallucination_detector.py [--data ../shared/datasets] [--heldout] [--misses 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import train_hallucination as T

from pytest_llmops.hallucination.detector import detect_hallucination
from pytest_llmops.hallucination.model import load_model


def quality(sets: dict[str, list[T.Item]], cache: Path, misses: int) -> None:
    embedder = T.CachedEmbedder(cache / "embeddings.npz")
    model = load_model()
    print(f"shipped detector {model.signature}\nthreshold {model.threshold:.3f}; region {model.competence.as_dict()}")
    print(f"{'source':16s} {'path':8s} {'n':>5s} {'halluc':>6s} {'answers':>7s} {'AUROC':>6s} {'FPR':>6s} {'recall':>6s}   whole: {'AUROC':>6s} {'FPR':>6s}")
    for name in T.SOURCES:
        items = sets[name]
        y = np.array([i.hallucinated for i in items])
        lexical = [detect_hallucination(i.answer, i.context) for i in items]
        embedded = [detect_hallucination(i.answer, i.context, embed=embedder) for i in items]
        for path, reports in (("lexical", lexical), ("MiniLM", embedded)):
            scores = np.array([r.probability for r in reports])
            inside = np.array([r.measured for r in reports])
            m = T.judged_metrics(scores, y, inside, model.threshold)
            print(
                f"{name:16s} {path:8s} {m['n']:5d} {m['hallucinated']:6d} {m['coverage']:7.1%} {m['auroc']:6.3f} "
                f"{m['fpr']:6.3f} {m['recall']:6.3f}   whole: {m['auroc_all']:6.3f} {m['fpr_all']:6.3f}"
            )
        pairs = [(a, b) for x, z in zip(lexical, embedded, strict=True) for a, b in zip(x.sentences, z.sentences, strict=True)]
        gap = max(abs(a.probability - b.probability) for a, b in pairs)
        same = np.mean([a.closest_context == b.closest_context for a, b in pairs])
        print(f"{'':16s} largest |lexical - MiniLM| sentence probability {gap:.1e}; same evidence sentence for {same:.1%} of {len(pairs)} sentences")
        reasons = [r.declined.split(" (")[0] for r in lexical if r.declined]
        for reason in sorted(set(reasons), key=reasons.count, reverse=True):
            print(f"{'':16s} declined {reasons.count(reason):4d}: {reason}")
        if misses:
            _show_misses(items, lexical, np.array([r.probability for r in lexical]), y, model.threshold, misses)
    embedder.save()


def _show_misses(items, reports, scores, y, threshold, count) -> None:
    for label, title, order in ((0, "grounded but flagged", -1), (1, "hallucinated but passed", 1)):
        wrong = [
            i for i in np.argsort(order * scores)
            if y[i] == label and reports[i].measured and (scores[i] >= threshold) == (label == 0)
        ]
        print(f"  -- {title}: {len(wrong)}")
        for i in wrong[:count]:
            worst = reports[i].worst
            print(f"     p={scores[i]:.2f} answer={items[i].answer[:160]!r}")
            print(f"        worst: {worst.describe()[:300]}")


def _timed(items: list[T.Item], embeddings: bool) -> tuple[float, float]:
    """Answers per second (wall, CPU) for one pass over ``items``, from a cold embedding cache."""
    from pytest_llmops.hallucination import extract

    extract._cache.clear()  # each pass starts cold; repeated contexts in it are embedded once
    wall, cpu = time.perf_counter(), time.process_time()
    for item in items:
        detect_hallucination(item.answer, item.context, embeddings=embeddings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(items) / wall, len(items) / cpu


def speed(sets: dict[str, list[T.Item]], per_set: int, repeats: int) -> None:
    from pytest_llmops.models.minilm import get_embedder

    get_embedder()  # load once, outside the timing
    for embeddings in (False, True):
        detect_hallucination("Warm up.", "Warm up the tokenizer and the splitter.", embeddings=embeddings)
    print(f"  {'set':16s} {'answers':>7s} {'contexts':>8s} {'chars':>6s}   lexical wall/CPU   MiniLM wall/CPU   speed-up (wall)")
    for name in T.SOURCES:
        items = sets[name][:per_set]
        runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(repeats):
            for embeddings in (False, True):
                runs[embeddings].append(_timed(items, embeddings))
        (lex_wall, lex_cpu), (emb_wall, emb_cpu) = (
            (float(np.median([r[0] for r in runs[e]])), float(np.median([r[1] for r in runs[e]]))) for e in (False, True)
        )
        chars = sum(len(i.context) for i in items) / len(items)
        contexts = len({i.context for i in items})
        print(
            f"  {name:16s} {len(items):7d} {contexts:8d} {chars:6.0f}   {lex_wall:7.1f} / {lex_cpu:6.1f}   "
            f"{emb_wall:6.1f} / {emb_cpu:6.1f}   x{lex_wall / emb_wall:.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=T.DEFAULT_DATA, help="folder holding hallucination/ (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=T.DEFAULT_CACHE, help="embedding cache folder (default: %(default)s)")
    parser.add_argument("--heldout", action="store_true", help="also retrain and report the leave-one-set-out figures")
    parser.add_argument("--misses", type=int, default=0, help="show the N most confident misses of each kind per set")
    parser.add_argument("--speed-sample", type=int, default=20, help="answers per set timed (0: no timing)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per set and path; medians are shown")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality figures")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(
            f"no dataset folder at {args.data}: pass --data PATH to the folder holding hallucination/ "
            "(the project's shared/datasets); the benchmark needs the labelled sets",
            file=sys.stderr,
        )
        return 2
    sets = T.load_sets(args.data)
    if not args.speed_only:
        quality(sets, args.cache, args.misses)
    if args.heldout:
        training = T.training_sets(args.data)
        table = T.build_table(training, args.cache)
        ev = T.evaluate(table, [item for name in training for item in training[name]], verbose=False)
        rows = {**ev.held_out, **ev.validation}
        T.print_judged("held out (each training set left out in turn; FaithBench: shipped model, never trained on it):", rows)
        print("targets (on the part answered):")
        print(T._targets(rows))
    if args.speed_sample:
        print(f"throughput, answers/s (median of {args.repeats}; one thread; MiniLM real and uncached):")
        speed(sets, args.speed_sample, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
