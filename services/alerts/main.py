"""Wiring of the alerts service."""

from __future__ import annotations

from services.alerts import handlers, repository
from services.alerts.settings import AlertsSettings
from services.alerts.views import router
from shared.consumer import Subscription
from shared.events import AlertResolved, ScoreUpdated, ThresholdBreached
from shared.runtime import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="alerts",
    settings_type=AlertsSettings,
    description="Rules over scores, early warnings, their deduplication and resolution.",
    routers=[router],
    subscriptions=lambda runtime: [Subscription(ScoreUpdated, handlers.on_score_updated)],
    indexes=repository.INDEXES,
    publishes=[ThresholdBreached.topic, AlertResolved.topic],
)
