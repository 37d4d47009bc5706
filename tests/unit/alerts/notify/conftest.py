"""Notifications the notify tests render and send."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.alerts.notify import Notification

STARTED = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)


def firing(**changes) -> Notification:
    """A red alert firing on one branch."""
    notification = Notification(
        kind="firing",
        org="acme",
        group_id="grp_1",
        alert_ids=("alr_1",),
        rule_name="CSAT 下滑",
        level="red",
        indicator="csat",
        unit_paths=("north/beijing/chaoyang",),
        value=58.25,
        bound=70.0,
        sample_size=42,
        period="day",
        started_at=STARTED,
        link="https://ql.example.com/alerts/alr_1",
        occurred_at=STARTED,
        rule_id="rul_1",
    )
    return replace(notification, **changes)


@pytest.fixture
def notification() -> Notification:
    """A red alert firing on one branch."""
    return firing()
