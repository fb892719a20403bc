"""Per-sentence evidence of support: what the combiner in ``model.py`` weighs.

For each answer sentence, against the context:

``sim_best``            best cosine of its MiniLM embedding to one context sentence (computed only on the
                        embedding path: the shipped model gives it weight 0, see ``model.py``)
``recall_best``         share of its content words found in the best-matching window of two adjacent
                        context sentences (a window, so "It" in the next sentence still counts)
``recall_context``      share of its content words found anywhere in the context
``bigram_recall``       share of its word pairs found side by side in the context (exact order)
``pair_support``        share of its neighbouring content-word pairs that occur together in one such
                        window (catches words taken from different places: swapped roles, wrong
                        attributions), in any order, so a paraphrase that keeps the words still counts
``unsupported_numbers`` numbers, number words and months absent from the context (capped at 3)
``unsupported_names``   capitalised names with a word absent from the context (capped at 3)
``unsupported_quotes``  quoted spans that the context does not contain (capped at 3)
``negation_mismatch``   1 if a statement (3+ content words) has 60%+ of its content words in one
                        context sentence but exactly one of the two is negated, and no context
                        sentence that holds them has its polarity: the same statement, flipped

Counts are capped so one long sentence does not weigh like many; shares
are 1.0 when there is nothing to share (a sentence of stop words only).

The context sentence shown as evidence is the most similar one by MiniLM on
the embedding path, else the one sharing the most of the sentence's content
words (rarer words weigh more) and then of its word pairs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

from pytest_llmops.hallucination import text as T

if TYPE_CHECKING:
    import numpy as np

FEATURES: tuple[str, ...] = (
    "sim_best",
    "recall_best",
    "recall_context",
    "bigram_recall",
    "pair_support",
    "unsupported_numbers",
    "unsupported_names",
    "unsupported_quotes",
    "negation_mismatch",
)
_CAP = 3


@dataclass
class ContextIndex:
    """The context, split and indexed once for all answer sentences."""

    sentences: list[str]
    windows: list[frozenset[str]]
    stems: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    numbers: frozenset[str]
    squashed: str
    negated: list[bool]
    sentence_stems: list[frozenset[str]]
    sentence_bigrams: list[frozenset[tuple[str, str]]]
    #: weight of a stem when choosing the closest sentence lexically: rarer in the context, heavier
    rarity: dict[str, float]

    @classmethod
    def build(cls, chunks: Sequence[str]) -> ContextIndex:
        sentences = [s for chunk in chunks for s in T.split_sentences(chunk)]
        sequences = [T.all_stems(s) for s in sentences]
        sentence_stems = [frozenset(seq) for seq in sequences]
        windows = [a | b for a, b in pairwise(sentence_stems)] or sentence_stems
        sentence_bigrams = [frozenset(pairwise(seq)) for seq in sequences]
        bigrams = frozenset().union(*sentence_bigrams) if sentence_bigrams else frozenset()
        counts = Counter(s for found in sentence_stems for s in found)
        joined = "\n".join(chunks)
        return cls(
            sentences=sentences,
            windows=windows,
            stems=frozenset().union(*sentence_stems) if sentence_stems else frozenset(),
            bigrams=bigrams,
            numbers=frozenset(T.number_set(joined)),
            squashed=T.squash(joined),
            negated=[T.has_negation(s) for s in sentences],
            sentence_stems=sentence_stems,
            sentence_bigrams=sentence_bigrams,
            rarity={s: math.log(1.0 + len(sentences) / n) for s, n in counts.items()},
        )

    def closest(self, stems: set[str], bigrams: set[tuple[str, str]]) -> int:
        """Index of the context sentence that shares most of ``stems`` (rarity-weighted), then of ``bigrams``."""

        def overlap(i: int) -> tuple[float, int, int]:
            shared = stems & self.sentence_stems[i]
            return sum(self.rarity[s] for s in shared), len(bigrams & self.sentence_bigrams[i]), -i

        return max(range(len(self.sentences)), key=overlap)


@dataclass
class SentenceFeatures:
    """One answer sentence: its feature values and the evidence behind them."""

    text: str
    values: dict[str, float]
    best_context: int
    unsupported_numbers: list[str] = field(default_factory=list)
    unsupported_names: list[str] = field(default_factory=list)
    unsupported_quotes: list[str] = field(default_factory=list)
    unsupported_words: list[str] = field(default_factory=list)

    def vector(self) -> list[float]:
        """The values in ``FEATURES`` order; NaN for one not computed (``sim_best`` on the lexical path)."""
        return [self.values.get(name, math.nan) for name in FEATURES]


def _share(found: int, total: int) -> float:
    return 1.0 if total == 0 else found / total


_REPEATS = 0.6
_STATEMENT = 3


def _negation_flip(sentence: str, stems: set[str], context: ContextIndex) -> float:
    if len(stems) < _STATEMENT:  # "Brandon Tartikoff" is a name, not a statement with a polarity
        return 0.0
    negated = T.has_negation(sentence)
    for index, other in enumerate(context.sentence_stems):
        if len(stems & other) >= _REPEATS * len(stems) and context.negated[index] != negated:
            # Flipped only if no other sentence it repeats has the same polarity.
            same = any(
                len(stems & o) >= _REPEATS * len(stems) and context.negated[i] == negated
                for i, o in enumerate(context.sentence_stems)
            )
            return 0.0 if same else 1.0
    return 0.0


def sentence_features(sentence: str, similarities: np.ndarray | None, context: ContextIndex) -> SentenceFeatures:
    """Features of one answer ``sentence``; ``similarities[i]`` is its cosine to context sentence ``i``.

    Without ``similarities`` (the lexical path) ``sim_best`` is left out and the
    closest context sentence is chosen by shared words.
    """
    content = [(w, T.stem(w)) for w in T.words(sentence) if T.is_content(w)]
    stems = {s for _, s in content}
    recall_best = max((_share(len(stems & window), len(stems)) for window in context.windows), default=0.0)
    missing_words = list(dict.fromkeys(w for w, s in content if s not in context.stems))
    every = T.all_stems(sentence)
    bigrams = set(pairwise(every))
    best = int(similarities.argmax()) if similarities is not None else context.closest(stems, bigrams)
    seq = [s for _, s in content]
    pairs = {(a, b) for a, b in pairwise(seq) if a != b}
    paired = {(a, b) for window in context.windows for a, b in pairs if a in window and b in window}
    numbers = [raw for raw, norm in T.numbers(sentence, answer=True) if norm not in context.numbers]
    names = [n.text for n in T.names(sentence) if any(s not in context.stems for s in n.stems)]
    quotes = [q for q in T.quotes(sentence) if T.squash(q) not in context.squashed]
    values = {
        "recall_best": recall_best,
        "recall_context": _share(sum(s in context.stems for s in stems), len(stems)),
        "bigram_recall": _share(len(bigrams & context.bigrams), len(bigrams)),
        "pair_support": _share(len(paired), len(pairs)),
        "unsupported_numbers": float(min(len(set(numbers)), _CAP)),
        "unsupported_names": float(min(len(set(names)), _CAP)),
        "unsupported_quotes": float(min(len(quotes), _CAP)),
        "negation_mismatch": _negation_flip(sentence, stems, context),
    }
    if similarities is not None:
        values = {"sim_best": float(similarities[best]), **values}
    return SentenceFeatures(
        text=sentence,
        values=values,
        best_context=best,
        unsupported_numbers=list(dict.fromkeys(numbers)),
        unsupported_names=list(dict.fromkeys(names)),
        unsupported_quotes=quotes,
        unsupported_words=missing_words,
    )


def answer_features(
    sentences: Sequence[str],
    answer_embeddings: np.ndarray | None,
    context: ContextIndex,
    context_embeddings: np.ndarray | None,
) -> list[SentenceFeatures]:
    """Features of every answer sentence (embeddings: unit rows, answer and context in the same space).

    With no embeddings (``None``) the lexical path is taken: no ``sim_best``.
    """
    if answer_embeddings is None or context_embeddings is None:
        return [sentence_features(s, None, context) for s in sentences]
    similarities = answer_embeddings @ context_embeddings.T
    return [sentence_features(s, similarities[i], context) for i, s in enumerate(sentences)]
