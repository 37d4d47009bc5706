"""The consumer loop: a polled batch is one transaction with its inbox rows; offsets commit after it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry.trace import Span, Status, StatusCode
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure, PyMongoError

from shared.dead_letters import DeadLetterRedaction, dead_letter_document, keep_as_is
from shared.events import Envelope, Event, UnparseableEvent, dead_letter_topic, decode_headers, read_event
from shared.inbox import Inbox
from shared.storage import DEAD_LETTERS, Database, Document, UnitOfWork, apply, in_transaction
from shared.telemetry import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    REJOINS,
    span_carrier,
    start_process_span,
)
from shared.telemetry import DEAD_LETTERS as DEAD_LETTER_COUNT
from shared.telemetry import tracer as service_tracer

log = logging.getLogger(__name__)

UNDER_LOAD_LINGER_SECONDS = 0.02
# How often a consumer asks whether the broker is a new incarnation (one cheap offsets request): before
# nearly every fetch, so that it rewinds before it reads, and commits, anything at its old positions.
INCARNATION_CHECK_SECONDS = 0.2
# How long a consumer replaced after a broker restart may take to join its group before another replaces it.
JOIN_SECONDS = 20.0
STOP_SECONDS = 10.0
MARKER_TOPIC_PREFIX = "qualityloop.consumer-marker."
E = TypeVar("E", bound=Event)


@dataclass
class BatchContext:
    """What a handler gets for one batch: the session for reads and the unit of work for writes."""

    db: Database
    session: AsyncClientSession
    unit: UnitOfWork
    rejected: dict[str, str] = field(default_factory=dict)

    def reject(self, envelope: Envelope[Event], reason: str) -> None:
        """Refuse one event for good (it goes to the dead-letter topic) without failing the batch.

        For input the handler can tell is wrong (an unknown unit, say); the handler must stage no
        writes for it. Its id still enters the inbox, so a redelivery is a no-op.
        """
        self.rejected[envelope.id] = reason


@dataclass(frozen=True)
class Subscription(Generic[E]):
    """One event type and its handler; the topic is the event's, the consumer parses and narrows.

    ``parse`` replaces the contract's reader for records that integrations produce (``feedback.ingest``):
    it must return an envelope of ``event`` or raise UnparseableEvent with the reason. Such records are
    signed by their producer's token, so one that cannot be read belongs to the organisation its token
    proved (``UnparseableEvent.org``), never to the one its key or payload names.
    """

    event: type[E]
    handler: Callable[[Sequence[Envelope[E]], BatchContext], Awaitable[None]]
    parse: Callable[[dict[str, str], bytes | None], Awaitable[Envelope[E]]] | None = None
    # Another topic carrying the same event type (tests give each case a topic of its own).
    topic_override: str | None = None

    @property
    def topic(self) -> str:
        """The topic consumed: the event type's own unless overridden."""
        return self.topic_override or self.event.topic

    async def read(self, headers: dict[str, str], value: bytes | None) -> Envelope[E]:
        """The record as an envelope of this subscription's event type, or UnparseableEvent."""
        if self.parse is not None:
            return await self.parse(headers, value)
        return read_event(headers, value, self.event)

    def owner(self, error: UnparseableEvent, key: bytes | None) -> str | None:
        """The organisation whose dead letter an unreadable record is."""
        return error.org if self.parse is not None else _org_of(key)


@dataclass
class _Message:
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope[Event]
    span: Span


class BatchConsumer:
    """Consumes a service's topics in batches with an inbox, retries and dead letters.

    A batch's new events are handled in one transaction together with their inbox rows, so a
    redelivered event changes nothing. If the batch keeps failing, each event is retried alone and
    the ones that still fail go to ``<topic>.dlq`` with the reason; the partition moves on.
    """

    def __init__(
        self,
        *,
        service: str,
        client: AsyncMongoClient[Document],
        db: Database,
        producer: AIOKafkaProducer,
        bootstrap: str,
        subscriptions: Sequence[Subscription[Any]],
        on_commit: Callable[[list[Document]], None] = lambda rows: None,
        batch_size: int = 500,
        max_attempts: int = 3,
        group_id: str | None = None,
        inbox_retention: timedelta = timedelta(hours=24),
        redact: DeadLetterRedaction = keep_as_is,
        prepare_broker: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._service = service
        self._redact = redact
        self._client = client
        self._db = db
        self._inbox = Inbox(db, retention=inbox_retention)
        self._producer = producer
        self._subscriptions = {s.topic: s for s in subscriptions}
        self._on_commit = on_commit
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._group_id = group_id or f"qualityloop-{service}"
        self._bootstrap = bootstrap
        self._prepare_broker = prepare_broker
        self._consumer = self._new_consumer()
        self._marker = TopicPartition(f"{MARKER_TOPIC_PREFIX}{self._group_id}", 0)
        self._marker_written = False
        self._next_incarnation_check = 0.0
        self._probe: AIOKafkaConsumer | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self._subscriptions,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_size,
            # Notice soon when topics come back after a broker restart (default: five minutes).
            metadata_max_age_ms=5000,
            # The embedded broker answers a waiting fetch only when the wait ends, not when data
            # arrives, so the wait is each hop's latency; 500 ms (the default) made a hop ~100 ms.
            fetch_max_wait_ms=50,
        )

    async def start(self) -> None:
        """Join the consumer group and start consuming in the background."""
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"{self._service}-consumer")

    async def stop(self) -> None:
        """Finish the batch in hand, commit its offsets and leave the group."""
        self._stopping = True
        if self._task:
            await self._task
        await self._consumer.stop()
        if self._probe is not None:
            await self._probe.stop()

    async def _run(self) -> None:
        while not self._stopping:
            batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
            try:
                await self._check_incarnation()
                batches = await self._consumer.getmany(timeout_ms=200, max_records=self._batch_size)
                records = [r for partition in batches.values() for r in partition]
                if records:
                    started = time.perf_counter()
                    await self.process(records)
                    await self._commit(batches)
                    BATCH_SECONDS.labels(self._service).observe(time.perf_counter() - started)
                    self._record_lag(batches)
                    if len(records) < self._batch_size:
                        # Under a steady stream, let records gather into larger batches (one
                        # transaction each); after an idle spell the first record is handled at once.
                        await asyncio.sleep(UNDER_LOAD_LINGER_SECONDS)
            except (KafkaError, PyMongoError, OSError) as error:
                # The broker or database is unreachable: nothing of this batch was committed. Rewind to
                # its start so it is fetched again once they are back; the inbox absorbs what repeats.
                log.warning("consumer pass failed, retrying the batch", extra={"error": repr(error)})
                for tp, records in batches.items():
                    if records:
                        self._consumer.seek(tp, records[0].offset)
                await asyncio.sleep(1)

    async def _check_incarnation(self) -> None:
        """Read every partition again from its start when the broker turns out to be a new incarnation.

        The in-memory broker forgets every record and committed offset when it restarts, but this
        consumer still holds its positions in the old logs: reading on from there in the new ones would
        skip what the relays publish again and what arrived first. This group's marker record gone says
        the broker is new, so every assigned partition is rewound; the inbox makes the repeats harmless.
        On Apache Kafka the marker stays and this never fires.
        """
        now = time.monotonic()
        if now < self._next_incarnation_check:
            return
        if self._probe is None:
            self._probe = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
            await self._probe.start()
        if (await self._probe.end_offsets([self._marker]))[self._marker] > 0:
            self._next_incarnation_check = now + INCARNATION_CHECK_SECONDS
            return
        if self._marker_written:
            await self._rejoin()
        await self._producer.send_and_wait(self._marker.topic, value=self._group_id.encode(), partition=0)
        self._marker_written = True
        # Only now: until the new consumer has joined and the marker is written, every pass tries again.
        self._next_incarnation_check = now + INCARNATION_CHECK_SECONDS

    async def _rejoin(self) -> None:
        """Replace the consumer by a fresh one that joins the new broker's group with no positions.

        A fresh consumer, rather than rewinding this one, reads every partition from its start (the new
        group has no committed offsets). Neither the old one's stop nor the new one's join is awaited
        past its bound: right after a restart, the old consumer's stop (its fetches to the gone broker
        closing) has hung for minutes, even once cancelled, in about one chaos run in four. What does
        not finish in time goes on in the background, and a join that fails is tried again.
        """
        log.warning("new broker incarnation: reading every partition again from its start")
        stopped, _ = await asyncio.wait([self._in_background(self._consumer.stop())], timeout=STOP_SECONDS)
        if not stopped:
            log.warning("the old consumer did not stop in time; it finishes in the background")
        if self._prepare_broker is not None:
            await asyncio.wait_for(self._prepare_broker(), JOIN_SECONDS)
        consumer = self._new_consumer()
        joining = self._in_background(consumer.start())
        await asyncio.wait([joining], timeout=JOIN_SECONDS)
        if not joining.done() or joining.cancelled() or joining.exception() is not None:
            REJOINS.labels(self._service, "failed").inc()
            log.warning("the new consumer did not join its group in time; trying again with another")
            joining.cancel()
            self._in_background(consumer.stop())
            raise TimeoutError("the consumer did not join the new broker's group")
        self._consumer = consumer
        REJOINS.labels(self._service, "joined").inc()

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task kept until done; its failure is logged, not raised."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background consumer work failed", extra={"error": repr(task.exception())})

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle a polled batch: parse, dead-letter what cannot be read, handle the rest exactly once."""
        messages: list[_Message] = []
        for record in records:
            headers = decode_headers(record.headers)
            span = start_process_span(
                self._service,
                record.topic,
                headers,
                kafka_partition=record.partition,
                kafka_offset=record.offset,
                consumer_group=self._group_id,
            )
            subscription = self._subscriptions[record.topic]
            try:
                envelope = await subscription.read(headers, record.value)
            except UnparseableEvent as error:
                await self._dead_letter(record, str(error), span, subscription.owner(error, record.key))
                continue
            # Whatever the handler publishes continues this span's trace.
            messages.append(_Message(record, replace(envelope, trace_carrier=span_carrier(span)), span))
        if messages:
            # Outside the attempts: a failure here is the database's, not the events' (no dead letters).
            await self._inbox.prepare(datetime.now(UTC))
            await self._handle(messages)

    async def _handle(self, messages: list[_Message]) -> None:
        with service_tracer(self._service).start_as_current_span("consume batch") as batch_span:
            batch_span.set_attribute("messaging.batch.message_count", len(messages))
            outcome = await self._attempt(messages)
            if isinstance(outcome, dict):
                await self._settle(messages, outcome)
                return
            # Isolate the poison: retry each event alone, dead-letter the ones that still fail.
            for message in messages:
                single = await self._attempt([message])
                if isinstance(single, dict):
                    await self._settle([message], single)
                else:
                    await self._dead_letter(message.record, single, message.span, message.envelope.data.org)

    async def _settle(self, messages: Sequence[_Message], rejected: dict[str, str]) -> None:
        for message in messages:
            if message.envelope.id in rejected:
                reason = rejected[message.envelope.id]
                await self._dead_letter(message.record, reason, message.span, message.envelope.data.org)
            else:
                self._finish([message], "processed")

    async def _attempt(self, messages: list[_Message]) -> dict[str, str] | str:
        """Handle the messages in one transaction: the events the handlers rejected, or the last error."""
        delay = 0.1
        for attempt in range(1, self._max_attempts + 1):
            try:
                rows, rejected = await in_transaction(self._client, lambda session: self._transact(session, messages))
                self._on_commit(rows)
                return rejected
            except (ConnectionFailure, KafkaError):
                raise  # an outage is not the event's fault: retry the whole batch, dead-letter nothing
            except Exception as error:  # a handler's bug must not stop the partition: retry, then DLQ
                reason = f"{type(error).__name__}: {error}"[:2000]
                log.warning("batch failed", extra={"attempt": attempt, "events": len(messages), "error": reason})
                if attempt == self._max_attempts:
                    return reason
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable: the last attempt returns")

    async def _transact(
        self, session: AsyncClientSession, messages: list[_Message]
    ) -> tuple[list[Document], dict[str, str]]:
        ids = [m.envelope.id for m in messages]
        seen = await self._inbox.seen(ids, session)
        fresh: dict[str, _Message] = {}
        for message in messages:
            if message.envelope.id not in seen and message.envelope.id not in fresh:
                fresh[message.envelope.id] = message
        unit = UnitOfWork(self._service)
        context = BatchContext(self._db, session, unit)
        for topic, group in _by_topic(list(fresh.values())).items():
            await self._subscriptions[topic].handler([m.envelope for m in group], context)
        now = datetime.now(UTC)
        for message in fresh.values():
            self._inbox.record(unit, message.envelope.id, message.record.topic, now)
        return await apply(self._db, session, [unit]), context.rejected

    def _finish(self, messages: Sequence[_Message], outcome: str) -> None:
        for message in messages:
            EVENTS_CONSUMED.labels(self._service, message.record.topic, outcome).inc()
            message.span.end()

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], reason: str, span: Span, org: str | None
    ) -> None:
        """Send the record to its dead-letter topic with the reason, and keep a copy for ``org`` to list and replay."""
        topic = dead_letter_topic(record.topic)
        # Redacted (the service's hook) and without credentials, on the topic and in the database alike.
        document = dead_letter_document(
            org=org,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers or ()),
            reason=reason,
            redact=self._redact,
        )
        headers = [
            *((n, bytes(v)) for n, v in document["headers"]),
            *_dead_letter_headers(self._service, record, reason),
        ]
        await self._producer.send_and_wait(topic, value=document["value"], key=record.key, headers=headers)
        await self._db[DEAD_LETTERS].insert_one(document)
        log.error(
            "dead-lettered a message",
            extra={"topic": record.topic, "offset": record.offset, "reason": reason},
        )
        DEAD_LETTER_COUNT.labels(self._service, record.topic).inc()
        EVENTS_CONSUMED.labels(self._service, record.topic, "dead_lettered").inc()
        span.set_status(Status(StatusCode.ERROR, reason))
        span.end()

    async def _commit(self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as error:
            # A rebalance took the partitions away; their new owner re-reads and the inbox dedups.
            log.warning("offset commit failed after a rebalance", extra={"error": str(error)})

    def _record_lag(self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        for tp in batches:
            highwater = self._consumer.highwater(tp)
            position = batches[tp][-1].offset + 1 if batches[tp] else None
            if highwater is not None and position is not None:
                CONSUMER_LAG.labels(self._service, tp.topic, str(tp.partition)).set(highwater - position)


def _org_of(key: bytes | None) -> str | None:
    """The organisation of a record keyed ``<org>/<unit>``, if it is."""
    try:
        org, _, unit = (key or b"").decode().partition("/")
    except UnicodeDecodeError:
        return None
    return org if org and unit else None


def _by_topic(messages: list[_Message]) -> dict[str, list[_Message]]:
    grouped: dict[str, list[_Message]] = {}
    for message in messages:
        grouped.setdefault(message.record.topic, []).append(message)
    return grouped


def _dead_letter_headers(service: str, record: ConsumerRecord[bytes, bytes], reason: str) -> list[tuple[str, bytes]]:
    return [
        ("dlq_reason", reason.encode()),
        ("dlq_source_topic", record.topic.encode()),
        ("dlq_source_partition", str(record.partition).encode()),
        ("dlq_source_offset", str(record.offset).encode()),
        ("dlq_consumer", service.encode()),
        ("dlq_time", datetime.now(UTC).isoformat().encode()),
    ]
