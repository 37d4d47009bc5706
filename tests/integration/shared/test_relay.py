"""The outbox relay against the real broker and database: nothing committed is lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from devstack.processes import free_port, start_broker
from shared.events import ActionUpdated
from shared.relay import OutboxRelay
from shared.storage import OUTBOX, UnitOfWork, apply, ensure_collections, in_transaction
from tests.harness import Stack, read_topic, unique

pytestmark = pytest.mark.integration


async def _commit_event(client: AsyncMongoClient, db, action_id: str) -> str:
    unit = UnitOfWork("test")
    envelope = unit.publish(ActionUpdated(org="o", unit_id="u", unit_path="u", action_id=action_id, status="done"))
    await in_transaction(client, lambda session: apply(db, session, [unit]))
    return envelope.id


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    return producer


def _has(event_id: str):
    return lambda seen: any(r["headers"].get("ce_id") == event_id for r in seen)


async def test_relay_killed_between_write_and_publish__publishes_after_restart(stack: Stack):
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    db = client[unique("relay")]
    await ensure_collections(db, {})
    producer = await _producer(stack.bootstrap)
    try:
        action_id = unique("act")
        event_id = await _commit_event(client, db, action_id)

        crashing = OutboxRelay(service="test", db=db, producer=producer, bootstrap=stack.bootstrap)

        async def killed(row: dict) -> asyncio.Future:
            raise asyncio.CancelledError  # the process dies here: written, not yet published

        crashing._send = killed  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            await crashing.publish_pending()
        assert (await db[OUTBOX].find_one({"_id": event_id}) or {}).get("status") == "pending"

        restarted = OutboxRelay(service="test", db=db, producer=producer, bootstrap=stack.bootstrap)
        assert await restarted.publish_pending() == 1

        records = await read_topic(stack.bootstrap, "action.updated", until=_has(event_id))
        published = next(r for r in records if r["headers"]["ce_id"] == event_id)
        assert published["value"]["action_id"] == action_id
        assert (await db[OUTBOX].find_one({"_id": event_id}) or {}).get("status") == "sent"
    finally:
        await producer.stop()
        await client.close()


async def test_new_broker_incarnation__retained_events_are_published_again(stack: Stack, tmp_path: Path):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    broker = start_broker(port, tmp_path / "broker.log")
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    db = client[unique("relay")]
    await ensure_collections(db, {})
    producer = await _producer(bootstrap)
    relay = OutboxRelay(
        service="test",
        db=db,
        producer=producer,
        bootstrap=bootstrap,
        poll_seconds=0.1,
        incarnation_check_seconds=0.2,
        retention=timedelta(hours=1),
    )
    relay.start()
    try:
        event_id = await _commit_event(client, db, unique("act"))
        relay.wake()
        await read_topic(bootstrap, "action.updated", until=_has(event_id))

        # The in-memory broker restarts and forgets every topic it held.
        broker.stop()
        broker = start_broker(port, tmp_path / "broker-2.log")

        records = await read_topic(bootstrap, "action.updated", until=_has(event_id), timeout=60)
        assert any(r["headers"]["ce_id"] == event_id for r in records)
    finally:
        await relay.stop()
        await producer.stop()
        await client.close()
        broker.stop()
