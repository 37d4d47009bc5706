"""Intake over Kafka: ``feedback.ingest`` in CloudEvents binary and structured mode."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.v1.event import CloudEvent

from shared.auth import issue_token
from shared.storage import DEAD_LETTERS
from tests.harness import RunningService, Stack, eventually, produce, read_topic, unique
from tests.integration.feedback.conftest import listed, received

pytestmark = pytest.mark.integration

INGEST_TYPE = "qualityloop.feedback.ingest.v1"


def _signed(stack: Stack, org: str, role: str = "integration", scopes: tuple[str, ...] = ("*",)) -> dict[str, str]:
    """The record header an integration signs its records with: its bearer token."""
    return {"authorization": f"Bearer {stack.token(org, role, scopes=scopes)}"}


async def _binary(stack: Stack, org: str, payload: dict[str, Any], *, signed: bool = True, **headers: str) -> str:
    """Produce a binary-mode ingest event for ``org``, signed with an integration token of it (unless told)."""
    event_id = str(uuid.uuid4())
    await produce(
        stack.bootstrap,
        "feedback.ingest",
        json.dumps(payload).encode(),
        key=f"{org}/{payload.get('unit_id', '')}".encode(),
        headers={
            "ce_specversion": "1.0",
            "ce_id": event_id,
            "ce_type": INGEST_TYPE,
            "ce_source": "/crm",
            **(_signed(stack, org) if signed else {}),
            **headers,
        },
    )
    return event_id


async def _dead_letter(stack: Stack, event_id: str) -> dict[str, Any]:
    """The dead letter of an event, found by its id (a header in binary mode, in the value in structured mode)."""

    def of_event(record: dict[str, Any]) -> bool:
        value = record["value"]
        return record["headers"].get("ce_id") == event_id or (isinstance(value, dict) and value.get("id") == event_id)

    records = await read_topic(stack.bootstrap, "feedback.ingest.dlq", until=lambda seen: any(map(of_event, seen)))
    return next(filter(of_event, records))


async def test_ingest__binary_event_is_stored_and_published(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client
    payload = {"unit_code": "BJ001", "channel": "call_centre", "ratings": {"csat": 1}, "source_id": "k-1"}
    await _binary(stack, org, payload)
    (stored,) = await listed(http, 1)
    assert (stored["unit_path"], stored["source_id"], stored["ratings"]["csat"]) == ("north/b-001", "k-1", 1)
    event = await received(stack, stored["id"])
    assert (event["org"], event["unit_id"], event["kind"]) == (org, "b-001", "rating")
    # The integration that produced it reads it back over REST, as what it submitted.
    own = await http.get(f"/api/v1/feedback/{stored['id']}", headers=stack.headers(org, "integration"))
    assert own.status_code == 200, own.text


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
    value = json.dumps(envelope).encode()
    await produce(stack.bootstrap, "feedback.ingest", value, headers=headers | _signed(stack, org))
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
    event_id = await _binary(stack, org, payload)
    dead = await _dead_letter(stack, event_id)
    assert reason in dead["headers"]["dlq_reason"]


async def test_ingest__unknown_type_goes_to_the_dead_letter_topic(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, _ = org_client
    event_id = await _binary(stack, org, {"unit_id": "b-001", "channel": "app"}, ce_type="qualityloop.other.v1")
    assert "unknown event type" in (await _dead_letter(stack, event_id))["headers"]["dlq_reason"]


async def test_ingest__same_source_id_twice_stores_one(stack: Stack, org_client: tuple[str, httpx.AsyncClient]) -> None:
    org, http = org_client
    payload = {"org": org, "unit_id": "b-001", "channel": "app", "ratings": {"nps": 10}, "source_id": "twice"}
    await _binary(stack, org, payload)
    await _binary(stack, org, payload)
    marker = {"org": org, "unit_id": "b-001", "channel": "app", "ratings": {"nps": 0}, "source_id": "after"}
    await _binary(stack, org, marker)
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
        headers={"ce_specversion": "1.0", "ce_id": event_id, "ce_type": INGEST_TYPE, "ce_source": "/crm"}
        | _signed(stack, org),
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


async def _dead_letters_of(http: httpx.AsyncClient) -> set[str]:
    """The event ids of the dead letters an organisation's admin is shown."""
    page = (await http.get("/api/v1/dead-letters/feedback", params={"limit": 200})).json()
    return {d["headers"].get("ce_id") for d in page["items"]}


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ({}, "no integration token"),
        ({"authorization": "Basic dXNlcjpwdw=="}, "no integration token"),
        ({"authorization": "Bearer not-a-token"}, "invalid integration token"),
    ],
)
async def test_ingest__a_record_without_a_valid_token__is_dead_lettered_as_no_tenant_s(
    stack: Stack,
    org_client: tuple[str, httpx.AsyncClient],
    feedback_service: RunningService,
    signature: dict[str, str],
    reason: str,
) -> None:
    org, http = org_client
    payload = {"org": org, "unit_id": "b-001", "channel": "app", "ratings": {"csat": 1}}
    event_id = await _binary(stack, org, payload, signed=False, **signature)
    assert reason in (await _dead_letter(stack, event_id))["headers"]["dlq_reason"]

    async def kept_without_owner() -> bool:
        # The copy kept for listing is written just after the record goes to the dead-letter topic.
        unowned = await feedback_service.app.state.runtime.db[DEAD_LETTERS].find({"org": None}).to_list(None)
        return event_id in {bytes(dict(d["headers"])["ce_id"]).decode() for d in unowned}

    assert await eventually(kept_without_owner)
    assert event_id not in await _dead_letters_of(http)
    assert (await http.get("/api/v1/feedback")).json()["items"] == []


async def test_ingest__an_expired_token_or_one_without_the_role__is_refused(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client
    payload = {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 1}}
    expired = issue_token(stack.private_key.read_bytes(), org=org, roles=["integration"], ttl_seconds=-3600)
    late = await _binary(stack, org, payload, signed=False, authorization=f"Bearer {expired}")
    reader = await _binary(stack, org, payload, signed=False, **_signed(stack, org, "analyst"))
    assert "invalid integration token" in (await _dead_letter(stack, late))["headers"]["dlq_reason"]
    assert "may not post feedback" in (await _dead_letter(stack, reader))["headers"]["dlq_reason"]
    # The analyst's token proved the organisation: its dead letter is the organisation's.
    assert reader in await eventually(lambda: _dead_letters_of(http))
    assert (await http.get("/api/v1/feedback")).json()["items"] == []


async def test_ingest__a_record_naming_another_tenant__is_refused_and_reaches_neither(
    stack: Stack, feedback_service: RunningService, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    victim, victim_http = org_client
    intruder = unique("org")
    payload = {"org": victim, "unit_id": "b-001", "channel": "app", "ratings": {"csat": 1}}
    event_id = await _binary(stack, victim, payload, signed=False, **_signed(stack, intruder))
    assert "names organisation" in (await _dead_letter(stack, event_id))["headers"]["dlq_reason"]
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=stack.headers(intruder, "admin")) as mine:
        assert event_id in await eventually(lambda: _dead_letters_of(mine))
    assert event_id not in await _dead_letters_of(victim_http)
    assert (await victim_http.get("/api/v1/feedback")).json()["items"] == []


async def test_ingest__a_subtree_token_takes_in_feedback_of_its_subtree_only(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client
    north = _signed(stack, org, scopes=("north",))
    outside = await _binary(
        stack, org, {"unit_id": "s-001", "channel": "app", "ratings": {"csat": 1}}, signed=False, **north
    )
    inside = {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 5}, "source_id": "north-1"}
    await _binary(stack, org, inside, signed=False, **north)
    assert "no unit 's-001'" in (await _dead_letter(stack, outside))["headers"]["dlq_reason"]
    (stored,) = await listed(http, 1)
    assert (stored["unit_path"], stored["source_id"]) == ("north/b-001", "north-1")


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_ingest__events_of_the_official_cloudevents_sdk_are_taken_in(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient], mode: str
) -> None:
    org, http = org_client
    event = CloudEvent(
        attributes={"type": INGEST_TYPE, "source": "/pos/till-7", "datacontenttype": "application/json"},
        data={"unit_code": "BJ001", "channel": "in_branch", "ratings": {"nps": 9}, "source_id": f"sdk-{mode}"},
    )
    message = kafka.to_binary_event(event) if mode == "binary" else kafka.to_structured_event(event)
    headers = {name: value.decode() for name, value in message.headers.items()} | _signed(stack, org)
    await produce(stack.bootstrap, "feedback.ingest", message.value, key=f"{org}/b-001".encode(), headers=headers)
    (stored,) = await listed(http, 1)
    assert (stored["unit_path"], stored["channel"], stored["source_id"]) == ("north/b-001", "in_branch", f"sdk-{mode}")
    assert stored["ratings"]["nps"] == 9


async def test_ingest__an_sdk_event_that_is_not_ours__is_dead_lettered_with_its_reason(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, _ = org_client
    event = CloudEvent(attributes={"type": "com.example.order.placed", "source": "/shop"}, data={"order": 1})
    message = kafka.to_structured_event(event)
    headers = {name: value.decode() for name, value in message.headers.items()} | _signed(stack, org)
    await produce(stack.bootstrap, "feedback.ingest", message.value, headers=headers)
    dead = await _dead_letter(stack, event.get_id())
    assert "unknown event type 'com.example.order.placed'" in dead["headers"]["dlq_reason"]
