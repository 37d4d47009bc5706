"""Overdue work climbs the organisation: a reminder before the due date, overdue at it, then the
accountable person, then the parent unit's owner; each step once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.improvement.domain.lifecycle import ACTIVE, State

Step = Literal["reminder", "overdue", "escalated_accountable", "escalated_parent"]
STEPS: tuple[Step, ...] = ("reminder", "overdue", "escalated_accountable", "escalated_parent")


@dataclass(frozen=True)
class EscalationPolicy:
    """When each step falls: the reminder a share of the deadline before it, escalations after it."""

    remind_before_share: float = 0.25
    accountable_after: timedelta = timedelta(hours=4)
    parent_after: timedelta = timedelta(hours=24)

    def step_at(self, step: Step, *, created_at: datetime, due_at: datetime) -> datetime:
        """When ``step`` falls for an action created at ``created_at`` and due at ``due_at``."""
        if step == "reminder":
            return due_at - (due_at - created_at) * self.remind_before_share
        if step == "overdue":
            return due_at
        if step == "escalated_accountable":
            return due_at + self.accountable_after
        return due_at + self.accountable_after + self.parent_after


def next_step(
    policy: EscalationPolicy, *, state: State, done: list[str], created_at: datetime, due_at: datetime
) -> tuple[Step, datetime] | None:
    """The first step not yet taken and when it falls; None once all are taken or the action is not active.

    A reminder whose moment has already passed when the step before it is decided (a due date moved
    into the past, say) is still sent: each step is taken once, in order, never skipped.
    """
    if state not in ACTIVE:
        return None
    for step in STEPS:
        if step not in done:
            return step, policy.step_at(step, created_at=created_at, due_at=due_at)
    return None
