"""Domain-classifier drift test: can a linear model tell current from baseline?

A classifier is trained to predict which sample each vector came from; its
cross-validated ROC AUC is the statistic (0.5: indistinguishable, 1.0:
perfectly separable). The AUC is also an effect size anyone can read.

The p-value comes from a permutation test: the whole cross-validation is
rerun on relabelled data, so the test's level is exact whatever the
classifier's biases. That rerun is what costs, so two models are offered:

* ``"ridge"`` (default): scikit-learn's ``Ridge`` on 0/1 labels (a
  regularised least-squares linear discriminant). Its fit is linear in the
  labels, so all relabellings are fitted at once as one multi-target problem:
  1,000 permutations cost about as much as a few single fits.
* ``"logistic"``: scikit-learn's ``LogisticRegression``, refitted for every
  relabelling and fold; about a hundred times slower, so it defaults to 100
  permutations.

Folds are drawn without looking at the labels (plain shuffled K-fold), so the
same procedure is applied to the observed and the relabelled data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llmops.drift._deps import blas_threads, need
from pytest_llmops.drift._permute import check_options, membership_blocks, permutation_result
from pytest_llmops.drift.result import DriftInputError, DriftResult
from pytest_llmops.drift.samples import prepare

if TYPE_CHECKING:
    import numpy

MODELS = ("ridge", "logistic")
DEFAULT_PERMUTATIONS = {"ridge": 1000, "logistic": 100}


def roc_auc_columns(scores: numpy.ndarray, labels: numpy.ndarray) -> numpy.ndarray:
    """ROC AUC of each column of ``scores`` against the 0/1 column of ``labels`` (ties count half)."""
    np = need("numpy", "numpy", purpose="drift checks")
    stats = need("scipy.stats", "scipy", purpose="the classifier drift test")
    ranks = stats.rankdata(scores, axis=0)
    positives = labels.sum(axis=0)
    negatives = labels.shape[0] - positives
    rank_sum = np.einsum("ij,ij->j", ranks, labels)
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def _ridge_scores(vectors: numpy.ndarray, labels: numpy.ndarray, folds: list, regularization: float) -> numpy.ndarray:
    linear = need("sklearn.linear_model", "scikit-learn", purpose="the classifier drift test")
    np = need("numpy", "numpy", purpose="drift checks")
    scores = np.empty(labels.shape, dtype=np.float64)
    for train, test in folds:
        model = linear.Ridge(alpha=regularization).fit(vectors[train], labels[train])
        scores[test] = model.predict(vectors[test]).reshape(len(test), -1)
    return scores


def _logistic_scores(
    vectors: numpy.ndarray, labels: numpy.ndarray, folds: list, regularization: float
) -> numpy.ndarray:
    linear = need("sklearn.linear_model", "scikit-learn", purpose="the classifier drift test")
    np = need("numpy", "numpy", purpose="drift checks")
    scores = np.zeros(labels.shape, dtype=np.float64)
    for column in range(labels.shape[1]):
        target = labels[:, column]
        for train, test in folds:
            if np.unique(target[train]).size < 2:
                continue  # a fold with one class scores every test vector alike (AUC contribution 0.5)
            model = linear.LogisticRegression(C=1.0 / regularization, max_iter=1000)
            scores[test, column] = model.fit(vectors[train], target[train]).decision_function(vectors[test])
    return scores


def classifier_test(
    current: Any,
    baseline: Any,
    *,
    model: str = "ridge",
    alpha: float = 0.05,
    n_permutations: int | None = None,
    seed: int = 0,
    n_folds: int = 5,
    regularization: float = 1.0,
) -> DriftResult:
    """Permutation test of a cross-validated domain classifier's ROC AUC.

    ``model`` is ``"ridge"`` or ``"logistic"``; ``regularization`` is Ridge's
    ``alpha`` or the inverse of LogisticRegression's ``C``; ``n_permutations``
    defaults to 1000 for ridge and 100 for logistic.
    """
    if model not in MODELS:
        raise DriftInputError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise DriftInputError(f"n_folds must be an integer >= 2 (e.g. 5), got {n_folds!r}")
    if not regularization > 0:
        raise DriftInputError(f"regularization must be a positive number (e.g. 1.0), got {regularization!r}")
    permutations = DEFAULT_PERMUTATIONS[model] if n_permutations is None else n_permutations
    with blas_threads():
        return _classifier_test(current, baseline, model, alpha, permutations, seed, n_folds, regularization)


def _classifier_test(
    current: Any,
    baseline: Any,
    model: str,
    alpha: float,
    n_permutations: int,
    seed: int,
    n_folds: int,
    regularization: float,
) -> DriftResult:
    np = need("numpy", "numpy", purpose="drift checks")
    selection = need("sklearn.model_selection", "scikit-learn", purpose="the classifier drift test")
    cur, base = prepare(current, baseline)
    n, m = cur.size, base.size
    check_options(alpha=alpha, n_permutations=n_permutations, n_current=n, n_baseline=m, minimum=n_folds)
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([cur.vectors, base.vectors])
    splitter = selection.KFold(n_splits=n_folds, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
    folds = list(splitter.split(pooled))
    fit = _ridge_scores if model == "ridge" else _logistic_scores
    aucs = []
    for block in membership_blocks(rng, n, n + m, n_permutations, dtype="float64"):
        labels = np.ascontiguousarray(block.T)
        aucs.append(roc_auc_columns(fit(pooled, labels, folds, regularization), labels))
    values = np.concatenate(aucs)
    observed, null = float(values[0]), values[1:]
    options = {
        "model": model,
        "regularization": f"{regularization:g}",
        "folds": n_folds,
        "score": "roc_auc",
        "permutations": n_permutations,
        "seed": seed,
    }
    return permutation_result(
        method="classifier",
        statistic_name="domain classifier ROC AUC",
        observed=observed,
        null=null,
        alpha=alpha,
        n_current=n,
        n_baseline=m,
        seed=seed,
        n_permutations=n_permutations,
        options=options,
        libraries=("numpy", "scipy", "scikit-learn"),
        details={"model": model, "n_folds": n_folds, "regularization": regularization},
    )
