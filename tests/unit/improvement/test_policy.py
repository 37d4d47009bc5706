"""An organisation's stored settings become its policy, defaults filled in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from services.improvement.domain.policy import DEFAULTS, calendar_from, policy_from, settings_with_defaults


def test_nothing_stored__the_defaults():
    policy = policy_from({})
    assert policy.default_owner is None
    assert policy.deadlines.calendar is None
    assert policy.deadlines.hours["red"] == 24
    assert policy.verification_periods == DEFAULTS["verification_periods"]
    assert policy.verification_window == timedelta(days=14)


def test_stored_deadlines_are_merged_level_by_level():
    merged = settings_with_defaults({"deadline_hours": {"red": 2}, "unknown": 1})
    assert merged["deadline_hours"] == {"red": 2, "orange": 72, "yellow": 168, "blue": 336}
    assert "unknown" not in merged


def test_the_calendar_counts_only_when_switched_on():
    stored = {
        "calendar": {"timezone": "Asia/Shanghai", "start": "09:00:00", "end": "17:30:00", "holidays": ["2026-10-01"]},
        "deadline_hours": {"red": 1},
    }
    assert policy_from(stored).deadlines.calendar is None
    policy = policy_from({**stored, "use_calendar": True})
    calendar = policy.deadlines.calendar
    assert calendar is not None and calendar.end == time(17, 30) and date(2026, 10, 1) in calendar.holidays
    # Thursday 1 October 2026 is a holiday: a breach at 10:00 that day is due Friday at 10:00 (CST).
    raised = datetime(2026, 10, 1, 2, tzinfo=UTC)
    assert policy.deadlines.due_at("red", raised) == datetime(2026, 10, 2, 2, tzinfo=UTC)


def test_calendar_from__defaults():
    calendar = calendar_from({})
    assert calendar.timezone == "UTC" and calendar.workdays == frozenset({0, 1, 2, 3, 4})
