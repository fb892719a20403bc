"""One entry point for every drift test: pick a method by name, get a :class:`DriftResult`.

====================  =========================================================
method                what it tests
====================  =========================================================
``mmd`` (default)     MMD² with an RBF kernel, Nyström-factored; permutation test
``mmd-exact``         the same on the full kernel matrix (small samples)
``centroid``          Euclidean distance between the mean embeddings
``centroid-cosine``   cosine distance between the mean embeddings
``classifier``        cross-validated domain-classifier ROC AUC
``ks``                share of dimensions whose KS test drifted (BH-corrected)
====================  =========================================================

Every result also carries descriptive effect sizes in ``details`` (centroid
distances and the shift relative to the baseline's spread), whatever the
method, so a message can say how far the sample moved.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pytest_llmops.drift.result import DriftInputError, DriftResult

if TYPE_CHECKING:
    from pytest_llmops.drift.embedders import Embedder

METHODS: dict[str, str] = {
    "mmd": "MMD² with an RBF kernel (Nyström-factored, exact for small samples), permutation test",
    "mmd-exact": "MMD² on the full RBF kernel matrix, permutation test (pooled samples up to 6,000)",
    "centroid": "Euclidean distance between mean embeddings, permutation test",
    "centroid-cosine": "cosine distance between mean embeddings, permutation test",
    "classifier": "cross-validated domain-classifier ROC AUC (ridge or logistic), permutation test",
    "ks": "share of dimensions drifted by a per-dimension KS test, Benjamini-Hochberg corrected",
}


def _function(method: str) -> Callable[..., DriftResult]:
    if method in ("mmd", "mmd-exact"):
        from pytest_llmops.drift.mmd import mmd_exact_test, mmd_test

        return mmd_test if method == "mmd" else mmd_exact_test
    if method in ("centroid", "centroid-cosine"):
        from functools import partial

        from pytest_llmops.drift.centroid import centroid_test

        function = partial(centroid_test, metric="euclidean" if method == "centroid" else "cosine")
        function.__wrapped__ = centroid_test  # type: ignore[attr-defined]
        return function
    if method == "classifier":
        from pytest_llmops.drift.classifier import classifier_test

        return classifier_test
    if method == "ks":
        from pytest_llmops.drift.components import ks_test

        return ks_test
    raise DriftInputError(f"unknown drift method {method!r}; choose one of: {', '.join(METHODS)}")


def method_options(method: str) -> tuple[str, ...]:
    """The keyword options a method accepts beyond the common ones (alpha, seed, n_permutations)."""
    function = _function(method)
    target = getattr(function, "__wrapped__", function)
    names = [
        name
        for name, parameter in inspect.signature(target).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and name not in ("alpha", "seed", "n_permutations", "metric")
    ]
    return tuple(names)


def drift_test(
    current: Any,
    baseline: Any,
    method: str = "mmd",
    *,
    alpha: float = 0.05,
    seed: int = 0,
    n_permutations: int | None = None,
    embedder: Embedder | None = None,
    **options: Any,
) -> DriftResult:
    """Run the drift test ``method`` on two samples and return its result.

    ``current`` and ``baseline`` are arrays of embeddings, lists of texts
    (embedded with ``embedder``, MiniLM by default) or saved baselines.
    ``n_permutations`` defaults to each method's own default. ``options``
    are passed to the method (``bandwidth``, ``n_components``, ``model``,
    ``n_folds``, ``regularization``, ``correction``...); an option the
    method does not take is an error that lists the ones it does.
    """
    from pytest_llmops.drift._deps import blas_threads
    from pytest_llmops.drift.centroid import centroid_shift
    from pytest_llmops.drift.samples import prepare

    function = _function(method)
    allowed = method_options(method)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise DriftInputError(f"method {method!r} takes no option {', '.join(unknown)}; its options: {accepted}")
    cur, base = prepare(current, baseline, embedder=embedder)
    arguments: dict[str, Any] = {"alpha": alpha, "seed": seed, **options}
    if n_permutations is not None:
        if method == "ks":
            raise DriftInputError("method 'ks' is not a permutation test; leave n_permutations unset")
        arguments["n_permutations"] = n_permutations
    result = function(cur, base, **arguments)
    with blas_threads():
        effect = centroid_shift(cur.vectors, base.vectors)
    return replace(result, details={**result.details, **effect})
