"""Static threshold: above or below a bound, on enough samples, for a while, clearing past a second bound."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Self

from pydantic import Field, model_validator

from services.alerts.rules.base import UNCHANGED, Comparison, Observation, Point, RuleParams, State, Verdict

KIND = "threshold"
SOURCE = "score"


class Params(RuleParams):
    """A bound on one indicator; ``clear_bound`` (hysteresis) is where a firing alert clears."""

    kind: Literal["threshold"] = "threshold"
    comparison: Comparison = "below"
    threshold: float = Field(allow_inf_nan=False)
    clear_bound: float | None = Field(
        default=None, allow_inf_nan=False, description="Where the condition clears; default: the threshold itself"
    )
    min_samples: int = Field(default=5, ge=1, le=1_000_000)
    for_seconds: int = Field(default=0, ge=0, le=30 * 86400, description="How long the condition must hold")

    @model_validator(mode="after")
    def _clear_bound_on_the_good_side(self) -> Self:
        bound = self.clearing()
        if (self.comparison == "below" and bound < self.threshold) or (
            self.comparison == "above" and bound > self.threshold
        ):
            raise ValueError(f"clear_bound must lie on the good side of the threshold ({self.comparison})")
        return self

    def clearing(self) -> float:
        """The bound a firing alert must pass to clear."""
        return self.threshold if self.clear_bound is None else self.clear_bound


def breached(params: Params, value: float) -> bool:
    """Whether a value is on the bad side of the threshold."""
    return value < params.threshold if params.comparison == "below" else value > params.threshold


def cleared(params: Params, value: float) -> bool:
    """Whether a value is back past the clearing bound."""
    bound = params.clearing()
    return value >= bound if params.comparison == "below" else value <= bound


def evaluate(params: Params, state: State, observation: Observation, *, firing: bool) -> tuple[Verdict, State]:
    """Fire once the bound has been crossed for ``for_seconds``; clear only past the clearing bound.

    The state is empty except while a breach waits out its ``for`` (then: since when, and the last figure,
    for the timer to judge), so a steady stream of scores writes no state.
    """
    point = observation.point
    if not point.usable(params.min_samples):
        return UNCHANGED, state
    assert point.value is not None
    value = point.value
    if firing:
        return (_verdict(params, point, holds=False), {}) if cleared(params, value) else (UNCHANGED, state)
    if not breached(params, value):
        return UNCHANGED, {}
    since = datetime.fromisoformat(state["pending_since"]) if state.get("pending_since") else observation.at
    due = since + timedelta(seconds=params.for_seconds)
    if observation.at >= due:
        return _verdict(params, point, holds=True), {}
    pending = {"pending_since": since.isoformat(), "value": value, "sample_size": point.sample_size}
    return Verdict(holds=None, recheck_at=due), pending


def recheck(params: Params, state: State, at: datetime, *, firing: bool) -> tuple[Verdict, State]:
    """Evaluate the last figure again when a ``for`` timer is due (no new score came)."""
    if "value" not in state:
        return UNCHANGED, state
    point = Point(at=at, value=state["value"], sample_size=state["sample_size"])
    return evaluate(params, state, Observation(at=at, point=point), firing=firing)


def _verdict(params: Params, point: Point, *, holds: bool) -> Verdict:
    return Verdict(
        holds=holds,
        value=point.value,
        threshold=params.threshold,
        clear_bound=params.clearing(),
        comparison=params.comparison,
        sample_size=point.sample_size,
        reason=f"{params.indicator} {point.value:g} {params.comparison} {params.threshold:g}",
    )
