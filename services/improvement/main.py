"""Wiring of the improvement service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.improvement import handlers, repository
from services.improvement.dependencies import ImprovementRuntime
from services.improvement.service import breaches, common
from services.improvement.settings import ImprovementSettings
from services.improvement.views import router
from shared.consumer import Subscription
from shared.events import ActionAssigned, ActionUpdated, AlertResolved, ScoreUpdated, ThresholdBreached, UnitChanged
from shared.runtime import ServiceDefinition
from shared.scheduler import JobHandler


def subscriptions(runtime: ImprovementRuntime) -> Sequence[Subscription[Any]]:
    """What the improvement service consumes, and which handler takes each."""
    return [
        Subscription(UnitChanged, handlers.on_unit_changed),
        Subscription(ThresholdBreached, handlers.on_threshold_breached),
        Subscription(AlertResolved, handlers.on_alert_resolved),
        Subscription(ScoreUpdated, handlers.on_score_updated),
    ]


def jobs(runtime: ImprovementRuntime) -> dict[str, JobHandler]:
    """The timers the improvement service runs: escalation steps and the ends of verification windows."""
    return {common.STEP_JOB: handlers.run_steps, common.WINDOW_JOB: handlers.run_window_ends}


async def on_start(runtime: ImprovementRuntime) -> None:
    """Key what was stored before the keyed lists; route again the actions left without an owner."""
    await repository.backfill_list_keys(runtime.db)
    await breaches.route_unassigned(runtime)


DEFINITION = ServiceDefinition(
    name="improvement",
    settings_type=ImprovementSettings,
    description="The responsibility matrix, improvement actions verified on the scores, PDCA plans and risks.",
    routers=[router],
    subscriptions=subscriptions,
    jobs=jobs,
    indexes=repository.INDEXES,
    publishes=[ActionAssigned.topic, ActionUpdated.topic],
    on_start=on_start,
)
