"""Reminder, overdue, the accountable person, then the parent unit's owner: each step once, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.improvement.domain.escalation import EscalationPolicy, next_step

CREATED = datetime(2026, 11, 25, 8, tzinfo=UTC)
DUE = CREATED + timedelta(hours=24)
POLICY = EscalationPolicy(
    remind_before_share=0.25, accountable_after=timedelta(hours=4), parent_after=timedelta(hours=8)
)


def test_steps_follow_one_another_at_their_moments():
    done: list[str] = []
    seen = []
    while (step := next_step(POLICY, state="open", done=done, created_at=CREATED, due_at=DUE)) is not None:
        seen.append(step)
        done.append(step[0])
    assert seen == [
        ("reminder", DUE - timedelta(hours=6)),
        ("overdue", DUE),
        ("escalated_accountable", DUE + timedelta(hours=4)),
        ("escalated_parent", DUE + timedelta(hours=12)),
    ]


def test_a_step_taken_is_never_offered_again():
    step = next_step(POLICY, state="in_progress", done=["reminder", "overdue"], created_at=CREATED, due_at=DUE)
    assert step is not None and step[0] == "escalated_accountable"


def test_work_that_is_done_or_closed_does_not_escalate():
    for state in ("done", "verified", "cancelled"):
        assert next_step(POLICY, state=state, done=[], created_at=CREATED, due_at=DUE) is None


def test_reopened_work_escalates_again_from_where_it_stood():
    step = next_step(POLICY, state="reopened", done=["reminder"], created_at=CREATED, due_at=DUE)
    assert step == ("overdue", DUE)
