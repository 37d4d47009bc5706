"""Wiring of the scoring service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.scoring import repository
from services.scoring.dependencies import ScoringRuntime
from services.scoring.handlers import ScoringHandlers
from services.scoring.settings import ScoringSettings
from services.scoring.views import router
from shared.consumer import Subscription
from shared.events import FeedbackErased, FeedbackReceived, IndexSystemChanged, ScoreUpdated, UnitChanged
from shared.runtime import ServiceDefinition


def subscriptions(runtime: ScoringRuntime) -> Sequence[Subscription[Any]]:
    """What the scoring service consumes, and which handler takes each."""
    handlers = ScoringHandlers(runtime.settings)
    return [
        Subscription(UnitChanged, handlers.on_unit_changed),
        Subscription(FeedbackReceived, handlers.on_feedback_received),
        Subscription(FeedbackErased, handlers.on_feedback_erased),
    ]


DEFINITION = ServiceDefinition(
    name="scoring",
    settings_type=ScoringSettings,
    description="Scores against the organisation's evaluation index system, rolled up the unit tree.",
    routers=[router],
    subscriptions=subscriptions,
    indexes=repository.INDEXES,
    publishes=[ScoreUpdated.topic, IndexSystemChanged.topic],
)
