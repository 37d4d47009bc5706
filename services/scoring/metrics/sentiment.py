"""Comment sentiment, 0 (negative) to 1 (positive), as the feedback service scores it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, mean_estimate
from services.scoring.metrics.base import (
    FIXED_POINT,
    Counter,
    Counters,
    Direction,
    FeedbackContent,
    MetricFamily,
    MetricKey,
    Target,
    fixed_point,
    moment_counters,
    moments_pattern,
)
from shared.events import SENTIMENT_SCALE


def sentiment_mean(stats: Counters, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean comment sentiment on 0..1."""
    return mean_estimate(stats.moments("sentiment", FIXED_POINT), SENTIMENT_SCALE, confidence)


class SentimentMetrics(MetricFamily):
    """``sentiment.{n,sum,sumsq}`` in thousandths (sum of squares in millionths); metric ``sentiment``."""

    prefix: ClassVar[str] = "sentiment"
    counter_pattern: ClassVar[str] = moments_pattern("sentiment")
    forms: ClassVar[tuple[str, ...]] = ("sentiment",)

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """The comment's sentiment in thousandths."""
        if facts.sentiment is not None:
            yield from moment_counters("sentiment", fixed_point(facts.sentiment))

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The mean with its Student t interval."""
        return sentiment_mean(stats, confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """0..1 onto 0–100."""
        return value * 100
