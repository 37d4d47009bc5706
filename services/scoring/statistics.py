"""Sufficient statistics of feedback, and the metrics, intervals and 0–100 scores read from them.

`MetricStats` is a flat map of integer counters (see `to_increments`): merging two
sets of feedback is key-wise addition, so a store can keep one document per unit
and period and update it with `$inc`, and erasing a feedback is subtracting its
own stats, which restores the earlier counters exactly.

``n`` counts feedback; every other key belongs to one metric family of the registry
(`services.scoring.metrics`), the part before the first dot naming it: each family's
module documents its keys, its metric keys, estimator and 0–100 score. Fractional
values are counted in thousandths, sums of squares in the squared unit (e.g.
millionths for sentiment). The counters are Python ints; in MongoDB an int64 holds
them while Σx² stays below 9.2e18, i.e. about 10⁶ waiting times under 50 minutes in
thousandths of a second. Dotted keys used with `$inc` become nested documents;
`from_document` reads them back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.scoring.intervals import (
    DEFAULT_CONFIDENCE,
    Estimate,
    Moments,
    nps_interval,
    t_interval,
    t_quantile,
    wilson_interval,
    z_quantile,
)
from services.scoring.metrics import (
    METRIC_KEY_FORMS,
    REGISTRY_VERSION,
    feedback_counters,
    is_counter_key,
    parse_metric,
)
from services.scoring.metrics.audit import audit_item_key, audit_score
from services.scoring.metrics.base import FIXED_POINT, Direction, FeedbackContent, MetricKey
from services.scoring.metrics.ces import ces_mean
from services.scoring.metrics.complaint import complaint_rate
from services.scoring.metrics.csat import csat_mean, csat_share
from services.scoring.metrics.dimension import QUALITY_DIMENSIONS, dimension_mean
from services.scoring.metrics.measure import measure_attainment, measure_mean
from services.scoring.metrics.nps import nps
from services.scoring.metrics.polarity import polarity_share
from services.scoring.metrics.sentiment import sentiment_mean
from services.scoring.metrics.servqual import (
    SERVQUAL_DIMENSIONS,
    SERVQUAL_GAP_SCALE,
    servqual_expectation,
    servqual_gap,
    servqual_perception,
)
from shared.events import Audit, Complaint, Polarity, Ratings, Sentiment

__all__ = [
    "DEFAULT_CONFIDENCE",
    "FIXED_POINT",
    "METRIC_KEY_FORMS",
    "QUALITY_DIMENSIONS",
    "REGISTRY_VERSION",
    "SERVQUAL_DIMENSIONS",
    "SERVQUAL_GAP_SCALE",
    "Direction",
    "Estimate",
    "FeedbackContent",
    "FeedbackRatings",
    "IndicatorValue",
    "MetricKey",
    "MetricStats",
    "Moments",
    "audit_item_key",
    "audit_score",
    "ces_mean",
    "complaint_rate",
    "csat_mean",
    "csat_share",
    "dimension_mean",
    "estimate",
    "evaluate",
    "measure_attainment",
    "measure_mean",
    "merge",
    "merge_all",
    "normalise",
    "nps",
    "nps_interval",
    "parse_metric",
    "polarity_share",
    "sentiment_mean",
    "servqual_expectation",
    "servqual_gap",
    "servqual_perception",
    "subtract",
    "t_interval",
    "t_quantile",
    "wilson_interval",
    "z_quantile",
]


# ---------------------------------------------------------------------------
# Input


class FeedbackRatings(Ratings):
    """One feedback's facts as a mapping is checked: the contract's ratings, its comment, complaint and audit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sentiment: Sentiment = None
    polarity: Polarity | None = None
    complaint: Complaint | None = None
    audit: Audit | None = None

    def content(self) -> FeedbackContent:
        """The facts the metric families count."""
        return FeedbackContent(self, self.sentiment, self.polarity, self.complaint, self.audit)


# ---------------------------------------------------------------------------
# Sufficient statistics


def _is_count_key(key: str) -> bool:
    # Only sums may go below zero (gaps); counts, histogram bins and sums of squares may not.
    return not key.endswith(".sum")


@dataclass(frozen=True, eq=False)
class MetricStats:
    """Mergeable sufficient statistics of a set of feedback: a flat map of integer counters."""

    counters: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {}
        for key, value in self.counters.items():
            if not is_counter_key(key):
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
    def of_registry_counters(cls, counters: Mapping[str, int]) -> MetricStats:
        """Statistics from counters the registry's families wrote, or sums of them, without checking each key again."""
        # The hot path of aggregation: the families' keys are checked once, by their unit tests.
        stats = object.__new__(cls)
        object.__setattr__(stats, "counters", {key: value for key, value in sorted(counters.items()) if value != 0})
        return stats

    @classmethod
    def from_feedback(
        cls, feedback: FeedbackRatings | FeedbackContent | Mapping[str, Any], *, version: int = REGISTRY_VERSION
    ) -> MetricStats:
        """Statistics of a single feedback (a mapping checked as `FeedbackRatings`), as registry ``version`` counts."""
        if not isinstance(feedback, FeedbackContent):
            feedback = FeedbackRatings.model_validate(feedback).content()
        counters: dict[str, int] = {}
        for key, value in feedback_counters(feedback, version):
            counters[key] = counters.get(key, 0) + value
        return cls.of_registry_counters(counters)

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


# ---------------------------------------------------------------------------
# Any metric, by its key


def estimate(metric: str, stats: MetricStats, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Value of a metric in its own unit with its interval; None when there is no data."""
    return parse_metric(metric).estimate(stats, confidence)


def normalise(metric: str, value: float, target: float | None = None, direction: Direction | None = None) -> float:
    """Map a metric value onto 0–100 where 100 is best; each family's module says how."""
    return _score(parse_metric(metric), value, target, direction)


def _score(key: MetricKey, value: float, target: float | None, direction: Direction | None) -> float:
    if key.needs_target and (target is None or direction is None):
        raise ValueError(f"metric {key.metric!r} needs a target and a direction")
    if key.needs_direction and direction is None:
        raise ValueError(f"metric {key.metric!r} needs a direction")
    return min(100.0, max(0.0, key.normalise(value, target, direction)))


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
    key = parse_metric(metric)
    est = key.estimate(stats, confidence)
    if est is None:
        return IndicatorValue(metric=metric, n=0, insufficient=True)
    scores = sorted(_score(key, bound, target, direction) for bound in (est.ci_low, est.ci_high))
    return IndicatorValue(
        metric=metric,
        n=est.n,
        value=est.value,
        ci_low=_finite_or_none(est.ci_low),
        ci_high=_finite_or_none(est.ci_high),
        score=_score(key, est.value, target, direction),
        score_ci_low=scores[0],
        score_ci_high=scores[1],
        insufficient=est.n < min_samples,
    )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
