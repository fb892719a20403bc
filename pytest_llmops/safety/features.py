"""Hashed character and word n-gram features, shared by training and inference.

The shipped detectors are linear models over these features. Training (in
``scripts/train_safety.py``) and inference call the same ``featurize``, so the
two cannot drift apart. Hashing is done with numpy over whole batches
(a polynomial rolling hash of code points, then a splitmix64 finaliser), which
is stable across processes and platforms, unlike Python's salted ``hash``, and
needs no vocabulary file.

numpy is imported inside functions: this module is only loaded when a
detector runs.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_URL = re.compile(r"(?:https?://|www\.)\S+")
# Twitter handles and retweet markers are style, not content: the Davidson tweets
# (mostly offensive) are full of them, and a model would learn "tweet == toxic".
_MENTION = re.compile(r"(?<![\w.])@\w+:?")
_RETWEET = re.compile(r"(?<!\w)rt(?=\s|$)")
_DIGIT = re.compile(r"\d")
_REPEAT = re.compile(r"(.)\1{3,}")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")

_P = 1_000_003  # multiplier of the rolling hash
_MASK64 = (1 << 64) - 1


def normalise(text: str) -> str:
    """The text the features see: NFKC, case-folded, URLs, handles and digits flattened.

    Digits become ``0`` so that numbers generalise, runs of one character are
    cut to three ("soooo" -> "sooo"), and whitespace collapses to single spaces.
    """
    text = unicodedata.normalize("NFKC", text)
    if "&" in text:
        text = html.unescape(text)
    text = text.casefold()
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _RETWEET.sub(" ", text)
    text = _DIGIT.sub("0", text)
    text = _REPEAT.sub(r"\1\1\1", text)
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class FeatureSpec:
    """How texts become feature vectors; stored beside the weights it was trained with."""

    bits: int = 20
    char_min: int = 2
    char_max: int = 5
    word_min: int = 1
    word_max: int = 2
    version: int = 1

    @property
    def dim(self) -> int:
        return 1 << self.bits

    def to_dict(self) -> dict[str, int]:
        return {
            "bits": self.bits,
            "char_min": self.char_min,
            "char_max": self.char_max,
            "word_min": self.word_min,
            "word_max": self.word_max,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        unknown = set(data) - set(cls().to_dict())
        if unknown:
            raise ValueError(f"unknown feature settings {sorted(unknown)}; the model file is newer than this code")
        spec = cls(**{key: int(value) for key, value in data.items()})
        if spec.version != 1:
            raise ValueError(f"feature version {spec.version} is not supported by this version of pytest-llmops")
        return spec


@dataclass(frozen=True)
class SparseRows:
    """A batch of feature vectors in CSR form (row ``i`` is ``indptr[i]:indptr[i+1]``)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    dim: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        import numpy as np

        return np.repeat(np.arange(self.n_rows), np.diff(self.indptr))

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """``X @ weights`` for a dense weight vector, one value per row."""
        import numpy as np

        products = weights[self.indices].astype(np.float64) * self.data
        return np.bincount(self.row_ids(), weights=products, minlength=self.n_rows)


def _salt(salt: int) -> np.uint64:
    import numpy as np

    return np.uint64((salt * 0x9E3779B97F4A7C15) & _MASK64)


@functools.lru_cache(maxsize=1)
def _mixers() -> tuple[Any, ...]:
    import numpy as np

    return tuple(np.uint64(v) for v in (30, 0xBF58476D1CE4E5B9, 27, 0x94D049BB133111EB, 31, _P))


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads a 64-bit hash over all bits (wraps mod 2**64).

    Callers xor each n-gram family's salt in first, so one call mixes a whole batch.
    """
    s30, m1, s27, m2, s31, _ = _mixers()
    x = (values ^ (values >> s30)) * m1
    x = (x ^ (x >> s27)) * m2
    return x ^ (x >> s31)


def _char_ngrams(texts: Sequence[str], spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(row, hash) for every character n-gram of every text; n-grams never cross texts."""
    import numpy as np

    padded = [f" {t} " if t else "" for t in texts]
    joined = "\x00".join(padded)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter((len(t) + 1 for t in padded), dtype=np.int64, count=len(padded))
    rows_at = np.repeat(np.arange(len(padded)), lengths)[: len(codes)]
    seps = np.concatenate(([0], np.cumsum(codes == 0)))
    rows: list[np.ndarray] = []
    hashes: list[np.ndarray] = []
    rolling = codes.copy()
    for n in range(1, spec.char_max + 1):
        if n > 1:
            rolling = rolling[:-1] * _mixers()[5] + codes[n - 1 :]
        if n < spec.char_min or len(rolling) == 0:
            continue
        starts = np.arange(len(rolling))
        valid = seps[starts + n] == seps[starts]
        rows.append(rows_at[: len(rolling)][valid])
        hashes.append(rolling[valid] ^ _salt(n))
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(rows), _mix(np.concatenate(hashes))


def _word_ngrams(texts: Sequence[str], spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(row, hash) for word unigrams and bigrams; bigrams never cross texts."""
    import numpy as np

    words: list[int] = []
    row_of: list[int] = []
    for row, text in enumerate(texts):
        tokens = _WORD.findall(text)
        words.extend(zlib.crc32(token.encode("utf-8")) for token in tokens)
        row_of.extend([row] * len(tokens))
    base = np.asarray(words, dtype=np.uint64)
    rows_at = np.asarray(row_of, dtype=np.int64)
    rows: list[np.ndarray] = []
    hashes: list[np.ndarray] = []
    rolling = base.copy()
    for n in range(1, spec.word_max + 1):
        if n > 1:
            rolling = rolling[:-1] * _mixers()[5] + base[n - 1 :]
        if n < spec.word_min or len(rolling) == 0:
            continue
        same_row = rows_at[: len(rolling)] == rows_at[n - 1 :]
        rows.append(rows_at[: len(rolling)][same_row])
        hashes.append(rolling[same_row] ^ _salt(100 + n))
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(rows), _mix(np.concatenate(hashes))


def _block(rows: np.ndarray, hashes: np.ndarray, n_rows: int, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum signed counts per (row, bucket), apply sublinear tf, l2-normalise each row."""
    import numpy as np

    buckets = (hashes >> np.uint64(64 - bits)).astype(np.int64)
    # A second bit of the hash gives the sign, so colliding n-grams tend to cancel.
    signs = np.where((hashes >> np.uint64(63 - bits)) & np.uint64(1), 1.0, -1.0)
    keys = (rows << bits) | buckets
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=signs, minlength=len(unique))
    keep = sums != 0
    unique, sums = unique[keep], sums[keep]
    values = np.sign(sums) * (1.0 + np.log(np.abs(sums)))
    out_rows = unique >> bits
    norms = np.sqrt(np.bincount(out_rows, weights=values * values, minlength=n_rows))
    values = values / np.where(norms > 0, norms, 1.0)[out_rows]
    return out_rows, unique & ((1 << bits) - 1), values


def _triples(texts: Sequence[str], spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, value) of every non-zero feature, unsorted."""
    import numpy as np

    normed = [normalise(t) for t in texts]
    n = len(normed)
    blocks = [
        _block(*_char_ngrams(normed, spec), n, spec.bits),
        _block(*_word_ngrams(normed, spec), n, spec.bits),
    ]
    return (
        np.concatenate([b[0] for b in blocks]),
        np.concatenate([b[1] for b in blocks]),
        np.concatenate([b[2] for b in blocks]),
    )


def linear_scores(texts: Sequence[str], spec: FeatureSpec, weights: np.ndarray) -> np.ndarray:
    """``featurize(texts) @ weights`` without building the sorted matrix (the inference path)."""
    import numpy as np

    rows, cols, vals = _triples(texts, spec)
    return np.bincount(rows, weights=weights[cols].astype(np.float64) * vals, minlength=len(texts))


def featurize(texts: Sequence[str], spec: FeatureSpec) -> SparseRows:
    """Feature vectors for ``texts`` (normalised here): char block and word block, each of unit norm."""
    import numpy as np

    n = len(texts)
    rows, cols, vals = _triples(texts, spec)
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n)))).astype(np.int64)
    return SparseRows(indptr=indptr, indices=cols.astype(np.int64), data=vals.astype(np.float32), dim=spec.dim)
