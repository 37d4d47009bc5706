"""What a notification says: one value object, whatever the channel it goes out on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

NotificationKind = Literal["firing", "resolved", "acknowledged", "escalated", "reminder", "test"]
Level = Literal["blue", "yellow", "orange", "red"]
Language = Literal["zh", "en"]

KINDS: tuple[NotificationKind, ...] = ("firing", "resolved", "acknowledged", "escalated", "reminder", "test")
LEVELS: tuple[Level, ...] = ("blue", "yellow", "orange", "red")


@dataclass(frozen=True)
class Notification:
    """One message about one alert group: what happened, where, how bad, and where to look."""

    kind: NotificationKind
    org: str
    group_id: str
    alert_ids: tuple[str, ...]
    rule_name: str
    level: Level
    indicator: str
    # A group of one rule on a unit and its descendants names every unit in it.
    unit_paths: tuple[str, ...]
    value: float | None
    bound: float | None
    sample_size: int | None
    period: str
    started_at: datetime
    link: str
    # When the change being told happened; the webhook body's timestamp, identical across retries.
    occurred_at: datetime
    escalation_step: int | None = None
    rule_id: str | None = None
    # Who acknowledged (or escalated to whom) and their comment, for acknowledged and escalated notices.
    actor: str | None = None
    comment: str | None = None
    # The organisation's IANA time zone (Asia/Shanghai): times in messages are shown in it.
    time_zone: str = "UTC"


def sample_notification(*, org: str, link: str, at: datetime, channel_name: str = "") -> Notification:
    """The sample notification a channel's test-send delivers."""
    return Notification(
        kind="test",
        org=org,
        group_id="test",
        alert_ids=(),
        rule_name=channel_name or "test",
        level="blue",
        indicator="csat",
        unit_paths=("example/branch",),
        value=None,
        bound=None,
        sample_size=None,
        period="all",
        started_at=at,
        link=link,
        occurred_at=at,
    )
