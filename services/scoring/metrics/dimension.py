"""The six service-quality dimensions, each rated on the event contract's 1–5."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, get_args

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, mean_estimate
from services.scoring.metrics.base import (
    Counter,
    Counters,
    Direction,
    FeedbackContent,
    MetricFamily,
    MetricKey,
    Target,
    alternatives,
    check_choice,
    moment_counters,
    on_scale,
    rating_pattern,
)
from shared.events import DIMENSION_SCALE, QualityDimension

QUALITY_DIMENSIONS: tuple[str, ...] = get_args(QualityDimension)


def dimension_mean(stats: Counters, dimension: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean rating of one of the six service-quality dimensions on 1–5."""
    check_choice("service-quality dimension", dimension, QUALITY_DIMENSIONS)
    return mean_estimate(stats.moments(f"dimension.{dimension}"), DIMENSION_SCALE, confidence)


class DimensionMetrics(MetricFamily):
    """``dimension.<name>.{n,sum,sumsq}`` and ``dimension.<name>.h.1`` … ``.h.5``; metric ``dimension.<name>``."""

    prefix: ClassVar[str] = "dimension"
    counter_pattern: ClassVar[str] = rating_pattern(rf"dimension\.{alternatives(QUALITY_DIMENSIONS)}", DIMENSION_SCALE)
    forms: ClassVar[tuple[str, ...]] = (f"dimension.<{'|'.join(QUALITY_DIMENSIONS)}>",)

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """Each rated dimension's moments and histogram bin."""
        for dimension, rating in facts.ratings.dimensions.items():
            yield from moment_counters(f"dimension.{dimension}", rating, histogram=True)

    def parse(self, metric: str) -> MetricKey | None:
        """``dimension.<name>``."""
        head, _, name = metric.rpartition(".")
        return MetricKey(metric, self, name) if head == "dimension" and name in QUALITY_DIMENSIONS else None

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The mean with its Student t interval."""
        return dimension_mean(stats, str(key.name), confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """1–5 onto 0–100."""
        return on_scale(value, DIMENSION_SCALE)
