"""Due dates from the organisation's deadline per level, in business hours where it has a calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.improvement.domain.deadlines import BusinessCalendar, Deadlines, NoWorkingTime

SHANGHAI = BusinessCalendar(
    timezone="Asia/Shanghai",
    start=time(9, 0),
    end=time(18, 0),
    # 2026 National Day holiday, with Sunday 27 September a make-up working day (调休).
    holidays=frozenset(date(2026, 10, d) for d in range(1, 9)),
    extra_workdays=frozenset({date(2026, 9, 27)}),
)


def cst(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A moment given in China Standard Time (UTC+8), as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_without_a_calendar__clock_hours_by_level():
    deadlines = Deadlines()
    raised = datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert deadlines.due_at("red", raised) == raised + timedelta(days=1)
    assert deadlines.due_at("orange", raised) < deadlines.due_at("yellow", raised) < deadlines.due_at("blue", raised)


def test_the_organisations_own_deadlines_replace_the_defaults():
    raised = datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert Deadlines(hours={"red": 2}).due_at("red", raised) == raised + timedelta(hours=2)


def test_business_hours__within_the_same_day():
    deadlines = Deadlines(hours={"red": 4}, calendar=SHANGHAI)
    assert deadlines.due_at("red", cst(2026, 11, 25, 10, 0)) == cst(2026, 11, 25, 14, 0)


def test_business_hours__carry_over_to_the_next_morning():
    deadlines = Deadlines(hours={"red": 4}, calendar=SHANGHAI)
    # Wednesday 16:00: two hours today, two tomorrow from 09:00.
    assert deadlines.due_at("red", cst(2026, 11, 25, 16, 0)) == cst(2026, 11, 26, 11, 0)


def test_business_hours__a_breach_at_night_starts_counting_at_opening():
    deadlines = Deadlines(hours={"red": 1}, calendar=SHANGHAI)
    assert deadlines.due_at("red", cst(2026, 11, 25, 23, 30)) == cst(2026, 11, 26, 10, 0)


def test_business_hours__skip_the_weekend():
    deadlines = Deadlines(hours={"orange": 9}, calendar=SHANGHAI)
    # Friday 27 November 14:00: four hours Friday, five on Monday.
    assert deadlines.due_at("orange", cst(2026, 11, 27, 14, 0)) == cst(2026, 11, 30, 14, 0)


def test_business_hours__skip_holidays_and_work_the_make_up_day():
    deadlines = Deadlines(hours={"red": 9}, calendar=SHANGHAI)
    # Saturday 26 September: not worked; Sunday 27 September is a make-up day: the whole day counts.
    assert deadlines.due_at("red", cst(2026, 9, 26, 12, 0)) == cst(2026, 9, 27, 18, 0)
    # Wednesday 30 September 17:00: one hour, then 1–8 October are holidays, Friday 9th resumes.
    assert deadlines.due_at("red", cst(2026, 9, 30, 17, 0)) == cst(2026, 10, 9, 17, 0)


def test_a_calendar_without_working_days_is_refused():
    never = BusinessCalendar(workdays=frozenset())
    with pytest.raises(NoWorkingTime):
        Deadlines(calendar=never).due_at("red", datetime(2026, 1, 1, tzinfo=UTC))


def test_a_working_day_must_end_after_it_starts():
    with pytest.raises(ValueError, match="end after"):
        BusinessCalendar(start=time(18), end=time(9))
