"""Share of drifted components: a two-sample Kolmogorov-Smirnov test per embedding dimension.

Each dimension is compared on its own (scipy's ``ks_2samp``), and the
p-values are corrected for testing many dimensions at once:

* ``"bh"`` (default): Benjamini-Hochberg. A dimension counts as drifted when
  its adjusted p-value is below ``alpha``; the overall p-value is the
  smallest adjusted one (Simes' test), valid for the positively dependent
  dimensions of an embedding.
* ``"bonferroni"``: each p-value times the number of dimensions; valid under
  any dependence, more conservative.

The statistic is the share of dimensions that drifted. It is the embedding
version of the per-feature tests that monitoring tools run on tabular data;
it sees a shift along the axes of the embedding, and can miss one that is
spread thinly across many of them (MMD and the classifier see those).
"""

from __future__ import annotations

from typing import Any

from pytest_llmops.drift._deps import blas_threads, make_signature, need
from pytest_llmops.drift._permute import check_options
from pytest_llmops.drift.result import DriftInputError, DriftResult
from pytest_llmops.drift.samples import prepare

CORRECTIONS = ("bh", "bonferroni")
#: How many of the most drifted dimensions the details list.
TOP_COMPONENTS = 10


def ks_test(
    current: Any,
    baseline: Any,
    *,
    alpha: float = 0.05,
    correction: str = "bh",
    seed: int | None = None,
) -> DriftResult:
    """Per-dimension KS tests with a multiple-testing correction.

    ``seed`` is accepted for a uniform interface and recorded, but unused: the
    test is deterministic.
    """
    if correction not in CORRECTIONS:
        raise DriftInputError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    with blas_threads():
        return _ks_test(current, baseline, alpha, correction, seed)


def _ks_test(current: Any, baseline: Any, alpha: float, correction: str, seed: int | None) -> DriftResult:
    np = need("numpy", "numpy", purpose="drift checks")
    stats = need("scipy.stats", "scipy", purpose="the KS drift test")
    cur, base = prepare(current, baseline)
    n, m = cur.size, base.size
    # No permutations here; check alpha and the sizes with a dummy count that passes.
    check_options(alpha=alpha, n_permutations=max(1000, int(2 / alpha)), n_current=n, n_baseline=m, minimum=2)
    result = stats.ks_2samp(cur.vectors, base.vectors, axis=0)
    p_values = np.nan_to_num(np.atleast_1d(result.pvalue), nan=1.0)
    statistics = np.atleast_1d(result.statistic)
    dims = p_values.size
    if correction == "bh":
        adjusted = stats.false_discovery_control(p_values, method="bh")
    else:
        adjusted = np.minimum(p_values * dims, 1.0)
    drifted = adjusted < alpha
    share = float(drifted.mean())
    order = np.argsort(adjusted, kind="stable")[:TOP_COMPONENTS]
    top = [
        {
            "dimension": int(i),
            "ks": float(statistics[i]),
            "p_value": float(p_values[i]),
            "adjusted_p": float(adjusted[i]),
        }
        for i in order
    ]
    options = {"test": "ks_2samp", "correction": correction, "alpha": f"{alpha:g}"}
    return DriftResult(
        method="ks",
        statistic=share,
        statistic_name="share of drifted dimensions",
        p_value=float(min(1.0, adjusted.min())),
        alpha=alpha,
        n_current=n,
        n_baseline=m,
        seed=seed,
        n_permutations=None,
        signature=make_signature("ks", options, ("numpy", "scipy")),
        details={
            "correction": correction,
            "dimensions": dims,
            "drifted_dimensions": int(drifted.sum()),
            "max_ks": float(statistics.max()),
            "top_components": top,
        },
    )
