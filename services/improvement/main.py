"""Wiring of the improvement service."""

from __future__ import annotations

from services.improvement import handlers, repository
from services.improvement.settings import ImprovementSettings
from services.improvement.views import router
from shared.consumer import Subscription
from shared.events import ActionAssigned, ActionUpdated, ThresholdBreached
from shared.runtime import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="improvement",
    settings_type=ImprovementSettings,
    description="The responsibility matrix and the improvement actions that breaches cause.",
    routers=[router],
    subscriptions=lambda runtime: [Subscription(ThresholdBreached, handlers.on_threshold_breached)],
    indexes=repository.INDEXES,
    publishes=[ActionAssigned.topic, ActionUpdated.topic],
)
