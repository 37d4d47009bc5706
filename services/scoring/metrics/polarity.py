"""The share of comments by polarity (negative, neutral, positive), as the feedback service classifies them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, get_args

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, share_estimate
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
)
from shared.events import Polarity

POLARITIES: tuple[str, ...] = get_args(Polarity)
# A neutral share is good or bad depending on what it displaces: the indicator says which.
_OWN_DIRECTION = {"positive": Direction.HIGHER_IS_BETTER, "negative": Direction.LOWER_IS_BETTER}


def polarity_share(stats: Counters, polarity: str, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Share of classified comments with this polarity, in percent, with a Wilson interval."""
    check_choice("polarity", polarity, POLARITIES)
    return share_estimate(stats.get(f"polarity.{polarity}"), stats.get("polarity.n"), confidence)


class PolarityMetrics(MetricFamily):
    """``polarity.n`` (comments classified) and ``polarity.<polarity>``; metric ``polarity.<polarity>`` in percent.

    ``polarity.positive`` scores its share, ``polarity.negative`` 100 − its share; ``polarity.neutral``
    needs the indicator's direction.
    """

    prefix: ClassVar[str] = "polarity"
    counter_pattern: ClassVar[str] = rf"polarity\.(n|{alternatives(POLARITIES)})"
    forms: ClassVar[tuple[str, ...]] = (f"polarity.<{'|'.join(POLARITIES)}>",)
    since: ClassVar[int] = 2

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """One classified comment, and one of its polarity."""
        if facts.polarity is not None:
            yield "polarity.n", 1
            yield f"polarity.{facts.polarity}", 1

    def parse(self, metric: str) -> MetricKey | None:
        """``polarity.<polarity>``."""
        head, _, name = metric.rpartition(".")
        if head != "polarity" or name not in POLARITIES:
            return None
        return MetricKey(metric, self, name, needs_direction=name not in _OWN_DIRECTION)

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The share with its Wilson interval; None without classified comments."""
        return polarity_share(stats, str(key.name), confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """The share, or 100 − the share when less is better."""
        direction = _OWN_DIRECTION.get(str(key.name), direction)
        if direction is None:
            raise ValueError(f"metric {key.metric!r} needs a direction")
        return value if direction is Direction.HIGHER_IS_BETTER else 100 - value
