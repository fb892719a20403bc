"""Centroid distance between two samples of embeddings, with a permutation test.

The simplest drift statistic: how far the mean embedding moved. ``euclidean``
is the length of the difference of the two means; ``cosine`` is one minus
the cosine of the angle between them (direction only, blind to norm). It
sees a shift of the whole sample, not a change of spread or a new cluster
that leaves the mean in place (MMD sees those).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llmops.drift._deps import blas_threads, need
from pytest_llmops.drift._permute import check_options, permutation_result, run_blocks
from pytest_llmops.drift.result import DriftInputError, DriftResult
from pytest_llmops.drift.samples import prepare

if TYPE_CHECKING:
    import numpy

METRICS = ("euclidean", "cosine")


def centroid_shift(current: numpy.ndarray, baseline: numpy.ndarray) -> dict[str, float]:
    """Descriptive effect sizes: both centroid distances and how they compare to the baseline's spread.

    ``baseline_spread`` is the root mean squared distance of baseline vectors
    to their centroid; ``relative_shift`` the Euclidean shift divided by it
    (0.1 means the centre moved a tenth of a typical vector's distance from it).
    """
    np = need("numpy", "numpy", purpose="drift checks")
    mean_current = current.mean(axis=0)
    mean_baseline = baseline.mean(axis=0)
    euclidean = float(np.linalg.norm(mean_current - mean_baseline))
    norms = float(np.linalg.norm(mean_current) * np.linalg.norm(mean_baseline))
    cosine = float(1.0 - mean_current @ mean_baseline / norms) if norms > 0 else 0.0
    spread = float(np.sqrt(((baseline - mean_baseline) ** 2).sum(axis=1).mean()))
    return {
        "centroid_euclidean": euclidean,
        "centroid_cosine_distance": max(cosine, 0.0),
        "baseline_spread": spread,
        "relative_shift": euclidean / spread if spread > 0 else 0.0,
    }


def centroid_test(
    current: Any,
    baseline: Any,
    *,
    metric: str = "euclidean",
    alpha: float = 0.05,
    n_permutations: int = 1000,
    seed: int = 0,
) -> DriftResult:
    """Permutation test of the distance between the two samples' mean embeddings.

    ``metric`` is ``"euclidean"`` (method ``centroid``) or ``"cosine"``
    (method ``centroid-cosine``).
    """
    if metric not in METRICS:
        raise DriftInputError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    with blas_threads():
        return _centroid_test(current, baseline, metric, alpha, n_permutations, seed)


def _centroid_test(
    current: Any, baseline: Any, metric: str, alpha: float, n_permutations: int, seed: int
) -> DriftResult:
    np = need("numpy", "numpy", purpose="drift checks")
    cur, base = prepare(current, baseline)
    n, m = cur.size, base.size
    check_options(alpha=alpha, n_permutations=n_permutations, n_current=n, n_baseline=m, minimum=1)
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([cur.vectors, base.vectors])
    centre = pooled.mean(axis=0)
    # Centred on the pooled mean, the baseline's sum is minus the current's: one product per block.
    centred = (pooled - centre).astype(np.float32)

    def statistic(block: numpy.ndarray) -> numpy.ndarray:
        sums = (block @ centred).astype(np.float64)
        if metric == "euclidean":
            return np.linalg.norm(sums, axis=1) * (1.0 / n + 1.0 / m)
        mean_current = sums / n + centre
        mean_baseline = -sums / m + centre
        norms = np.linalg.norm(mean_current, axis=1) * np.linalg.norm(mean_baseline, axis=1)
        cosine = np.einsum("ij,ij->i", mean_current, mean_baseline) / np.where(norms > 0, norms, 1.0)
        return np.where(norms > 0, 1.0 - cosine, 0.0)

    observed, null = run_blocks(statistic, rng, n, n + m, n_permutations)
    method = "centroid" if metric == "euclidean" else "centroid-cosine"
    options = {"metric": metric, "permutations": n_permutations, "seed": seed}
    return permutation_result(
        method=method,
        statistic_name="centroid distance" if metric == "euclidean" else "centroid cosine distance",
        observed=observed,
        null=null,
        alpha=alpha,
        n_current=n,
        n_baseline=m,
        seed=seed,
        n_permutations=n_permutations,
        options=options,
        details={"metric": metric},
    )
