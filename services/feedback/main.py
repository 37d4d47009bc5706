"""Wiring of the feedback service."""

from __future__ import annotations

from fastapi import FastAPI

from services.feedback import repository
from services.feedback.settings import FeedbackSettings
from services.feedback.views import router
from shared.events import FeedbackReceived, UnitChanged
from shared.service import ServiceDefinition
from shared.service import create_app as create_service_app
from shared.settings import PlatformSettings

DEFINITION = ServiceDefinition(
    name="feedback",
    settings_type=FeedbackSettings,
    description="The organisation tree and customer feedback intake.",
    routers=[router],
    indexes=repository.INDEXES,
    publishes=[FeedbackReceived.topic, UnitChanged.topic],
)


def create_app(settings: FeedbackSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    """The feedback service's app, configured from the environment unless given settings."""
    return create_service_app(DEFINITION, platform or PlatformSettings(), settings or DEFINITION.settings_type())
