"""Due dates: the organisation's deadline per warning level, counted in business hours where it has a calendar."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Hours the responsible person has, by warning level, until the organisation sets its own.
DEFAULT_DEADLINE_HOURS: Mapping[str, float] = {"red": 24, "orange": 72, "yellow": 168, "blue": 336}
# A calendar is searched at most this far ahead for working time; a calendar with no working day in
# it (every day a holiday) is an error rather than an endless loop.
MAX_SEARCH_DAYS = 3 * 366


class NoWorkingTime(ValueError):
    """The calendar has no working time in the period searched."""


@dataclass(frozen=True)
class BusinessCalendar:
    """An organisation's working days and hours, holidays and make-up working days (调休)."""

    timezone: str = "UTC"
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    start: time = time(9, 0)
    end: time = time(18, 0)
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a working day must end after it starts")

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is worked: a listed make-up day, or a usual workday that is not a holiday."""
        if day in self.extra_workdays:
            return True
        return day.weekday() in self.workdays and day not in self.holidays

    def add_working_time(self, moment: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of working time after ``moment`` (in UTC, like ``moment``)."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        remaining = duration
        day = local.date()
        for _ in range(MAX_SEARCH_DAYS):
            if self.is_workday(day):
                opens = datetime.combine(day, self.start, zone)
                closes = datetime.combine(day, self.end, zone)
                begin = max(opens, local)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(moment.tzinfo)
                    remaining -= available
            day += timedelta(days=1)
        raise NoWorkingTime(f"no working time within {MAX_SEARCH_DAYS} days of {moment.isoformat()}")


@dataclass(frozen=True)
class Deadlines:
    """The organisation's deadline per level (hours) and, if set, the calendar they are counted in."""

    hours: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DEADLINE_HOURS))
    calendar: BusinessCalendar | None = None

    def due_at(self, level: str, raised_at: datetime) -> datetime:
        """When an action for a breach of ``level`` raised at ``raised_at`` is due."""
        hours = self.hours.get(level, DEFAULT_DEADLINE_HOURS.get(level, DEFAULT_DEADLINE_HOURS["yellow"]))
        return self.after(raised_at, timedelta(hours=hours))

    def after(self, moment: datetime, duration: timedelta) -> datetime:
        """``duration`` after ``moment``: working time if the organisation has a calendar, else clock time."""
        if self.calendar is None:
            return moment + duration
        return self.calendar.add_working_time(moment, duration)
