"""Chroma adapter: an embedded ``chromadb.PersistentClient`` in a folder, fed the project's embeddings.

Chroma never embeds anything here: vectors are always passed in (``embeddings=``
on writes, ``query_embeddings=`` on queries) and the collection is opened with
``embedding_function=None``, so Chroma's own default model (an ONNX MiniLM it
would download) is never used. Telemetry is off
(``Settings(anonymized_telemetry=False)``).

The collection's metadata records the vector length and the embedder's
signature, so a store built by one embedder refuses another.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmops.retrieval.corpus import Chunk
from pytest_llmops.retrieval.errors import StoreError

if TYPE_CHECKING:
    import numpy

DEFAULT_COLLECTION = "llmops_chunks"
_DB_FILE = "chroma.sqlite3"


def import_chromadb() -> Any:
    try:
        import chromadb
    except ImportError as error:
        from pytest_llmops.metrics._deps import MissingDependencyError

        raise MissingDependencyError(
            "the Chroma store needs the 'chromadb' package; install it with: pip install 'pytest-llmops[rag]'"
        ) from error
    return chromadb


class ChromaStore:
    """A Chroma collection in an on-disk folder (``path``), cosine space."""

    kind = "chroma"

    def __init__(self, path: str | Path, *, collection: str = DEFAULT_COLLECTION) -> None:
        self.path = Path(path)
        self.collection_name = collection
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"Chroma store path {self.path} is a file, not a store folder; "
                             "point the store path at a folder (new, or made by Chroma)")
        if self.path.is_dir() and any(self.path.iterdir()) and not (self.path / _DB_FILE).is_file():
            raise StoreError(
                f"{self.path} is not a Chroma store (no {_DB_FILE}), and it is not empty; "
                "point the store path at an empty or new folder"
            )
        chromadb = import_chromadb()
        from chromadb.config import Settings

        try:
            self._client = chromadb.PersistentClient(
                path=str(self.path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
            )
            self._collection = self._existing_collection()
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - chromadb raises many types for a damaged database
            raise StoreError(f"{self.path} is not a readable Chroma store ({type(exc).__name__}: {exc}); "
                             "delete the folder to rebuild it, or point the store path elsewhere") from None
        metadata = dict(self._collection.metadata or {}) if self._collection is not None else {}
        self.dimension: int | None = metadata.get("llmops_dimension")
        self.embedder_signature: str | None = metadata.get("llmops_embedder")
        self._batch = max(1, int(self._client.get_max_batch_size()))

    def _existing_collection(self) -> Any:
        names = {getattr(c, "name", c) for c in self._client.list_collections()}
        if self.collection_name not in names:
            return None
        return self._client.get_collection(self.collection_name, embedding_function=None)

    def _create(self, dimension: int, signature: str) -> Any:
        self._collection = self._client.create_collection(
            self.collection_name,
            embedding_function=None,
            metadata={"hnsw:space": "cosine", "llmops_dimension": dimension, "llmops_embedder": signature},
        )
        self.dimension, self.embedder_signature = dimension, signature
        return self._collection

    def __len__(self) -> int:
        return 0 if self._collection is None else int(self._collection.count())

    def _get(self, ids: Sequence[str] | None, include: list[str]) -> dict[str, Any]:
        """``collection.get`` in pages (Chroma caps one request's size)."""
        out: dict[str, list[Any]] = {"ids": [], **{name: [] for name in include}}
        if self._collection is None:
            return out
        if ids is not None:
            pages = [{"ids": list(ids[i : i + self._batch])} for i in range(0, len(ids), self._batch)]
        else:
            pages = [{"limit": self._batch, "offset": o} for o in range(0, len(self), self._batch)]
        for page in pages:
            result = self._collection.get(include=include, **page)
            out["ids"].extend(result["ids"])
            for name in include:
                out[name].extend(result[name])
        return out

    def fingerprints(self) -> dict[str, str]:
        result = self._get(None, ["metadatas"])
        return {chunk_id: meta.get("llmops_fp", "") for chunk_id, meta in zip(result["ids"], result["metadatas"])}

    def upsert(self, chunks: Sequence[Chunk], vectors: numpy.ndarray, signature: str) -> None:
        import numpy as np

        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(chunks):
            raise StoreError(f"ChromaStore.upsert: expected {len(chunks)} vectors, got shape {matrix.shape}")
        if not chunks:
            return
        collection = self._collection or self._create(int(matrix.shape[1]), signature)
        for start in range(0, len(chunks), self._batch):
            part = chunks[start : start + self._batch]
            collection.upsert(
                ids=[c.id for c in part],
                embeddings=matrix[start : start + len(part)],
                documents=[c.text for c in part],
                metadatas=[
                    {"llmops_fp": c.fingerprint, "llmops_doc": c.doc_id, "llmops_index": c.index,
                     "llmops_start": c.start, "llmops_end": c.end,
                     # Chroma metadata values must be scalars: keep the chunk's own metadata as JSON.
                     "llmops_meta": json.dumps(dict(c.metadata), ensure_ascii=False, default=str)}
                    for c in part
                ],
            )

    def delete(self, ids: Sequence[str]) -> None:
        if self._collection is None or not ids:
            return
        for start in range(0, len(ids), self._batch):
            self._collection.delete(ids=list(ids[start : start + self._batch]))

    def search(self, vector: numpy.ndarray, k: int) -> list[tuple[str, float]]:
        import numpy as np

        count = len(self)
        if self._collection is None or count == 0 or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        result = self._collection.query(query_embeddings=query, n_results=min(k, count), include=["distances"])
        # Cosine space: distance = 1 - cosine similarity.
        return [(chunk_id, 1.0 - float(distance)) for chunk_id, distance in zip(result["ids"][0], result["distances"][0])]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        result = self._get(list(ids), ["documents", "metadatas"])
        found = {
            chunk_id: Chunk(chunk_id, meta["llmops_doc"], text, int(meta["llmops_index"]), int(meta["llmops_start"]),
                            int(meta["llmops_end"]), json.loads(meta.get("llmops_meta") or "{}"))
            for chunk_id, text, meta in zip(result["ids"], result["documents"], result["metadatas"])
        }
        missing = [i for i in ids if i not in found]
        if missing:
            raise StoreError(f"Chroma store {self.path}: no chunks with ids {missing[:5]}")
        return [found[i] for i in ids]

    def close(self) -> None:
        # PersistentClient has no close(): Chroma keeps one system per path for the process, and
        # writes are durable when upsert returns, so there is nothing to flush.
        pass

    def __repr__(self) -> str:
        return f"ChromaStore({str(self.path)!r}, collection={self.collection_name!r}, {len(self)} chunks)"
