"""A run's embeddings, kept small: what the history stores of each drift check to compare runs later.

A drift check (``assert_no_drift``) sees the run's whole current sample; the
history cannot keep it all. It keeps an :class:`EmbeddingSummary` instead: the
count, the mean of all vectors, and a seeded random sample of at most
``SUMMARY_ROWS`` rows as float16 (float32 when a value is too large for
float16). Any two summaries by the same embedder can then be put through the
project's own drift tests (``drift_test``), so ``llmops history trend drift``
shows drift run by run, or window by window, against any reference run.

Size: ``rows x dim x 2`` bytes per check (128 rows of 384-dimensional MiniLM
vectors: 96 KiB), plus a third more as base64 text in ``results.json``.

In a results file the summary is the ``embedding_summary`` entry of the drift
score's ``details``: plain JSON, the numbers as standard base64 (no ``-``, so
it never looks like an ``sk-`` key to the redactor).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmops.drift._deps import need
from pytest_llmops.drift.result import DriftInputError

if TYPE_CHECKING:
    import numpy

#: Default cap on the rows kept per drift check and run.
SUMMARY_ROWS = 128
#: The key of a drift score's details that holds its summary.
SUMMARY_KEY = "embedding_summary"
#: Beyond this, float16 would turn values into infinities: keep float32 then.
_FLOAT16_MAX = 60000.0


@dataclass(frozen=True, eq=False)
class EmbeddingSummary:
    """``n`` vectors of dimension ``dim`` by ``embedder``: their mean and a sample of ``sample.shape[0]`` rows."""

    embedder: str | None
    n: int
    mean: numpy.ndarray
    sample: numpy.ndarray
    seed: int = 0

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def rows(self) -> int:
        return int(self.sample.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a drift score carries in ``details["embedding_summary"]``."""
        np = need("numpy", "numpy", purpose="drift checks")
        small = bool(np.abs(self.sample).max(initial=0.0) <= _FLOAT16_MAX)
        dtype = "float16" if small else "float32"
        return {
            "embedder": self.embedder,
            "n": self.n,
            "dim": self.dim,
            "rows": self.rows,
            "seed": self.seed,
            "dtype": dtype,
            "mean": base64.b64encode(self.mean.astype("<f4").tobytes()).decode("ascii"),
            "sample": base64.b64encode(self.sample.astype("<f2" if small else "<f4").tobytes()).decode("ascii"),
        }

    @classmethod
    def from_bytes(
        cls, *, embedder: str | None, n: int, dim: int, rows: int, dtype: str, mean: bytes, sample: bytes,
        seed: int = 0,
    ) -> EmbeddingSummary:
        """A summary from its stored parts (the history's columns); a part of the wrong size is an error."""
        np = need("numpy", "numpy", purpose="drift checks")
        if dtype not in ("float16", "float32"):
            raise DriftInputError(f"embedding summary: unknown dtype {dtype!r} (float16 or float32)")
        width = 2 if dtype == "float16" else 4
        if len(mean) != 4 * dim or len(sample) != width * rows * dim or rows < 1:
            raise DriftInputError(
                f"embedding summary: {len(mean)} bytes of mean and {len(sample)} of sample do not make "
                f"{rows} rows of dimension {dim} ({dtype})"
            )
        vectors = np.frombuffer(sample, dtype="<f2" if width == 2 else "<f4").reshape(rows, dim).astype(np.float64)
        return cls(embedder, int(n), np.frombuffer(mean, dtype="<f4").astype(np.float64), vectors, int(seed))


def summarize(vectors: Any, *, embedder: str | None, rows: int = SUMMARY_ROWS, seed: int = 0) -> EmbeddingSummary:
    """The summary of ``vectors`` (a 2-D array): its mean and at most ``rows`` rows drawn with ``seed``."""
    np = need("numpy", "numpy", purpose="drift checks")
    array = np.asarray(vectors, dtype=np.float64)
    if rows < 1:
        raise DriftInputError(f"an embedding summary keeps at least 1 row, got rows={rows}")
    if array.shape[0] > rows:
        # Sorted, so the kept rows stay in the order the answers came.
        chosen = np.sort(np.random.default_rng(seed).choice(array.shape[0], size=rows, replace=False))
        kept = array[chosen]
    else:
        kept = array
    return EmbeddingSummary(embedder, int(array.shape[0]), array.mean(axis=0), kept.copy(), seed)

