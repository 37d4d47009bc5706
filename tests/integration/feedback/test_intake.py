"""The feedback service against the real broker and database."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from services.feedback.main import create_app
from services.feedback.settings import FeedbackSettings
from tests.harness import RunningService, Stack, read_topic, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def feedback_service(stack: Stack):
    settings = FeedbackSettings(port=0, database=unique("fb"), pseudonym_key=SecretStr("test-key"))
    service = await RunningService(create_app(settings, stack.platform())).start()
    yield service
    await service.stop()


async def test_post_feedback__stores_it_and_publishes_feedback_received(stack: Stack, feedback_service):
    org = unique("org")
    admin = stack.headers(org, "admin")
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=admin) as http:
        assert (
            await http.post("/api/v1/units", json={"id": "north", "name": "华北区", "kind": "region"})
        ).status_code == 201
        unit = await http.post("/api/v1/units", json={"id": "b-001", "name": "北京一分行", "parent_id": "north"})
        assert unit.json()["path"] == "north/b-001"
        posted = await http.post(
            "/api/v1/feedback", json={"unit_id": "b-001", "channel": "survey", "ratings": {"csat": 2}}
        )
        assert posted.status_code == 201, posted.text
        feedback_id = posted.json()["id"]
        fetched = await http.get(f"/api/v1/feedback/{feedback_id}")
        assert fetched.json()["ratings"]["csat"] == 2

    records = await read_topic(
        stack.bootstrap,
        "feedback.received",
        until=lambda seen: any(r["value"]["feedback_id"] == feedback_id for r in seen),
    )
    record = next(r for r in records if r["value"]["feedback_id"] == feedback_id)
    assert record["headers"]["ce_type"] == "qualityloop.feedback.received.v1"
    assert record["headers"]["ce_subject"] == "north/b-001"
    assert record["key"] == f"{org}/b-001".encode()
    assert "traceparent" in record["headers"]
