"""Embedders for retrieval: texts in, unit-norm float32 rows out, batched and cached.

An embedder is any object with a ``signature`` string (naming the model, so
vectors of different models are never mixed in one store) and an async
``embed(texts) -> numpy array`` of shape ``(len(texts), dim)``. Two come with
the package:

* :class:`MiniLMTextEmbedder` (the default, ``llmops_embedder = "minilm"``):
  all-MiniLM-L6-v2 run offline in this process (``pytest_llmops.models.minilm``).
* :class:`ClientEmbedder`: any litellm embedding model, through the project's
  ``LLMClient.embed`` (so calls are logged, budgeted and cached like chat calls).

:class:`CachingEmbedder` wraps either one: each distinct text is embedded once
per signature, across runs when the cache has a path (SQLite), and the rest is
sent in batches.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_llmops.models.minilm import check_texts
from pytest_llmops.retrieval.errors import RetrievalError

if TYPE_CHECKING:
    import numpy

MINILM_SIGNATURE = "all-MiniLM-L6-v2|pool:mean|norm:l2|max_tokens:256|dim:384"


@runtime_checkable
class TextEmbedder(Protocol):
    """Texts in, one vector per text out; ``signature`` names how the vectors were made."""

    signature: str

    def embed(self, texts: Sequence[str]) -> Any:
        """An array ``(len(texts), dim)``, or an awaitable of one."""


def normalize_rows(vectors: Any, signature: str, count: int) -> numpy.ndarray:
    """``vectors`` as a C-contiguous float32 array with unit rows, checked (one finite row per text)."""
    import numpy as np

    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2 or array.shape[0] != count:
        raise RetrievalError(f"embedder {signature!r} returned shape {array.shape} for {count} texts; "
                             "it must return one row per text")
    if not np.isfinite(array).all():
        raise RetrievalError(f"embedder {signature!r} returned NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if count and (norms == 0).any():
        raise RetrievalError(f"embedder {signature!r} returned an all-zero vector; it cannot be compared by cosine")
    return array / norms if count else array


class MiniLMTextEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), offline; the model loads on the first ``embed``."""

    signature = MINILM_SIGNATURE
    dimension = 384

    def __init__(self, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size

    def embed_sync(self, texts: Sequence[str]) -> numpy.ndarray:
        """Embed in this thread (the model batches internally)."""
        from pytest_llmops.models import minilm

        texts = check_texts(texts)
        embedder = minilm.get_embedder()
        # Slices of batch_size rows, so a large corpus does not hold every padded batch at once.
        parts = [embedder.embed(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if not parts:
            return embedder.embed([])
        import numpy as np

        return np.concatenate(parts)

    async def embed(self, texts: Sequence[str]) -> numpy.ndarray:
        # The forward pass is CPU work: keep the event loop free for model calls meanwhile.
        return await asyncio.to_thread(self.embed_sync, texts)

    def __repr__(self) -> str:
        return f"MiniLMTextEmbedder(batch_size={self.batch_size})"


class ClientEmbedder:
    """Any litellm embedding model, through an ``LLMClient`` (role ``embedder``); ``batch_size`` texts a request."""

    def __init__(self, client: Any, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.client = client
        self.batch_size = batch_size
        config = getattr(client, "config", None)
        base = getattr(config, "api_base", None)
        self.signature = f"litellm:{client.model}" + (f"@{base}" if base else "")

    async def embed(self, texts: Sequence[str]) -> numpy.ndarray:
        import numpy as np

        texts = check_texts(texts)
        rows: list[Any] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(await self.client.embed(texts[start : start + self.batch_size]))
        if not rows:
            return np.empty((0, 0), dtype=np.float32)
        return np.asarray(rows, dtype=np.float32)

    def __repr__(self) -> str:
        return f"ClientEmbedder({self.signature!r}, batch_size={self.batch_size})"


class EmbeddingCache:
    """Vectors by (embedder signature, text hash): in memory, or in SQLite at ``path`` to last across runs."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self._db: Any = None

    def _connect(self) -> Any:
        if self._db is None and self.path is not None:
            import sqlite3

            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (signature TEXT, text_sha256 TEXT, dim INTEGER, "
                    "vector BLOB, PRIMARY KEY (signature, text_sha256))"
                )
                db.commit()
            except sqlite3.DatabaseError as exc:
                raise RetrievalError(
                    f"embedding cache {self.path} is not a usable SQLite file ({exc}); delete it to start a new one"
                ) from None
            self._db = db
        return self._db

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def get_many(self, signature: str, texts: Sequence[str]) -> dict[str, bytes]:
        """Cached vectors (float32 bytes) of ``texts``, by text hash."""
        hashes = sorted({self.key(t) for t in texts})
        found: dict[str, bytes] = {}
        with self._lock:
            db = self._connect()
            for digest in hashes:
                blob = self._memory.get((signature, digest))
                if blob is not None:
                    found[digest] = blob
            missing = [d for d in hashes if d not in found]
            for start in range(0, len(missing), 500):
                if db is None:
                    break
                part = missing[start : start + 500]
                rows = db.execute(
                    f"SELECT text_sha256, vector FROM embeddings WHERE signature = ? AND text_sha256 IN "
                    f"({','.join('?' * len(part))})",
                    [signature, *part],
                ).fetchall()
                for digest, blob in rows:
                    found[digest] = self._memory[(signature, digest)] = bytes(blob)
        return found

    def put_many(self, signature: str, items: dict[str, bytes], dim: int) -> None:
        with self._lock:
            for digest, blob in items.items():
                self._memory[(signature, digest)] = blob
            db = self._connect()
            if db is not None and items:
                db.executemany(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                    [(signature, digest, dim, blob) for digest, blob in items.items()],
                )
                db.commit()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class CachingEmbedder:
    """An embedder whose vectors are cached per text; only unseen texts reach the model.

    Rows come back unit-norm float32. ``embedded`` counts the texts the
    model actually embedded (cache misses), for ingestion reports and tests.
    """

    def __init__(self, inner: TextEmbedder, cache: EmbeddingCache | None = None) -> None:
        signature = getattr(inner, "signature", None)
        if not isinstance(signature, str) or not signature.strip():
            raise RetrievalError(
                f"embedder {inner!r} has no 'signature' string; set one naming the model (e.g. 'my-model-v2')"
            )
        self.inner = inner
        self.signature = signature
        self.cache = cache or EmbeddingCache()
        self.embedded = 0
        self.dimension: int | None = getattr(inner, "dimension", None)

    async def embed(self, texts: Sequence[str]) -> numpy.ndarray:
        import numpy as np

        texts = check_texts(texts)
        found = self.cache.get_many(self.signature, texts)
        todo = list(dict.fromkeys(t for t in texts if EmbeddingCache.key(t) not in found))
        if todo:
            result = self.inner.embed(todo)
            if inspect.isawaitable(result):  # a user's embedder may be sync
                result = await result
            fresh = normalize_rows(result, self.signature, len(todo))
            self.embedded += len(todo)
            self.dimension = int(fresh.shape[1])
            new = {EmbeddingCache.key(t): fresh[i].tobytes() for i, t in enumerate(todo)}
            self.cache.put_many(self.signature, new, self.dimension)
            found.update(new)
        if not texts:
            return np.empty((0, self.dimension or 0), dtype=np.float32)
        rows = [np.frombuffer(found[EmbeddingCache.key(t)], dtype=np.float32) for t in texts]
        if self.dimension is None:
            self.dimension = int(rows[0].shape[0])
        return np.stack(rows)

    def __repr__(self) -> str:
        return f"CachingEmbedder({self.inner!r})"


def resolve_embedder(spec: Any, *, runtime: Any = None, api_base: str | None = None) -> TextEmbedder:
    """An embedder from a name or an object.

    ``None`` or ``"minilm"``: the offline MiniLM. Any other string is a litellm
    embedding model name (e.g. ``openai/text-embedding-3-small``), called
    through an ``LLMClient`` on ``runtime`` (a ``ModelRuntime``; one without a
    cache is made when none is given). An object with ``signature`` and
    ``embed`` is used as it is.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "minilm"):
        return MiniLMTextEmbedder()
    if isinstance(spec, str):
        from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

        name = spec.strip()
        if not name:
            raise RetrievalError("embedder name is empty; use 'minilm' or a litellm embedding model name")
        config = ModelConfig(model=name, role="embedder", api_base=api_base)
        return ClientEmbedder(LLMClient(config, runtime if runtime is not None else ModelRuntime()))
    if not callable(getattr(spec, "embed", None)) or not isinstance(getattr(spec, "signature", None), str):
        raise RetrievalError(
            f"embedder {spec!r} must have a 'signature' string and an async 'embed(texts)' method"
        )
    return spec
