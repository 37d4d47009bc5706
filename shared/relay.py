"""The outbox relay: publishes committed events with acks=all and records a receipt per published batch.

The outbox is append-only. Whoever commits rows hands them to the relay in memory, so the steady
state costs the database one receipt insert per published batch: no polling query, no per-row
update (on this database an update costs several inserts). A sweep finds what no handover brought
(a crash between commit and publish, a commit whose answer was lost, another replica's leftovers)
by comparing the outbox with the receipts over a window of its time-ordered keys.
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
from shared.storage import (
    INBOX,
    OUTBOX,
    OUTBOX_RECEIPTS,
    RELAY_STATE,
    Database,
    Document,
    find_in,
    outbox_key,
    outbox_key_at,
)
from shared.telemetry import EVENTS_PUBLISHED, OUTBOX_BACKLOG, current_carrier, publish_span

log = logging.getLogger(__name__)

MARKER_TOPIC_PREFIX = "qualityloop.relay-marker."
UNDER_LOAD_LINGER_SECONDS = 0.02
SWEEP_STATE_ID = "sweep"


class OutboxRelay:
    """Moves committed outbox rows to Kafka, keeping them for the retention window.

    A crash between publish and receipt re-sends on restart (at-least-once); the consumers' inboxes
    make the repeat harmless. The relay also watches for a new broker incarnation (its marker record
    gone, as after a restart of the in-memory broker) and then publishes the retained rows again.
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
        # A row's key is minted inside its transaction, before the commit: the sweep leaves the newest
        # ``grace`` alone so that it never races a commit (or its handover) still under way.
        self._grace = grace
        self._retention = retention
        self._incarnation_check_seconds = incarnation_check_seconds
        self._handed: deque[Document] = deque()
        OUTBOX_BACKLOG.labels(service).set(0)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._marker_topic = f"{MARKER_TOPIC_PREFIX}{service}"

    def hand_over(self, rows: Sequence[Document]) -> None:
        """Take rows whose transaction has just committed; they are published in the order handed."""
        if rows:
            self._handed.extend(rows)
            OUTBOX_BACKLOG.labels(self._service).set(len(self._handed))
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
        """Recover what a previous run left, then publish handed-over rows until stopped."""
        loop = asyncio.get_running_loop()
        next_check = next_sweep = next_cleanup = 0.0
        recovered = False
        while True:
            # Cleared before the pass, so that a handover during the pass wakes the next one at once.
            self._wake.clear()
            try:
                if loop.time() >= next_check:
                    await self.check_incarnation()
                    next_check = loop.time() + self._incarnation_check_seconds
                if not recovered:
                    # Nothing of this process is in flight yet: everything up to now is fair game.
                    await self._adopt_legacy_rows()
                    await self.sweep(until=datetime.now(UTC))
                    recovered = True
                    next_sweep = loop.time() + self._sweep_seconds
                published = await self.publish_handed()
                if loop.time() >= next_sweep:
                    await self.sweep()
                    next_sweep = loop.time() + self._sweep_seconds
                if loop.time() >= next_cleanup:
                    await self.forget_expired()
                    next_cleanup = loop.time() + 60
            except (KafkaError, PyMongoError, OSError) as error:
                log.warning("relay pass failed, retrying", extra={"error": repr(error)})
                published = 0
                await asyncio.sleep(1)
            if self._stopping and (not self._handed or not published):
                # What could not be published now stays in the outbox for the next start's recovery.
                return
            if len(self._handed) < self._batch_size:
                if published:
                    # Under a steady stream, let rows gather: fewer, larger batches cost the broker
                    # and the receipts less per row. An idle relay still answers the first commit at once.
                    await asyncio.sleep(UNDER_LOAD_LINGER_SECONDS)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)

    async def publish_handed(self) -> int:
        """Publish the handed-over rows, a batch at a time; return how many."""
        published = 0
        while self._handed:
            batch = [self._handed.popleft() for _ in range(min(self._batch_size, len(self._handed)))]
            try:
                await self.publish(batch)
            except BaseException:
                # Not one is lost: the batch goes back in front (what was sent already is sent again).
                self._handed.extendleft(reversed(batch))
                raise
            finally:
                OUTBOX_BACKLOG.labels(self._service).set(len(self._handed))
            published += len(batch)
        return published

    async def publish(self, rows: Sequence[Document]) -> None:
        """Publish rows in order, wait for the broker's acks, then record their receipt."""
        deliveries = [await self._send(row) for row in rows]
        await asyncio.gather(*deliveries)
        receipt = {"_id": outbox_key(), "ids": [row["_id"] for row in rows], "sent_at": datetime.now(UTC)}
        await self._db[OUTBOX_RECEIPTS].insert_one(receipt)
        for row in rows:
            EVENTS_PUBLISHED.labels(self._service, row["topic"]).inc()

    async def _send(self, row: Document) -> asyncio.Future[Any]:
        headers = [(name, bytes(value)) for name, value in row["headers"]]
        carrier = {n: v for n, v in decode_headers(headers).items() if n in TRACE_HEADERS}
        with publish_span(self._service, row["topic"], carrier, message_id=row["event_id"]):
            # The publish span, not the recording request, is the parent of the consumer's span.
            traced = [(n, v) for n, v in headers if n not in TRACE_HEADERS]
            traced += [(n, v.encode()) for n, v in current_carrier().items()]
            return await self._producer.send(
                row["topic"], value=bytes(row["value"]), key=row["key"].encode(), headers=traced
            )

    async def sweep(self, *, until: datetime | None = None) -> int:
        """Publish the rows written since the last sweep that have no receipt and were not handed over.

        Covers keys from where the last sweep stopped up to ``until`` (default: now less the grace);
        the next sweep starts at the grace line, so a commit that was still under way is looked at
        again. Returns how many rows it published.
        """
        state = self._db[RELAY_STATE]
        now = datetime.now(UTC)
        saved = await state.find_one({"_id": SWEEP_STATE_ID})
        start: str = saved["swept_to"] if saved else outbox_key_at(now - self._retention)
        end = outbox_key_at(until or now - self._grace)
        published = 0
        while start < end:
            keys = await self._keys_between(start, end)
            if not keys:
                break
            published += await self._publish_unreceipted(keys)
            if len(keys) < self._batch_size:
                break
            start = keys[-1] + "\x00"
        swept_to = min(end, outbox_key_at(now - self._grace))
        if not saved or swept_to > saved["swept_to"]:
            await state.update_one({"_id": SWEEP_STATE_ID}, {"$set": {"swept_to": swept_to}}, upsert=True)
        return published

    async def _keys_between(self, start: str, end: str) -> list[str]:
        cursor = self._db[OUTBOX].find({"_id": {"$gte": start, "$lt": end}}, {"_id": 1}).sort("_id", ASCENDING)
        return [row["_id"] for row in await cursor.to_list(self._batch_size)]

    async def _publish_unreceipted(self, keys: list[str]) -> int:
        receipted: set[str] = set()
        # A receipt is minted after the rows it names, so none older than the first key matters.
        async for receipt in self._db[OUTBOX_RECEIPTS].find({"_id": {"$gte": keys[0]}}, {"ids": 1}):
            receipted.update(receipt["ids"])
        in_hand = {row["_id"] for row in self._handed}
        missing = [key for key in keys if key not in receipted and key not in in_hand]
        if not missing:
            return 0
        rows = sorted(await find_in(self._db, OUTBOX, "_id", missing), key=lambda row: str(row["_id"]))
        log.warning("publishing outbox rows that were never handed over", extra={"rows": len(rows)})
        await self.publish(rows)
        return len(rows)

    async def _adopt_legacy_rows(self) -> None:
        """Publish what an outbox of the earlier format (a status per row) left pending, then drop that format."""
        outbox = self._db[OUTBOX]
        if "status_1_seq_1" not in await outbox.index_information():
            return
        pending = await outbox.find({"status": "pending"}).sort("seq", ASCENDING).to_list(None)
        if pending:
            await self.publish([{**row, "event_id": row["_id"]} for row in pending])
        await outbox.delete_many({"status": {"$exists": True}})
        for legacy in ("status_1_seq_1", "sent_at_1"):
            with suppress(PyMongoError):
                await outbox.drop_index(legacy)
        log.warning("outbox moved to the append-only format", extra={"published": len(pending)})

    async def check_incarnation(self) -> None:
        """Publish retained rows again when the broker no longer holds this relay's marker record.

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
        start = outbox_key_at(datetime.now(UTC) - self._retention)
        while (
            rows := await self._db[OUTBOX]
            .find({"_id": {"$gte": start}})
            .sort("_id", ASCENDING)
            .to_list(self._batch_size)
        ):
            await self.publish(rows)
            republished += len(rows)
            start = rows[-1]["_id"] + "\x00"
        if republished:
            log.warning("new broker incarnation: published retained outbox rows again", extra={"rows": republished})
        await self._producer.send_and_wait(self._marker_topic, value=self._service.encode(), partition=0)

    async def forget_expired(self) -> None:
        """Delete rows and receipts past the retention window (never unswept ones), inbox ids past twice that.

        A repeat can only come from some relay's retained rows, so an inbox id older than twice the
        retention window will not be delivered again.
        """
        now = datetime.now(UTC)
        saved = await self._db[RELAY_STATE].find_one({"_id": SWEEP_STATE_ID})
        horizon = min(outbox_key_at(now - self._retention), saved["swept_to"] if saved else "")
        await self._db[OUTBOX].delete_many({"_id": {"$lt": horizon}})
        await self._db[OUTBOX_RECEIPTS].delete_many({"_id": {"$lt": horizon}})
        await self._db[INBOX].delete_many({"received_at": {"$lt": now - 2 * self._retention}})
