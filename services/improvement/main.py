"""Wiring of the improvement service."""

from __future__ import annotations

from fastapi import FastAPI

from services.improvement import handlers, repository
from services.improvement.settings import ImprovementSettings
from services.improvement.views import router
from shared.consumer import Subscription
from shared.events import ActionAssigned, ActionUpdated, ThresholdBreached
from shared.service import ServiceDefinition
from shared.service import create_app as create_service_app
from shared.settings import PlatformSettings

DEFINITION = ServiceDefinition(
    name="improvement",
    settings_type=ImprovementSettings,
    description="The responsibility matrix and the improvement actions that breaches cause.",
    routers=[router],
    subscriptions=lambda runtime: [Subscription(ThresholdBreached.topic, handlers.on_threshold_breached)],
    indexes=repository.INDEXES,
    publishes=[ActionAssigned.topic, ActionUpdated.topic],
)


def create_app(settings: ImprovementSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    """The improvement service's app, configured from the environment unless given settings."""
    return create_service_app(DEFINITION, platform or PlatformSettings(), settings or DEFINITION.settings_type())
