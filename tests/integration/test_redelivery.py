"""Each service's consumer, given the same event twice, changes its state once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest

from services.alerts.main import DEFINITION as ALERTS
from services.improvement.main import DEFINITION as IMPROVEMENT
from services.scoring.main import DEFINITION as SCORING
from shared.app import create_app
from shared.events import Envelope, Event, FeedbackReceived, IndicatorScore, Ratings, ScoreUpdated, ThresholdBreached
from shared.runtime import ServiceDefinition
from tests.harness import RunningService, Stack, deliver, handled, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(stack: Stack) -> AsyncIterator[Callable]:
    started: list[RunningService] = []

    async def start(definition: ServiceDefinition) -> RunningService:
        settings = definition.settings_type(port=0, database=unique(definition.name))
        service = await RunningService(create_app(definition, stack.platform(), settings)).start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


def _envelope(event: Event) -> Envelope:
    return Envelope(data=event, source="/tests")


async def test_scoring__counts_a_redelivered_feedback_once(stack: Stack, running):
    db = (await running(SCORING)).app.state.runtime.db
    org = unique("org")

    def feedback(csat: int) -> Envelope:
        return _envelope(
            FeedbackReceived(
                org=org,
                unit_id="b-1",
                unit_path="r/b-1",
                feedback_id=unique("fb"),
                channel="app",
                occurred_at=datetime.now(UTC),
                received_at=datetime.now(UTC),
                ratings=Ratings(csat=csat),
            )
        )

    first, second = feedback(5), feedback(1)
    await deliver(stack, first, first, second)

    await handled(db, first, second)
    for path in ("r", "r/b-1"):
        aggregate = await db.aggregates.find_one({"org": org, "unit_path": path, "period": "all"})
        assert aggregate["stats"]["n"] == 2
        assert aggregate["stats"]["csat"]["sum"] == 6


def _score(org: str, csat: float) -> Envelope:
    figure = IndicatorScore(value=csat, score=csat, sample_size=10, insufficient=False)
    return _envelope(
        ScoreUpdated(
            org=org, unit_id="b-1", unit_path="r/b-1", period="all", sample_size=10, indicators={"csat": figure}
        )
    )


async def test_alerts__a_redelivered_breach_after_it_cleared_raises_nothing(stack: Stack, running):
    service = await running(ALERTS)
    db = service.app.state.runtime.db
    org = unique("org")
    rule = {"name": "floor", "indicator": "csat", "threshold": 60, "clear_bound": 65, "min_samples": 5, "level": "red"}
    async with httpx.AsyncClient(base_url=service.url, headers=stack.headers(org)) as http:
        assert (await http.post("/api/v1/rules", json=rule)).status_code == 201
    low, recovered, sentinel = _score(org, 40.0), _score(org, 80.0), _score(org, 81.0)
    await deliver(stack, low, recovered, low, sentinel)

    await handled(db, low, recovered, sentinel)
    alerts = await db.alerts.find({"org": org}).to_list(None)
    assert [a["status"] for a in alerts] == ["resolved"]


async def test_improvement__a_redelivered_breach_opens_one_action(stack: Stack, running):
    db = (await running(IMPROVEMENT)).app.state.runtime.db
    org = unique("org")
    alert_id = unique("al")
    breach = _envelope(
        ThresholdBreached(
            org=org,
            unit_id="b-1",
            unit_path="r/b-1",
            alert_id=alert_id,
            group_id=unique("g"),
            rule_id="rule-1",
            fingerprint="f",
            indicator="csat",
            value=40,
            threshold=60,
            level="red",
            sample_size=10,
            period="all",
        )
    )
    await deliver(stack, breach, breach)
    # Another problem (its own alert group) opens a second action; the repeat opened none.
    sentinel = _envelope(breach.data.model_copy(update={"alert_id": unique("al"), "group_id": unique("g")}))
    await deliver(stack, sentinel)

    await handled(db, breach, sentinel)
    assert await db.actions.count_documents({"org": org}) == 2
    assert await db.actions.count_documents({"alert_id": alert_id}) == 1
