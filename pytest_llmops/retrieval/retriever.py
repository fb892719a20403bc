"""The retriever: ingests a corpus into a store and answers ``search(query, k)``.

::

    retriever = Retriever(open_store("faiss", "index/"), MiniLMTextEmbedder())
    report = await retriever.ingest("docs/", chunking=Chunking("sentences", size=3, overlap=1))
    results = await retriever.search("how do I reset the device?", k=5)
    results[0].id, results[0].score, results[0].text

Ingestion compares each chunk's fingerprint with the store's: unchanged chunks
are left alone, new or changed ones are embedded (through the embedding cache)
and written, and chunks no longer in the corpus are removed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pytest_llmops.retrieval.corpus import (
    Chunk,
    Chunking,
    Document,
    as_chunks,
    load_documents,
)
from pytest_llmops.retrieval.embedder import (
    CachingEmbedder,
    EmbeddingCache,
    resolve_embedder,
)
from pytest_llmops.retrieval.errors import RetrievalError
from pytest_llmops.retrieval.stores import (
    VectorStore,
    check_compatible,
    describe,
    open_store,
)
from pytest_llmops.tracing.spans import describe_documents, open_span

T = TypeVar("T")
#: Three sentences a chunk, one shared with the next.
DEFAULT_CHUNKING = Chunking()


@dataclass(frozen=True)
class RetrievedChunk:
    """One search result: the chunk, its cosine similarity to the query, and its rank (1 = best)."""

    chunk: Chunk
    score: float
    rank: int

    @property
    def id(self) -> str:
        return self.chunk.id

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.chunk.metadata

    def __repr__(self) -> str:
        return f"RetrievedChunk(rank={self.rank}, id={self.id!r}, score={self.score:.4f})"


@dataclass(frozen=True)
class IngestReport:
    """What an ingestion changed; ``embedded`` counts texts the model embedded (cache misses)."""

    added: int
    updated: int
    removed: int
    unchanged: int
    embedded: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


class Retriever:
    """A store and an embedder: ``ingest`` a corpus, then ``search`` it."""

    def __init__(
        self,
        store: VectorStore | str,
        embedder: Any = None,
        *,
        k: int = 5,
        cache: EmbeddingCache | None = None,
        runner: Callable[[Awaitable[Any]], Any] | None = None,
    ) -> None:
        self.store = open_store(store)
        inner = resolve_embedder(embedder)
        self.embedder = inner if isinstance(inner, CachingEmbedder) else CachingEmbedder(inner, cache)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self._runner = runner

    # -- ingestion -------------------------------------------------------------------------------
    async def ingest(
        self,
        corpus: str | Path | Sequence[Document | Chunk],
        *,
        chunking: Chunking = DEFAULT_CHUNKING,
        prune: bool = True,
    ) -> IngestReport:
        """Bring the store in line with ``corpus`` (a path, documents or chunks); see the module doc.

        ``prune=False`` keeps stored chunks that are not in ``corpus`` (to add a batch to a store).
        """
        items = load_documents(corpus) if isinstance(corpus, (str, Path)) else list(corpus)
        chunks = as_chunks(items, chunking)
        signature = self.embedder.signature
        if self.embedder.dimension is not None:  # fail before embedding a whole corpus
            check_compatible(self.store, self.embedder.dimension, signature)
        stored = self.store.fingerprints()
        changed = [c for c in chunks if stored.get(c.id) != c.fingerprint]
        wanted = {c.id for c in chunks}
        removed = [i for i in stored if i not in wanted] if prune else []
        before = self.embedder.embedded
        if changed:
            vectors = await self.embedder.embed([c.text for c in changed])
            check_compatible(self.store, int(vectors.shape[1]), signature)
            self.store.upsert(changed, vectors, signature)
        if removed:
            self.store.delete(removed)
        added = sum(1 for c in changed if c.id not in stored)
        return IngestReport(
            added=added,
            updated=len(changed) - added,
            removed=len(removed),
            unchanged=len(chunks) - len(changed),
            embedded=self.embedder.embedded - before,
        )

    # -- search ----------------------------------------------------------------------------------
    async def search(self, query: str, k: int | None = None) -> list[RetrievedChunk]:
        """The ``k`` chunks most similar to ``query`` (default: the retriever's ``k``), best first."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"search() needs a non-empty query string, got {query!r}")
        k = self.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a whole number >= 1, got {k!r}")
        if self.store.dimension is None:
            raise RetrievalError(f"{describe(self.store)} is empty: ingest a corpus before searching")
        # Inside an eval case the search is a retriever span of the case's trace.
        with open_span("retrieve", "retriever", {"input.value": query, "llmops.k": k}) as span:
            chunks = await self._search(query, k)
            describe_documents(span, chunks)
            return chunks

    async def _search(self, query: str, k: int) -> list[RetrievedChunk]:
        vector = (await self.embedder.embed([query]))[0]
        check_compatible(self.store, int(vector.shape[0]), self.embedder.signature)
        hits = self.store.search(vector, k)
        chunks = self.store.get([chunk_id for chunk_id, _ in hits])
        return [RetrievedChunk(chunk, score, rank) for rank, (chunk, (_, score)) in enumerate(zip(chunks, hits), 1)]

    # -- sync faces ------------------------------------------------------------------------------
    def _run(self, awaitable: Awaitable[T]) -> T:
        if self._runner is not None:
            return self._runner(awaitable)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(awaitable)  # type: ignore[arg-type]
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError("a *_sync retriever method was called inside a running event loop; use `await` instead")

    def ingest_sync(self, corpus: Any, **options: Any) -> IngestReport:
        return self._run(self.ingest(corpus, **options))

    def search_sync(self, query: str, k: int | None = None) -> list[RetrievedChunk]:
        return self._run(self.search(query, k))

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"Retriever({self.store!r}, embedder={self.embedder.signature!r}, k={self.k})"
