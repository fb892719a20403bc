"""The drift statistics: right numbers, right level, real power, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_llmops.drift import (
    METHODS,
    DriftInputError,
    InsufficientDataError,
    centroid_test,
    classifier_test,
    drift_test,
    ks_test,
    mmd_exact_test,
    mmd_test,
)
from pytest_llmops.drift._permute import membership_blocks, permutation_p_value


def unit_rows(rng: np.random.Generator, n: int, dim: int = 16, shift: float = 0.0) -> np.ndarray:
    """Unit-norm vectors around a common direction, moved by ``shift`` along another axis."""
    points = rng.normal(size=(n, dim))
    points[:, 0] += 3.0
    points[:, 1] += shift
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_mmd_statistic_is_the_textbook_unbiased_estimate():
    rng = np.random.default_rng(7)
    x, y = unit_rows(rng, 30), unit_rows(rng, 45, shift=1.0)
    exact = mmd_exact_test(x, y, n_permutations=200)
    gamma = 1.0 / (2.0 * exact.details["bandwidth"] ** 2)

    def kernel(a, b):
        return np.exp(-gamma * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    n, m = len(x), len(y)
    expected = (
        (kernel(x, x).sum() - n) / (n * (n - 1)) + (kernel(y, y).sum() - m) / (m * (m - 1)) - 2 * kernel(x, y).mean()
    )
    assert exact.statistic == pytest.approx(expected, rel=1e-9)
    # Below n_components the Nyström factorisation uses every vector: the same number.
    fast = mmd_test(x, y, n_permutations=200)
    assert fast.details["exact"] is True
    assert fast.statistic == pytest.approx(expected, rel=1e-5)


def test_nystroem_mmd_stays_close_to_the_exact_statistic():
    rng = np.random.default_rng(3)
    x, y = unit_rows(rng, 150), unit_rows(rng, 150, shift=0.6)
    exact = mmd_exact_test(x, y, n_permutations=100)
    approximate = mmd_test(x, y, n_permutations=100, n_components=100)
    assert approximate.details["exact"] is False
    assert "nystroem-100" in approximate.signature
    assert approximate.statistic == pytest.approx(exact.statistic, rel=0.1)
    assert approximate.drifted and exact.drifted


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_detects_a_clear_shift(method):
    rng = np.random.default_rng(11)
    current, baseline = unit_rows(rng, 60, shift=1.5), unit_rows(rng, 80)
    result = drift_test(current, baseline, method, n_permutations=None if method == "ks" else 200)
    assert result.drifted, result.summary()
    assert result.p_value < 0.01
    assert (result.n_current, result.n_baseline) == (60, 80)
    assert result.details["centroid_euclidean"] > 0.1
    assert result.signature.startswith(f"drift:{method}|")


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_keeps_its_false_alarm_rate_without_a_shift(method):
    # 40 pairs of samples from one distribution: at alpha 0.05, about 2 false alarms are expected;
    # 7 or more would happen with probability 0.003 for a calibrated test.
    pool = unit_rows(np.random.default_rng(0), 4000)
    alarms, p_values = 0, []
    for seed in range(40):
        order = np.random.default_rng(seed + 100).permutation(len(pool))
        current, baseline = pool[order[:30]], pool[order[30:70]]
        result = drift_test(current, baseline, method, seed=seed, n_permutations=None if method == "ks" else 99)
        alarms += result.drifted
        p_values.append(result.p_value)
    assert alarms <= 6
    if method != "ks":  # permutation p-values are uniform under no shift
        assert 0.3 < float(np.mean(p_values)) < 0.7


def test_same_seed_same_answer_and_p_value_never_zero():
    rng = np.random.default_rng(5)
    x, y = unit_rows(rng, 40, shift=3.0), unit_rows(rng, 40)
    first, again = mmd_test(x, y, seed=1), mmd_test(x, y, seed=1)
    assert first == again
    assert first.p_value == pytest.approx(1 / 1001)


def test_centroid_cosine_ignores_scale_but_euclidean_does_not():
    rng = np.random.default_rng(2)
    baseline = unit_rows(rng, 60)
    current = 3.0 * unit_rows(rng, 60)  # same directions, three times longer
    assert centroid_test(current, baseline, metric="euclidean", n_permutations=200).drifted
    cosine = centroid_test(current, baseline, metric="cosine", n_permutations=200)
    assert not cosine.drifted
    assert cosine.method == "centroid-cosine"


def test_identical_constant_vectors_are_not_drift():
    same = np.ones((10, 4))
    for method in ("mmd", "mmd-exact", "centroid"):
        result = drift_test(same, same.copy(), method, n_permutations=50)
        assert result.p_value == 1.0, method  # every relabelling ties with the observed statistic
    # The classifier sees only fold-to-fold differences in its intercept: no signal either.
    assert not drift_test(same, same.copy(), "classifier", n_permutations=50).drifted


def test_ks_names_the_dimensions_that_moved():
    rng = np.random.default_rng(4)
    baseline = rng.normal(size=(200, 12))
    current = rng.normal(size=(200, 12))
    current[:, [3, 7]] += 1.0
    result = ks_test(current, baseline)
    assert result.drifted
    assert result.statistic == pytest.approx(2 / 12)
    assert {row["dimension"] for row in result.details["top_components"][:2]} == {3, 7}
    assert result.details["drifted_dimensions"] == 2
    bonferroni = ks_test(current, baseline, correction="bonferroni")
    assert bonferroni.p_value >= result.p_value


def test_classifier_auc_is_an_effect_size_and_logistic_model_works():
    rng = np.random.default_rng(9)
    current, baseline = unit_rows(rng, 40, dim=8, shift=2.0), unit_rows(rng, 40, dim=8)
    ridge = classifier_test(current, baseline, n_permutations=200)
    assert ridge.statistic > 0.8
    assert ridge.statistic_name == "domain classifier ROC AUC"
    logistic = classifier_test(current, baseline, model="logistic", n_permutations=39)
    assert logistic.drifted and logistic.statistic > 0.8
    assert "model:logistic" in logistic.signature


def test_result_is_immutable_and_json_ready():
    rng = np.random.default_rng(1)
    result = drift_test(unit_rows(rng, 20), unit_rows(rng, 20), "centroid", n_permutations=100)
    with pytest.raises(AttributeError):
        result.p_value = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.details["z"] = 1.0  # type: ignore[index]
    data = json.loads(json.dumps(result.to_dict()))
    assert data["method"] == "centroid" and data["drifted"] == result.drifted


def test_membership_blocks_start_with_the_observed_labelling():
    rows = np.concatenate(list(membership_blocks(np.random.default_rng(0), 3, 8, 20)))
    assert rows.shape == (21, 8)
    assert rows[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert (rows.sum(axis=1) == 3).all()
    assert len({tuple(r) for r in rows[1:]}) > 5
    assert permutation_p_value(2.0, np.array([1.0, 2.0, 3.0])) == pytest.approx(3 / 4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: drift_test(x, x[:, :3]), "have 4 dimensions but"),
        (lambda x: drift_test(x, np.vstack([x, [np.nan] * 4])), "row 6 holds NaN"),
        (lambda x: drift_test(x, x, alpha=1.5), "alpha must be between 0 and 1"),
        (lambda x: drift_test(x, x, n_permutations=9), "use n_permutations >= 20"),
        (lambda x: drift_test(x, x, "wasserstein"), "choose one of: mmd, mmd-exact"),
        (lambda x: drift_test(x, x, "mmd", model="ridge"), "its options: bandwidth, n_components"),
        (lambda x: drift_test(x, x, "ks", n_permutations=100), "not a permutation test"),
        (lambda x: drift_test(x[0], x), "expected a 2-D array"),
        (lambda x: drift_test("some text", x), "got a single string"),
        (lambda x: classifier_test(x, x, model="forest"), "model must be one of ridge, logistic"),
        (lambda x: mmd_exact_test(x, x, max_samples=10), "Use method='mmd'"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    x = np.random.default_rng(0).normal(size=(6, 4))
    with pytest.raises(DriftInputError, match=message):
        call(x)


def test_too_few_vectors_is_insufficient_data():
    x = np.zeros((1, 4))
    with pytest.raises(InsufficientDataError, match="current sample has 1 vectors"):
        mmd_test(x, np.ones((5, 4)))
    with pytest.raises(InsufficientDataError, match="empty"):
        drift_test([], np.ones((5, 4)))
