"""SLO burn rate with the Google SRE Workbook's multiwindow, multi-burn-rate alerts, on CSAT ratings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.alerts.rules.base import UNCHANGED, Feedback, RuleParams, State, Verdict

KIND = "burn_rate"
SOURCE = "feedback"
# Ratings are counted in 5-minute buckets: as fine as the shortest window the Workbook uses.
BUCKET_SECONDS = 300


class Window(BaseModel):
    """A burn rate that fires when both its long and its short window burn at least that fast."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    burn_rate: float = Field(gt=0, le=1000, allow_inf_nan=False)
    long_seconds: int = Field(ge=BUCKET_SECONDS, le=90 * 86400)
    short_seconds: int = Field(ge=BUCKET_SECONDS, le=90 * 86400)

    @model_validator(mode="after")
    def _short_inside_long(self) -> Self:
        if self.short_seconds >= self.long_seconds:
            raise ValueError("short_seconds must be shorter than long_seconds")
        return self


WORKBOOK_WINDOWS = [
    Window(burn_rate=14.4, long_seconds=3600, short_seconds=300),
    Window(burn_rate=6, long_seconds=6 * 3600, short_seconds=1800),
    Window(burn_rate=1, long_seconds=3 * 86400, short_seconds=6 * 3600),
]


class Params(RuleParams):
    """An objective for the share of good CSAT ratings and the burn rates that page."""

    kind: Literal["burn_rate"]
    indicator: Literal["csat"] = "csat"
    good_at_least: int = Field(default=4, ge=1, le=5, description="A CSAT rating at or above this is good")
    objective: float = Field(default=0.99, gt=0, lt=1, description="Share of good ratings promised, e.g. 0.99")
    slo_days: int = Field(default=30, ge=1, le=365, description="The SLO's compliance period")
    windows: list[Window] = Field(default_factory=lambda: list(WORKBOOK_WINDOWS), min_length=1, max_length=6)
    min_samples: int = Field(default=10, ge=1, le=1_000_000, description="Ratings the long window needs")

    @model_validator(mode="after")
    def _windows_can_fire(self) -> Self:
        for index, window in enumerate(self.windows):
            if window.burn_rate * (1 - self.objective) > 1:
                raise ValueError(
                    f"windows.{index}.burn_rate: {window.burn_rate:g} × (1 − {self.objective:g}) exceeds an error "
                    "ratio of 1, so this window could never fire; lower it or raise the objective"
                )
            if window.long_seconds > self.slo_days * 86400:
                raise ValueError(f"windows.{index}.long_seconds: longer than the SLO's {self.slo_days} days")
        return self


@dataclass(frozen=True)
class Ratio:
    """Bad and total ratings in a window."""

    bad: int
    total: int

    @property
    def error_ratio(self) -> float:
        """The share of bad ratings (0 on no ratings)."""
        return self.bad / self.total if self.total else 0.0


def bucket_of(moment: datetime) -> int:
    """The start (epoch seconds) of the bucket a moment falls in."""
    epoch = int(moment.timestamp())
    return epoch - epoch % BUCKET_SECONDS


def window_ratio(buckets: Mapping[str, list[int]], at: datetime, seconds: int) -> Ratio:
    """Bad and total ratings in the buckets of the ``seconds`` up to ``at``."""
    since = bucket_of(at) - seconds + BUCKET_SECONDS
    bad = total = 0
    for start, (good, count) in buckets.items():
        if since <= int(start) <= bucket_of(at):
            bad, total = bad + count - good, total + count
    return Ratio(bad, total)


def burning(params: Params, buckets: Mapping[str, list[int]], at: datetime) -> tuple[Window, Ratio] | None:
    """The first window pair whose long and short windows both burn at least its rate."""
    for window in params.windows:
        limit = window.burn_rate * (1 - params.objective)
        long, short = window_ratio(buckets, at, window.long_seconds), window_ratio(buckets, at, window.short_seconds)
        if long.total >= params.min_samples and long.error_ratio >= limit and short.error_ratio >= limit:
            return window, long
    return None


def evaluate(params: Params, state: State, feedback: Feedback, *, firing: bool) -> tuple[Verdict, State]:
    """Count a CSAT rating into its bucket, then check every window pair."""
    if feedback.csat is None:
        return UNCHANGED, state
    buckets = {k: list(v) for k, v in state.get("buckets", {}).items()}
    key = str(bucket_of(feedback.at))
    good, total = buckets.get(key, [0, 0])
    buckets[key] = [good + (feedback.csat >= params.good_at_least), total + 1]
    return _decide(params, {**state, "buckets": buckets}, feedback.at, firing=firing)


def recheck(params: Params, state: State, at: datetime, *, firing: bool) -> tuple[Verdict, State]:
    """Time passing slides the windows: check again without a new rating."""
    return _decide(params, state, at, firing=firing)


def _decide(params: Params, state: State, at: datetime, *, firing: bool) -> tuple[Verdict, State]:
    longest = max(w.long_seconds for w in params.windows)
    kept = {k: v for k, v in state.get("buckets", {}).items() if int(k) > bucket_of(at) - longest}
    state = {**state, "buckets": kept}
    burn = burning(params, kept, at)
    shortest = min(w.short_seconds for w in params.windows)
    recheck_at = at + timedelta(seconds=shortest) if firing or burn else None
    if burn is not None and not firing:
        return _verdict(params, burn, holds=True, recheck_at=recheck_at), state
    if burn is None and firing:
        return Verdict(holds=False, reason="no window pair burns any more"), state
    return Verdict(holds=None, recheck_at=recheck_at), state


def _verdict(params: Params, burn: tuple[Window, Ratio], *, holds: bool, recheck_at: datetime | None) -> Verdict:
    window, ratio = burn
    # In the indicator's own unit (the share of good ratings, %), like score.updated's csat.
    floor = 100 * (1 - window.burn_rate * (1 - params.objective))
    return Verdict(
        holds=holds,
        value=100 * (1 - ratio.error_ratio),
        threshold=floor,
        clear_bound=floor,
        comparison="below",
        sample_size=ratio.total,
        reason=f"burning {ratio.error_ratio / (1 - params.objective):.1f}× the error budget "
        f"over {window.long_seconds}s and {window.short_seconds}s",
        recheck_at=recheck_at,
        details={"burn_rate": window.burn_rate, "long_seconds": window.long_seconds},
    )
