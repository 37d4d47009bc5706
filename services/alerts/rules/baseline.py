"""Drop against a baseline: the current period against the previous one or a trailing average."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from services.alerts.rules.base import UNCHANGED, Observation, Point, RuleParams, State, Verdict

KIND = "baseline"
SOURCE = "score"


class Params(RuleParams):
    """How far the current period may fall (or rise) from its baseline, in points or percent."""

    kind: Literal["baseline"]
    period: Literal["hour", "day", "week", "month"] = "day"
    baseline: Literal["previous", "trailing"] = "previous"
    trailing_periods: int = Field(default=4, ge=2, le=52, description="Periods averaged by a trailing baseline")
    direction: Literal["drop", "rise"] = "drop"
    change: float = Field(gt=0, allow_inf_nan=False, description="The change that fires, in points or percent")
    change_unit: Literal["points", "percent"] = "points"
    clear_change: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="The change below which it clears; default half"
    )
    min_samples: int = Field(default=5, ge=1, le=1_000_000, description="On each side: current and baseline")

    @model_validator(mode="after")
    def _clear_below_fire(self) -> Self:
        if self.clear_change is not None and self.clear_change > self.change:
            raise ValueError("clear_change must not exceed change")
        return self


def baseline_value(params: Params, history: tuple[Point, ...]) -> tuple[float, int] | None:
    """The baseline and its sample size, from the completed periods before the current one."""
    usable = [p for p in history if p.value is not None and not p.insufficient]
    window = usable[-1:] if params.baseline == "previous" else usable[-params.trailing_periods :]
    total = sum(p.sample_size for p in window)
    if not window or total < params.min_samples:
        return None
    # Weighted by sample size: a quiet day does not count as much as a busy one.
    return sum((p.value or 0) * p.sample_size for p in window) / total, total


def bound(params: Params, base: float, change: float) -> float:
    """The value at which the given change from the baseline is reached."""
    delta = change if params.change_unit == "points" else abs(base) * change / 100
    return base - delta if params.direction == "drop" else base + delta


def evaluate(params: Params, state: State, observation: Observation, *, firing: bool) -> tuple[Verdict, State]:
    """Fire when the current period has moved ``change`` from the baseline; clear below ``clear_change``."""
    point = observation.point
    base = baseline_value(params, observation.history)
    if not point.usable(params.min_samples) or base is None:
        return UNCHANGED, state
    assert point.value is not None
    value, (reference, reference_samples) = point.value, base
    threshold = bound(params, reference, params.change)
    clearing = bound(params, reference, params.change / 2 if params.clear_change is None else params.clear_change)
    worse = value <= threshold if params.direction == "drop" else value >= threshold
    better = value > clearing if params.direction == "drop" else value < clearing
    holds = True if worse and not firing else False if firing and better else None
    if holds is None:
        return UNCHANGED, state
    return (
        Verdict(
            holds=holds,
            value=value,
            threshold=threshold,
            clear_bound=clearing,
            comparison="below" if params.direction == "drop" else "above",
            sample_size=point.sample_size,
            reason=f"{params.indicator} {value:g} against a baseline of {reference:g}",
            details={"baseline": reference, "baseline_sample_size": reference_samples},
        ),
        state,
    )
