"""Dead letters keep no personal data and no credentials, and an erasure by pseudonym reaches them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from shared.app import create_app
from shared.consumer import BatchContext, Subscription
from shared.dead_letters import Redacted, erase_dead_letters
from shared.events import Envelope, ThresholdBreached
from shared.runtime import Runtime, ServiceDefinition
from shared.settings import ServiceSettings
from tests.harness import RunningService, Stack, eventually, produce, read_topic, unique

pytestmark = pytest.mark.integration


def pseudonym(reference: str) -> str:
    return hashlib.sha256(b"test-key" + reference.encode()).hexdigest()[:16]


def redact(value: bytes | None) -> Redacted:
    """What the feedback service's hook does: the raw customer reference replaced by its pseudonym."""
    try:
        payload = json.loads(value or b"")
    except ValueError:
        return Redacted(None)
    if not isinstance(payload, dict) or "customer_ref" not in payload:
        return Redacted(value)
    hashed = pseudonym(str(payload.pop("customer_ref")))
    return Redacted(json.dumps({**payload, "customer_pseudonym": hashed}).encode(), pseudonyms=[hashed])


class SinkSettings(ServiceSettings):
    port: int = 0
    database: str = "sink"


async def never_called(envelopes: Sequence[Envelope[ThresholdBreached]], batch: BatchContext) -> None:
    raise AssertionError("a malformed record reached the handler")


async def test_dead_letter__keeps_the_pseudonym_not_the_reference_nor_the_token_and_erasure_removes_it(stack: Stack):
    topic = unique("ingest")

    def subscriptions(runtime: Runtime[Any]) -> list[Subscription[Any]]:
        return [Subscription(ThresholdBreached, never_called, topic_override=topic)]

    definition = ServiceDefinition(
        name="sink",
        settings_type=SinkSettings,
        routers=[],
        subscriptions=subscriptions,
        dead_letter_redaction=lambda runtime: redact,
    )
    service = await RunningService(
        create_app(definition, stack.platform(), SinkSettings(database=unique("sink")))
    ).start()
    org = unique("org")
    try:
        await produce(
            stack.bootstrap,
            topic,
            json.dumps({"org": org, "customer_ref": "cust-42"}).encode(),
            key=f"{org}/b-1".encode(),
            headers={
                "ce_id": unique("id"),
                "ce_type": ThresholdBreached.type_name(),
                "authorization": "Bearer secret-token",
            },
        )
        async with httpx.AsyncClient(base_url=service.url, headers=stack.headers(org, "admin")) as http:

            async def listed() -> list[dict[str, Any]]:
                return (await http.get("/api/v1/dead-letters/sink")).json()["items"]

            [dead] = await eventually(listed)
            assert "cust-42" not in json.dumps(dead)
            assert json.loads(dead["value"])["customer_pseudonym"] == pseudonym("cust-42")
            assert "authorization" not in dead["headers"] and "secret-token" not in json.dumps(dead)

            [on_topic] = await read_topic(stack.bootstrap, f"{topic}.dlq", until=lambda seen: len(seen) >= 1)
            assert on_topic["value"]["customer_pseudonym"] == pseudonym("cust-42")
            assert "authorization" not in on_topic["headers"]
            assert on_topic["headers"]["dlq_reason"] == dead["reason"]

            db = service.app.state.runtime.db
            assert await erase_dead_letters(db, unique("org"), pseudonym("cust-42")) == 0
            assert await erase_dead_letters(db, org, pseudonym("cust-42")) == 1
            assert await listed() == []
    finally:
        await service.stop()
