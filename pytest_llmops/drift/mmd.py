"""Maximum mean discrepancy (MMD²) with an RBF kernel and a permutation test.

MMD² is the squared distance between the two samples' mean embeddings in the
kernel's feature space: zero when both come from the same distribution, and
sensitive to any difference (not only a moved centroid). The kernel is
``exp(-||x - y||² / (2 σ²))`` with σ the median distance between pooled
vectors (the median heuristic).

Two ways to compute it, both tested by relabelling the pooled sample:

* :func:`mmd_test` (method ``"mmd"``, the default): the kernel is factored
  with scikit-learn's Nyström approximation on at most ``n_components``
  landmark vectors, ``K ≈ Φ Φᵀ``. The statistic of a relabelling then only
  needs the sum of Φ's rows in one group, so a block of relabellings is one
  matrix product: 1,000 permutations of 5,000 + 5,000 vectors take about a
  second. With no more vectors than ``n_components`` the factorisation uses
  every vector and the statistic is the exact one. Landmarks and bandwidth
  are chosen without looking at the labels, so the permutation test keeps
  its exact level whatever the approximation.
* :func:`mmd_exact_test` (``"mmd-exact"``): the full kernel matrix, O(n²)
  memory and time per permutation; for small samples.

Both report the unbiased estimate of MMD².
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llmops.drift._deps import blas_threads, need
from pytest_llmops.drift._permute import check_options, permutation_result, run_blocks
from pytest_llmops.drift.result import DriftInputError, DriftResult
from pytest_llmops.drift.samples import prepare

if TYPE_CHECKING:
    import numpy

#: Default rank of the Nyström factorisation (exact below this many pooled vectors).
DEFAULT_COMPONENTS = 512
#: Largest pooled sample the exact test accepts (its kernel matrix has this many squared entries).
EXACT_MAX_SAMPLES = 6000


def median_bandwidth(pooled: numpy.ndarray, rng: numpy.random.Generator, *, max_points: int = 1000) -> float:
    """The median Euclidean distance between pooled vectors (on a label-blind random subset).

    Falls back to the mean non-zero distance when more than half the pairs
    coincide, and to 1.0 when every vector is the same.
    """
    np = need("numpy", "numpy", purpose="drift checks")
    distance = need("scipy.spatial.distance", "scipy", purpose="the MMD bandwidth")
    points = pooled
    if pooled.shape[0] > max_points:
        points = pooled[rng.choice(pooled.shape[0], size=max_points, replace=False)]
    distances = distance.pdist(points)
    median = float(np.median(distances)) if distances.size else 0.0
    if median > 0:
        return median
    nonzero = distances[distances > 0]
    return float(nonzero.mean()) if nonzero.size else 1.0


def _mmd_from_sums(quad: numpy.ndarray, xq: numpy.ndarray, total_q: float, n: int, m: int) -> numpy.ndarray:
    """Unbiased MMD² from centred features: ``quad = ||Σ_current φ||²`` and ``xq = Σ_current ||φ||²``.

    With features centred on the pooled mean the baseline's sum is minus the
    current's, so one sum per relabelling gives all three kernel averages.
    """
    scale = 1.0 / (n * (n - 1)) + 1.0 / (m * (m - 1)) + 2.0 / (n * m)
    return quad * scale - xq / (n * (n - 1)) - (total_q - xq) / (m * (m - 1))


def _bandwidth(pooled: numpy.ndarray, rng: numpy.random.Generator, bandwidth: float | None) -> tuple[float, str]:
    if bandwidth is None:
        return median_bandwidth(pooled, rng), "median"
    if not bandwidth > 0:
        raise DriftInputError(f"bandwidth must be a positive number (the RBF kernel's sigma), got {bandwidth!r}")
    return float(bandwidth), "fixed"


def mmd_test(
    current: Any,
    baseline: Any,
    *,
    alpha: float = 0.05,
    n_permutations: int = 1000,
    seed: int = 0,
    bandwidth: float | None = None,
    n_components: int = DEFAULT_COMPONENTS,
) -> DriftResult:
    """MMD² permutation test with a Nyström-factored RBF kernel (exact for small samples).

    ``current`` and ``baseline`` are arrays of embeddings (or anything
    :func:`~pytest_llmops.drift.samples.prepare` accepts). ``bandwidth`` is
    the kernel's σ (median heuristic when ``None``); ``n_components`` the
    number of Nyström landmarks. The result's statistic is the unbiased MMD².
    """
    with blas_threads():
        return _mmd_test(current, baseline, alpha, n_permutations, seed, bandwidth, n_components)


def _mmd_test(
    current: Any,
    baseline: Any,
    alpha: float,
    n_permutations: int,
    seed: int,
    bandwidth: float | None,
    n_components: int,
) -> DriftResult:
    np = need("numpy", "numpy", purpose="drift checks")
    approximation = need("sklearn.kernel_approximation", "scikit-learn", purpose="the MMD drift test")
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 2:
        raise DriftInputError(f"n_components must be an integer >= 2 (e.g. {DEFAULT_COMPONENTS}), got {n_components!r}")
    cur, base = prepare(current, baseline)
    n, m = cur.size, base.size
    check_options(alpha=alpha, n_permutations=n_permutations, n_current=n, n_baseline=m)
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([cur.vectors, base.vectors])
    sigma, rule = _bandwidth(pooled, rng, bandwidth)
    rank = min(n_components, n + m)
    nystroem = approximation.Nystroem(
        kernel="rbf", gamma=1.0 / (2.0 * sigma**2), n_components=rank, random_state=int(rng.integers(2**31 - 1))
    )
    features = nystroem.fit_transform(pooled)
    features -= features.mean(axis=0)
    norms = np.einsum("ij,ij->i", features, features)
    # One product gives both sums: the feature columns and, last, the squared norms.
    phi = np.concatenate([features, norms[:, None]], axis=1).astype(np.float32)
    total = float(norms.sum())

    def statistic(block: numpy.ndarray) -> numpy.ndarray:
        sums = (block @ phi).astype(np.float64)
        quad = np.einsum("ij,ij->i", sums[:, :-1], sums[:, :-1])
        return _mmd_from_sums(quad, sums[:, -1], total, n, m)

    observed, null = run_blocks(statistic, rng, n, n + m, n_permutations)
    exact = rank == n + m
    options = {
        "kernel": "rbf",
        "bandwidth": rule if rule == "median" else f"{sigma:.6g}",
        "estimator": "unbiased",
        "kernel_matrix": "exact" if exact else f"nystroem-{rank}",
        "permutations": n_permutations,
        "seed": seed,
    }
    return permutation_result(
        method="mmd",
        statistic_name="MMD²",
        observed=observed,
        null=null,
        alpha=alpha,
        n_current=n,
        n_baseline=m,
        seed=seed,
        n_permutations=n_permutations,
        options=options,
        libraries=("numpy", "scikit-learn"),
        details={"bandwidth": sigma, "bandwidth_rule": rule, "n_components": rank, "exact": exact},
    )


def mmd_exact_test(
    current: Any,
    baseline: Any,
    *,
    alpha: float = 0.05,
    n_permutations: int = 1000,
    seed: int = 0,
    bandwidth: float | None = None,
    max_samples: int = EXACT_MAX_SAMPLES,
) -> DriftResult:
    """MMD² permutation test on the full RBF kernel matrix: exact, O((n+m)²) per permutation.

    Refuses pooled samples larger than ``max_samples`` (the kernel matrix
    would not fit comfortably); use :func:`mmd_test` for those.
    """
    with blas_threads():
        return _mmd_exact_test(current, baseline, alpha, n_permutations, seed, bandwidth, max_samples)


def _mmd_exact_test(
    current: Any, baseline: Any, alpha: float, n_permutations: int, seed: int, bandwidth: float | None, max_samples: int
) -> DriftResult:
    np = need("numpy", "numpy", purpose="drift checks")
    pairwise = need("sklearn.metrics.pairwise", "scikit-learn", purpose="the MMD drift test")
    cur, base = prepare(current, baseline)
    n, m = cur.size, base.size
    check_options(alpha=alpha, n_permutations=n_permutations, n_current=n, n_baseline=m)
    if n + m > max_samples:
        raise DriftInputError(
            f"mmd-exact on {n} + {m} vectors needs a {n + m} x {n + m} kernel matrix; it accepts at most "
            f"{max_samples} vectors in all. Use method='mmd' (Nyström, same test) or subsample."
        )
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([cur.vectors, base.vectors])
    sigma, rule = _bandwidth(pooled, rng, bandwidth)
    kernel = pairwise.rbf_kernel(pooled, gamma=1.0 / (2.0 * sigma**2))
    # Centring the kernel (features centred on the pooled mean) leaves MMD² unchanged and keeps sums small.
    row = kernel.mean(axis=0)
    kernel -= row[None, :]
    kernel -= row[:, None]
    kernel += row.mean()
    diagonal = np.diagonal(kernel).copy()

    def statistic(block: numpy.ndarray) -> numpy.ndarray:
        quad = np.einsum("ij,ij->i", block @ kernel, block)
        return _mmd_from_sums(quad, block @ diagonal, float(diagonal.sum()), n, m)

    observed, null = run_blocks(statistic, rng, n, n + m, n_permutations, dtype="float64")
    options = {
        "kernel": "rbf",
        "bandwidth": rule if rule == "median" else f"{sigma:.6g}",
        "estimator": "unbiased",
        "kernel_matrix": "exact",
        "permutations": n_permutations,
        "seed": seed,
    }
    return permutation_result(
        method="mmd-exact",
        statistic_name="MMD²",
        observed=observed,
        null=null,
        alpha=alpha,
        n_current=n,
        n_baseline=m,
        seed=seed,
        n_permutations=n_permutations,
        options=options,
        libraries=("numpy", "scikit-learn"),
        details={"bandwidth": sigma, "bandwidth_rule": rule, "exact": True},
    )
