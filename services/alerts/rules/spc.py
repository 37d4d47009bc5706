"""Statistical process control on an indicator's per-period series: Shewhart with Western Electric rules,
EWMA and CUSUM, with the centre line and σ given or estimated from a baseline of periods."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from services.alerts.rules.base import UNCHANGED, Observation, Point, RuleParams, State, Verdict

KIND = "spc"
SOURCE = "score"
# d2 for a moving range of two: σ of individuals estimated as the mean moving range / 1.128.
D2 = 1.128
RECENT = 8
Side = Literal["low", "high"]


class Params(RuleParams):
    """A control chart over completed periods (hour, day or week) of one indicator."""

    kind: Literal["spc"]
    period: Literal["hour", "day", "week"] = "day"
    chart: Literal["shewhart", "ewma", "cusum"] = "shewhart"
    centre: float | None = Field(default=None, allow_inf_nan=False, description="Centre line; else estimated")
    sigma: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Process σ; else estimated")
    baseline_periods: int = Field(default=20, ge=5, le=500, description="Periods that estimate centre and σ")
    lambda_: float = Field(default=0.2, gt=0, le=1, alias="lambda", description="EWMA weight of the newest point")
    width: float = Field(default=3.0, gt=0, le=6, description="EWMA limits in σ of the EWMA statistic (L)")
    k: float = Field(default=0.5, ge=0, le=5, description="CUSUM allowance in σ")
    h: float = Field(default=5.0, gt=0, le=50, description="CUSUM decision interval in σ")
    western_electric: list[Literal[1, 2, 3, 4]] = Field(default=[1, 2, 3, 4], description="Shewhart run rules")
    sides: Literal["low", "high", "both"] = Field(default="low", description="Which departures fire")
    min_samples: int = Field(default=5, ge=1, le=1_000_000, description="Samples a period needs to count")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _centre_and_sigma_together(self) -> Self:
        if (self.centre is None) != (self.sigma is None):
            raise ValueError("give both centre and sigma, or neither to estimate them from baseline_periods")
        if self.chart == "shewhart" and not self.western_electric:
            raise ValueError("a Shewhart chart needs at least one Western Electric rule")
        return self


def estimate(values: Sequence[float]) -> tuple[float, float]:
    """Centre line (mean) and σ (mean moving range / d2) of individuals."""
    centre = sum(values) / len(values)
    ranges = [abs(b - a) for a, b in itertools.pairwise(values)]
    sigma = (sum(ranges) / len(ranges)) / D2 if ranges else 0.0
    return centre, sigma


def ewma_series(values: Sequence[float], centre: float, lam: float) -> list[float]:
    """The EWMA statistic of each value, starting from the centre line."""
    out, current = [], centre
    for value in values:
        current = lam * value + (1 - lam) * current
        out.append(current)
    return out


def ewma_limits(centre: float, sigma: float, lam: float, width: float) -> tuple[float, float]:
    """Steady-state EWMA control limits: centre ± L·σ·√(λ/(2−λ))."""
    spread = width * sigma * math.sqrt(lam / (2 - lam))
    return centre - spread, centre + spread


def cusum_step(high: float, low: float, z: float, k: float) -> tuple[float, float]:
    """One tabular CUSUM step on a standardised value: the upper and lower sums."""
    return max(0.0, high + z - k), max(0.0, low - z - k)


def western_electric(zs: Sequence[float], rules: Sequence[int] = (1, 2, 3, 4)) -> list[tuple[int, Side]]:
    """The Western Electric rules the newest standardised point breaks, with the side it breaks them on."""
    broken: list[tuple[int, Side]] = []
    sides: tuple[tuple[Side, int], ...] = (("low", -1), ("high", 1))
    for side, sign in sides:
        beyond = [sign * z for z in zs]
        checks = {
            1: len(beyond) >= 1 and beyond[-1] > 3,
            2: len(beyond) >= 3 and beyond[-1] > 2 and sum(b > 2 for b in beyond[-3:]) >= 2,
            3: len(beyond) >= 5 and beyond[-1] > 1 and sum(b > 1 for b in beyond[-5:]) >= 4,
            4: len(beyond) >= 8 and all(b > 0 for b in beyond[-8:]),
        }
        broken += [(rule, side) for rule in rules if checks[rule]]
    return broken


@dataclass(frozen=True)
class Signal:
    """An out-of-control signal on one point: which test, on which side, against which limit."""

    test: str
    side: Side
    limit: float


def evaluate(params: Params, state: State, observation: Observation, *, firing: bool) -> tuple[Verdict, State]:
    """Run the chart over the completed periods it has not seen; the newest one decides."""
    state = dict(state)
    done = datetime.fromisoformat(state["done"]) if state.get("done") else None
    fresh = [p for p in observation.history if done is None or p.at > done]
    decided: tuple[Point, Signal | None] | None = None
    for point in fresh:
        state["done"] = point.at.isoformat()
        if not point.usable(params.min_samples):
            continue
        outcome = _step(params, state, float(point.value or 0))
        if outcome is not False:
            decided = (point, outcome or None)
    if decided is None:
        return UNCHANGED, state
    point, signal = decided
    if signal is not None and not firing:
        return _verdict(params, state, point, signal, holds=True), state
    if signal is None and firing:
        return _verdict(params, state, point, None, holds=False), state
    return UNCHANGED, state


def _step(params: Params, state: State, value: float) -> Signal | Literal[False] | None:
    """Feed one value to the chart; False while the baseline is still being gathered."""
    if params.centre is not None and params.sigma is not None:
        centre, sigma = params.centre, params.sigma
    elif state.get("sigma"):
        centre, sigma = state["centre"], state["sigma"]
    else:
        gathered = [*state.get("baseline", []), value]
        state["baseline"] = gathered
        if len(gathered) >= params.baseline_periods:
            state["centre"], state["sigma"] = estimate(gathered)
            if not state["sigma"]:
                state["baseline"] = gathered[1:]  # a flat baseline has no σ yet: keep gathering
        return False
    z = (value - centre) / sigma
    signals = _signals(params, state, value, z, centre, sigma)
    wanted = [s for s in signals if params.sides in ("both", s.side)]
    return wanted[0] if wanted else None


def _signals(params: Params, state: State, value: float, z: float, centre: float, sigma: float) -> list[Signal]:
    if params.chart == "ewma":
        statistic = params.lambda_ * value + (1 - params.lambda_) * state.get("ewma", centre)
        state["ewma"] = statistic
        low, high = ewma_limits(centre, sigma, params.lambda_, params.width)
        return _beyond("ewma", statistic < low, low, statistic > high, high)
    if params.chart == "cusum":
        state["high"], state["low"] = cusum_step(state.get("high", 0.0), state.get("low", 0.0), z, params.k)
        limit = params.h * sigma
        return _beyond("cusum", state["low"] > params.h, centre - limit, state["high"] > params.h, centre + limit)
    recent = [*state.get("recent", []), z][-RECENT:]
    state["recent"] = recent
    bounds = {1: 3.0, 2: 2.0, 3: 1.0, 4: 0.0}
    return [
        Signal(f"western_electric_{rule}", side, centre + (bounds[rule] if side == "high" else -bounds[rule]) * sigma)
        for rule, side in western_electric(recent, params.western_electric)
    ]


def _beyond(test: str, low: bool, low_limit: float, high: bool, high_limit: float) -> list[Signal]:
    signals = [Signal(test, "low", low_limit)] if low else []
    return signals + ([Signal(test, "high", high_limit)] if high else [])


def _verdict(params: Params, state: State, point: Point, signal: Signal | None, *, holds: bool) -> Verdict:
    centre = params.centre if params.centre is not None else state.get("centre", 0.0)
    sigma = params.sigma if params.sigma is not None else state.get("sigma", 0.0)
    side = signal.side if signal else state.get("side", "low")
    state["side"] = side
    return Verdict(
        holds=holds,
        value=point.value,
        threshold=signal.limit if signal else None,
        # Recovery means back within 2σ of the centre line on the side that signalled.
        clear_bound=centre - 2 * sigma if side == "low" else centre + 2 * sigma,
        comparison="below" if side == "low" else "above",
        sample_size=point.sample_size,
        reason=f"{signal.test} on the {side} side" if signal else "back in control",
        details={"centre": centre, "sigma": sigma, "test": signal.test if signal else None},
    )
