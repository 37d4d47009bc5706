"""The outbox relay against the real broker and database: nothing committed is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import ASCENDING, AsyncMongoClient, IndexModel

from devstack.processes import free_port, start_broker
from shared.events import ActionUpdated, Envelope
from shared.relay import OutboxRelay
from shared.storage import (
    OUTBOX,
    OUTBOX_UNREADABLE,
    Database,
    Document,
    UnitOfWork,
    apply,
    ensure_collections,
    in_transaction,
    outbox_event,
)
from tests.harness import Stack, eventually, published_documents, read_topic, unique

pytestmark = pytest.mark.integration


async def _commit_event(client: AsyncMongoClient, db: Database, action_id: str) -> tuple[str, list[Document]]:
    """Commit one action.updated through the outbox: its event id and the documents a committer hands over."""
    unit = UnitOfWork("test")
    envelope = unit.publish(ActionUpdated(org="o", unit_id="u", unit_path="u", action_id=action_id, status="done"))
    rows = await in_transaction(client, lambda session: apply(db, session, [unit]))
    return envelope.id, rows


def _has(*event_ids: str):
    return lambda seen: set(event_ids) <= {r["headers"].get("ce_id") for r in seen}


async def _sent(db: Database) -> set[str]:
    """The ids of the events whose outbox document was published and cleared."""
    return {event["id"] for document in await published_documents(db) for event in document["events"]}


@pytest.fixture
async def parts(stack: Stack) -> AsyncIterator[tuple[AsyncMongoClient, Database, AIOKafkaProducer]]:
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    db = client[unique("relay")]
    await ensure_collections(db, {})
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    yield client, db, producer
    await producer.stop()
    await client.close()


def _relay(db: Database, producer: AIOKafkaProducer, bootstrap: str, **options: Any) -> OutboxRelay:
    return OutboxRelay(service="test", db=db, producer=producer, bootstrap=bootstrap, **options)


async def test_handed_over_documents__published_in_order_then_moved_to_sent(stack: Stack, parts):
    client, db, producer = parts
    committed = [await _commit_event(client, db, unique("act")) for _ in range(3)]
    relay = _relay(db, producer, stack.bootstrap)
    for _, documents in committed:
        relay.hand_over(documents)

    assert await relay.publish_handed() == 3

    ids = [event_id for event_id, _ in committed]
    records = await read_topic(stack.bootstrap, "action.updated", until=_has(*ids))
    assert [r["headers"]["ce_id"] for r in records if r["headers"]["ce_id"] in ids] == ids
    assert await _sent(db) == set(ids)
    assert await db[OUTBOX].count_documents({}) == 0, "the outbox keeps only what is not published"
    assert await relay.sweep(grace=timedelta(0)) == 0


async def test_one_transaction__one_outbox_document_with_all_its_events(stack: Stack, parts):
    client, db, _ = parts
    unit = UnitOfWork("test")
    for _ in range(3):
        unit.publish(ActionUpdated(org="o", unit_id="u", unit_path="u", action_id=unique("act"), status="done"))

    documents = await in_transaction(client, lambda session: apply(db, session, [unit]))

    assert len(documents) == 1
    stored = await db[OUTBOX].find().to_list(None)
    assert [e["id"] for e in stored[0]["events"]] == [e.id for e in unit.envelopes]


async def test_relay_killed_between_write_and_publish__publishes_after_restart(stack: Stack, parts):
    client, db, producer = parts
    action_id = unique("act")
    event_id, documents = await _commit_event(client, db, action_id)

    crashing = _relay(db, producer, stack.bootstrap)
    crashing.hand_over(documents)

    async def killed(event: dict) -> asyncio.Future:
        raise asyncio.CancelledError  # the process dies here: written, not yet published

    crashing._send = killed  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await crashing.publish_handed()
    assert await db[OUTBOX].count_documents({}) == 1

    restarted = _relay(db, producer, stack.bootstrap)
    restarted.start()
    try:
        records = await read_topic(stack.bootstrap, "action.updated", until=_has(event_id))
        published = next(r for r in records if r["headers"]["ce_id"] == event_id)
        assert published["value"]["action_id"] == action_id
        assert await eventually(lambda: _sent(db)) == {event_id}
    finally:
        await restarted.stop()


async def test_commit_never_handed_over__the_sweep_publishes_it_after_the_grace(stack: Stack, parts):
    client, db, producer = parts
    relay = _relay(db, producer, stack.bootstrap, sweep_seconds=0.2, grace=timedelta(seconds=0.5))
    relay.start()
    try:
        # As when a commit succeeded but its answer was lost: the row is there, nobody handed it over.
        event_id, _ = await _commit_event(client, db, unique("act"))
        await read_topic(stack.bootstrap, "action.updated", until=_has(event_id), timeout=30)
        assert await eventually(lambda: _sent(db)) == {event_id}
    finally:
        await relay.stop()


async def test_outbox_document_of_an_unknown_shape__set_aside_and_the_rest_published(stack: Stack, parts):
    client, db, producer = parts
    await db[OUTBOX].insert_one({"_id": "00000000000000000001broken", "topic": "action.updated"})
    event_id, _ = await _commit_event(client, db, unique("act"))
    relay = _relay(db, producer, stack.bootstrap)

    assert await relay.sweep(grace=timedelta(0)) == 1

    await read_topic(stack.bootstrap, "action.updated", until=_has(event_id))
    assert await db[OUTBOX].count_documents({}) == 0
    assert [d["_id"] for d in await db[OUTBOX_UNREADABLE].find().to_list(None)] == ["00000000000000000001broken"]


async def test_outbox_of_the_earlier_format__pending_rows_published_and_format_dropped(stack: Stack, parts):
    _, db, producer = parts
    await db[OUTBOX].create_indexes([IndexModel([("status", ASCENDING), ("seq", ASCENDING)]), IndexModel("sent_at")])
    envelope = Envelope(
        data=ActionUpdated(org="o", unit_id="u", unit_path="u", action_id=unique("act"), status="done"),
        source="/services/test",
    )
    legacy = {**outbox_event(envelope), "_id": envelope.id, "status": "pending", "seq": 1, "sent_at": None}
    await db[OUTBOX].insert_one({k: v for k, v in legacy.items() if k != "id"})
    relay = _relay(db, producer, stack.bootstrap)
    relay.start()
    try:
        await read_topic(stack.bootstrap, "action.updated", until=_has(envelope.id))
        await eventually(lambda: _legacy_index_dropped(db), timeout=10)
        assert await db[OUTBOX].count_documents({"status": {"$exists": True}}) == 0
    finally:
        await relay.stop()


async def _legacy_index_dropped(db: Database) -> bool:
    return "status_1_seq_1" not in await db[OUTBOX].index_information()


async def test_new_broker_incarnation__retained_events_are_published_again(stack: Stack, tmp_path: Path):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    broker = start_broker(port, tmp_path / "broker.log")
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    db = client[unique("relay")]
    await ensure_collections(db, {})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    relay = _relay(db, producer, bootstrap, incarnation_check_seconds=0.2, retention=timedelta(hours=1))
    relay.start()
    try:
        event_id, documents = await _commit_event(client, db, unique("act"))
        relay.hand_over(documents)
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
