"""The outbox relay: publishes committed events with acks=all, then moves their document to ``outbox_sent_<n>``.

Whoever commits a transaction hands its outbox documents (one per transaction, holding its events) to
the relay in memory, so the relay never polls. ``outbox`` therefore holds only what is not published
yet and stays small; a sweep of it finds what no handover brought (a crash between commit and
publish, a commit whose answer was lost). This shape suits the database: it pays for every
document inserted or deleted and for every secondary index, and reads a range of ``_id`` by
scanning the whole collection, so nothing here queries a range of a big collection while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pymongo import ASCENDING
from pymongo.errors import PyMongoError

from shared.events import TRACE_HEADERS, decode_headers
from shared.generations import Generations
from shared.storage import (
    OUTBOX,
    OUTBOX_SENT_PREFIX,
    OUTBOX_UNREADABLE,
    Database,
    Document,
    chunks,
    insert_new,
    outbox_key_at,
)
from shared.telemetry import EVENTS_PUBLISHED, OUTBOX_BACKLOG, current_carrier, publish_span

log = logging.getLogger(__name__)

MARKER_TOPIC_PREFIX = "qualityloop.relay-marker."
UNDER_LOAD_LINGER_SECONDS = 0.02


class OutboxRelay:
    """Moves committed outbox documents to Kafka, keeping published ones for the retention window.

    A crash between publish and clearing re-sends on restart (at-least-once); the consumers' inboxes
    make the repeat harmless. The relay also watches for a new broker incarnation (its marker record
    gone, as after a restart of the in-memory broker) and then publishes the retained events again.
    """

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        producer: AIOKafkaProducer,
        bootstrap: str,
        batch_size: int = 1000,
        sweep_seconds: float = 10.0,
        grace: timedelta = timedelta(seconds=60),
        retention: timedelta = timedelta(hours=24),
        incarnation_check_seconds: float = 5.0,
    ) -> None:
        self._service = service
        self._db = db
        self._producer = producer
        self._bootstrap = bootstrap
        self._probe: AIOKafkaConsumer | None = None
        self._batch_size = batch_size
        self._sweep_seconds = sweep_seconds
        # A document's key is minted inside its transaction, before the commit and the handover: the
        # sweep leaves the newest ``grace`` alone, so it does not race a commit still under way.
        self._grace = grace
        self._incarnation_check_seconds = incarnation_check_seconds
        self._handed: deque[Document] = deque()
        self._handed_events = 0
        # Published documents, kept for republishing after a broker restart: one to two retentions long.
        self._sent = Generations(db, OUTBOX_SENT_PREFIX, retention)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._marker_topic = f"{MARKER_TOPIC_PREFIX}{service}"
        OUTBOX_BACKLOG.labels(service).set(0)

    def hand_over(self, documents: Sequence[Document]) -> None:
        """Take outbox documents whose transaction has just committed; published in the order handed."""
        if documents:
            self._handed.extend(documents)
            self._count_handed(sum(len(document["events"]) for document in documents))
            self._wake.set()

    def start(self) -> None:
        """Run the relay in the background."""
        self._task = asyncio.create_task(self.run(), name=f"{self._service}-relay")

    async def stop(self) -> None:
        """Publish what was handed over, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task
        if self._probe:
            await self._probe.stop()

    async def run(self) -> None:
        """Recover what a previous run left, then publish handed-over documents until stopped."""
        loop = asyncio.get_running_loop()
        next_check = next_sweep = 0.0
        recovered = False
        while True:
            # Cleared before the pass, so that a handover during the pass wakes the next one at once.
            self._wake.clear()
            try:
                if not recovered:
                    await self._adopt_legacy_rows()
                    # Nothing of this process is in flight yet: whatever is in the outbox is unpublished.
                    await self.sweep(grace=timedelta(0))
                    recovered = True
                if loop.time() >= next_check:
                    await self.check_incarnation()
                    next_check = loop.time() + self._incarnation_check_seconds
                published = await self.publish_handed()
                if loop.time() >= next_sweep:
                    await self.sweep()
                    next_sweep = loop.time() + self._sweep_seconds
            except (KafkaError, PyMongoError, OSError) as error:
                log.warning("relay pass failed, retrying", extra={"error": repr(error)})
                published = 0
                await asyncio.sleep(1)
            except Exception:
                # A bug must not silently end the relay: every later commit would go unpublished.
                log.exception("relay pass failed unexpectedly, retrying")
                published = 0
                await asyncio.sleep(1)
            if self._stopping and (not self._handed or not published):
                # What could not be published now stays in the outbox for the next start's recovery.
                return
            if published:
                # Under a steady stream, let documents gather: fewer, larger batches cost the broker
                # and the database less per event. An idle relay still answers the first commit at once.
                await asyncio.sleep(UNDER_LOAD_LINGER_SECONDS)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)

    async def publish_handed(self) -> int:
        """Publish the handed-over documents' events, a batch at a time; return how many events."""
        published = 0
        while self._handed:
            batch = self._take_batch()
            events = sum(len(document["events"]) for document in batch)
            try:
                await self.publish(batch)
            except BaseException:
                # Not one is lost: the batch goes back in front (what was sent already is sent again).
                self._handed.extendleft(reversed(batch))
                raise
            self._count_handed(-events)
            published += events
        return published

    def _take_batch(self) -> list[Document]:
        batch = [self._handed.popleft()]
        events = len(batch[0]["events"])
        while self._handed and events + len(self._handed[0]["events"]) <= self._batch_size:
            events += len(self._handed[0]["events"])
            batch.append(self._handed.popleft())
        return batch

    async def publish(self, documents: Sequence[Document], *, clear: bool = True) -> None:
        """Publish the documents' events in order and wait for the broker's acks; then keep and clear them."""
        deliveries = [await self._send(event) for document in documents for event in document["events"]]
        await asyncio.gather(*deliveries)
        for document in documents:
            for event in document["events"]:
                EVENTS_PUBLISHED.labels(self._service, event["topic"]).inc()
        if not clear:
            return
        await self._sent.prepare(datetime.now(UTC))
        await insert_new(self._db, self._sent.current, [{**d, "sent_at": datetime.now(UTC)} for d in documents])
        for chunk in chunks([d["_id"] for d in documents]):
            await self._db[OUTBOX].delete_many({"_id": {"$in": list(chunk)}})

    async def _send(self, event: Document) -> asyncio.Future[Any]:
        headers = [(name, bytes(value)) for name, value in event["headers"]]
        carrier = {n: v for n, v in decode_headers(headers).items() if n in TRACE_HEADERS}
        with publish_span(self._service, event["topic"], carrier, message_id=event["id"]):
            # The publish span, not the recording request, is the parent of the consumer's span.
            traced = [(n, v) for n, v in headers if n not in TRACE_HEADERS]
            traced += [(n, v.encode()) for n, v in current_carrier().items()]
            return await self._producer.send(
                event["topic"], value=bytes(event["value"]), key=event["key"].encode(), headers=traced
            )

    async def sweep(self, *, grace: timedelta | None = None) -> int:
        """Publish outbox documents older than the grace that no handover brought; return how many.

        ``outbox`` holds only unpublished documents, so reading all of it is cheap.
        """
        line = outbox_key_at(datetime.now(UTC) - (self._grace if grace is None else grace))
        in_hand = {document["_id"] for document in self._handed}
        left = []
        for document in await self._db[OUTBOX].find().to_list(None):
            if not isinstance(document.get("events"), list):
                # Not this format: publishing it would fail on every pass, so it is set aside, loudly.
                await insert_new(self._db, OUTBOX_UNREADABLE, [document])
                await self._db[OUTBOX].delete_one({"_id": document["_id"]})
                log.error("outbox document of an unknown format set aside", extra={"id": str(document["_id"])})
            elif document["_id"] < line and document["_id"] not in in_hand:
                left.append(document)
        if left:
            left.sort(key=lambda document: str(document["_id"]))
            log.warning("publishing outbox documents that were never handed over", extra={"documents": len(left)})
            await self.publish(left)
        return len(left)

    async def _adopt_legacy_rows(self) -> None:
        """Publish what an outbox of the earlier format (a row per event, with a status) left pending."""
        outbox = self._db[OUTBOX]
        if "status_1_seq_1" not in await outbox.index_information():
            return
        pending = await outbox.find({"status": "pending"}).sort("seq", ASCENDING).to_list(None)
        if pending:
            events = [{**row, "id": row["_id"]} for row in pending]
            await self.publish([{"_id": "legacy", "events": events}], clear=False)
        await outbox.delete_many({"status": {"$exists": True}})
        for legacy in ("status_1_seq_1", "sent_at_1"):
            with suppress(PyMongoError):
                await outbox.drop_index(legacy)
        log.warning("outbox moved to the format of a document per transaction", extra={"published": len(pending)})

    async def check_incarnation(self) -> None:
        """Publish retained events again when the broker no longer holds this relay's marker record.

        The marker partition's end offset only grows on a broker that keeps its data; an empty marker
        partition means a new incarnation (the in-memory broker restarted, or this is the first start).
        Only the marker's presence is telling: asking for metadata re-creates a lost topic, empty. On
        Apache Kafka the marker stays and this never fires. The inboxes downstream make repeats harmless.
        """
        if self._probe is None:
            self._probe = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
            await self._probe.start()
        marker = TopicPartition(self._marker_topic, 0)
        if (await self._probe.end_offsets([marker]))[marker] > 0:
            return
        republished = 0
        await self._sent.prepare(datetime.now(UTC))
        for name in reversed(self._sent.kept):  # the older generation first
            batch: list[Document] = []
            async for document in self._db[name].find().sort("_id", ASCENDING):
                batch.append(document)
                if len(batch) >= 100:
                    await self.publish(batch, clear=False)
                    republished, batch = republished + len(batch), []
            if batch:
                await self.publish(batch, clear=False)
                republished += len(batch)
        if republished:
            log.warning("new broker incarnation: published retained events again", extra={"documents": republished})
        await self._producer.send_and_wait(self._marker_topic, value=self._service.encode(), partition=0)

    def _count_handed(self, change: int) -> None:
        self._handed_events += change
        OUTBOX_BACKLOG.labels(self._service).set(self._handed_events)
