"""Moments, distributions and confidence intervals the metrics are estimated with; plain Python."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

DEFAULT_CONFIDENCE = 0.95
# Beyond this the exact series gets long and Cornish–Fisher is accurate to ~1e-10.
_EXACT_T_DF_LIMIT = 200


@dataclass(frozen=True, eq=False)
class Moments:
    """Count, sum and sum of squares of values stored as integers in units of 1/scale."""

    n: int
    total: int
    total_sq: int
    scale: int = 1

    @property
    def mean(self) -> float:
        """Mean in the metric's own unit."""
        return self.total / (self.n * self.scale)

    def variance(self) -> float:
        """Sample variance (n − 1 denominator) in the metric's own unit squared."""
        # The numerator is an exact integer, so there is no cancellation error.
        return (self.n * self.total_sq - self.total**2) / (self.n * (self.n - 1) * self.scale**2)


@dataclass(frozen=True)
class Estimate:
    """A metric's value in its own unit with a confidence interval (bounds may be infinite)."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def z_quantile(p: float) -> float:
    """Quantile of the standard normal distribution."""
    return NormalDist().inv_cdf(p)


def _t_central_probability(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer df (Abramowitz & Stegun 26.7.3–4)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 0:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * cos2
            total += term
        return math.sin(theta) * total
    series = 0.0
    if df > 1:
        term = series = 1.0
        for k in range(1, (df - 1) // 2):
            term *= (2 * k) / (2 * k + 1) * cos2
            series += term
    return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * series)


def _t_cornish_fisher(p: float, df: int) -> float:
    """Cornish–Fisher expansion of the t quantile (Abramowitz & Stegun 26.7.5)."""
    x = z_quantile(p)
    g1 = (x**3 + x) / 4
    g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96
    g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384
    g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160
    return x + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t distribution with df ≥ 1 degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if df > _EXACT_T_DF_LIMIT:
        return _t_cornish_fisher(p, df)
    return _solve_increasing(lambda t: _t_central_probability(t, df), 2 * p - 1)


def _solve_increasing(f: Callable[[float], float], target: float) -> float:
    """Root of f(t) = target for f increasing on [0, ∞) with f(0) ≤ target, by bisection."""
    low, high = 0.0, 1.0
    while f(high) < target:
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        if mid in (low, high):
            break
        low, high = (mid, high) if f(mid) < target else (low, mid)
    return (low + high) / 2


def wilson_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927; Newcombe 1998 method 3)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    z = z_quantile(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def nps_interval(
    promoters: int, detractors: int, n: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Adjusted-Wald interval of the NPS on −100..100 (Rocks 2016, The American Statistician)."""
    if n <= 0 or promoters < 0 or detractors < 0 or promoters + detractors > n:
        raise ValueError(f"need promoters + detractors <= n and n > 0, got {promoters}, {detractors}, {n}")
    # Rocks adds 3/4 of a promoter and 3/4 of a detractor and 3 to n, which keeps the
    # interval sensible at 0 % or 100 % promoters where the plain Wald collapses.
    n_adj = n + 3
    p = (promoters + 0.75) / n_adj
    d = (detractors + 0.75) / n_adj
    net = p - d
    half = z_quantile(0.5 + confidence / 2) * math.sqrt((p + d - net * net) / n_adj)
    # The adjusted centre can push the interval past the observed score on small
    # samples (one promoter: NPS 100, interval up to 98.5); widen it to contain it.
    observed = (promoters - detractors) / n
    low, high = min(net - half, observed), max(net + half, observed)
    return max(-100.0, 100 * low), min(100.0, 100 * high)


def t_interval(
    moments: Moments,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float]:
    """Student t interval of a mean, clipped to the scale's bounds (the whole scale when n = 1)."""
    if moments.n < 1:
        raise ValueError("a mean needs at least one value")
    if moments.n == 1:
        return bounds
    se = math.sqrt(max(0.0, moments.variance()) / moments.n)
    half = t_quantile(0.5 + confidence / 2, moments.n - 1) * se
    return max(bounds[0], moments.mean - half), min(bounds[1], moments.mean + half)


def mean_estimate(moments: Moments, bounds: tuple[float, float], confidence: float) -> Estimate | None:
    """The mean with its t interval clipped to the scale; None without values."""
    if moments.n == 0:
        return None
    low, high = t_interval(moments, bounds, confidence)
    return Estimate(moments.mean, low, high, moments.n)


def share_estimate(successes: int, n: int, confidence: float) -> Estimate | None:
    """A share in percent with its Wilson interval; None without values."""
    if n == 0:
        return None
    low, high = wilson_interval(successes, n, confidence)
    return Estimate(100 * successes / n, 100 * low, 100 * high, n)
