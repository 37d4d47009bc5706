"""PDCA plans, the 5×5 risk rating and playbooks, and the improvement figures on worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.improvement.domain.figures import ActionFacts, figures, percentile
from services.improvement.domain.plans import PhaseRefused, Target, move, progress, reached
from services.improvement.domain.risks import PlaybookStep, firing_outcome, matrix, rating, run_playbook

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def test_plan__goes_round_plan_do_check_act():
    assert move("plan", "do", learning=None) == "do"
    assert move("do", "check", learning=None) == "check"
    assert move("check", "act", learning="queue time halved") == "act"
    assert move("act", "plan", learning="standardise the rota") == "plan"
    assert move("act", "closed", learning="done") == "closed"


@pytest.mark.parametrize(("current", "target"), [("plan", "check"), ("do", "act"), ("closed", "plan"), ("do", "plan")])
def test_plan__skipping_or_going_back_is_refused(current, target):
    with pytest.raises(PhaseRefused) as refused:
        move(current, target, learning="x")
    assert refused.value.current == current


@pytest.mark.parametrize("current", ["check", "act"])
def test_plan__leaving_check_and_act_needs_what_was_learned(current):
    with pytest.raises(PhaseRefused, match="learned"):
        move(current, "act" if current == "check" else "plan", learning=" ")


def test_plan__progress_from_baseline_to_target():
    target = Target("csat", target=80, baseline=60)
    assert progress(target, 70) == pytest.approx(0.5)
    assert progress(target, 90) == 1.0
    assert progress(target, 50) == 0.0
    assert progress(Target("csat", 80), 70) is None
    assert reached(target, 80) and not reached(target, 79.9)


def test_plan__a_falling_target():
    target = Target("waiting_time", target=300, baseline=600)
    assert progress(target, 450) == pytest.approx(0.5)
    assert reached(target, 290) and not reached(target, 310)


def test_risk__rating_bands_of_the_5x5_matrix():
    assert rating(1, 1) == (1, "low")
    assert rating(2, 2) == (4, "low")
    assert rating(3, 3) == (9, "medium")
    assert rating(4, 4) == (16, "high")
    assert rating(5, 4) == (20, "critical")
    grid = matrix()
    assert len(grid) == 5 and all(len(row) == 5 for row in grid)
    assert grid[0][0] == "low" and grid[4][4] == "critical"
    with pytest.raises(ValueError):
        rating(0, 3)


def test_risk__a_playbook_assigns_by_role_and_dates_from_the_firing():
    steps = [
        PlaybookStep("Open the spare counter", "responsible", 1),
        PlaybookStep("Call the customers back", "accountable", 24),
        PlaybookStep("Review staffing", "risk_owner", 72),
        PlaybookStep("Inform the regional office", "region.office", 4),
    ]
    planned = run_playbook(steps, fired_at=T0, responsible="b1.manager", accountable=None, risk_owner="ops.head")
    assert [(p.assignee, p.due_at) for p in planned] == [
        ("b1.manager", hours(1)),
        ("b1.manager", hours(24)),  # no accountable person: the responsible one takes it
        ("ops.head", hours(72)),
        ("region.office", hours(4)),
    ]


def test_risk__how_a_firing_ended():
    assert firing_outcome(["verified", "verified"]) == "contained"
    assert firing_outcome(["verified", "cancelled"]) == "contained"
    assert firing_outcome(["cancelled"]) == "cancelled"
    assert firing_outcome(["done", "reopened"]) == "failed"
    assert firing_outcome(["open", "verified"]) == "active"


def test_percentile__linear_between_ranks():
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)
    assert percentile([], 0.5) is None


def test_figures__a_worked_example():
    actions = [
        # Acknowledged after 1 h, done after 10 h (on time), verified at 48 h; the rule fired again at 72 h.
        ActionFacts(
            hours(0), hours(24), "verified", "li", hours(1), hours(10), hours(48), rule_id="r1", unit_path="n/b1"
        ),
        # Acknowledged after 3 h, done late after 30 h, reopened once.
        ActionFacts(hours(0), hours(24), "reopened", "li", hours(3), hours(30), None, reopened=1, rule_id="r2"),
        # The recurrence: open, unacknowledged.
        ActionFacts(hours(72), hours(96), "open", "wang", rule_id="r1", unit_path="n/b1"),
        # Acknowledged after 5 h, still in progress.
        ActionFacts(hours(70), hours(94), "in_progress", None, hours(75)),
    ]
    result = figures(actions, now=hours(96), recurrence_days=7)
    assert result.actions == 4
    assert (result.time_to_acknowledge.count, result.time_to_acknowledge.median_hours) == (3, 3)
    assert result.time_to_acknowledge.p90_hours == pytest.approx(4.6)
    assert result.time_to_resolve.median_hours == 20
    assert result.on_time_rate == 0.5
    assert result.reopened_rate == 0.5
    assert result.verified_rate == 0.5
    assert (result.recurrences, result.recurrence_rate) == (1, 1.0)
    # Open at 96 h: the reopened one for 4 days, the other two for 24 and 26 hours.
    assert result.open_by_age == {"3-7d": 1, "1-3d": 2}
    assert result.open_by_owner == {"li": 1, "wang": 1, "(unassigned)": 1}


def test_figures__recurrence_outside_the_window_does_not_count():
    verified = ActionFacts(
        hours(0), hours(24), "verified", "li", hours(1), hours(2), hours(3), rule_id="r", unit_path="u"
    )
    later = ActionFacts(hours(3 + 24 * 8), hours(300), "open", "li", rule_id="r", unit_path="u")
    assert figures([verified, later], now=hours(400), recurrence_days=7).recurrences == 0
    assert figures([verified, later], now=hours(400), recurrence_days=9).recurrences == 1


def test_figures__nothing_to_divide():
    result = figures([], now=T0, recurrence_days=7)
    assert result.on_time_rate is None and result.time_to_resolve.median_hours is None
