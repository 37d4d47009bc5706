"""The scoring service in this process, and feeding it events through the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession

from services.scoring import repository
from services.scoring.aggregation import PERIODS, AggregateKey, period_start
from services.scoring.handlers import ScoringHandlers
from services.scoring.main import DEFINITION
from services.scoring.settings import ScoringSettings
from services.scoring.statistics import MetricStats
from shared.app import create_app
from shared.consumer import BatchContext
from shared.events import Envelope, Event, FeedbackErased, FeedbackReceived, Ratings, UnitChanged
from shared.storage import Database, Document, UnitOfWork, apply, in_transaction
from tests.harness import RunningService, Stack, unique


@pytest.fixture(scope="module")
async def scoring(stack: Stack) -> AsyncIterator[RunningService]:
    """One scoring service for the module, with its own database and consumer group."""
    settings = ScoringSettings(port=0, database=unique("scoring"), min_samples=2)
    service = await RunningService(create_app(DEFINITION, stack.platform(), settings)).start()
    yield service
    await service.stop()


def envelope(event: Event) -> Envelope:
    """An event as a test producer sends it."""
    return Envelope(data=event, source="/tests")


def unit_created(org: str, path: str, *, previous_path: str | None = None) -> Envelope:
    """A unit.changed event creating the unit at ``path`` (or, given its previous path, moving it there)."""
    parent, _, unit_id = path.rpartition("/")
    return envelope(
        UnitChanged(
            org=org,
            unit_id=unit_id,
            unit_path=path,
            change="moved" if previous_path else "created",
            name=unit_id.upper(),
            kind="unit",
            parent_id=parent.rpartition("/")[2] or None,
            previous_path=previous_path,
        )
    )


def received(org: str, path: str, occurred_at: datetime, ratings: Ratings) -> Envelope:
    """A feedback.received event for the unit at ``path``."""
    return envelope(
        FeedbackReceived(
            org=org,
            unit_id=path.rpartition("/")[2],
            unit_path=path,
            feedback_id=unique("fb"),
            channel="survey",
            occurred_at=occurred_at,
            received_at=datetime.now(UTC),
            ratings=ratings,
        )
    )


def erased(feedback: Envelope) -> Envelope:
    """The feedback.erased event that takes a received feedback back out."""
    data = feedback.data
    assert isinstance(data, FeedbackReceived)
    return envelope(
        FeedbackErased(
            org=data.org,
            unit_id=data.unit_id,
            unit_path=data.unit_path,
            feedback_id=data.feedback_id,
            occurred_at=data.occurred_at,
            ratings=data.ratings,
            sentiment=data.sentiment,
        )
    )


async def figures(db: Database, org: str) -> dict[str, MetricStats]:
    """Every stored aggregate of the organisation: its statistics by aggregate id."""
    documents = db[repository.AGGREGATES].find({"org": org})
    return {document["_id"]: MetricStats.from_document(document.get("stats", {})) async for document in documents}


def every_period(org: str, paths: list[str], moment: datetime, stats: MetricStats) -> dict[str, MetricStats]:
    """The aggregate ids of ``paths`` in every period containing ``moment``, each with ``stats``."""
    return {
        AggregateKey(org, path, period, period_start(period, moment)).id: stats for path in paths for period in PERIODS
    }


async def in_one_batch(scoring: RunningService, *steps: tuple[str, Sequence[Envelope]]) -> None:
    """Run handlers one after another in one transaction, as the consumer does with a batch of several topics."""
    runtime = scoring.app.state.runtime
    handlers = ScoringHandlers(runtime.settings)

    async def work(session: AsyncClientSession) -> list[Document]:
        batch = BatchContext(runtime.db, session, UnitOfWork("scoring"))
        for handler, envelopes in steps:
            await getattr(handlers, handler)(envelopes, batch)
        return await apply(runtime.db, session, [batch.unit])

    runtime.relay.hand_over(await in_transaction(runtime.client, work))
