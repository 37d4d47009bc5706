"""Raw limits of the stack: the broker's produce rate, the database's bulk and transactional write rates."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from shared.events import Envelope, FeedbackReceived, Ratings
from shared.ids import new_id
from shared.storage import Document, in_transaction, outbox_event

RAW_DATABASE = "bench_raw"


async def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create a topic up front (so the first produce does not pay for it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, partitions, 1)])
    except KafkaError:
        pass
    finally:
        await admin.close()


async def broker_produce_rate(bootstrap: str, *, records: int, size: int, chunk: int = 1000) -> dict[str, Any]:
    """Records/s from one producer (acks=all, no idempotence): send() a chunk, then await its deliveries."""
    topic = "bench.raw.produce"
    await create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    payload = os.urandom(size // 2).hex().encode()[:size]
    keys = [f"bench/unit-{i}".encode() for i in range(64)]
    try:
        await _produce(producer, topic, payload, keys, min(chunk, records), chunk)  # warm-up: metadata, connections
        started = time.perf_counter()
        await _produce(producer, topic, payload, keys, records, chunk)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"records": records, "bytes": size, "seconds": elapsed, "rate": records / elapsed}


async def _produce(
    producer: AIOKafkaProducer, topic: str, payload: bytes, keys: list[bytes], records: int, chunk: int
) -> None:
    for start in range(0, records, chunk):
        deliveries = [
            await producer.send(topic, value=payload, key=keys[i % len(keys)])
            for i in range(start, min(records, start + chunk))
        ]
        await asyncio.gather(*deliveries)


def feedback_document(org: str, unit: str, rating: int) -> Document:
    """A document shaped like the feedback service's stored feedback."""
    now = datetime.now(UTC)
    return {
        "_id": new_id("fb"),
        "org": org,
        "unit_id": unit,
        "unit_path": f"north/{unit}",
        "lineage": ["north", f"north/{unit}"],
        "channel": "survey",
        "occurred_at": now,
        "received_at": now,
        "ratings": {"csat": rating, "nps": None, "ces": None},
        "comment": None,
        "tags": [],
        "source_id": None,
        "customer_ref": None,
        "metadata": {},
    }


def feedback_outbox_pair(org: str, unit: str, rating: int) -> tuple[Document, Document]:
    """A feedback document and the outbox row of its feedback.received event."""
    feedback = feedback_document(org, unit, rating)
    event = FeedbackReceived(
        org=org,
        unit_id=unit,
        unit_path=feedback["unit_path"],
        feedback_id=feedback["_id"],
        channel="survey",
        occurred_at=feedback["occurred_at"],
        received_at=feedback["received_at"],
        ratings=Ratings(csat=rating),
    )
    # One outbox record per feedback, as the baseline is defined; the platform packs a transaction's
    # events into one outbox document, which is part of what it is measured on.
    envelope = Envelope(data=event, source="/services/feedback")
    return feedback, {"_id": new_id("ob"), **outbox_event(envelope), "created_at": feedback["received_at"]}


async def database_bulk_rate(mongo_uri: str, *, documents: int, batch: int) -> dict[str, Any]:
    """Documents/s of unordered insert_many in batches, one after another."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_uri)
    try:
        db = client[RAW_DATABASE]
        await db.drop_collection("bulk")
        await db.create_collection("bulk")
        warmup = [feedback_document("bench", f"u{i % 50}", 1 + i % 5) for i in range(min(batch, documents))]
        await db["bulk"].insert_many(warmup, ordered=False)
        docs = [feedback_document("bench", f"u{i % 50}", 1 + i % 5) for i in range(documents)]
        started = time.perf_counter()
        for start in range(0, documents, batch):
            await db["bulk"].insert_many(docs[start : start + batch], ordered=False)
        elapsed = time.perf_counter() - started
    finally:
        await client.close()
    return {"documents": documents, "batch": batch, "seconds": elapsed, "rate": documents / elapsed}


async def database_transaction_rate(mongo_uri: str, *, transactions: int, per_transaction: int) -> dict[str, Any]:
    """Feedback/s when each transaction inserts ``per_transaction`` feedback and as many outbox rows."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_uri)
    try:
        db = client[RAW_DATABASE]
        for name in ("feedback", "outbox"):
            await db.drop_collection(name)
            await db.create_collection(name)

        def group(count: int) -> list[tuple[list[Document], list[Document]]]:
            groups = []
            for _ in range(count):
                pairs = [feedback_outbox_pair("bench", f"u{i % 50}", 1 + i % 5) for i in range(per_transaction)]
                groups.append(([f for f, _ in pairs], [o for _, o in pairs]))
            return groups

        async def write(feedback: list[Document], outbox: list[Document]) -> None:
            async def work(session: AsyncClientSession) -> None:
                await db["feedback"].insert_many(feedback, ordered=True, session=session)
                await db["outbox"].insert_many(outbox, ordered=True, session=session)

            await in_transaction(client, work)

        for feedback, outbox in group(min(5, transactions)):  # warm-up
            await write(feedback, outbox)
        groups = group(transactions)
        started = time.perf_counter()
        for feedback, outbox in groups:
            await write(feedback, outbox)
        elapsed = time.perf_counter() - started
    finally:
        await client.close()
    count = transactions * per_transaction
    return {
        "transactions": transactions,
        "per_transaction": per_transaction,
        "seconds": elapsed,
        "rate": count / elapsed,
        "transactions_per_second": transactions / elapsed,
    }
