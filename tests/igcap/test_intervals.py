"""Student's t and Hesterberg's expanded percentile interval, against scipy (tests only) and the paper."""

import math

import numpy as np
import pytest
from scipy import stats

from igcap.intervals import expanded_tails, percentile_intervals, student_t_cdf_two_sided, student_t_quantile


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 10, 29, 30, 100, 299, 300, 301, 1000, 100_000])
def test_t_quantile_and_cdf_agree_with_scipy(df):
    for p in (0.55, 0.8, 0.9, 0.975, 0.995, 0.9995):
        assert student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-7)
        assert student_t_quantile(1 - p, df) == pytest.approx(stats.t.ppf(1 - p, df), rel=1e-7)
    if df <= 300:
        for t in (0.1, 1.0, 2.5, 10.0):
            assert student_t_cdf_two_sided(t, df) == pytest.approx(2 * stats.t.cdf(t, df) - 1, abs=1e-12)


def test_expanded_tails_follow_hesterbergs_formula_and_tend_to_the_plain_interval():
    # Hesterberg (2015), section 4.4: alpha'/2 = Phi(-sqrt(n/(n-1)) * t(alpha/2, n-1)).
    for n in (2, 5, 8, 20, 200):
        low, high = expanded_tails(0.95, n)
        expected = stats.norm.cdf(-math.sqrt(n / (n - 1)) * stats.t.ppf(0.975, n - 1))
        assert low == pytest.approx(100 * expected, rel=1e-7) and high == pytest.approx(100 - low)
    assert expanded_tails(0.95, 8)[0] < expanded_tails(0.95, 20)[0] < 2.5
    assert expanded_tails(0.95, 100_000)[0] == pytest.approx(2.5, abs=1e-3)


def test_percentile_intervals_need_two_units_and_skip_columns_without_finite_samples():
    samples = np.column_stack([np.arange(1000.0), np.full(1000, np.nan)])
    wide, missing = percentile_intervals(samples, 0.95, units=5)
    assert missing is None and wide[0] < 25 and wide[1] > 975  # wider than the plain 2.5/97.5 percentiles
    assert percentile_intervals(samples, 0.95, units=1) == [None, None]
    with pytest.raises(ValueError):
        expanded_tails(1.0, 5)


def test_each_column_can_have_its_own_number_of_units():
    samples = np.column_stack([np.arange(1000.0), np.arange(1000.0)])
    few, many = percentile_intervals(samples, 0.95, units=[8, 200])
    assert few == tuple(np.percentile(samples[:, 0], expanded_tails(0.95, 8)))
    assert many == tuple(np.percentile(samples[:, 1], expanded_tails(0.95, 200)))
    assert percentile_intervals(samples, 0.95, units=[1, 200])[0] is None  # one unit: nothing to resample
    with pytest.raises(ValueError):
        percentile_intervals(samples, 0.95, units=[8])
