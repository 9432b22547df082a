"""Bootstrap percentile intervals that keep their coverage when there are few units to resample.

A plain percentile bootstrap over n units is too narrow for small n: it behaves like mean ± z·σ/√n with σ
estimated by dividing by n, where a t-interval would use t(n−1) and n − 1. With five photos, 95 % intervals
from it cover the truth in about 80 % of studies. Hesterberg's *expanded percentile interval* (Hesterberg
2015, "What Teachers Should Know About the Bootstrap", The American Statistician 69(4), section 4.4) widens
the tails to those a t-interval would need:

    α′/2 = Φ(−√(n / (n − 1)) · t(α/2, n − 1))

and takes the α′/2 and 1 − α′/2 percentiles of the resamples. For large n it is the plain interval.

Pure functions, numpy and the standard library only (scipy is not a run-time dependency).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()
_SERIES_DF = 300  # above this, the Cornish–Fisher expansion of the t quantile is exact to about 1e-7


def student_t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| ≤ t) for Student's t with a whole number ``df`` ≥ 1 of degrees of freedom (Abramowitz and
    Stegun 26.7.3 and 26.7.4, exact finite series)."""
    if df < 1 or int(df) != df:
        raise ValueError(f"degrees of freedom must be a whole number >= 1, got {df!r}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term = total = 1.0
        for k in range(1, df // 2):  # (1·3···(2k−1)) / (2·4···2k) · cos^2k
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term = total = 1.0
    for k in range(1, (df - 1) // 2):  # (2·4···2k) / (3·5···(2k+1)) · cos^2k
        term *= (2 * k) / (2 * k + 1) * c2
        total += term
    return 2 / math.pi * (theta + s * math.cos(theta) * total)


def student_t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0 < p < 1)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be between 0 and 1, got {p!r}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    if df > _SERIES_DF:
        z = _NORMAL.inv_cdf(p)
        return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
                + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))
    target = 2 * p - 1  # P(|T| ≤ t)
    low, high = 0.0, 1.0
    while student_t_cdf_two_sided(high, df) < target:
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        if student_t_cdf_two_sided(mid, df) < target:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def expanded_tails(confidence: float, units: int) -> tuple[float, float]:
    """The lower and upper percentiles (0–100) of Hesterberg's expanded percentile interval at
    ``confidence`` over ``units`` resampled units (at least 2)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if units < 2:
        raise ValueError(f"an interval needs at least 2 units to resample, got {units}")
    t = student_t_quantile((1 + confidence) / 2, units - 1)
    half = _NORMAL.cdf(-math.sqrt(units / (units - 1)) * t)
    return 100 * half, 100 * (1 - half)


def percentile_intervals(samples: np.ndarray, confidence: float,
                         units: int | Sequence[int]) -> list[tuple[float, float] | None]:
    """Expanded percentile interval per column of (B, K) bootstrap ``samples``; ``units`` is the number of
    units the column's figure rests on (one number for every column, or one per column: a model rated on 8 of
    a study's 200 photos needs the tails for 8). None where a column has no finite sample, or where fewer
    than 2 units leave nothing to resample."""
    columns = samples.shape[1]
    per_column = [units] * columns if isinstance(units, (int, np.integer)) else list(units)
    if len(per_column) != columns:
        raise ValueError(f"units: one number or one per column ({columns}), got {len(per_column)}")
    out = []
    for column, n in zip(samples.T, per_column):
        finite = column[np.isfinite(column)]
        if n < 2 or finite.size == 0:
            out.append(None)
        else:
            out.append(tuple(float(x) for x in np.percentile(finite, list(expanded_tails(confidence, int(n))))))
    return out
