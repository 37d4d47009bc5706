"""Sufficient statistics of feedback, and the metrics, intervals and 0–100 scores read from them.

`MetricStats` is a flat map of integer counters (see `to_increments`): merging two
sets of feedback is key-wise addition, so a store can keep one document per unit
and period and update it with `$inc`, and erasing a feedback is subtracting its
own stats, which restores the earlier counters exactly.

Flat keys (the part before the first dot names the metric family):

- ``n``: number of feedback.
- ``csat.{n,sum,sumsq}``, ``csat.h.1`` … ``csat.h.5``: CSAT 1–5.
- ``nps.{n,sum,sumsq}``, ``nps.h.0`` … ``nps.h.10``: likelihood to recommend 0–10.
- ``ces.{n,sum,sumsq}``, ``ces.h.1`` … ``ces.h.7``: customer effort 1–7.
- ``servqual.<dim>.{p,e,gap}.{n,sum,sumsq}``: SERVQUAL perception, expectation and
  the respondent's gap (perception − expectation), 1–7, per dimension.
- ``servqual.gap.{n,sum,sumsq}``: each respondent's mean gap over the dimensions
  they rated, in 1/60ths (60 = lcm(1..5), so that mean is always an integer).
- ``dimension.<name>.{n,sum,sumsq}``, ``dimension.<name>.h.1`` … ``.h.5``: the six
  service-quality dimensions, 1–5.
- ``sentiment.{n,sum,sumsq}``: comment sentiment 0..1 in thousandths.
- ``measure.<name>.{n,sum,sumsq}``: operational measures in thousandths.

Sums of squares are in the squared unit (e.g. millionths for sentiment). The
counters are Python ints; in MongoDB an int64 holds them while Σx² stays below
9.2e18, i.e. about 10⁶ waiting times under 50 minutes in thousandths of a second.
Dotted keys used with `$inc` become nested documents; `from_document` reads them back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from statistics import NormalDist
from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.events import QualityDimension, ServqualDimension, ServqualItem

SERVQUAL_DIMENSIONS: tuple[str, ...] = get_args(ServqualDimension)
QUALITY_DIMENSIONS: tuple[str, ...] = get_args(QualityDimension)
MEASURE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
MeasureName = Annotated[str, StringConstraints(pattern=MEASURE_NAME_PATTERN)]

FIXED_POINT = 1000
SERVQUAL_GAP_SCALE = 60
DEFAULT_CONFIDENCE = 0.95

# Rating scales (inclusive) of the integer-rated metrics.
CSAT_SCALE = (1, 5)
NPS_SCALE = (0, 10)
CES_SCALE = (1, 7)
SERVQUAL_SCALE = (1, 7)
DIMENSION_SCALE = (1, 5)


class Direction(StrEnum):
    """Whether a lower or a higher value of an operational measure is better."""

    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"


# ---------------------------------------------------------------------------
# Input


class FeedbackRatings(BaseModel):
    """The ratings and measures carried by one feedback; every part is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    ces: int | None = Field(default=None, ge=1, le=7)
    servqual: dict[ServqualDimension, ServqualItem] = Field(default_factory=dict)
    dimensions: dict[QualityDimension, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)
    sentiment: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    measures: dict[MeasureName, Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] = Field(default_factory=dict)


# ---------------------------------------------------------------------------
# Sufficient statistics

_DIMS = "|".join(SERVQUAL_DIMENSIONS)
_QDIMS = "|".join(QUALITY_DIMENSIONS)
_KEY_PATTERN = re.compile(
    "|".join(
        (
            r"n",
            r"(csat|nps|ces)\.(n|sum|sumsq)",
            r"csat\.h\.[1-5]|nps\.h\.([0-9]|10)|ces\.h\.[1-7]",
            rf"servqual\.({_DIMS})\.(p|e|gap)\.(n|sum|sumsq)",
            r"servqual\.gap\.(n|sum|sumsq)",
            rf"dimension\.({_QDIMS})\.(n|sum|sumsq|h\.[1-5])",
            r"sentiment\.(n|sum|sumsq)",
            r"measure\.[a-z][a-z0-9_]{0,63}\.(n|sum|sumsq)",
        )
    )
)


def _is_count_key(key: str) -> bool:
    return key == "n" or key.endswith((".n", ".sumsq")) or ".h." in key


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


@dataclass(frozen=True, eq=False)
class MetricStats:
    """Mergeable sufficient statistics of a set of feedback: a flat map of integer counters."""

    counters: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {}
        for key, value in self.counters.items():
            if not _KEY_PATTERN.fullmatch(key):
                raise ValueError(f"unknown statistics key {key!r}")
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"statistics key {key!r} must be an integer, got {value!r}")
            if value < 0 and _is_count_key(key):
                raise ValueError(f"statistics key {key!r} must not be negative, got {value}")
            if value != 0:
                clean[key] = value
        object.__setattr__(self, "counters", dict(sorted(clean.items())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetricStats):
            return NotImplemented
        return self.counters == other.counters

    def __hash__(self) -> int:
        return hash(frozenset(self.counters.items()))

    def __repr__(self) -> str:
        return f"MetricStats({dict(self.counters)!r})"

    def __add__(self, other: MetricStats) -> MetricStats:
        return merge(self, other)

    def __sub__(self, other: MetricStats) -> MetricStats:
        return subtract(self, other)

    @classmethod
    def empty(cls) -> MetricStats:
        """Statistics of no feedback at all."""
        return cls({})

    @classmethod
    def from_feedback(cls, feedback_ratings: FeedbackRatings | Mapping[str, Any]) -> MetricStats:
        """Statistics of a single feedback."""
        ratings = FeedbackRatings.model_validate(feedback_ratings)
        return cls(dict(_feedback_counters(ratings)))

    @classmethod
    def from_increments(cls, increments: Mapping[str, int | float]) -> MetricStats:
        """Rebuild from the flat map of `to_increments` (integral floats are accepted)."""
        return cls({key: _as_int(key, value) for key, value in increments.items()})

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> MetricStats:
        """Rebuild from the nested document that `$inc` with dotted keys produces."""
        return cls.from_increments(dict(_flatten(document)))

    def to_increments(self) -> dict[str, int]:
        """The flat map of counters; merging is key-wise addition of these maps."""
        return dict(self.counters)

    @property
    def n(self) -> int:
        """Number of feedback."""
        return self.get("n")

    def get(self, key: str) -> int:
        """One counter, zero when absent."""
        return self.counters.get(key, 0)

    def moments(self, prefix: str, scale: int = 1) -> Moments:
        """Count, sum and sum of squares stored under ``<prefix>.{n,sum,sumsq}``."""
        return Moments(self.get(f"{prefix}.n"), self.get(f"{prefix}.sum"), self.get(f"{prefix}.sumsq"), scale)

    def histogram(self, prefix: str, low: int, high: int) -> dict[int, int]:
        """Counts per rating ``low..high`` stored under ``<prefix>.h.<rating>``."""
        return {r: self.get(f"{prefix}.h.{r}") for r in range(low, high + 1)}

    def measure_names(self) -> list[str]:
        """Names of the operational measures present."""
        return sorted({k.split(".")[1] for k in self.counters if k.startswith("measure.")})


def merge(a: MetricStats, b: MetricStats) -> MetricStats:
    """Statistics of the union of two disjoint sets of feedback."""
    out = dict(a.counters)
    for key, value in b.counters.items():
        out[key] = out.get(key, 0) + value
    return MetricStats(out)


def subtract(a: MetricStats, b: MetricStats) -> MetricStats:
    """Statistics of `a` without the feedback of `b` (which must be part of `a`)."""
    out = dict(a.counters)
    for key, value in b.counters.items():
        out[key] = out.get(key, 0) - value
    return MetricStats(out)


def merge_all(stats: Iterable[MetricStats]) -> MetricStats:
    """Statistics of the union of many disjoint sets of feedback."""
    total: dict[str, int] = {}
    for one in stats:
        for key, value in one.counters.items():
            total[key] = total.get(key, 0) + value
    return MetricStats(total)


def _as_int(key: str, value: int | float) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"statistics key {key!r} must be integral, got {value!r}")
        return int(value)
    return value


def _flatten(document: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{path}.")
        else:
            yield path, value


def _rating(prefix: str, value: int, histogram: bool = True) -> Iterator[tuple[str, int]]:
    yield f"{prefix}.n", 1
    yield f"{prefix}.sum", value
    yield f"{prefix}.sumsq", value * value
    if histogram:
        yield f"{prefix}.h.{value}", 1


def _fixed_point(value: float, scale: int = FIXED_POINT) -> int:
    return round(value * scale)


def _feedback_counters(r: FeedbackRatings) -> Iterator[tuple[str, int]]:
    yield "n", 1
    for prefix, rating in (("csat", r.csat), ("nps", r.nps), ("ces", r.ces)):
        if rating is not None:
            yield from _rating(prefix, rating)
    yield from _servqual_counters(r.servqual)
    for dimension, rating in r.dimensions.items():
        yield from _rating(f"dimension.{dimension}", rating)
    if r.sentiment is not None:
        yield from _rating("sentiment", _fixed_point(r.sentiment), histogram=False)
    for name, value in r.measures.items():
        yield from _rating(f"measure.{name}", _fixed_point(value), histogram=False)


def _servqual_counters(servqual: Mapping[ServqualDimension, ServqualItem]) -> Iterator[tuple[str, int]]:
    if not servqual:
        return
    for dim, rating in servqual.items():
        yield from _rating(f"servqual.{dim}.p", rating.perception, histogram=False)
        yield from _rating(f"servqual.{dim}.e", rating.expectation, histogram=False)
        yield from _rating(f"servqual.{dim}.gap", rating.perception - rating.expectation, histogram=False)
    gaps = sum(rating.perception - rating.expectation for rating in servqual.values())
    yield from _rating("servqual.gap", gaps * SERVQUAL_GAP_SCALE // len(servqual), histogram=False)


# ---------------------------------------------------------------------------
# Distributions and intervals

# Beyond this the exact series gets long and Cornish–Fisher is accurate to ~1e-10.
_EXACT_T_DF_LIMIT = 200


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


# ---------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class Estimate:
    """A metric's value in its own unit with a confidence interval (bounds may be infinite)."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def _mean_estimate(m: Moments, bounds: tuple[float, float], confidence: float) -> Estimate | None:
    if m.n == 0:
        return None
    low, high = t_interval(m, bounds, confidence)
    return Estimate(m.mean, low, high, m.n)


def csat_share(stats: MetricStats, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Share of CSAT ratings of 4 or 5, in percent, with a Wilson interval."""
    n = stats.get("csat.n")
    if n == 0:
        return None
    satisfied = stats.get("csat.h.4") + stats.get("csat.h.5")
    low, high = wilson_interval(satisfied, n, confidence)
    return Estimate(100 * satisfied / n, 100 * low, 100 * high, n)


def csat_mean(stats: MetricStats, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean CSAT on 1–5."""
    return _mean_estimate(stats.moments("csat"), CSAT_SCALE, confidence)


def nps(stats: MetricStats, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Net Promoter Score: % promoters (9–10) − % detractors (0–6); passives count in n only."""
    n = stats.get("nps.n")
    if n == 0:
        return None
    histogram = stats.histogram("nps", *NPS_SCALE)
    promoters = histogram[9] + histogram[10]
    detractors = sum(histogram[r] for r in range(0, 7))
    low, high = nps_interval(promoters, detractors, n, confidence)
    return Estimate(100 * (promoters - detractors) / n, low, high, n)


def ces_mean(stats: MetricStats, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean customer effort on 1–7 (lower is better)."""
    return _mean_estimate(stats.moments("ces"), CES_SCALE, confidence)


def servqual_gap(
    stats: MetricStats, dimension: str | None = None, confidence: float = DEFAULT_CONFIDENCE
) -> Estimate | None:
    """SERVQUAL gap (perception − expectation) of one dimension, or overall when None."""
    if dimension is None:
        # Overall: the mean over respondents of each one's mean gap across rated dimensions.
        moments = stats.moments("servqual.gap", SERVQUAL_GAP_SCALE)
    else:
        _check_choice("SERVQUAL dimension", dimension, SERVQUAL_DIMENSIONS)
        moments = stats.moments(f"servqual.{dimension}.gap")
    return _mean_estimate(moments, (-6.0, 6.0), confidence)


def servqual_perception(stats: MetricStats, dimension: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean SERVQUAL perception of one dimension on 1–7."""
    _check_choice("SERVQUAL dimension", dimension, SERVQUAL_DIMENSIONS)
    return _mean_estimate(stats.moments(f"servqual.{dimension}.p"), SERVQUAL_SCALE, confidence)


def servqual_expectation(stats: MetricStats, dimension: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean SERVQUAL expectation of one dimension on 1–7."""
    _check_choice("SERVQUAL dimension", dimension, SERVQUAL_DIMENSIONS)
    return _mean_estimate(stats.moments(f"servqual.{dimension}.e"), SERVQUAL_SCALE, confidence)


def dimension_mean(stats: MetricStats, dimension: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean rating of one of the six service-quality dimensions on 1–5."""
    _check_choice("service-quality dimension", dimension, QUALITY_DIMENSIONS)
    return _mean_estimate(stats.moments(f"dimension.{dimension}"), DIMENSION_SCALE, confidence)


def sentiment_mean(stats: MetricStats, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean comment sentiment on 0..1."""
    return _mean_estimate(stats.moments("sentiment", FIXED_POINT), (0.0, 1.0), confidence)


def measure_mean(stats: MetricStats, name: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean of an operational measure in its own unit (a 0/1 measure gives a rate)."""
    return _mean_estimate(stats.moments(f"measure.{name}", FIXED_POINT), (0.0, math.inf), confidence)


def measure_attainment(value: float, target: float, direction: Direction) -> float:
    """Attainment of a target on 0–100: 100 when met, proportionally less when missed."""
    if target <= 0:
        raise ValueError(f"target must be positive, got {target}")
    if direction is Direction.LOWER_IS_BETTER:
        return 100.0 if value <= target else 100 * target / value
    return min(100.0, 100 * value / target)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")


# ---------------------------------------------------------------------------
# Metric keys, normalisation and evaluation


@dataclass(frozen=True)
class MetricKey:
    """A parsed metric key: its family and, for per-dimension or per-measure metrics, the name."""

    family: str
    name: str | None = None

    @property
    def needs_target(self) -> bool:
        """Whether the metric is scored against a target (operational measures)."""
        return self.family == "measure"


_FIXED_METRICS = {
    "csat.share": MetricKey("csat.share"),
    "csat.mean": MetricKey("csat.mean"),
    "nps": MetricKey("nps"),
    "ces": MetricKey("ces"),
    "servqual.gap": MetricKey("servqual.gap"),
    "sentiment": MetricKey("sentiment"),
}
METRIC_KEY_FORMS = (
    *_FIXED_METRICS,
    "servqual.gap.<tangibles|reliability|responsiveness|assurance|empathy>",
    "dimension.<effect|speed|attitude|reliability|cost|innovation>",
    "measure.<name>",
)


def parse_metric(metric: str) -> MetricKey:
    """Parse a metric key such as ``nps``, ``servqual.gap.empathy`` or ``measure.waiting_time_seconds``."""
    if metric in _FIXED_METRICS:
        return _FIXED_METRICS[metric]
    head, _, name = metric.rpartition(".")
    if head == "servqual.gap" and name in SERVQUAL_DIMENSIONS:
        return MetricKey("servqual.gap", name)
    if head == "dimension" and name in QUALITY_DIMENSIONS:
        return MetricKey("dimension", name)
    if head == "measure" and re.fullmatch(MEASURE_NAME_PATTERN, name):
        return MetricKey("measure", name)
    raise ValueError(f"unknown metric key {metric!r}; known forms: {', '.join(METRIC_KEY_FORMS)}")


def estimate(metric: str, stats: MetricStats, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Value of a metric in its own unit with its interval; None when there is no data."""
    key = parse_metric(metric)
    if key.family == "servqual.gap":
        return servqual_gap(stats, key.name, confidence)
    if key.family == "dimension":
        return dimension_mean(stats, str(key.name), confidence)
    if key.family == "measure":
        return measure_mean(stats, str(key.name), confidence)
    return _SIMPLE_ESTIMATORS[key.family](stats, confidence)


_SIMPLE_ESTIMATORS: dict[str, Callable[[MetricStats, float], Estimate | None]] = {
    "csat.share": csat_share,
    "csat.mean": csat_mean,
    "nps": nps,
    "ces": ces_mean,
    "sentiment": sentiment_mean,
}


def normalise(metric: str, value: float, target: float | None = None, direction: Direction | None = None) -> float:
    """Map a metric value onto 0–100 where 100 is best.

    csat.share: already a percentage. csat.mean and dimension.*: (m − 1) / 4 · 100.
    nps: (x + 100) / 2. ces (lower is better): (7 − m) / 6 · 100. servqual gaps,
    −6..+6: (gap + 6) / 12 · 100. sentiment: m · 100. measure.*: attainment of the
    target, min(100, target / value · 100) when lower is better and
    min(100, value / target · 100) when higher is better.
    """
    family = parse_metric(metric).family
    if family == "measure":
        if target is None or direction is None:
            raise ValueError(f"metric {metric!r} needs a target and a direction")
        score = measure_attainment(value, target, direction)
    else:
        score = _LINEAR_NORMALISERS[family](value)
    return min(100.0, max(0.0, score))


_LINEAR_NORMALISERS: dict[str, Callable[[float], float]] = {
    "csat.share": lambda v: v,
    "csat.mean": lambda v: (v - 1) / 4 * 100,
    "dimension": lambda v: (v - 1) / 4 * 100,
    "nps": lambda v: (v + 100) / 2,
    "ces": lambda v: (7 - v) / 6 * 100,
    "servqual.gap": lambda v: (v + 6) / 12 * 100,
    "sentiment": lambda v: v * 100,
}


class IndicatorValue(BaseModel):
    """One metric evaluated on a set of feedback: raw value, 0–100 score and 95 % intervals."""

    model_config = ConfigDict(frozen=True)

    metric: str
    n: int
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    score: float | None = None
    score_ci_low: float | None = None
    score_ci_high: float | None = None
    insufficient: bool = True


def evaluate(
    metric: str,
    stats: MetricStats,
    *,
    min_samples: int,
    target: float | None = None,
    direction: Direction | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> IndicatorValue:
    """Evaluate one metric: value, interval, 0–100 score and whether n is below `min_samples`."""
    est = estimate(metric, stats, confidence)
    if est is None:
        return IndicatorValue(metric=metric, n=0, insufficient=True)
    scores = sorted(normalise(metric, bound, target, direction) for bound in (est.ci_low, est.ci_high))
    return IndicatorValue(
        metric=metric,
        n=est.n,
        value=est.value,
        ci_low=_finite_or_none(est.ci_low),
        ci_high=_finite_or_none(est.ci_high),
        score=normalise(metric, est.value, target, direction),
        score_ci_low=scores[0],
        score_ci_high=scores[1],
        insufficient=est.n < min_samples,
    )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
