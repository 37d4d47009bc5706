"""The alerts service in this process, fed through the real broker, and a webhook receiver that checks
Standard Webhooks signatures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pymongo.asynchronous.client_session import AsyncClientSession

from services.alerts.handlers import AlertsHandlers
from services.alerts.main import DEFINITION
from services.alerts.notify import SecretBox, WebhookRejected, new_webhook_secret, verify_webhook
from services.alerts.settings import AlertsSettings
from shared.app import create_app
from shared.consumer import BatchContext
from shared.events import (
    Envelope,
    Event,
    FeedbackReceived,
    IndicatorScore,
    Ratings,
    ScoreUpdated,
    UnitChanged,
)
from shared.storage import Database, Document, UnitOfWork, apply, in_transaction
from tests.harness import RunningService, Stack, deliver, eventually, handled, unique


async def in_one_batch(service: RunningService, *steps: tuple[str, Sequence[Envelope[Any]]], **settings: Any) -> None:
    """Run handlers one after another in one transaction, as the consumer does with a batch of several topics
    (with some settings changed, if given)."""
    runtime = service.app.state.runtime
    changed = runtime.settings.model_copy(update=settings)
    handlers = AlertsHandlers(changed, SecretBox(changed.secret_key.get_secret_value()))

    async def work(session: AsyncClientSession) -> list[Document]:
        batch = BatchContext(runtime.db, session, UnitOfWork("alerts"))
        for handler, envelopes in steps:
            await getattr(handlers, handler)(envelopes, batch)
        return await apply(runtime.db, session, [batch.unit])

    runtime.relay.hand_over(await in_transaction(runtime.client, work))


def alerts_settings(database: str) -> AlertsSettings:
    """Settings for a test instance: short group waits so a test sees its notification soon."""
    return AlertsSettings(port=0, database=database, group_wait_seconds=1.0, group_interval_seconds=1.0)


@pytest.fixture(scope="module")
async def alerts(stack: Stack) -> AsyncIterator[RunningService]:
    """One alerts service for the module, with its own database and consumer group."""
    service = await RunningService(create_app(DEFINITION, stack.platform(), alerts_settings(unique("alerts")))).start()
    yield service
    await service.stop()


def db_of(service: RunningService) -> Database:
    """The service's database."""
    database: Database = service.app.state.runtime.db
    return database


def envelope(event: Event) -> Envelope[Any]:
    """An event as a test producer sends it."""
    return Envelope(data=event, source="/tests")


def unit_created(org: str, path: str, kind: str = "branch") -> Envelope[Any]:
    """A unit.changed event creating the unit at ``path``."""
    parent, _, unit_id = path.rpartition("/")
    return envelope(
        UnitChanged(
            org=org,
            unit_id=unit_id,
            unit_path=path,
            change="created",
            name=unit_id.upper(),
            kind=kind,
            parent_id=parent.rpartition("/")[2] or None,
        )
    )


def score(
    org: str, path: str, csat: float | None, *, n: int = 10, period: str = "all", start: datetime | None = None
) -> Envelope[Any]:
    """A score.updated event of a unit's CSAT (share of 4–5 ratings, %)."""
    figure = IndicatorScore(value=csat, score=csat, sample_size=n, insufficient=False)
    return envelope(
        ScoreUpdated(
            org=org,
            unit_id=path.rpartition("/")[2],
            unit_path=path,
            period=period,
            period_start=start,
            sample_size=n,
            indicators={"csat": figure, "composite": figure},
            composite=csat,
        )
    )


def complaint(org: str, path: str, severity: str) -> Envelope[Any]:
    """A feedback.received event of a complaint."""
    now = datetime.now(UTC)
    return envelope(
        FeedbackReceived.model_validate(
            {
                "org": org,
                "unit_id": path.rpartition("/")[2],
                "unit_path": path,
                "feedback_id": unique("fb"),
                "channel": "call_centre",
                "occurred_at": now,
                "received_at": now,
                "kind": "complaint",
                "ratings": Ratings(),
                "complaint": {"category": "attitude", "severity": severity},
            }
        )
    )


def rating(org: str, path: str, csat: int) -> Envelope[Any]:
    """A feedback.received event of one CSAT rating."""
    now = datetime.now(UTC)
    return envelope(
        FeedbackReceived(
            org=org,
            unit_id=path.rpartition("/")[2],
            unit_path=path,
            feedback_id=unique("fb"),
            channel="kiosk",
            occurred_at=now,
            received_at=now,
            ratings=Ratings(csat=csat),
        )
    )


@dataclass
class Org:
    """A test organisation on the alerts service: its name, an admin client, and its tree."""

    name: str
    stack: Stack
    service: RunningService
    http: httpx.AsyncClient

    def client(self, *roles: str, scopes: tuple[str, ...] = ("*",)) -> httpx.AsyncClient:
        """Another client of this organisation with other roles or scopes."""
        return httpx.AsyncClient(
            base_url=self.service.url, headers=self.stack.headers(self.name, *roles, scopes=scopes), timeout=10
        )

    async def tree(self, *paths: str) -> None:
        """Create these units (parents first) and wait until the service has them."""
        events = [unit_created(self.name, p, "region" if "/" not in p else "branch") for p in paths]
        await self.send(*events)

    async def send(self, *events: Envelope[Any]) -> None:
        """Deliver events through the broker and wait until the service handled them."""
        await deliver(self.stack, *events)
        await handled(db_of(self.service), *events)

    async def rule(self, **body: Any) -> dict[str, Any]:
        """Create a rule; answer it."""
        response = await self.http.post("/api/v1/rules", json={"name": "CSAT floor"} | body)
        assert response.status_code == 201, response.text
        return response.json()

    async def alerts(self, **params: Any) -> list[dict[str, Any]]:
        """The organisation's alerts, filtered: every page (a page may hold fewer than its limit)."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = {**params, **({"cursor": cursor} if cursor else {})}
            response = await self.http.get("/api/v1/alerts", params=page)
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return items

    async def notifications(self, group_id: str) -> list[dict[str, Any]]:
        """A group's notifications as stored."""
        return await db_of(self.service)["notifications"].find({"group_id": group_id}).to_list(None)


@pytest.fixture
async def org(stack: Stack, alerts: RunningService) -> AsyncIterator[Org]:
    """A fresh organisation with an admin client."""
    name = unique("org")
    async with httpx.AsyncClient(base_url=alerts.url, headers=stack.headers(name, "admin"), timeout=10) as http:
        yield Org(name, stack, alerts, http)


@dataclass
class WebhookReceiver:
    """A receiver of signed webhooks that checks each signature and can fail on demand."""

    secret: str = field(default_factory=new_webhook_secret)
    failures: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        """The receiver's HTTP app."""
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                payload = verify_webhook(self.secret, body, dict(request.headers))
            except WebhookRejected as error:
                self.rejected.append(str(error))
                return Response(status_code=400)
            if self.failures > 0:
                self.failures -= 1
                return Response(status_code=503)
            self.received.append({"id": request.headers["webhook-id"], "body": payload})
            return Response(status_code=204)

        return app


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    """A webhook receiver on a free port and its URL."""
    hooks = WebhookReceiver()
    server = await RunningService(hooks.app()).start()
    yield hooks, f"{server.url}/hook"
    await server.stop()


async def settle(seconds: float = 0.5) -> None:
    """Let background work (scheduler passes) run."""
    await asyncio.sleep(seconds)


__all__ = ["Org", "WebhookReceiver", "complaint", "eventually", "score", "settle"]
