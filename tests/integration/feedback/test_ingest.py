"""Intake over Kafka: ``feedback.ingest`` in CloudEvents binary and structured mode."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.harness import Stack, eventually, produce, read_topic
from tests.integration.feedback.conftest import listed, received

pytestmark = pytest.mark.integration

INGEST_TYPE = "qualityloop.feedback.ingest.v1"


async def _binary(stack: Stack, payload: dict[str, Any], **headers: str) -> str:
    event_id = str(uuid.uuid4())
    await produce(
        stack.bootstrap,
        "feedback.ingest",
        json.dumps(payload).encode(),
        key=str(payload["org"]).encode(),
        headers={"ce_specversion": "1.0", "ce_id": event_id, "ce_type": INGEST_TYPE, "ce_source": "/crm", **headers},
    )
    return event_id


async def _dead_letter(stack: Stack, event_id: str) -> dict[str, Any]:
    records = await read_topic(
        stack.bootstrap,
        "feedback.ingest.dlq",
        until=lambda seen: any(r["headers"].get("ce_id") == event_id for r in seen),
    )
    return next(r for r in records if r["headers"].get("ce_id") == event_id)


async def test_ingest__binary_event_is_stored_and_published(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client
    payload = {"org": org, "unit_code": "BJ001", "channel": "call_centre", "ratings": {"csat": 1}, "source_id": "k-1"}
    await _binary(stack, payload)
    (stored,) = await listed(http, 1)
    assert (stored["unit_path"], stored["source_id"], stored["ratings"]["csat"]) == ("north/b-001", "k-1", 1)
    event = await received(stack, stored["id"])
    assert (event["org"], event["unit_id"], event["kind"]) == (org, "b-001", "rating")


# Structured mode is recognised by its content type, or by the event's own shape when a producer sets none.
@pytest.mark.parametrize("headers", [{"content-type": "application/cloudevents+json"}, {}])
async def test_ingest__structured_event_is_stored(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient], headers: dict[str, str]
) -> None:
    org, http = org_client
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": INGEST_TYPE,
        "source": "/survey-tool",
        "time": "2026-01-05T08:00:00+08:00",
        "datacontenttype": "application/json",
        "data": {"org": org, "unit_id": "s-001", "channel": "survey", "comment": "Slow and rude staff, terrible."},
    }
    await produce(
        stack.bootstrap,
        "feedback.ingest",
        json.dumps(envelope).encode(),
        headers=headers,
    )
    (stored,) = await listed(http, 1)
    assert (stored["unit_path"], stored["kind"], stored["comment_language"]) == ("south/s-001", "comment", "en")
    assert stored["polarity"] == "negative"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"unit_id": "b-001", "channel": "app", "ratings": {"csat": 7}}, "ratings.csat"),
        ({"unit_id": "b-001", "channel": "app", "kind": "audit", "ratings": {"csat": 3}}, "audit"),
        ({"unit_id": "b-001", "channel": "app", "ratings": {"csat": 3}, "extra": 1}, "extra"),
        ({"unit_id": "nowhere", "channel": "app", "ratings": {"csat": 3}}, "no unit 'nowhere'"),
    ],
)
async def test_ingest__invalid_event_goes_to_the_dead_letter_topic_with_the_reason(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient], payload: dict[str, Any], reason: str
) -> None:
    org, _ = org_client
    event_id = await _binary(stack, {"org": org, **payload})
    dead = await _dead_letter(stack, event_id)
    assert reason in dead["headers"]["dlq_reason"]


async def test_ingest__unknown_type_goes_to_the_dead_letter_topic(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, _ = org_client
    event_id = await _binary(stack, {"org": org, "unit_id": "b-001", "channel": "app"}, ce_type="qualityloop.other.v1")
    assert "unknown event type" in (await _dead_letter(stack, event_id))["headers"]["dlq_reason"]


async def test_ingest__same_source_id_twice_stores_one(stack: Stack, org_client: tuple[str, httpx.AsyncClient]) -> None:
    org, http = org_client
    payload = {"org": org, "unit_id": "b-001", "channel": "app", "ratings": {"nps": 10}, "source_id": "twice"}
    await _binary(stack, payload)
    await _binary(stack, payload)
    marker = {"org": org, "unit_id": "b-001", "channel": "app", "ratings": {"nps": 0}, "source_id": "after"}
    await _binary(stack, marker)
    # Both copies and the marker share a key, so a partition: once the marker is stored, both were handled.
    stored = await listed(http, 2)
    assert sorted(f["source_id"] for f in stored) == ["after", "twice"]


async def test_ingest__a_dead_letter_keeps_only_the_pseudonym_and_erasure_reaches_it(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client
    payload = {"org": org, "unit_id": "no-such-unit", "channel": "app", "customer_ref": "cust-raw-77"}
    event_id = str(uuid.uuid4())
    await produce(
        stack.bootstrap,
        "feedback.ingest",
        json.dumps(payload).encode(),
        key=f"{org}/no-such-unit".encode(),  # keyed <org>/<unit>: the dead letter is the organisation's
        headers={"ce_specversion": "1.0", "ce_id": event_id, "ce_type": INGEST_TYPE, "ce_source": "/crm"},
    )
    dead = await _dead_letter(stack, event_id)
    assert b"cust-raw-77" not in json.dumps(dead["value"]).encode()

    async def listed_dead_letter() -> dict[str, Any] | None:
        page = (await http.get("/api/v1/dead-letters/feedback")).json()
        return next((d for d in page.get("items", []) if d["headers"].get("ce_id") == event_id), None)

    kept = await eventually(listed_dead_letter)
    assert "cust-raw-77" not in kept["value"]

    assert (await http.post("/api/v1/erasures", json={"customer_ref": "cust-raw-77"})).status_code == 201
    assert await listed_dead_letter() is None
