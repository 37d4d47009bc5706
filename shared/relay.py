"""The outbox relay: publishes committed events with acks=all, then marks them sent."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pymongo import ASCENDING
from pymongo.errors import PyMongoError

from shared.events import TRACE_HEADERS, decode_headers
from shared.storage import INBOX, OUTBOX, Database, chunks
from shared.telemetry import EVENTS_PUBLISHED, OUTBOX_BACKLOG, current_carrier, publish_span

log = logging.getLogger(__name__)

MARKER_TOPIC_PREFIX = "qualityloop.relay-marker."
UNDER_LOAD_LINGER_SECONDS = 0.02


class OutboxRelay:
    """Moves outbox rows to Kafka: pending → sent, keeping sent rows for the retention window.

    A crash between publish and marking sent re-sends on restart (at-least-once); the consumers'
    inboxes make the repeat harmless. The relay also watches for a new broker incarnation (its marker
    record gone, as after a restart of the in-memory broker) and then publishes the retained rows again.
    """

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        producer: AIOKafkaProducer,
        bootstrap: str,
        batch_size: int = 1000,
        poll_seconds: float = 0.5,
        retention: timedelta = timedelta(hours=24),
        incarnation_check_seconds: float = 5.0,
    ) -> None:
        self._service = service
        self._db = db
        self._producer = producer
        self._bootstrap = bootstrap
        self._probe: AIOKafkaConsumer | None = None
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retention = retention
        self._incarnation_check_seconds = incarnation_check_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._marker_topic = f"{MARKER_TOPIC_PREFIX}{service}"

    def wake(self) -> None:
        """Tell the relay that new rows were committed, so it need not wait for its next poll."""
        self._wake.set()

    def start(self) -> None:
        """Run the relay in the background."""
        self._task = asyncio.create_task(self.run(), name=f"{self._service}-relay")

    async def stop(self) -> None:
        """Publish what is pending, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task
        if self._probe:
            await self._probe.stop()

    async def run(self) -> None:
        """Publish pending rows until stopped, checking the broker's incarnation now and then."""
        loop = asyncio.get_running_loop()
        next_check = 0.0
        next_cleanup = 0.0
        next_gauge = 0.0
        while True:
            # Cleared before the pass, so that a commit during the pass wakes the next one at once.
            self._wake.clear()
            try:
                if loop.time() >= next_check:
                    await self.check_incarnation()
                    next_check = loop.time() + self._incarnation_check_seconds
                published = await self.publish_pending()
                if loop.time() >= next_cleanup:
                    await self.forget_expired()
                    next_cleanup = loop.time() + 60
                if loop.time() >= next_gauge:
                    backlog = await self._db[OUTBOX].count_documents({"status": "pending"})
                    OUTBOX_BACKLOG.labels(self._service).set(backlog)
                    next_gauge = loop.time() + 5
            except (KafkaError, PyMongoError, OSError) as error:
                log.warning("relay pass failed, retrying", extra={"error": repr(error)})
                published = 0
                await asyncio.sleep(1)
            if self._stopping and published == 0:
                return
            if published < self._batch_size:
                if published:
                    # Under a steady stream, let rows gather: fewer, larger passes cost the database
                    # far less per row. An idle relay still answers the first commit at once.
                    await asyncio.sleep(UNDER_LOAD_LINGER_SECONDS)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows in order and mark them sent; return how many."""
        outbox = self._db[OUTBOX]
        rows = await outbox.find({"status": "pending"}).sort("seq", ASCENDING).to_list(self._batch_size)
        if not rows:
            return 0
        deliveries = [await self._send(row) for row in rows]
        await asyncio.gather(*deliveries)
        sent_at = datetime.now(UTC)
        for chunk in chunks([row["_id"] for row in rows]):
            await outbox.update_many(
                {"_id": {"$in": chunk}}, {"$set": {"status": "sent", "sent_at": sent_at}, "$inc": {"send_count": 1}}
            )
        for row in rows:
            EVENTS_PUBLISHED.labels(self._service, row["topic"]).inc()
        return len(rows)

    async def _send(self, row: dict[str, Any]) -> asyncio.Future[Any]:
        headers = [(name, bytes(value)) for name, value in row["headers"]]
        carrier = {n: v for n, v in decode_headers(headers).items() if n in TRACE_HEADERS}
        with publish_span(self._service, row["topic"], carrier, message_id=row["_id"]):
            # The publish span, not the recording request, is the parent of the consumer's span.
            traced = [(n, v) for n, v in headers if n not in TRACE_HEADERS]
            traced += [(n, v.encode()) for n, v in current_carrier().items()]
            return await self._producer.send(
                row["topic"], value=bytes(row["value"]), key=row["key"].encode(), headers=traced
            )

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
        republished = await self._db[OUTBOX].update_many({"status": "sent"}, {"$set": {"status": "pending"}})
        if republished.modified_count:
            log.warning(
                "new broker incarnation: publishing retained outbox rows again",
                extra={"rows": republished.modified_count},
            )
        await self._producer.send_and_wait(self._marker_topic, value=self._service.encode(), partition=0)

    async def forget_expired(self) -> None:
        """Delete sent rows past the retention window, and inbox ids past twice that.

        A repeat can only come from some relay's retained rows, so an inbox id older than twice the
        retention window will not be delivered again.
        """
        now = datetime.now(UTC)
        await self._db[OUTBOX].delete_many({"status": "sent", "sent_at": {"$lt": now - self._retention}})
        await self._db[INBOX].delete_many({"received_at": {"$lt": now - 2 * self._retention}})
