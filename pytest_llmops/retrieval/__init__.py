"""Retrieval for RAG evaluation: corpora, chunking, embedders, vector stores, a retriever and metrics.

Names load on first use (numpy, faiss, chromadb and the embedding model load
only when a store or embedder is used).
"""

from __future__ import annotations

from pytest_llmops._lazy import lazy_exports

_EXPORTS = {
    "Document": "corpus",
    "Chunk": "corpus",
    "Chunking": "corpus",
    "load_documents": "corpus",
    "chunk_document": "corpus",
    "chunk_documents": "corpus",
    "load_chunks": "corpus",
    "TextEmbedder": "embedder",
    "MiniLMTextEmbedder": "embedder",
    "ClientEmbedder": "embedder",
    "CachingEmbedder": "embedder",
    "EmbeddingCache": "embedder",
    "resolve_embedder": "embedder",
    "VectorStore": "stores",
    "open_store": "stores",
    "STORE_KINDS": "stores",
    "NumpyStore": "stores.numpy_store",
    "FaissStore": "stores.faiss_store",
    "ChromaStore": "stores.chroma_store",
    "Retriever": "retriever",
    "RetrievedChunk": "retriever",
    "IngestReport": "retriever",
    "RetrievalConfig": "config",
    "RetrievalError": "errors",
    "CorpusError": "errors",
    "StoreError": "errors",
    "DimensionMismatchError": "errors",
    "hit_rate_at_k": "metrics",
    "recall_at_k": "metrics",
    "precision_at_k": "metrics",
    "reciprocal_rank": "metrics",
    "ndcg_at_k": "metrics",
    "retrieval_score": "metrics",
    "mean_retrieval_score": "metrics",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
