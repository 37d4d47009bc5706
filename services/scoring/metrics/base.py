"""What a metric family is: its counters from one feedback, its metric keys, estimator and 0–100 score."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from services.scoring.intervals import Estimate, Moments
from shared.events import Audit, Complaint, Polarity, Ratings

# Fractional values (sentiment, measures, audit percentages) are counted in thousandths.
FIXED_POINT = 1000


class Direction(StrEnum):
    """Whether a lower or a higher value of a metric is better."""

    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"


@dataclass(frozen=True, slots=True)
class FeedbackContent:
    """What one feedback tells the metrics: its ratings and measures, comment, complaint and audit."""

    ratings: Ratings = field(default_factory=Ratings)
    sentiment: float | None = None
    polarity: Polarity | None = None
    complaint: Complaint | None = None
    audit: Audit | None = None


class Counters(Protocol):
    """The integer counters of a set of feedback, as a metric reads them."""

    @property
    def n(self) -> int:
        """Number of feedback."""
        ...

    def get(self, key: str) -> int:
        """One counter, zero when absent."""
        ...

    def moments(self, prefix: str, scale: int = 1) -> Moments:
        """Count, sum and sum of squares stored under ``<prefix>.{n,sum,sumsq}``."""
        ...


Counter = tuple[str, int]
Target = float | None


@dataclass(frozen=True)
class MetricKey:
    """A parsed metric key: the family that computes it and, for a per-dimension or per-item metric, the name."""

    metric: str
    family: MetricFamily
    name: str | None = None
    needs_target: bool = False
    needs_direction: bool = False

    def estimate(self, stats: Counters, confidence: float) -> Estimate | None:
        """The metric's value in its own unit with its interval; None without data."""
        return self.family.estimate(self, stats, confidence)

    def normalise(self, value: float, target: Target, direction: Direction | None) -> float:
        """The value on 0–100 (100 best), not yet clipped."""
        return self.family.normalise(self, value, target, direction)


class MetricFamily(ABC):
    """One family of metrics: every fact about it is stated here, once.

    ``prefix`` is the first segment of its counter keys (and of the nested document in an aggregate);
    ``counter_pattern`` is a regular expression of those keys; ``forms`` shows its metric keys in
    messages; ``since`` is the registry version that added it. Counters are integers so that merging
    is addition and erasure subtraction, exactly.
    """

    prefix: ClassVar[str]
    counter_pattern: ClassVar[str]
    forms: ClassVar[tuple[str, ...]]
    # A feedback counted before the family existed is erased without it: it never added its counters.
    since: ClassVar[int] = 1

    @abstractmethod
    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """The counters one feedback adds (nothing when it carries none of the family's facts)."""

    def parse(self, metric: str) -> MetricKey | None:
        """The parsed key if ``metric`` is one of the family's metrics, else None (by default: one of ``forms``)."""
        return MetricKey(metric, self) if metric in self.forms else None

    @abstractmethod
    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The metric's value in its own unit with its interval; None without data."""

    @abstractmethod
    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """The value on 0–100, 100 best (clipped by the caller)."""


def moment_counters(prefix: str, value: int, *, histogram: bool = False) -> Iterator[Counter]:
    """Count, sum, sum of squares (and optionally the histogram bin) of one integer value."""
    yield f"{prefix}.n", 1
    yield f"{prefix}.sum", value
    yield f"{prefix}.sumsq", value * value
    if histogram:
        yield f"{prefix}.h.{value}", 1


def fixed_point(value: float, scale: int = FIXED_POINT) -> int:
    """A fractional value as an integer count of 1/scale."""
    return round(value * scale)


def alternatives(choices: tuple[object, ...]) -> str:
    """A regular expression group matching exactly one of ``choices``."""
    return "(" + "|".join(str(choice) for choice in choices) + ")"


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """ValueError naming the choices unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")


def moments_pattern(prefix: str) -> str:
    """The counter keys ``moment_counters`` writes under a regular-expression prefix, without histogram."""
    return rf"{prefix}\.(n|sum|sumsq)"


def rating_pattern(prefix: str, scale: tuple[int, int]) -> str:
    """The counter keys of a rating on an integer scale: moments and one histogram bin per rating."""
    return rf"{prefix}\.(n|sum|sumsq|h\.{alternatives(tuple(range(scale[0], scale[1] + 1)))})"


def on_scale(value: float, scale: tuple[float, float], direction: Direction = Direction.HIGHER_IS_BETTER) -> float:
    """A value on a bounded scale mapped linearly onto 0–100, the better end at 100."""
    low, high = scale
    if direction is Direction.LOWER_IS_BETTER:
        return (high - value) / (high - low) * 100
    return (value - low) / (high - low) * 100
