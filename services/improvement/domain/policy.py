"""An organisation's improvement settings as the rules use them, with the defaults filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

from services.improvement.domain.deadlines import DEFAULT_DEADLINE_HOURS, BusinessCalendar, Deadlines
from services.improvement.domain.escalation import EscalationPolicy

DEFAULTS: Mapping[str, Any] = {
    "default_owner": None,
    "deadline_hours": dict(DEFAULT_DEADLINE_HOURS),
    "calendar": None,
    "use_calendar": False,
    "verification_periods": 2,
    "verification_window_hours": 14 * 24.0,
    "remind_before_share": 0.25,
    "escalate_accountable_after_hours": 4.0,
    "escalate_parent_after_hours": 24.0,
    "recurrence_days": 30,
}


@dataclass(frozen=True)
class OrgPolicy:
    """Who owns what nobody else does, deadlines, escalation, verification and recurrence of one organisation."""

    default_owner: str | None
    deadlines: Deadlines
    escalation: EscalationPolicy
    verification_periods: int
    verification_window: timedelta
    recurrence_days: int


def settings_with_defaults(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The stored settings over the defaults (``deadline_hours`` merged level by level)."""
    merged = {**DEFAULTS, **{k: v for k, v in stored.items() if k in DEFAULTS and v is not None}}
    merged["deadline_hours"] = {**DEFAULT_DEADLINE_HOURS, **(stored.get("deadline_hours") or {})}
    return merged


def calendar_from(stored: Mapping[str, Any]) -> BusinessCalendar:
    """A calendar from its stored form (times as ``HH:MM[:SS]``, dates as ISO strings or dates)."""
    return BusinessCalendar(
        timezone=stored.get("timezone", "UTC"),
        workdays=frozenset(stored.get("workdays", (0, 1, 2, 3, 4))),
        start=_time(stored.get("start", "09:00")),
        end=_time(stored.get("end", "18:00")),
        holidays=frozenset(_date(d) for d in stored.get("holidays", ())),
        extra_workdays=frozenset(_date(d) for d in stored.get("extra_workdays", ())),
    )


def _time(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def policy_from(stored: Mapping[str, Any]) -> OrgPolicy:
    """The organisation's policy from its stored settings."""
    s = settings_with_defaults(stored)
    calendar = calendar_from(s["calendar"]) if s["calendar"] and s["use_calendar"] else None
    return OrgPolicy(
        default_owner=s["default_owner"],
        deadlines=Deadlines(hours=s["deadline_hours"], calendar=calendar),
        escalation=EscalationPolicy(
            remind_before_share=s["remind_before_share"],
            accountable_after=timedelta(hours=s["escalate_accountable_after_hours"]),
            parent_after=timedelta(hours=s["escalate_parent_after_hours"]),
        ),
        verification_periods=s["verification_periods"],
        verification_window=timedelta(hours=s["verification_window_hours"]),
        recurrence_days=s["recurrence_days"],
    )
