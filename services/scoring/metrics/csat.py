"""CSAT, satisfaction on the event contract's 1–5: the share of satisfied ratings and the mean."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, mean_estimate, share_estimate
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
from shared.events import CSAT_SCALE

# The "top two box": 4 (satisfied) and 5 (very satisfied).
SATISFIED = (4, 5)


def csat_share(stats: Counters, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Share of CSAT ratings of 4 or 5, in percent, with a Wilson interval."""
    satisfied = sum(stats.get(f"csat.h.{rating}") for rating in SATISFIED)
    return share_estimate(satisfied, stats.get("csat.n"), confidence)


def csat_mean(stats: Counters, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean CSAT on 1–5."""
    return mean_estimate(stats.moments("csat"), CSAT_SCALE, confidence)


class CsatMetrics(MetricFamily):
    """``csat.{n,sum,sumsq}`` and ``csat.h.1`` … ``csat.h.5``; metrics ``csat.share`` and ``csat.mean``."""

    prefix: ClassVar[str] = "csat"
    counter_pattern: ClassVar[str] = rating_pattern("csat", CSAT_SCALE)
    forms: ClassVar[tuple[str, ...]] = ("csat.share", "csat.mean")

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """A rating's moments and histogram bin."""
        if facts.ratings.csat is not None:
            yield from moment_counters("csat", facts.ratings.csat, histogram=True)

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The share (Wilson) or the mean (Student t)."""
        if key.metric == "csat.share":
            return csat_share(stats, confidence)
        return csat_mean(stats, confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """The share is already a percentage; the mean maps 1–5 onto 0–100."""
        if key.metric == "csat.share":
            return value
        return on_scale(value, CSAT_SCALE)
