"""Vector stores behind one interface (:class:`VectorStore`), chosen by name.

* ``numpy``: in memory, exact (:class:`NumpyStore`); the default, for small corpora.
* ``faiss``: FAISS flat (exact) index, in memory or saved to a folder (:class:`FaissStore`);
  ``faiss-hnsw`` for an approximate HNSW index.
* ``chroma``: an embedded Chroma database in a folder (:class:`ChromaStore`).
* ``package.module:factory``: your own store; ``factory(path=...)`` returns a
  :class:`VectorStore` (``path`` may be ``None``).

The stores import their libraries (numpy, faiss, chromadb) when opened.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from pytest_llmops.retrieval.errors import StoreError
from pytest_llmops.retrieval.stores.protocol import (
    VectorStore,
    check_compatible,
    describe,
)

STORE_KINDS = ("numpy", "faiss", "faiss-hnsw", "chroma")

__all__ = ["STORE_KINDS", "VectorStore", "check_compatible", "describe", "open_store"]


def open_store(kind: str | Any, path: str | Path | None = None, **options: Any) -> VectorStore:
    """Open (or create) a store by kind name, or check and return a store object given as ``kind``.

    ``path`` is the store's folder: required for ``chroma``, optional for
    ``faiss`` (in memory without it), ignored by ``numpy``.
    """
    if not isinstance(kind, str):
        return _check(kind, repr(kind))
    name = kind.strip().lower()
    if name == "numpy":
        from pytest_llmops.retrieval.stores.numpy_store import NumpyStore

        return NumpyStore()
    if name in ("faiss", "faiss-flat", "faiss-hnsw"):
        from pytest_llmops.retrieval.stores.faiss_store import FaissStore

        return FaissStore(path, index="hnsw" if name == "faiss-hnsw" else "flat", **options)
    if name == "chroma":
        from pytest_llmops.retrieval.stores.chroma_store import ChromaStore

        if path is None:
            raise StoreError("the chroma store needs a folder: set llmops_retrieval_path (or the config's path)")
        return ChromaStore(path, **options)
    module_name, colon, attribute = kind.strip().partition(":")
    if not colon or not module_name or not attribute:
        raise StoreError(
            f"unknown store kind {kind!r}: use one of {', '.join(STORE_KINDS)}, "
            "or an import path 'package.module:factory' for your own store"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise StoreError(f"store {kind!r}: cannot import it ({error}); check the import path") from error
    accepts_path = "path" in inspect.signature(factory).parameters if callable(factory) else False
    store = factory(path=path, **options) if accepts_path else factory(**options)
    return _check(store, kind)


def _check(store: Any, origin: str) -> VectorStore:
    if not isinstance(store, VectorStore):
        needed = ("dimension", "embedder_signature", "fingerprints", "upsert", "delete", "search", "get", "close")
        missing = [name for name in needed if not hasattr(store, name)]
        raise StoreError(
            f"store {origin} does not implement the VectorStore protocol (missing: {', '.join(missing)}); "
            "see pytest_llmops.retrieval.stores.protocol.VectorStore"
        )
    return store
