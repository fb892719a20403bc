"""What a drift test compares: a sample of embeddings, with its texts and embedder when known.

Users hand drift checks whatever they have: a numpy array of embeddings, a
list of texts (embedded here), or a saved :class:`Baseline`. This module turns
each into an :class:`EmbeddingSample` and checks that two samples can be
compared at all (same dimension, same embedder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmops.drift._deps import need
from pytest_llmops.drift.result import DriftInputError, EmbedderMismatchError, InsufficientDataError

if TYPE_CHECKING:
    import numpy

    from pytest_llmops.drift.embedders import Embedder


@dataclass(frozen=True, eq=False)
class EmbeddingSample:
    """Vectors (read-only float64 rows), the texts behind them if known, and the embedder's signature.

    ``signature`` is ``None`` for a bare array whose embedder nobody named.
    ``label`` says where the sample came from, for error messages.
    """

    vectors: numpy.ndarray
    texts: tuple[str, ...] | None = None
    signature: str | None = None
    label: str = "sample"
    dtype: str = "float64"

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def _is_texts(data: Any) -> bool:
    return (
        isinstance(data, Sequence)
        and not isinstance(data, (str, bytes))
        and len(data) > 0
        and all(isinstance(item, str) for item in data)
    )


def as_sample(data: Any, *, embedder: Embedder | None = None, role: str = "current") -> EmbeddingSample:
    """Turn ``data`` into an :class:`EmbeddingSample`.

    ``data`` may be an ``EmbeddingSample``, a :class:`Baseline`, a 2-D array
    (or nested lists) of numbers, or a non-empty list of texts, which is
    embedded with ``embedder`` (the MiniLM default when ``None``). ``role``
    ("current", "baseline") names the argument in error messages.
    """
    from pytest_llmops.drift.baseline import Baseline
    from pytest_llmops.drift.embedders import check_embedder, default_embedder, embed_texts

    np = need("numpy", "numpy", purpose="drift checks")
    if isinstance(data, EmbeddingSample):
        return data
    if isinstance(data, Baseline):
        return _checked(data.embeddings, texts=data.texts, signature=data.signature, label=f"baseline {data.name!r}")
    if isinstance(data, (str, bytes)):
        raise DriftInputError(
            f"{role}: got a single string; pass a list of texts, an array of embeddings, "
            "or a Baseline (load_baseline(name))"
        )
    if _is_texts(data):
        chosen = check_embedder(embedder) if embedder is not None else default_embedder()
        texts = tuple(data)
        vectors = embed_texts(texts, chosen)
        return _checked(vectors, texts=texts, signature=chosen.signature, label=f"{role} texts")
    if isinstance(data, Sequence) and len(data) == 0:
        raise InsufficientDataError(f"{role}: the sample is empty")
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as error:
        raise DriftInputError(f"{role}: cannot read it as an array of embeddings ({error})") from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise DriftInputError(
            f"{role}: expected a list of texts or a 2-D array of numbers, got {type(data).__name__} "
            f"of dtype {array.dtype}"
        )
    signature = getattr(embedder, "signature", None) if embedder is not None else None
    return _checked(array, texts=None, signature=signature, label=f"{role} embeddings")


def _checked(array: Any, *, texts: tuple[str, ...] | None, signature: str | None, label: str) -> EmbeddingSample:
    np = need("numpy", "numpy", purpose="drift checks")
    array = np.asarray(array)
    if array.ndim != 2:
        raise DriftInputError(f"{label}: expected a 2-D array (one row per sample), got shape {array.shape}")
    if array.shape[0] == 0:
        raise InsufficientDataError(f"{label}: the sample is empty")
    if array.shape[1] == 0:
        raise DriftInputError(f"{label}: the vectors have no dimensions (shape {array.shape})")
    dtype = "float32" if array.dtype == np.float32 else "float64"
    vectors = np.array(array, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise DriftInputError(f"{label}: row {int(bad[0])} holds NaN or infinite values ({bad.size} such rows)")
    vectors.setflags(write=False)
    return EmbeddingSample(vectors=vectors, texts=texts, signature=signature, label=label, dtype=dtype)


def check_comparable(current: EmbeddingSample, baseline: EmbeddingSample) -> None:
    """Raise unless the two samples live in the same space (same embedder when both are known, same dimension)."""
    if current.signature and baseline.signature and current.signature != baseline.signature:
        raise EmbedderMismatchError(
            f"{current.label} were embedded by {current.signature!r} but {baseline.label} by "
            f"{baseline.signature!r}: vectors from different embedders cannot be compared. Embed both with "
            "the same embedder (pass embedder=...), or save a new baseline with the current one."
        )
    if current.dim != baseline.dim:
        raise DriftInputError(
            f"{current.label} have {current.dim} dimensions but {baseline.label} {baseline.dim}: "
            "they were not made by the same embedder"
        )


def prepare(
    current: Any, baseline: Any, *, embedder: Embedder | None = None
) -> tuple[EmbeddingSample, EmbeddingSample]:
    """Both samples as :class:`EmbeddingSample`, checked to be comparable.

    The baseline is resolved first: when it carries an embedder signature and
    ``current`` is texts, the texts are embedded with ``embedder`` (the
    default when ``None``) and the signatures must agree.
    """
    base = as_sample(baseline, embedder=embedder, role="baseline")
    cur = as_sample(current, embedder=embedder, role="current")
    check_comparable(cur, base)
    return cur, base
