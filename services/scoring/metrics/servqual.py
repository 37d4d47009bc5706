"""SERVQUAL: perception and expectation per dimension on the event contract's 1–7, and their gaps."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
    moments_pattern,
    on_scale,
)
from shared.events import SERVQUAL_SCALE, ServqualDimension, ServqualItem

SERVQUAL_DIMENSIONS: tuple[str, ...] = get_args(ServqualDimension)
# A respondent's mean gap is counted in 1/60ths: 60 = lcm(1..5), so that mean is always an integer.
SERVQUAL_GAP_SCALE = 60
GAP_SCALE = (SERVQUAL_SCALE[0] - SERVQUAL_SCALE[1], SERVQUAL_SCALE[1] - SERVQUAL_SCALE[0])


def servqual_gap(
    stats: Counters, dimension: str | None = None, confidence: float = DEFAULT_CONFIDENCE
) -> Estimate | None:
    """SERVQUAL gap (perception − expectation) of one dimension, or overall when None."""
    if dimension is None:
        # Overall: the mean over respondents of each one's mean gap across rated dimensions.
        moments = stats.moments("servqual.gap", SERVQUAL_GAP_SCALE)
    else:
        check_choice("SERVQUAL dimension", dimension, SERVQUAL_DIMENSIONS)
        moments = stats.moments(f"servqual.{dimension}.gap")
    return mean_estimate(moments, (float(GAP_SCALE[0]), float(GAP_SCALE[1])), confidence)


def servqual_perception(stats: Counters, dimension: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean SERVQUAL perception of one dimension on 1–7."""
    check_choice("SERVQUAL dimension", dimension, SERVQUAL_DIMENSIONS)
    return mean_estimate(stats.moments(f"servqual.{dimension}.p"), SERVQUAL_SCALE, confidence)


def servqual_expectation(stats: Counters, dimension: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean SERVQUAL expectation of one dimension on 1–7."""
    check_choice("SERVQUAL dimension", dimension, SERVQUAL_DIMENSIONS)
    return mean_estimate(stats.moments(f"servqual.{dimension}.e"), SERVQUAL_SCALE, confidence)


class ServqualMetrics(MetricFamily):
    """``servqual.<dim>.{p,e,gap}.{n,sum,sumsq}`` and ``servqual.gap.{n,sum,sumsq}`` (respondents' mean gaps).

    Metrics ``servqual.gap`` (overall) and ``servqual.gap.<dimension>``, on −6..+6.
    """

    prefix: ClassVar[str] = "servqual"
    counter_pattern: ClassVar[str] = "|".join(
        (
            moments_pattern(rf"servqual\.{alternatives(SERVQUAL_DIMENSIONS)}\.(p|e|gap)"),
            moments_pattern(r"servqual\.gap"),
        )
    )
    forms: ClassVar[tuple[str, ...]] = ("servqual.gap", f"servqual.gap.<{'|'.join(SERVQUAL_DIMENSIONS)}>")

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """Each rated dimension's perception, expectation and gap, and the respondent's mean gap."""
        if facts.ratings.servqual:
            yield from _servqual_counters(facts.ratings.servqual)

    def parse(self, metric: str) -> MetricKey | None:
        """``servqual.gap`` or ``servqual.gap.<dimension>``."""
        if metric == "servqual.gap":
            return MetricKey(metric, self)
        head, _, name = metric.rpartition(".")
        if head == "servqual.gap" and name in SERVQUAL_DIMENSIONS:
            return MetricKey(metric, self, name)
        return None

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The mean gap with its Student t interval."""
        return servqual_gap(stats, key.name, confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """−6..+6 onto 0–100."""
        return on_scale(value, GAP_SCALE)


def _servqual_counters(servqual: Mapping[ServqualDimension, ServqualItem]) -> Iterator[Counter]:
    for dim, rating in servqual.items():
        yield from moment_counters(f"servqual.{dim}.p", rating.perception)
        yield from moment_counters(f"servqual.{dim}.e", rating.expectation)
        yield from moment_counters(f"servqual.{dim}.gap", rating.perception - rating.expectation)
    gaps = sum(rating.perception - rating.expectation for rating in servqual.values())
    yield from moment_counters("servqual.gap", gaps * SERVQUAL_GAP_SCALE // len(servqual))
