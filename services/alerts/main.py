"""Wiring of the alerts service."""

from __future__ import annotations

from fastapi import FastAPI

from services.alerts import handlers, repository
from services.alerts.settings import AlertsSettings
from services.alerts.views import router
from shared.consumer import Subscription
from shared.events import AlertResolved, ScoreUpdated, ThresholdBreached
from shared.service import ServiceDefinition
from shared.service import create_app as create_service_app
from shared.settings import PlatformSettings

DEFINITION = ServiceDefinition(
    name="alerts",
    settings_type=AlertsSettings,
    description="Rules over scores, early warnings, their deduplication and resolution.",
    routers=[router],
    subscriptions=lambda runtime: [Subscription(ScoreUpdated.topic, handlers.on_score_updated)],
    indexes=repository.INDEXES,
    publishes=[ThresholdBreached.topic, AlertResolved.topic],
)


def create_app(settings: AlertsSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    """The alerts service's app, configured from the environment unless given settings."""
    return create_service_app(DEFINITION, platform or PlatformSettings(), settings or DEFINITION.settings_type())
