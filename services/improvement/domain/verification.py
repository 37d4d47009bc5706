"""Verified closure: a done action counts only once later scores show the fix worked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Comparison = Literal["below", "above"]
Outcome = Literal["watching", "verified", "reopened"]


@dataclass(frozen=True)
class Observation:
    """An indicator's figure for one period of the unit, as the latest score.updated gave it."""

    period_start: datetime
    value: float | None
    sample_size: int
    insufficient: bool = False


@dataclass(frozen=True)
class Watch:
    """What a done action waits for: the indicator back past the clearing bound for ``periods`` periods.

    ``comparison`` is the breach's direction: ``below`` means the rule fired because the value fell
    below its threshold, so recovery is a value at or above the bound.
    """

    indicator: str
    clear_bound: float
    comparison: Comparison
    periods: int
    min_samples: int
    since: datetime
    window_ends: datetime

    def recovered(self, observation: Observation) -> bool:
        """Whether one period's figure is back on the good side of the bound."""
        if observation.value is None:
            return False
        if self.comparison == "below":
            return observation.value >= self.clear_bound
        return observation.value <= self.clear_bound

    def counts(self, observation: Observation) -> bool:
        """Whether a period says anything: it began after the action was done and had enough samples."""
        return (
            observation.period_start >= self.period_floor()
            and not observation.insufficient
            and observation.value is not None
            and observation.sample_size >= self.min_samples
        )

    def period_floor(self) -> datetime:
        """The earliest period that counts: the one the action was done in."""
        return self.since


def infer_comparison(value: float, threshold: float) -> Comparison:
    """The breach's direction when the rule does not say it: a value under the threshold fired a floor."""
    return "below" if value < threshold else "above"


@dataclass(frozen=True)
class Verdict:
    """Where the verification stands: still watching, verified, or reopened, with why."""

    outcome: Outcome
    streak: int
    reason: str


def assess(watch: Watch, observations: Iterable[Observation], *, now: datetime) -> Verdict:
    """Verified after ``periods`` consecutive recovered periods with enough samples; reopened when the window ends.

    Periods with too few samples neither count nor break the run: a quiet week says nothing either way.
    A period's latest figure is the one that counts (observations with the same start: the last wins).
    """
    latest: dict[datetime, Observation] = {}
    for observation in observations:
        latest[observation.period_start] = observation
    streak = 0
    last_value: float | None = None
    for start in sorted(latest):
        observation = latest[start]
        if not watch.counts(observation):
            continue
        last_value = observation.value
        streak = streak + 1 if watch.recovered(observation) else 0
        if streak >= watch.periods:
            return Verdict(
                "verified",
                streak,
                f"{watch.indicator} back past {watch.clear_bound:g} for {streak} consecutive period(s) "
                f"(last {last_value:g})",
            )
    if now >= watch.window_ends:
        seen = "no period with enough samples" if last_value is None else f"last value {last_value:g}"
        return Verdict(
            "reopened",
            streak,
            f"{watch.indicator} was not back past {watch.clear_bound:g} for {watch.periods} consecutive "
            f"period(s) by {watch.window_ends.isoformat()} ({seen}, run of {streak})",
        )
    return Verdict("watching", streak, f"{streak} of {watch.periods} period(s) recovered")
