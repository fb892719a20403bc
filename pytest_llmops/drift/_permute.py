"""Shared machinery of the permutation tests: random relabellings in blocks, and the p-value.

A permutation test pools both samples, relabels them at random many times and
asks how often a relabelled statistic reaches the observed one. Every test
here writes its statistic as a function of a 0/1 membership matrix (one row
per relabelling), so a block of relabellings costs one matrix product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pytest_llmops.drift._deps import make_signature, need
from pytest_llmops.drift.result import DriftInputError, DriftResult, InsufficientDataError

if TYPE_CHECKING:
    import numpy

#: Upper bound on the elements of one block of membership rows (keeps memory flat for large samples).
BLOCK_ELEMENTS = 4_000_000


def check_options(*, alpha: float, n_permutations: int, n_current: int, n_baseline: int, minimum: int = 2) -> None:
    """Reject options and sample sizes that cannot give a meaningful test, with the fix."""
    if not 0.0 < alpha < 1.0:
        raise DriftInputError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha!r}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < 1:
        raise DriftInputError(f"n_permutations must be a positive integer (e.g. 1000), got {n_permutations!r}")
    if 1.0 / (n_permutations + 1) >= alpha:
        needed = int(1.0 / alpha)
        raise DriftInputError(
            f"with {n_permutations} permutations the smallest possible p-value is {1 / (n_permutations + 1):.3g}, "
            f"so alpha={alpha:g} can never be reached; use n_permutations >= {needed}"
        )
    for role, size in (("current", n_current), ("baseline", n_baseline)):
        if size < minimum:
            raise InsufficientDataError(f"the {role} sample has {size} vectors; this test needs at least {minimum}")


def membership_blocks(
    rng: numpy.random.Generator, n_current: int, n_total: int, n_permutations: int, *, dtype: str = "float32"
) -> Iterator[numpy.ndarray]:
    """Yield blocks of 0/1 rows marking which pooled vectors are "current".

    The first row of the first block is the observed labelling (the first
    ``n_current`` vectors); the ``n_permutations`` rows after it are uniform
    random relabellings with the same group sizes.
    """
    np = need("numpy", "numpy", purpose="drift checks")
    base = np.zeros(n_total, dtype=dtype)
    base[:n_current] = 1
    rows = max(1, min(n_permutations + 1, BLOCK_ELEMENTS // max(n_total, 1)))
    remaining = n_permutations + 1
    first = True
    while remaining:
        count = min(rows, remaining)
        block = np.tile(base, (count, 1))
        start = 1 if first else 0
        if count > start:
            rng.permuted(block[start:], axis=1, out=block[start:])
        first = False
        remaining -= count
        yield block


def run_blocks(
    statistic: Callable[[numpy.ndarray], numpy.ndarray],
    rng: numpy.random.Generator,
    n_current: int,
    n_total: int,
    n_permutations: int,
    *,
    dtype: str = "float32",
) -> tuple[float, numpy.ndarray]:
    """The observed statistic and its ``n_permutations`` relabelled values.

    ``statistic`` maps a block of membership rows to one value per row; it is
    applied to the observed labelling in the same way as to the others, so a
    tie between them is a real tie, not a rounding difference.
    """
    np = need("numpy", "numpy", purpose="drift checks")
    values = np.concatenate(
        [
            np.asarray(statistic(block), dtype=np.float64)
            for block in membership_blocks(rng, n_current, n_total, n_permutations, dtype=dtype)
        ]
    )
    return float(values[0]), values[1:]


def permutation_p_value(observed: float, null: numpy.ndarray) -> float:
    """``(1 + #{null >= observed}) / (1 + len(null))``: never 0, exact level under exchangeability.

    A relative tolerance absorbs rounding, so permutations that tie with the
    observed statistic count as reaching it.
    """
    np = need("numpy", "numpy", purpose="drift checks")
    tolerance = 1e-9 * max(1.0, abs(observed))
    reached = int(np.count_nonzero(null >= observed - tolerance))
    return (1 + reached) / (1 + null.size)


def null_summary(observed: float, null: numpy.ndarray) -> dict[str, float]:
    """Where the observed statistic sits in its permutation distribution: mean, spread and z-score."""
    np = need("numpy", "numpy", purpose="drift checks")
    mean = float(np.mean(null))
    spread = float(np.std(null))
    return {"null_mean": mean, "null_std": spread, "z": (observed - mean) / spread if spread > 0 else 0.0}


def permutation_result(
    *,
    method: str,
    statistic_name: str,
    observed: float,
    null: numpy.ndarray,
    alpha: float,
    n_current: int,
    n_baseline: int,
    seed: int,
    n_permutations: int,
    options: dict[str, object],
    libraries: tuple[str, ...] = ("numpy",),
    details: dict[str, object],
) -> DriftResult:
    """The result of a permutation test: its p-value, signature, and where the statistic sits in the null."""
    return DriftResult(
        method=method,
        statistic=observed,
        statistic_name=statistic_name,
        p_value=permutation_p_value(observed, null),
        alpha=alpha,
        n_current=n_current,
        n_baseline=n_baseline,
        seed=seed,
        n_permutations=n_permutations,
        signature=make_signature(method, options, libraries),
        details={**details, **null_summary(observed, null)},
    )
