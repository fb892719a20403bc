"""The in-memory store: exact cosine search with numpy, for small corpora and as the reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_llmops.retrieval.errors import StoreError

if TYPE_CHECKING:
    import numpy

    from pytest_llmops.retrieval.corpus import Chunk


def _as_matrix(vectors: Any, count: int, where: str) -> numpy.ndarray:
    import numpy as np

    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if matrix.ndim != 2 or matrix.shape[0] != count:
        raise StoreError(f"{where}: expected {count} vectors as a 2-d array, got shape {matrix.shape}")
    return matrix


def top_k(scores: numpy.ndarray, k: int) -> list[int]:
    """Row numbers of the ``k`` highest scores, highest first (ties by row number)."""
    import numpy as np

    k = min(k, scores.shape[0])
    if k <= 0:
        return []
    if k < scores.shape[0]:
        candidates = np.argpartition(-scores, k - 1)[:k]
    else:
        candidates = np.arange(scores.shape[0])
    order = np.lexsort((candidates, -scores[candidates]))
    return [int(candidates[i]) for i in order]


class NumpyStore:
    """Chunks and vectors held in memory; search is one matrix-vector product (exact)."""

    kind = "numpy"
    path = None

    def __init__(self) -> None:
        self.dimension: int | None = None
        self.embedder_signature: str | None = None
        self._chunks: dict[str, Chunk] = {}
        self._vectors: dict[str, numpy.ndarray] = {}
        self._matrix: numpy.ndarray | None = None
        self._ids: list[str] = []

    def __len__(self) -> int:
        return len(self._chunks)

    def fingerprints(self) -> dict[str, str]:
        return {chunk_id: chunk.fingerprint for chunk_id, chunk in self._chunks.items()}

    def upsert(self, chunks: Sequence[Chunk], vectors: numpy.ndarray, signature: str) -> None:
        matrix = _as_matrix(vectors, len(chunks), f"{type(self).__name__}.upsert")
        if not chunks:
            return
        if self.dimension is None:
            self.dimension = int(matrix.shape[1])
            self.embedder_signature = signature
        elif matrix.shape[1] != self.dimension:
            raise StoreError(f"{type(self).__name__}: got {matrix.shape[1]}-dimensional vectors for a "
                             f"{self.dimension}-dimensional store")
        for chunk, row in zip(chunks, matrix):
            self._chunks[chunk.id] = chunk
            self._vectors[chunk.id] = row
        self._changed()

    def delete(self, ids: Sequence[str]) -> None:
        removed = False
        for chunk_id in ids:
            removed |= self._chunks.pop(chunk_id, None) is not None
            self._vectors.pop(chunk_id, None)
        if removed:
            self._changed()

    def _changed(self) -> None:
        self._matrix = None

    def matrix(self) -> tuple[list[str], numpy.ndarray]:
        """Ids and the (n, dim) matrix of all stored vectors, in a fixed order."""
        import numpy as np

        if self._matrix is None:
            self._ids = list(self._vectors)
            dim = self.dimension or 0
            self._matrix = np.stack([self._vectors[i] for i in self._ids]) if self._ids else np.empty((0, dim), np.float32)
        return self._ids, self._matrix

    def search(self, vector: numpy.ndarray, k: int) -> list[tuple[str, float]]:
        ids, matrix = self.matrix()
        if not ids:
            return []
        import numpy as np

        scores = matrix @ _as_matrix(np.asarray(vector).reshape(1, -1), 1, "NumpyStore.search")[0]
        return [(ids[row], float(scores[row])) for row in top_k(scores, k)]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        missing = [i for i in ids if i not in self._chunks]
        if missing:
            raise StoreError(f"{type(self).__name__}: no chunks with ids {missing[:5]}")
        return [self._chunks[i] for i in ids]

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} chunks, dimension={self.dimension})"
