"""Figures of how improvement work goes: time to acknowledge and resolve, on-time, reopened, verified,
recurrence, and the open actions by age and owner."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Open actions are counted in these age bands (upper bounds, in days); the last band is open-ended.
AGE_BANDS: tuple[tuple[str, float], ...] = (
    ("<1d", 1),
    ("1-3d", 3),
    ("3-7d", 7),
    ("7-14d", 14),
    (">14d", math.inf),
)


@dataclass(frozen=True)
class ActionFacts:
    """What the figures need of one action: its moments, state, owner and what fired it."""

    created_at: datetime
    due_at: datetime
    state: str
    assignee: str | None
    acknowledged_at: datetime | None = None
    done_at: datetime | None = None
    verified_at: datetime | None = None
    reopened: int = 0
    rule_id: str | None = None
    unit_path: str | None = None


def percentile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` (0–1) percentile with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Durations:
    """Median and 90th percentile of a set of durations, in hours, and how many there were."""

    count: int
    median_hours: float | None
    p90_hours: float | None


def durations(values: Sequence[timedelta]) -> Durations:
    """The median and p90 of ``values`` in hours."""
    hours = [value.total_seconds() / 3600 for value in values]
    return Durations(len(hours), percentile(hours, 0.5), percentile(hours, 0.9))


def rate(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is nothing to divide."""
    return part / whole if whole else None


@dataclass(frozen=True)
class Figures:
    """The figures of a set of actions."""

    actions: int
    time_to_acknowledge: Durations
    time_to_resolve: Durations
    on_time_rate: float | None
    reopened_rate: float | None
    verified_rate: float | None
    recurrence_rate: float | None
    recurrences: int
    open_by_age: dict[str, int] = field(default_factory=dict)
    open_by_owner: dict[str, int] = field(default_factory=dict)


def figures(
    actions: Sequence[ActionFacts], *, now: datetime, recurrence_days: int, later: Sequence[ActionFacts] = ()
) -> Figures:
    """Every figure of ``actions``, as of ``now``; recurrence looks ``recurrence_days`` after each verification.

    ``later``: actions opened after the period, where a recurrence of one verified in it may lie.
    """
    acknowledged = [a.acknowledged_at - a.created_at for a in actions if a.acknowledged_at]
    resolved = [a for a in actions if a.done_at]
    verified = [a for a in actions if a.verified_at]
    open_actions = [a for a in actions if a.state in ("open", "in_progress", "reopened")]
    recurrences = sum(1 for a in verified if _recurred(a, [*actions, *later], recurrence_days))
    return Figures(
        actions=len(actions),
        time_to_acknowledge=durations(acknowledged),
        time_to_resolve=durations([a.done_at - a.created_at for a in resolved if a.done_at]),
        on_time_rate=rate(sum(1 for a in resolved if a.done_at and a.done_at <= a.due_at), len(resolved)),
        reopened_rate=rate(sum(1 for a in resolved if a.reopened), len(resolved)),
        verified_rate=rate(len(verified), len(resolved)),
        recurrence_rate=rate(recurrences, len(verified)),
        recurrences=recurrences,
        open_by_age=dict(Counter(_age_band(now - a.created_at) for a in open_actions)),
        open_by_owner=dict(Counter(a.assignee or "(unassigned)" for a in open_actions)),
    )


def _recurred(action: ActionFacts, actions: Sequence[ActionFacts], days: int) -> bool:
    """Whether the same rule fired again on the same unit within ``days`` of the action's verification."""
    if action.verified_at is None or action.rule_id is None:
        return False
    until = action.verified_at + timedelta(days=days)
    return any(
        other.rule_id == action.rule_id
        and other.unit_path == action.unit_path
        and action.verified_at < other.created_at <= until
        for other in actions
    )


def _age_band(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    return next(name for name, bound in AGE_BANDS if days < bound)
