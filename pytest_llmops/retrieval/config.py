"""What a suite's retriever is made of: corpus, store, path, embedder, chunking, k.

A suite sets it by overriding the ``retrieval_config`` fixture in its
``conftest.py``::

    @pytest.fixture
    def retrieval_config():
        return RetrievalConfig(corpus=Path(__file__).with_name("corpus"), chunking=Chunking("sentences", 3, 1))

Fields left as ``None`` come from the run's options (``llmops_retrieval_store``,
``llmops_retrieval_path``, ``llmops_embedder``, ...), then the defaults.
Standard library only: the fixtures module imports this at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmops.retrieval.corpus import Chunking


@dataclass(frozen=True)
class RetrievalConfig:
    """One retriever's configuration; equal configs share one ingested retriever per run."""

    #: A folder of text files or a JSONL file of documents.
    corpus: str | Path | None = None
    #: ``numpy``, ``faiss``, ``faiss-hnsw``, ``chroma``, ``package.module:factory``, or a store object.
    store: Any = None
    #: Folder of an on-disk store (faiss, chroma); by default one under ``llmops_retrieval_path`` per corpus.
    path: str | Path | None = None
    #: ``minilm``, a litellm embedding model name, or an embedder object.
    embedder: Any = None
    chunking: Chunking = field(default_factory=Chunking)
    #: Results per search when ``search`` is not given ``k``.
    k: int = 5
