"""Wiring of the scoring service."""

from __future__ import annotations

from collections.abc import Sequence

from services.scoring import repository
from services.scoring.handlers import ScoringHandlers
from services.scoring.settings import ScoringSettings
from services.scoring.views import router
from shared.consumer import Subscription
from shared.events import FeedbackErased, FeedbackReceived, ScoreUpdated, UnitChanged
from shared.service import Runtime, ServiceDefinition


def subscriptions(runtime: Runtime) -> Sequence[Subscription]:
    """What the scoring service consumes, and which handler takes each."""
    settings: ScoringSettings = runtime.settings  # type: ignore[assignment]
    handlers = ScoringHandlers(default_min_samples=settings.min_samples)
    return [
        Subscription(UnitChanged.topic, handlers.on_unit_changed),
        Subscription(FeedbackReceived.topic, handlers.on_feedback_received),
        Subscription(FeedbackErased.topic, handlers.on_feedback_erased),
    ]


DEFINITION = ServiceDefinition(
    name="scoring",
    settings_type=ScoringSettings,
    description="Scores against the organisation's evaluation index system, rolled up the unit tree.",
    routers=[router],
    subscriptions=subscriptions,
    indexes=repository.INDEXES,
    publishes=[ScoreUpdated.topic],
)
