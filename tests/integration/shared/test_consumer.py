"""The consumer loop against the real broker and database: inbox, retries, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient, InsertOne
from pymongo.errors import AutoReconnect

from shared.consumer import BatchConsumer, BatchContext, Subscription
from shared.events import ActionUpdated, Envelope
from shared.runtime import ensure_topics
from shared.storage import DEAD_LETTERS
from tests.harness import Stack, deliver, eventually, inbox_ids, produce, read_topic, unique

pytestmark = pytest.mark.integration


def _event(status: str) -> Envelope:
    return Envelope(
        data=ActionUpdated(org="o", unit_id="u", unit_path="u", action_id=unique("act"), status=status),
        source="/tests",
    )


class Recorder:
    """A handler that stores what it handles, and fails on statuses named 'poison'."""

    def __init__(self) -> None:
        self.outages = 0

    async def handle(self, envelopes: Sequence[Envelope[ActionUpdated]], batch: BatchContext) -> None:
        for envelope in envelopes:
            if envelope.data.status == "poison":
                raise ValueError("cannot handle poison")
            if envelope.data.status == "outage" and self.outages < 2:
                self.outages += 1
                raise AutoReconnect("the database went away")
            if envelope.data.status == "refused":
                batch.reject(envelope, "refused: not a status this handler takes")
                continue
            batch.unit.write("handled", InsertOne({"event_id": envelope.id, "status": envelope.data.status}))


@pytest.fixture
async def consumer_on(stack: Stack):
    started: list[tuple[BatchConsumer, AIOKafkaProducer, AsyncMongoClient]] = []

    async def start(topic: str):
        platform = stack.platform()
        await ensure_topics(platform, [topic, f"{topic}.dlq"])
        client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
        db = client[unique("consumer")]
        for name in ("handled", DEAD_LETTERS):
            await db.create_collection(name)
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", enable_idempotence=False)
        await producer.start()
        consumer = BatchConsumer(
            service="test",
            client=client,
            db=db,
            producer=producer,
            bootstrap=stack.bootstrap,
            subscriptions=[Subscription(ActionUpdated, Recorder().handle, topic_override=topic)],
            max_attempts=2,
            group_id=unique("group"),
        )
        await consumer.start()
        started.append((consumer, producer, client))
        return db

    yield start
    for consumer, producer, client in started:
        await consumer.stop()
        await producer.stop()
        await client.close()


async def test_redelivered_event__changes_nothing(stack: Stack, consumer_on):
    topic = unique("topic")
    db = await consumer_on(topic)
    first = _event("done")
    await deliver(stack, first, topic=topic)
    await deliver(stack, first, topic=topic)
    sentinel = _event("in_progress")
    await deliver(stack, sentinel, topic=topic)

    await eventually(lambda: db.handled.find_one({"event_id": sentinel.id}))
    assert await db.handled.count_documents({"event_id": first.id}) == 1
    assert await inbox_ids(db) == {first.id, sentinel.id}


async def test_malformed_record__goes_to_dead_letters_with_reason_and_the_rest_is_processed(stack: Stack, consumer_on):
    topic = unique("topic")
    db = await consumer_on(topic)
    await produce(stack.bootstrap, topic, b"{not json", headers={"ce_id": "x-1", "ce_type": ActionUpdated.type_name()})
    after = _event("done")
    await deliver(stack, after, topic=topic)

    await eventually(lambda: db.handled.find_one({"event_id": after.id}))
    dead = await read_topic(stack.bootstrap, f"{topic}.dlq", until=lambda seen: len(seen) >= 1)
    assert dead[0]["headers"]["dlq_source_topic"] == topic
    assert "invalid qualityloop.action.updated.v1 payload" in dead[0]["headers"]["dlq_reason"]
    stored = await db[DEAD_LETTERS].find_one({"topic": topic})
    assert stored is not None and stored["value"] == b"{not json"


async def test_event_whose_handler_keeps_failing__is_dead_lettered_alone(stack: Stack, consumer_on):
    topic = unique("topic")
    db = await consumer_on(topic)
    before, poison, after = _event("open"), _event("poison"), _event("done")
    for envelope in (before, poison, after):
        await deliver(stack, envelope, topic=topic)

    await eventually(lambda: db[DEAD_LETTERS].find_one({"topic": topic}))
    await eventually(lambda: db.handled.find_one({"event_id": after.id}))
    assert await db.handled.find_one({"event_id": before.id}) is not None
    assert await db.handled.find_one({"event_id": poison.id}) is None
    dead = await read_topic(stack.bootstrap, f"{topic}.dlq", until=lambda seen: len(seen) >= 1)
    assert dead[0]["headers"]["ce_id"] == poison.id
    assert "ValueError: cannot handle poison" in dead[0]["headers"]["dlq_reason"]
    await asyncio.sleep(0)


async def test_event_the_handler_rejects__is_dead_lettered_and_its_batch_is_kept(stack: Stack, consumer_on):
    topic = unique("topic")
    db = await consumer_on(topic)
    refused, kept = _event("refused"), _event("done")
    for envelope in (refused, kept):
        await deliver(stack, envelope, topic=topic)

    await eventually(lambda: db.handled.find_one({"event_id": kept.id}))
    dead = await read_topic(stack.bootstrap, f"{topic}.dlq", until=lambda seen: len(seen) >= 1)
    assert dead[0]["headers"]["ce_id"] == refused.id
    assert dead[0]["headers"]["dlq_reason"] == "refused: not a status this handler takes"
    assert await db.handled.find_one({"event_id": refused.id}) is None
    assert refused.id in await inbox_ids(db)


async def test_database_outage__retries_the_batch_and_dead_letters_nothing(stack: Stack, consumer_on):
    topic = unique("topic")
    db = await consumer_on(topic)
    during, after = _event("outage"), _event("done")
    for envelope in (during, after):
        await deliver(stack, envelope, topic=topic)

    await eventually(lambda: db.handled.find_one({"event_id": after.id}))
    assert await db.handled.count_documents({"event_id": during.id}) == 1
    assert await db[DEAD_LETTERS].count_documents({}) == 0
