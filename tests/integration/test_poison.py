"""Poison on every consumed topic of every service: dead-lettered with its reason; a fixed one replays once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.alerts.main import DEFINITION as ALERTS
from services.feedback.main import DEFINITION as FEEDBACK
from services.improvement.main import DEFINITION as IMPROVEMENT
from services.scoring.main import DEFINITION as SCORING
from shared.app import create_app
from shared.events import SIGNED_TOPICS
from shared.runtime import ServiceDefinition
from shared.storage import DEAD_LETTERS
from tests.harness import RunningService, Stack, eventually, produce, unique

pytestmark = pytest.mark.integration

DEFINITIONS: tuple[ServiceDefinition[Any], ...] = (FEEDBACK, SCORING, ALERTS, IMPROVEMENT)


@pytest.fixture
async def services(stack: Stack) -> AsyncIterator[dict[str, RunningService]]:
    started: dict[str, RunningService] = {}
    platform = stack.platform()
    for definition in DEFINITIONS:
        extra: dict[str, Any] = {"pseudonym_key": "poison-key"} if definition is FEEDBACK else {}
        settings = definition.settings_type(port=0, database=unique(definition.name), **extra)
        started[definition.name] = await RunningService(create_app(definition, platform, settings)).start()
    yield started
    for service in started.values():
        await service.stop()


def signed(stack: Stack, org: str) -> dict[str, str]:
    return {"authorization": f"Bearer {stack.token(org, 'integration')}"}


async def test_a_malformed_record_on_each_consumed_topic__is_dead_lettered_with_its_reason(stack: Stack, services):
    org = unique("org")
    expected: dict[str, set[str]] = {}
    for name, service in services.items():
        for subscription in service.app.state.runtime.consumer._subscriptions.values():
            await produce(
                stack.bootstrap,
                subscription.topic,
                b"{not json",
                key=f"{org}/u-1".encode(),
                headers={
                    "ce_specversion": "1.0",
                    "ce_id": str(uuid.uuid4()),
                    "ce_type": subscription.event.type_name(),
                    # An integration's topic takes only signed records: this one is signed, and still poison.
                    **(signed(stack, org) if subscription.topic in SIGNED_TOPICS else {}),
                },
            )
            expected.setdefault(name, set()).add(subscription.topic)

    for name, topics in expected.items():
        db = services[name].app.state.runtime.db

        async def all_dead(db=db, topics=topics) -> list[dict[str, Any]] | None:
            found = await db[DEAD_LETTERS].find({"org": org}).to_list(None)
            return found if {d["topic"] for d in found} >= topics else None

        dead = await eventually(all_dead, timeout=60)
        assert {d["topic"] for d in dead} == topics, name
        assert all(d["reason"] for d in dead)


async def test_a_feedback_for_a_unit_not_yet_created__replays_once_after_the_fix(stack: Stack, services):
    org = unique("org")
    feedback = services["feedback"]
    headers = stack.headers(org)
    event_id = str(uuid.uuid4())
    payload = {"org": org, "unit_id": "b-late", "channel": "kiosk", "ratings": {"csat": 2}, "source_id": "late-1"}
    await produce(
        stack.bootstrap,
        "feedback.ingest",
        json.dumps(payload).encode(),
        key=f"{org}/b-late".encode(),
        headers={
            "ce_specversion": "1.0",
            "ce_id": event_id,
            "ce_type": "qualityloop.feedback.ingest.v1",
            "ce_source": "/crm",
            **signed(stack, org),
        },
    )
    async with httpx.AsyncClient(base_url=feedback.url, headers=headers, timeout=30) as http:

        async def dead_letter() -> dict[str, Any] | None:
            page = (await http.get("/api/v1/dead-letters/feedback")).json()
            return next((d for d in page.get("items", []) if d["headers"].get("ce_id") == event_id), None)

        dead = await eventually(dead_letter, timeout=60)
        assert "unit" in dead["reason"]
        assert "authorization" not in dead["headers"], "a dead letter never keeps the producer's token"

        # The fix: the unit is created; the dead letter is replayed, twice by mistake.
        created = await http.post("/api/v1/units", json={"id": "b-late", "name": "late branch"})
        assert created.status_code == 201, created.text
        for _ in range(2):
            assert (await http.post(f"/api/v1/dead-letters/feedback/{dead['id']}/replay")).status_code == 200

        async def stored() -> list[dict[str, Any]] | None:
            items = (await http.get("/api/v1/feedback")).json()["items"]
            return items or None

        items = await eventually(stored, timeout=60)
        await asyncio.sleep(2)  # a second copy would have arrived by now
        items = (await http.get("/api/v1/feedback")).json()["items"]
        assert [(i["unit_id"], i["source_id"]) for i in items] == [("b-late", "late-1")]
