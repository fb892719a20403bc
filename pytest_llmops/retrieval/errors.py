"""The errors of the retrieval layer: each names the thing at fault and the fix."""

from __future__ import annotations


class RetrievalError(ValueError):
    """Base of every retrieval setup error (a corpus, a store, an embedder)."""


class CorpusError(RetrievalError):
    """A corpus that cannot be read or chunked: names the file (and line) and the fix."""


class StoreError(RetrievalError):
    """A vector store that cannot be opened or used: names its path or kind and the fix."""


class DimensionMismatchError(StoreError):
    """The store holds vectors of another length (or another embedder) than the one in use."""
