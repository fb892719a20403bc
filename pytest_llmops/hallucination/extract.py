"""From (answer, context) to per-sentence features: splitting, comparing, and embedding if asked.

Two paths. The *lexical* one (``embeddings=False``) compares words only:
nltk and the standard library, no torch, no model to load. The *embedding*
one adds each answer sentence's MiniLM similarity to the closest context
sentence (``sim_best``); the detector takes it only when the model weighs
that feature or the caller asks (the shipped model gives it weight 0).

``embed`` is any callable that maps a list of texts to unit-norm rows (the
default is the process-wide MiniLM of ``pytest_llmops.models.minilm``); the
training script passes a caching one. Answer and context sentences are
embedded in one call, so a batch is shared. With the default embedder,
sentence vectors are kept in a bounded in-process cache: a suite that checks
many answers against the same retrieved passages embeds them once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pytest_llmops.hallucination.features import (
    ContextIndex,
    SentenceFeatures,
    answer_features,
)
from pytest_llmops.hallucination.text import split_sentences

if TYPE_CHECKING:
    import numpy as np

Embed = Callable[[Sequence[str]], "np.ndarray"]

#: sentences whose MiniLM vectors are kept (384 float32 each: ~30 MB at most)
CACHE_SIZE = 20_000
_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def _cached_minilm(texts: Sequence[str]) -> np.ndarray:
    """MiniLM vectors of ``texts``, embedding only those not seen recently."""
    import numpy as np

    from pytest_llmops.models.minilm import embed

    with _cache_lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    if missing:
        vectors = embed(missing)
        with _cache_lock:
            _cache.update(zip(missing, vectors))
    with _cache_lock:
        rows = []
        for text in texts:
            vector = _cache.get(text)
            if vector is None:  # evicted by another thread in between: embed it again
                vector = embed([text])[0]
            _cache[text] = vector
            _cache.move_to_end(text)
            rows.append(vector)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return np.stack(rows)


def context_chunks(context: str | Sequence[str]) -> list[str]:
    """The context as a list of non-empty chunks; a clear error for anything but text."""
    if isinstance(context, str):
        chunks = [context]
    elif isinstance(context, Sequence):
        chunks = list(context)
        for index, chunk in enumerate(chunks):
            if not isinstance(chunk, str):
                raise TypeError(f"context[{index}] must be a str, got {type(chunk).__name__}")
    else:
        raise TypeError(f"context must be a str or a list of str, got {type(context).__name__}")
    return [chunk for chunk in chunks if chunk.strip()]


def extract(
    answer: str, context: str | Sequence[str], embed: Embed | None = None, *, embeddings: bool = True
) -> tuple[list[SentenceFeatures], ContextIndex]:
    """Features of each sentence of ``answer`` against ``context``.

    With ``embeddings=False`` nothing is embedded (``embed`` must then be
    None): ``sim_best`` is left out and the closest context sentence is
    chosen by shared words.

    Raises ``ValueError`` when the answer or the context holds no sentence:
    there is then nothing to measure, and no score should pretend otherwise.
    """
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    if embed is not None and not embeddings:
        raise ValueError("embed= was given with embeddings=False: drop embed, or pass embeddings=True to use it")
    chunks = context_chunks(context)
    sentences = split_sentences(answer)
    if not sentences:
        raise ValueError("the answer is empty (no sentence with a letter or digit): there is nothing to check")
    index = ContextIndex.build(chunks)
    if not index.sentences:
        raise ValueError("the context is empty: an answer cannot be checked for support without one")
    if not embeddings:
        return answer_features(sentences, None, index, None), index
    vectors = (embed or _cached_minilm)([*sentences, *index.sentences])
    return answer_features(sentences, vectors[: len(sentences)], index, vectors[len(sentences) :]), index
