"""Operational measures (waiting time, handling time, first-contact resolution…), scored against a target."""

from __future__ import annotations

import math
import re
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
from shared.events import MEASURE_NAME_PATTERN

_NAME = MEASURE_NAME_PATTERN.removeprefix("^").removesuffix("$")


def measure_mean(stats: Counters, name: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean of an operational measure in its own unit (a 0/1 measure gives a rate)."""
    return mean_estimate(stats.moments(f"measure.{name}", FIXED_POINT), (0.0, math.inf), confidence)


def measure_attainment(value: float, target: float, direction: Direction) -> float:
    """Attainment of a target on 0–100: 100 when met, proportionally less when missed."""
    if target <= 0:
        raise ValueError(f"target must be positive, got {target}")
    if direction is Direction.LOWER_IS_BETTER:
        return 100.0 if value <= target else 100 * target / value
    return min(100.0, 100 * value / target)


class MeasureMetrics(MetricFamily):
    """``measure.<name>.{n,sum,sumsq}`` in thousandths; metric ``measure.<name>``, scored against a target."""

    prefix: ClassVar[str] = "measure"
    counter_pattern: ClassVar[str] = moments_pattern(rf"measure\.{_NAME}")
    forms: ClassVar[tuple[str, ...]] = ("measure.<name>",)

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """Each measure in thousandths of its unit."""
        for name, value in facts.ratings.measures.items():
            yield from moment_counters(f"measure.{name}", fixed_point(value))

    def parse(self, metric: str) -> MetricKey | None:
        """``measure.<name>``, the name as the event contract allows it."""
        head, _, name = metric.rpartition(".")
        if head == "measure" and re.fullmatch(MEASURE_NAME_PATTERN, name):
            return MetricKey(metric, self, name, needs_target=True)
        return None

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The mean with its Student t interval (no upper bound)."""
        return measure_mean(stats, str(key.name), confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """Attainment of the indicator's target in its direction."""
        if target is None or direction is None:
            raise ValueError(f"metric {key.metric!r} needs a target and a direction")
        return measure_attainment(value, target, direction)
