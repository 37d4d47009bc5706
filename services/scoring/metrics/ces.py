"""Customer effort on the event contract's 1–7, lower is better."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, mean_estimate
from services.scoring.metrics.base import (
    Counter,
    Counters,
    Direction,
    FeedbackContent,
    MetricFamily,
    MetricKey,
    Target,
    moment_counters,
    on_scale,
    rating_pattern,
)
from shared.events import CES_SCALE


def ces_mean(stats: Counters, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean customer effort on 1–7 (lower is better)."""
    return mean_estimate(stats.moments("ces"), CES_SCALE, confidence)


class CesMetrics(MetricFamily):
    """``ces.{n,sum,sumsq}`` and ``ces.h.1`` … ``ces.h.7``; metric ``ces``, the mean effort."""

    prefix: ClassVar[str] = "ces"
    counter_pattern: ClassVar[str] = rating_pattern("ces", CES_SCALE)
    forms: ClassVar[tuple[str, ...]] = ("ces",)

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """A rating's moments and histogram bin."""
        if facts.ratings.ces is not None:
            yield from moment_counters("ces", facts.ratings.ces, histogram=True)

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The mean with its Student t interval."""
        return ces_mean(stats, confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """1–7 onto 100–0: the least effort scores best."""
        return on_scale(value, CES_SCALE, Direction.LOWER_IS_BETTER)
