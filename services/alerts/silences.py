"""Silences: matchers over rule, unit subtree, indicator and level, active in absolute, weekly or calendar
windows in the organisation's time zone. A silenced alert is recorded but not notified."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from services.alerts.rules.base import Level
from shared.tree import WHOLE_ORGANISATION, in_subtree

Clock = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
DAYS_LOOKED_AHEAD = 400


class Matchers(BaseModel):
    """Which alerts a silence covers: every given matcher must match (an empty list matches all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: str = Field(default=WHOLE_ORGANISATION, min_length=1, max_length=500, description="Unit subtree")
    rule_ids: list[str] = Field(default_factory=list, max_length=100)
    indicators: list[str] = Field(default_factory=list, max_length=100)
    levels: list[Level] = Field(default_factory=list, max_length=4)


class WeeklyWindow(BaseModel):
    """A window on some days of every week, e.g. Saturday and Sunday 00:00–24:00 (days: 0 Monday … 6 Sunday)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1, max_length=7)
    start: Clock = "00:00"
    end: Clock = "24:00"

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError("end must be after start (use two windows to span midnight)")
        return self


class SilenceSpec(BaseModel):
    """When a silence holds: between ``starts_at`` and ``ends_at``, and, if recurring, only inside its
    weekly windows or on its calendar dates (whole days), in ``timezone`` (default: the organisation's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matchers: Matchers = Matchers()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekly: list[WeeklyWindow] = Field(default_factory=list, max_length=50)
    dates: list[date] = Field(default_factory=list, max_length=366)
    timezone: str | None = Field(default=None, description="IANA time zone, e.g. Asia/Shanghai")
    comment: str = Field(default="", max_length=2000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone offset, e.g. 2026-03-01T09:00:00+08:00")
        return value

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if not self.recurring and (self.starts_at is None or self.ends_at is None):
            raise ValueError("a silence needs starts_at and ends_at, or weekly windows or dates")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    @property
    def recurring(self) -> bool:
        """Whether the silence holds only inside weekly windows or on calendar dates."""
        return bool(self.weekly or self.dates)


def zone(name: str) -> ZoneInfo:
    """An IANA time zone; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


@dataclass(frozen=True)
class AlertFacts:
    """What silences and inhibition look at in an alert."""

    rule_id: str
    unit_path: str
    indicator: str
    level: str


def matches(spec: SilenceSpec, alert: AlertFacts) -> bool:
    """Whether the silence's matchers cover the alert."""
    m = spec.matchers
    return (
        in_subtree(alert.unit_path, m.scope)
        and (not m.rule_ids or alert.rule_id in m.rule_ids)
        and (not m.indicators or alert.indicator in m.indicators)
        and (not m.levels or alert.level in m.levels)
    )


def intervals(spec: SilenceSpec, around: datetime, org_zone: str) -> Iterable[tuple[datetime, datetime]]:
    """The silence's active intervals (UTC, in order) from the day before ``around`` on."""
    lower = spec.starts_at or datetime.min.replace(tzinfo=UTC)
    upper = spec.ends_at or datetime.max.replace(tzinfo=UTC)
    if not spec.recurring:
        yield lower, upper
        return
    tz = zone(spec.timezone or org_zone)
    first = around.astimezone(tz).date() - timedelta(days=1)
    for offset in range(DAYS_LOOKED_AHEAD):
        day = first + timedelta(days=offset)
        for start, end in _day_windows(spec, day):
            begins = datetime.combine(day, time(), tz) + timedelta(minutes=start)
            ends = datetime.combine(day, time(), tz) + timedelta(minutes=end)
            begins, ends = max(begins.astimezone(UTC), lower), min(ends.astimezone(UTC), upper)
            if begins < ends:
                yield begins, ends
        if datetime.combine(day, time(), tz) > upper:
            return


def active(spec: SilenceSpec, at: datetime, org_zone: str) -> bool:
    """Whether the silence holds at ``at``."""
    return current_end(spec, at, org_zone) is not None


def current_end(spec: SilenceSpec, at: datetime, org_zone: str) -> datetime | None:
    """When the window holding at ``at`` ends (None when the silence does not hold then)."""
    for begins, ends in intervals(spec, at, org_zone):
        if begins <= at < ends:
            return ends
        if begins > at:
            return None
    return None


def next_end(spec: SilenceSpec, after: datetime, org_zone: str) -> datetime | None:
    """The end of the next (or current) window after ``after``: when held-back alerts are notified."""
    for _, ends in intervals(spec, after, org_zone):
        if ends > after:
            return None if ends.year == datetime.max.year else ends
    return None


def _day_windows(spec: SilenceSpec, day: date) -> list[tuple[int, int]]:
    """Minutes after local midnight of the windows on ``day``, merged when adjacent."""
    windows = [(0, 24 * 60)] if day in spec.dates else []
    windows += [(_minutes(w.start), _minutes(w.end)) for w in spec.weekly if day.weekday() in w.days]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)
