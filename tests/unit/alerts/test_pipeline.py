"""Silences (absolute, weekly, calendar, in the organisation's time zone), grouping, inhibition, escalation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.alerts import escalation, grouping, inhibition, silences
from services.alerts.silences import AlertFacts, Matchers, SilenceSpec, WeeklyWindow

SHANGHAI = "Asia/Shanghai"
ALERT = AlertFacts(rule_id="r1", unit_path="north/b-001", indicator="csat", level="orange")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_silence__an_absolute_window_holds_between_its_bounds_only():
    spec = SilenceSpec(starts_at=utc(2026, 3, 2, 9), ends_at=utc(2026, 3, 2, 11))
    assert not silences.active(spec, utc(2026, 3, 2, 8, 59), SHANGHAI)
    assert silences.active(spec, utc(2026, 3, 2, 9), SHANGHAI)
    assert not silences.active(spec, utc(2026, 3, 2, 11), SHANGHAI)
    assert silences.current_end(spec, utc(2026, 3, 2, 10), SHANGHAI) == utc(2026, 3, 2, 11)


def test_silence__a_weekly_window_holds_in_the_organisations_time_zone():
    # Saturdays 09:00–18:00 in Shanghai (UTC+8) are 01:00–10:00 UTC.
    spec = SilenceSpec(weekly=[WeeklyWindow(days=[5], start="09:00", end="18:00")])
    saturday = date(2026, 3, 7)
    assert saturday.weekday() == 5
    assert not silences.active(spec, utc(2026, 3, 7, 0, 59), SHANGHAI)
    assert silences.active(spec, utc(2026, 3, 7, 1, 0), SHANGHAI)
    assert silences.active(spec, utc(2026, 3, 7, 9, 59), SHANGHAI)
    assert not silences.active(spec, utc(2026, 3, 7, 10, 0), SHANGHAI)
    assert not silences.active(spec, utc(2026, 3, 8, 2, 0), SHANGHAI)  # Sunday
    assert silences.active(spec, utc(2026, 3, 7, 1, 0), "UTC") is False  # 01:00 UTC is before 09:00 UTC


def test_silence__its_own_time_zone_wins_over_the_organisations():
    spec = SilenceSpec(weekly=[WeeklyWindow(days=[5], start="09:00", end="18:00")], timezone="Europe/Berlin")
    assert silences.active(spec, utc(2026, 3, 7, 8, 30), SHANGHAI)  # 09:30 in Berlin (UTC+1 in March)


def test_silence__calendar_dates_hold_whole_local_days():
    spec = SilenceSpec(dates=[date(2026, 10, 1)])
    assert silences.active(spec, utc(2026, 9, 30, 16, 0), SHANGHAI)  # 00:00 on 1 October in Shanghai
    assert not silences.active(spec, utc(2026, 9, 30, 15, 59), SHANGHAI)
    assert silences.current_end(spec, utc(2026, 10, 1, 3), SHANGHAI) == utc(2026, 10, 1, 16)


def test_silence__a_recurring_silence_is_bounded_by_its_start_and_end():
    spec = SilenceSpec(weekly=[WeeklyWindow(days=list(range(7)))], starts_at=utc(2026, 3, 2), ends_at=utc(2026, 3, 3))
    assert silences.active(spec, utc(2026, 3, 2, 12), "UTC")
    assert not silences.active(spec, utc(2026, 3, 4, 12), "UTC")


def test_silence__next_end_is_when_held_back_alerts_go_out():
    spec = SilenceSpec(weekly=[WeeklyWindow(days=[0], start="12:00", end="13:00")])
    assert silences.next_end(spec, utc(2026, 3, 2, 9), "UTC") == utc(2026, 3, 2, 13)  # a Monday


def test_silence__matchers_cover_rule_subtree_indicator_and_level():
    assert silences.matches(SilenceSpec(dates=[date(2026, 1, 1)], matchers=Matchers(scope="north")), ALERT)
    assert not silences.matches(SilenceSpec(dates=[date(2026, 1, 1)], matchers=Matchers(scope="south")), ALERT)
    assert not silences.matches(SilenceSpec(dates=[date(2026, 1, 1)], matchers=Matchers(rule_ids=["r2"])), ALERT)
    assert not silences.matches(SilenceSpec(dates=[date(2026, 1, 1)], matchers=Matchers(levels=["red"])), ALERT)
    assert silences.matches(SilenceSpec(dates=[date(2026, 1, 1)], matchers=Matchers(indicators=["csat"])), ALERT)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "starts_at and ends_at"),
        ({"starts_at": "2026-03-02T10:00:00Z", "ends_at": "2026-03-02T09:00:00Z"}, "after starts_at"),
        ({"dates": ["2026-01-01"], "timezone": "Mars/Olympus"}, "timezone"),
        ({"weekly": [{"days": [1], "start": "18:00", "end": "09:00"}]}, "weekly"),
        ({"starts_at": "2026-03-02T10:00:00", "ends_at": "2026-03-02T11:00:00"}, "starts_at"),
    ],
)
def test_silence__bad_input_names_the_problem(body, field):
    with pytest.raises(ValidationError, match=field):
        SilenceSpec.model_validate(body)


def test_grouping__a_region_and_its_branches_share_one_group():
    keys = {grouping.group_key("r1", path, 1) for path in ("north", "north/b-001", "north/beijing/b-002")}
    assert keys == {grouping.group_key("r1", "north", 1)}
    assert grouping.group_key("r1", "south/b-003", 1) not in keys
    assert grouping.group_key("r2", "north/b-001", 1) not in keys


def test_grouping__depth_zero_groups_the_whole_scope_and_deeper_depths_split_it():
    assert grouping.group_root("north/b-001", 0) == "*"
    assert grouping.group_root("north/beijing/b-001", 2) == "north/beijing"
    assert grouping.group_root("north", 2) == "north"


def test_grouping__names_units_shallowest_first():
    assert grouping.paths_named(["north/b-2", "north", "north/b-1", "north"]) == ["north", "north/b-1", "north/b-2"]


def test_inhibition__a_red_alert_holds_back_lower_levels_on_the_same_indicator_beneath_it():
    red = AlertFacts(rule_id="r9", unit_path="north", indicator="csat", level="red")
    assert inhibition.inhibited(ALERT, [red])
    assert not inhibition.inhibited(AlertFacts("r1", "south/b-1", "csat", "orange"), [red])
    assert not inhibition.inhibited(AlertFacts("r1", "north/b-1", "nps", "orange"), [red])
    assert not inhibition.inhibited(AlertFacts("r1", "north/b-1", "csat", "red"), [red])
    assert not inhibition.inhibited(ALERT, [AlertFacts("r9", "north", "csat", "orange")])


def test_escalation__repeats_are_written_out_and_each_step_waits_after_the_previous():
    steps = [
        escalation.Step(wait_minutes=15, notify=["role:unit_manager"]),
        escalation.Step(wait_minutes=30, notify=["owner_up", "user:li.wei"], repeat=1),
    ]
    fired = utc(2026, 3, 2, 9)
    assert len(escalation.expanded(steps)) == 3
    assert escalation.due_at(fired, steps, 0) == fired + timedelta(minutes=15)
    assert escalation.due_at(fired, steps, 2) == fired + timedelta(minutes=30)
    assert escalation.due_at(fired, steps, 3) is None
    assert escalation.targets(steps[1], "north/b-001") == ["owner:north", "user:li.wei"]


def test_escalation__bad_targets_are_refused():
    with pytest.raises(ValidationError, match="notify"):
        escalation.Step(wait_minutes=5, notify=["everyone"])
