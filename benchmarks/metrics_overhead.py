"""Overhead of the pytest-llmops metric API over the libraries called directly.

On the same 5,000 text pairs from REALSumm (each of the 1,400 summaries with
its reference, then pairs of two systems' summaries of the same article), it
times ROUGE-L (rouge-score) and sentence BLEU (sacrebleu) three ways:

* ``direct``: the library with a reused scorer object, the fastest way to call it;
* ``ours``: ``pytest_llmops.metrics.rouge`` / ``bleu``, returning a ``Score``;
* ``assert``: ``assert_rouge`` / ``assert_bleu`` (scores recorded through ``require``).

Each variant makes ``--repeats`` passes over the pairs, the variants taking
turns on chunks of 100 pairs so that drifting machine load hits all of them
alike, timed in process CPU time with the garbage collector run between
chunks; the medians are printed side by side with the ratio ours/direct
(target <= 1.10). The values are checked equal pair by pair first. Last, the wrapper's own
cost per call is timed with the library's answers replayed from memory.

Usage: python benchmarks/metrics_overhead.py [DATASETS_DIR] [--pairs 5000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_data import datasets_dir, realsumm  # noqa: E402

from pytest_llmops.assertions.text import assert_bleu, assert_rouge  # noqa: E402
from pytest_llmops.metrics import bleu, rouge  # noqa: E402


def text_pairs(datasets: Path, count: int) -> list[tuple[str, str]]:
    """(prediction, reference) pairs: summaries with references, then summaries of the same article."""
    summaries = realsumm(datasets)
    pairs = [(" ".join(s.summary), " ".join(s.reference)) for s in summaries]
    by_doc: dict[int, list[str]] = {}
    for s in summaries:
        by_doc.setdefault(s.doc_id, []).append(" ".join(s.summary))
    for doc in sorted(by_doc):
        pairs.extend(combinations(by_doc[doc], 2))
    if len(pairs) < count:
        raise SystemExit(f"only {len(pairs)} pairs available")
    return pairs[:count]


def compare(
    name: str, pairs: list[tuple[str, str]], variants: dict[str, Callable[[str, str], object]], repeats: int
) -> None:
    """Median (and minimum) CPU seconds per variant over ``repeats`` passes through ``pairs``.

    Also the median, over every chunk of every pass, of the ratio of a
    variant's time to the direct call's time on that same chunk: the two ran
    back to back on the same pairs, so slow drifts of the machine cancel.

    Within a pass the variants take turns on chunks of 100 pairs, the order
    rotating, so a change in machine load hits every variant alike. Time is
    this process's CPU time, which other processes' load disturbs far less
    than wall-clock time on a shared machine. The garbage collector runs
    between chunks, outside the timing: a collection triggered by one
    variant's garbage would otherwise land at random in another's time.
    """
    keys = list(variants)
    chunks = [pairs[i : i + 100] for i in range(0, len(pairs), 100)]
    totals: dict[str, list[float]] = {key: [] for key in keys}
    paired: dict[str, list[float]] = {key: [] for key in keys}
    for repeat in range(repeats):
        spent = dict.fromkeys(keys, 0.0)
        for index, chunk in enumerate(chunks):
            shift = (repeat + index) % len(keys)
            chunk_time = {}
            for key in keys[shift:] + keys[:shift]:
                run = variants[key]
                gc.collect()
                gc.disable()
                started = time.process_time()
                for prediction, reference in chunk:
                    run(prediction, reference)
                chunk_time[key] = time.process_time() - started
                gc.enable()
            for key in keys:
                spent[key] += chunk_time[key]
                paired[key].append(chunk_time[key] / chunk_time["direct"])
        for key in keys:
            totals[key].append(spent[key])
    medians = {key: statistics.median(values) for key, values in totals.items()}
    minima = {key: min(values) for key, values in totals.items()}
    ratio = medians["ours"] / medians["direct"]
    verdict = "OK" if ratio <= 1.10 else "ABOVE 1.10"
    cells = "  ".join(f"{key} {medians[key]:.3f} s" for key in keys)
    print(f"{name:<14} median CPU s of {repeats} passes: {cells}")
    assert_ratio = medians["assert"] / medians["direct"]
    print(f"{'':<14} ratio of medians ours/direct {ratio:.3f} ({verdict}), assert/direct {assert_ratio:.3f}")
    print(
        f"{'':<14} ratio of minima ours {minima['ours'] / minima['direct']:.3f},"
        f" assert {minima['assert'] / minima['direct']:.3f};"
        f" median of {len(paired['ours'])} paired chunk ratios ours {statistics.median(paired['ours']):.3f},"
        f" assert {statistics.median(paired['assert']):.3f}"
    )
    for key in keys:
        print(f"{'':<14}   {key:<6} passes: " + ", ".join(f"{t:.3f}" for t in totals[key]))


def best_seconds_per_call(pairs: list[tuple[str, str]], run: Callable[[str, str], object], passes: int = 7) -> float:
    """The fastest of ``passes`` timed passes, per call (garbage collector off while timing)."""
    best = float("inf")
    for _ in range(passes):
        gc.collect()
        gc.disable()
        started = time.process_time()
        for prediction, reference in pairs:
            run(prediction, reference)
        best = min(best, time.process_time() - started)
        gc.enable()
    return best / len(pairs)


def wrapper_cost(name: str, pairs: list[tuple[str, str]], library: Callable[[str, str], object]) -> None:
    """The wrapper's own cost per call, with the library's answers replayed from memory.

    The library call inside our function is swapped for a dictionary lookup
    of its stored result, so what is timed is everything but the library:
    argument checks, the Score, its signature and reason. Against the
    library's own time per call this gives the overhead ratio without the
    noise of timing two long runs against each other.
    """
    from pytest_llmops.metrics import _rouge, _translation

    sample = pairs[:1000]
    if name == "ROUGE-L":
        scorer = _rouge._scorer(("rougeL",), False)
        stored = {(r, p): scorer.score(r, p) for p, r in sample}
        scorer.score = lambda target, prediction: stored[(target, prediction)]
        try:
            ours = best_seconds_per_call(sample, lambda p, r: rouge(p, r))
        finally:
            del scorer.score
        replay = best_seconds_per_call(sample, lambda p, r: stored[(r, p)])
    else:
        prep = _translation.prepared("bleu", sentence=True, options={})
        real = prep.metric
        answers = {(p, r): real.sentence_score(p, [r]) for p, r in sample}

        class Replay:
            def sentence_score(self, hypothesis: str, refs: list[str]) -> object:
                return answers[(hypothesis, refs[0])]

        prep.metric = Replay()
        try:
            ours = best_seconds_per_call(sample, lambda p, r: bleu(p, r))
        finally:
            prep.metric = real
        replay = best_seconds_per_call(sample, lambda p, r: answers[(p, r)])
    own = max(ours - replay, 0.0)
    lib = best_seconds_per_call(sample, library, passes=3)
    print(
        f"{'':<14} wrapper alone (library replayed): {own * 1e6:.1f} us per call; library {lib * 1e6:.1f} us per call;"
        f" ratio (library + wrapper) / library = {(lib + own) / lib:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="?", default=None)
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("rouge", "bleu"), help="time one metric only")
    args = parser.parse_args()
    pairs = text_pairs(datasets_dir(args.datasets), args.pairs)

    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    metric = BLEU(effective_order=True)

    # Same numbers first (this also warms every cache).
    for prediction, reference in pairs:
        assert rouge(prediction, reference).value == scorer.score(reference, prediction)["rougeL"].fmeasure
        assert bleu(prediction, reference).value == metric.sentence_score(prediction, [reference]).score
    print(f"{len(pairs)} pairs; ours equals the library on every pair (ROUGE-L F, sentence BLEU)")

    if args.only != "bleu":
        compare(
            "ROUGE-L",
            pairs,
            {
                "direct": lambda p, r: scorer.score(r, p)["rougeL"].fmeasure,
                "ours": lambda p, r: rouge(p, r).value,
                "assert": lambda p, r: assert_rouge(p, r, min_f=0.0),
            },
            args.repeats,
        )
        wrapper_cost("ROUGE-L", pairs, lambda p, r: scorer.score(r, p)["rougeL"].fmeasure)
    if args.only != "rouge":
        compare(
            "sentence BLEU",
            pairs,
            {
                "direct": lambda p, r: metric.sentence_score(p, [r]).score,
                "ours": lambda p, r: bleu(p, r).value,
                "assert": lambda p, r: assert_bleu(p, r, min_score=0.0),
            },
            args.repeats,
        )
        wrapper_cost("sentence BLEU", pairs, lambda p, r: metric.sentence_score(p, [r]).score)


if __name__ == "__main__":
    main()
