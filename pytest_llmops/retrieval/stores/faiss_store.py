"""FAISS adapter (package ``faiss-cpu``): an exact flat index or an HNSW graph, saved to a folder.

With a ``path`` the store is a folder holding ``manifest.json`` (format,
dimension, embedder signature, index kind), ``index.faiss`` and
``chunks.jsonl``; it is rewritten after each change (atomically, file by
file) and reopened by the next run. Without a path it lives in memory.

Deletions and replacements rebuild the index from the kept vectors: FAISS's
HNSW cannot remove vectors, and rebuilding a small index is cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmops.retrieval.corpus import Chunk
from pytest_llmops.retrieval.errors import StoreError
from pytest_llmops.retrieval.stores.numpy_store import NumpyStore

if TYPE_CHECKING:
    import numpy

FORMAT = "pytest-llmops-faiss"
INDEX_KINDS = ("flat", "hnsw")
_MANIFEST = "manifest.json"
_threads_set = False


def import_faiss() -> Any:
    """faiss, with one OpenMP thread unless the user chose (small shared machines run steadier)."""
    global _threads_set
    try:
        import faiss
    except ImportError as error:
        from pytest_llmops.metrics._deps import MissingDependencyError

        raise MissingDependencyError(
            "the FAISS store needs the 'faiss-cpu' package; install it with: pip install 'pytest-llmops[rag]'"
        ) from error
    if not _threads_set:
        if not os.environ.get("OMP_NUM_THREADS"):
            faiss.omp_set_num_threads(1)
        _threads_set = True
    return faiss


def _chunk_to_json(chunk: Chunk) -> dict[str, Any]:
    return {"id": chunk.id, "doc_id": chunk.doc_id, "text": chunk.text, "index": chunk.index,
            "start": chunk.start, "end": chunk.end, "metadata": dict(chunk.metadata)}


def _chunk_from_json(data: dict[str, Any]) -> Chunk:
    return Chunk(data["id"], data["doc_id"], data["text"], data["index"], data["start"], data["end"], data["metadata"])


class FaissStore(NumpyStore):
    """Vectors in a FAISS inner-product index (``index="flat"``: exact; ``"hnsw"``: approximate, faster on big corpora)."""

    kind = "faiss"

    def __init__(self, path: str | Path | None = None, *, index: str = "flat", hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 64) -> None:
        super().__init__()
        if index not in INDEX_KINDS:
            raise StoreError(f"FAISS index kind {index!r} is unknown; use one of: {', '.join(INDEX_KINDS)}")
        self._faiss = import_faiss()
        self.index_kind = index
        self.hnsw = (hnsw_m, ef_construction, ef_search)
        self.path = Path(path) if path is not None else None
        self._index: Any = None
        if self.path is not None:
            self._open()

    # -- persistence ---------------------------------------------------------------------------
    def _open(self) -> None:
        path = self.path
        assert path is not None
        if path.exists() and not path.is_dir():
            raise StoreError(f"FAISS store path {path} is a file, not a store folder; "
                             "point the store path at a folder (new or made by this store)")
        manifest_file = path / _MANIFEST
        if not manifest_file.is_file():
            if path.is_dir() and any(path.iterdir()):
                raise StoreError(
                    f"{path} is not a FAISS store made by pytest-llmops (no {_MANIFEST}), and it is not empty; "
                    "point the store path at an empty or new folder"
                )
            return
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format is {manifest.get('format')!r}, not {FORMAT!r}")
            chunks = [_chunk_from_json(json.loads(line))
                      for line in (path / "chunks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
            index = self._faiss.read_index(str(path / "index.faiss"))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise StoreError(f"{path} is not a readable FAISS store ({exc}); "
                             "delete the folder to rebuild it, or point the store path elsewhere") from None
        if index.ntotal != len(chunks):
            raise StoreError(f"FAISS store {path} is inconsistent: {index.ntotal} vectors for {len(chunks)} chunks; "
                             "delete the folder to rebuild it")
        self.index_kind = manifest.get("index", self.index_kind)
        self.dimension = int(manifest["dimension"]) if manifest.get("dimension") else None
        self.embedder_signature = manifest.get("embedder_signature")
        vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else None
        for row, chunk in enumerate(chunks):
            self._chunks[chunk.id] = chunk
            self._vectors[chunk.id] = vectors[row]
        self._ids = [chunk.id for chunk in chunks]
        self._index = index
        import numpy as np

        self._matrix = vectors if vectors is not None else np.empty((0, self.dimension or 0), np.float32)

    def _write(self, name: str, data: bytes) -> None:
        assert self.path is not None
        temporary = self.path / f".{name}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, self.path / name)

    def _save(self) -> None:
        if self.path is None:
            return
        ids, _ = self.matrix()
        index = self._build()
        self.path.mkdir(parents=True, exist_ok=True)
        self._write("index.faiss", self._faiss.serialize_index(index).tobytes())
        lines = "".join(json.dumps(_chunk_to_json(self._chunks[i]), ensure_ascii=False) + "\n" for i in ids)
        self._write("chunks.jsonl", lines.encode())
        manifest = {"format": FORMAT, "version": 1, "dimension": self.dimension, "index": self.index_kind,
                    "embedder_signature": self.embedder_signature, "count": len(ids)}
        self._write(_MANIFEST, json.dumps(manifest, indent=2).encode())

    # -- index ---------------------------------------------------------------------------------
    def _changed(self) -> None:
        super()._changed()
        self._index = None

    def upsert(self, chunks: Sequence[Chunk], vectors: numpy.ndarray, signature: str) -> None:
        super().upsert(chunks, vectors, signature)
        if chunks:
            self._save()

    def delete(self, ids: Sequence[str]) -> None:
        before = len(self)
        super().delete(ids)
        if len(self) != before:
            self._save()

    def _build(self) -> Any:
        if self._index is None:
            _, matrix = self.matrix()
            dim = self.dimension or 1
            if self.index_kind == "hnsw":
                m, ef_construction, ef_search = self.hnsw
                index = self._faiss.IndexHNSWFlat(dim, m, self._faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = ef_construction
                index.hnsw.efSearch = ef_search
            else:
                index = self._faiss.IndexFlatIP(dim)
            if matrix.shape[0]:
                index.add(matrix)
            self._index = index
        return self._index

    def build(self) -> None:
        """Build the index now (it is otherwise built by the first search after a change)."""
        self._build()

    def search(self, vector: numpy.ndarray, k: int) -> list[tuple[str, float]]:
        import numpy as np

        ids, _ = self.matrix()
        if not ids or k <= 0:
            return []
        index = self._build()
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        scores, rows = index.search(query, min(k, len(ids)))
        return [(ids[int(row)], float(score)) for score, row in zip(scores[0], rows[0]) if row >= 0]

    def __repr__(self) -> str:
        return f"FaissStore({str(self.path) if self.path else 'in memory'}, index={self.index_kind!r}, {len(self)} chunks)"
