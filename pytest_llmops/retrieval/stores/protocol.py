"""The interface every vector store implements, and the checks shared by all of them.

A store keeps chunks with their unit-norm vectors and answers nearest-neighbour
queries by cosine similarity (inner product of unit vectors; higher is closer).
It also remembers which embedder made its vectors (``embedder_signature``) and
their length (``dimension``), so a store is never queried with vectors of
another model. To plug in your own store, implement these few members; the
retriever does the embedding, the change detection and the checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_llmops.retrieval.errors import DimensionMismatchError

if TYPE_CHECKING:
    import numpy

    from pytest_llmops.retrieval.corpus import Chunk


@runtime_checkable
class VectorStore(Protocol):
    """What the retriever needs from a store."""

    #: Vector length of the stored vectors; ``None`` while the store is empty and new.
    dimension: int | None
    #: Signature of the embedder that made the stored vectors; ``None`` while new.
    embedder_signature: str | None

    def fingerprints(self) -> dict[str, str]:
        """Chunk id -> fingerprint of every stored chunk (to re-embed only what changed)."""
        ...

    def upsert(self, chunks: Sequence[Chunk], vectors: numpy.ndarray, signature: str) -> None:
        """Add or replace ``chunks`` (row ``i`` of ``vectors`` is chunk ``i``), made by ``signature``."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove chunks by id (unknown ids are ignored)."""
        ...

    def search(self, vector: numpy.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest chunks to a unit ``vector``: (chunk id, cosine similarity), best first."""
        ...

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks with these ids, in the same order."""
        ...

    def close(self) -> None:
        """Release files and handles (the data stays where it is)."""
        ...


def describe(store: Any) -> str:
    """A short name for messages: the store's class and path, when it has one."""
    path = getattr(store, "path", None)
    return f"{type(store).__name__}" + (f" at {path}" if path is not None else "")


def check_compatible(store: Any, dimension: int, signature: str) -> None:
    """Refuse vectors of another length or another embedder than the store holds."""
    held_dim = getattr(store, "dimension", None)
    held_signature = getattr(store, "embedder_signature", None)
    fix = (
        "re-ingest the corpus into a new, empty store (a new path or collection), "
        "or configure the embedder the store was built with"
    )
    if held_dim is not None and held_dim != dimension:
        raise DimensionMismatchError(
            f"dimension mismatch: {describe(store)} holds {held_dim}-dimensional vectors "
            f"(embedder {held_signature!r}), but embedder {signature!r} makes {dimension}-dimensional ones; {fix}"
        )
    if held_signature is not None and held_signature != signature:
        raise DimensionMismatchError(
            f"embedder mismatch: {describe(store)} was built by embedder {held_signature!r}, "
            f"but the configured embedder is {signature!r} (vectors of different models are not comparable); {fix}"
        )
