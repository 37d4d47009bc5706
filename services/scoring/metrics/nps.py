"""Net Promoter Score from likelihood to recommend on the event contract's 0–10."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, nps_interval
from services.scoring.metrics.base import (
    Counter,
    Counters,
    Direction,
    FeedbackContent,
    MetricFamily,
    MetricKey,
    Target,
    moment_counters,
    rating_pattern,
)
from shared.events import NPS_SCALE

PROMOTERS = (9, 10)
DETRACTORS = tuple(range(NPS_SCALE[0], 7))


def nps(stats: Counters, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Net Promoter Score: % promoters (9–10) − % detractors (0–6); passives count in n only."""
    n = stats.get("nps.n")
    if n == 0:
        return None
    promoters = sum(stats.get(f"nps.h.{rating}") for rating in PROMOTERS)
    detractors = sum(stats.get(f"nps.h.{rating}") for rating in DETRACTORS)
    low, high = nps_interval(promoters, detractors, n, confidence)
    return Estimate(100 * (promoters - detractors) / n, low, high, n)


class NpsMetrics(MetricFamily):
    """``nps.{n,sum,sumsq}`` and ``nps.h.0`` … ``nps.h.10``; metric ``nps`` on −100..100."""

    prefix: ClassVar[str] = "nps"
    counter_pattern: ClassVar[str] = rating_pattern("nps", NPS_SCALE)
    forms: ClassVar[tuple[str, ...]] = ("nps",)

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """A rating's moments and histogram bin."""
        if facts.ratings.nps is not None:
            yield from moment_counters("nps", facts.ratings.nps, histogram=True)

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The score with Rocks' adjusted-Wald interval."""
        return nps(stats, confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """−100..100 onto 0–100."""
        return (value + 100) / 2
