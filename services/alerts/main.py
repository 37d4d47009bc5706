"""Wiring of the alerts service."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from services.alerts import repository
from services.alerts.dependencies import AlertsRuntime
from services.alerts.handlers import AlertsHandlers
from services.alerts.notify import SecretBox
from services.alerts.settings import DEVELOPMENT_SECRET_KEY, AlertsSettings
from services.alerts.views import router
from shared.consumer import Subscription
from shared.events import (
    ActionUpdated,
    AlertAcknowledged,
    AlertEscalated,
    AlertResolved,
    FeedbackReceived,
    IndexSystemChanged,
    ScoreUpdated,
    ThresholdBreached,
    UnitChanged,
)
from shared.runtime import ServiceDefinition
from shared.scheduler import JobHandler

log = logging.getLogger(__name__)


async def on_start(runtime: AlertsRuntime) -> None:
    """Check the secret key (warn about the development one) and drop indexes a later version superseded."""
    SecretBox(runtime.settings.secret_key.get_secret_value())  # a malformed key fails the start here
    await repository.drop_superseded_indexes(runtime.db)
    if runtime.settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
        log.warning("channel secrets are sealed with the development key: set QL_ALERTS_SECRET_KEY in production")


def _handlers(runtime: AlertsRuntime) -> AlertsHandlers:
    return AlertsHandlers(runtime.settings, SecretBox(runtime.settings.secret_key.get_secret_value()))


def subscriptions(runtime: AlertsRuntime) -> Sequence[Subscription[Any]]:
    """What the alerts service consumes, and which handler takes each."""
    handlers = _handlers(runtime)
    return [
        Subscription(UnitChanged, handlers.on_unit_changed),
        Subscription(IndexSystemChanged, handlers.on_index_system_changed),
        Subscription(ScoreUpdated, handlers.on_score_updated),
        Subscription(FeedbackReceived, handlers.on_feedback_received),
        Subscription(ActionUpdated, handlers.on_action_updated),
    ]


def jobs(runtime: AlertsRuntime) -> dict[str, JobHandler]:
    """The alerts service's timers: notifications, deliveries, escalation steps, reminders, rechecks."""
    return _handlers(runtime).jobs()


DEFINITION = ServiceDefinition(
    name="alerts",
    settings_type=AlertsSettings,
    description="Rules over scores and feedback, early warnings grouped, silenced, escalated and notified.",
    routers=[router],
    subscriptions=subscriptions,
    jobs=jobs,
    indexes=repository.INDEXES,
    publishes=[ThresholdBreached.topic, AlertAcknowledged.topic, AlertEscalated.topic, AlertResolved.topic],
    on_start=on_start,
)
