"""The statistics behind gates and baseline comparison.

Each function is small and checked against hand-computed values in
``tests/test_stats.py``. The standard library covers the interval and the
exact test; the bootstrap uses numpy (a dependency of llama-cpp-python, so
always installed), imported when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for a binomial proportion.

    Unlike the normal approximation it stays inside [0, 1] and is honest for
    small samples and rates near 0 or 1, which is where pass rates live.
    """
    if trials <= 0:
        raise ValueError("the Wilson interval needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}, got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; say so rather than leave rounding noise.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), computed exactly."""
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(max(k, 0), n + 1)) / 2**n


def mcnemar_exact(worse: int, better: int) -> float:
    """One-sided exact McNemar p-value that the current run is worse than the baseline.

    ``worse`` counts cases that passed in the baseline and fail now, ``better``
    the reverse; cases with the same verdict in both runs carry no information.
    Under no change each discordant case is a fair coin.
    """
    return binomial_tail(worse, worse + better)


@dataclass(frozen=True)
class BootstrapResult:
    """A paired bootstrap of the mean difference (current - baseline)."""

    mean: float
    #: One-sided upper confidence bound of the mean difference.
    upper: float
    #: Two-sided interval, for display.
    low: float
    high: float
    #: Share of resampled means at or above the tolerated drop: the one-sided p-value of a drop.
    p_value: float
    resamples: int


def paired_bootstrap(
    differences: Sequence[float],
    *,
    tolerance: float = 0.0,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> BootstrapResult:
    """Resample paired per-case differences to test for a drop larger than ``tolerance``.

    The null hypothesis is "the mean difference is at least ``-tolerance``";
    the p-value is the share of resampled means that are. A fixed seed makes
    the verdict repeatable for the same data.
    """
    if not differences:
        raise ValueError("the bootstrap needs at least one paired difference")
    import numpy as np

    data = np.asarray(differences, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(data), size=(resamples, len(data)))
    means = data[picks].mean(axis=1)
    alpha = 1 - confidence
    return BootstrapResult(
        mean=float(data.mean()),
        upper=float(np.quantile(means, 1 - alpha)),
        low=float(np.quantile(means, alpha / 2)),
        high=float(np.quantile(means, 1 - alpha / 2)),
        p_value=float((means >= -tolerance).mean()),
        resamples=resamples,
    )


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares ``(slope, intercept)`` of ys on xs; None without two distinct xs."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    from statistics import linear_regression

    slope, intercept = linear_regression(xs, ys)
    return float(slope), float(intercept)
