"""The statistics behind gates and baselines, checked against values computed by hand."""

from __future__ import annotations

import math

import pytest

from pytest_llmops.results.stats import (
    binomial_tail,
    linear_fit,
    mcnemar_exact,
    paired_bootstrap,
    percentile,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_formula():
    # 8 of 10 at 95%: z = 1.959964; centre = (0.8 + z^2/20) / (1 + z^2/10) = 0.71674;
    # half = z * sqrt(0.016 + z^2/400) / (1 + z^2/10) = 0.22658.
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.49016, abs=1e-5)
    assert high == pytest.approx(0.94332, abs=1e-5)


def test_wilson_interval_is_exact_at_the_edges_and_narrows_with_more_trials():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(10, 10)[0] == pytest.approx(0.72247, abs=1e-5)
    narrow = wilson_interval(800, 1000)
    assert narrow[1] - narrow[0] < wilson_interval(8, 10)[1] - wilson_interval(8, 10)[0]


def test_wilson_interval_widens_with_confidence():
    ninety = wilson_interval(8, 10, 0.90)
    ninety_nine = wilson_interval(8, 10, 0.99)
    assert ninety_nine[0] < ninety[0] and ninety_nine[1] > ninety[1]


@pytest.mark.parametrize("args", [(1, 0), (11, 10), (-1, 10)])
def test_wilson_interval_refuses_impossible_counts(args):
    with pytest.raises(ValueError):
        wilson_interval(*args)


def test_binomial_tail_and_exact_mcnemar():
    assert binomial_tail(2, 3) == pytest.approx(4 / 8)  # P(X>=2) of Bin(3, 1/2): (3 + 1) / 8
    assert mcnemar_exact(6, 0) == pytest.approx(1 / 64)  # six flips to failing, none back
    assert mcnemar_exact(3, 1) == pytest.approx(5 / 16)  # P(X>=3) of Bin(4, 1/2)
    assert mcnemar_exact(0, 0) == 1.0  # no discordant case: no evidence


def test_paired_bootstrap_finds_a_consistent_drop_and_not_noise():
    drop = paired_bootstrap([-0.1] * 20 + [0.0] * 5)
    assert drop.mean == pytest.approx(-0.08)
    assert drop.upper < 0 and drop.p_value == 0.0
    noise = paired_bootstrap([0.1, -0.1] * 10)
    assert noise.mean == pytest.approx(0.0)
    assert noise.upper > 0 and noise.p_value > 0.3


def test_paired_bootstrap_tolerance_excuses_a_small_drop():
    small = [-0.01] * 30
    assert paired_bootstrap(small).upper < 0
    assert paired_bootstrap(small, tolerance=0.02).p_value == 1.0


def test_paired_bootstrap_is_repeatable():
    data = [0.3, -0.2, 0.05, -0.4, 0.1]
    assert paired_bootstrap(data) == paired_bootstrap(data)


def test_percentile_interpolates_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([], 50) is None


def test_linear_fit_recovers_a_line():
    slope, intercept = linear_fit([10, 20, 40], [0.3, 0.5, 0.9])
    assert slope == pytest.approx(0.02) and intercept == pytest.approx(0.1)
    assert linear_fit([10, 10], [0.3, 0.5]) is None
    assert math.isfinite(slope)
