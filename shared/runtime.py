"""The service runtime: a service's definition, and the database, broker, relay and consumer wired for it."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from pymongo import AsyncMongoClient, IndexModel

from shared.asyncapi import IntakeChannel
from shared.consumer import BatchConsumer, Subscription
from shared.dead_letters import DeadLetterRedaction, keep_as_is
from shared.events import dead_letter_topic
from shared.relay import OutboxRelay
from shared.scheduler import JOB_INDEXES, JobHandler, Scheduler
from shared.settings import PlatformSettings, ServiceSettings
from shared.storage import Database, Document, GroupCommitter, UnitOfWork, connect, ensure_collections

log = logging.getLogger(__name__)


S = TypeVar("S", bound=ServiceSettings)


@dataclass
class Runtime(Generic[S]):
    """A running service's connections and background workers, and its own settings (typed)."""

    service: str
    platform: PlatformSettings
    settings: S
    client: AsyncMongoClient[Document]
    db: Database
    producer: AIOKafkaProducer
    relay: OutboxRelay
    committer: GroupCommitter
    consumer: BatchConsumer | None = None
    scheduler: Scheduler | None = None

    def unit_of_work(self) -> UnitOfWork:
        """A fresh unit of work for one use case."""
        return UnitOfWork(self.service)

    async def commit(self, unit: UnitOfWork) -> None:
        """Commit a unit of work with its events, grouped with concurrent requests into one transaction."""
        await self.committer.commit(unit)


def _no_subscriptions(runtime: Runtime[Any]) -> Sequence[Subscription[Any]]:
    return ()


def _no_jobs(runtime: Runtime[Any]) -> Mapping[str, JobHandler]:
    return {}


@dataclass(frozen=True)
class ServiceDefinition(Generic[S]):
    """What makes one service: its routers, subscriptions, collections and the topics it publishes."""

    name: str
    settings_type: type[S]
    routers: Sequence[APIRouter]
    subscriptions: Callable[[Runtime[S]], Sequence[Subscription[Any]]] = _no_subscriptions
    indexes: dict[str, list[IndexModel]] = field(default_factory=dict)
    publishes: Sequence[str] = ()
    on_start: Callable[[Runtime[S]], Awaitable[None]] | None = None
    # The handler of each kind of durable timer the service schedules (shared/scheduler.py).
    jobs: Callable[[Runtime[S]], Mapping[str, JobHandler]] = _no_jobs
    description: str = ""
    # Topics consumed from integrations (feedback.ingest), documented in the service's AsyncAPI document.
    intake: Sequence[IntakeChannel] = ()
    # Replaces personal data in what a dead letter keeps (feedback: the raw customer reference).
    # How dead letters of this service are stripped of personal data, made from the running service (its keys).
    dead_letter_redaction: Callable[[Runtime[S]], DeadLetterRedaction] = lambda runtime: keep_as_is


async def get_runtime(request: Request) -> Runtime[Any]:
    """FastAPI dependency: the service's runtime (async: FastAPI runs a plain function in a worker thread).

    Each service narrows it to its settings once: ``Annotated[Runtime[XSettings], Depends(get_runtime)]``.
    """
    runtime: Runtime[Any] = request.app.state.runtime
    return runtime


async def start_producer(bootstrap: str, *, timeout: float, idempotent: bool = False) -> AIOKafkaProducer:
    """A producer with acks=all and no idempotence (the embedded broker lacks InitProducerId), with backoff."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=idempotent, linger_ms=2)
        try:
            await producer.start()
            return producer
        except (KafkaError, OSError):
            await producer.stop()
            if time.monotonic() > deadline:
                raise
            log.warning("broker not reachable yet, retrying")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def ensure_topics(platform: PlatformSettings, topics: Sequence[str]) -> None:
    """Create the topics a service uses, if missing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=platform.kafka_bootstrap)
    await admin.start()
    try:
        missing = set(topics) - set(await admin.list_topics())
        if missing:
            await admin.create_topics(
                [NewTopic(t, platform.topic_partitions, platform.topic_replication) for t in sorted(missing)]
            )
    except KafkaError as error:
        # Another service may have created them at the same moment; the broker also creates on produce.
        log.info("topic creation raced", extra={"error": repr(error)})
    finally:
        await admin.close()


async def start_runtime(definition: ServiceDefinition[S], platform: PlatformSettings, settings: S) -> Runtime[S]:
    """Connect to the database and broker (with backoff), prepare storage and topics, start the workers."""
    client = await connect(platform.mongo_uri.get_secret_value(), timeout=platform.startup_timeout_seconds)
    db = client[settings.database]
    await ensure_collections(db, {**JOB_INDEXES, **definition.indexes})
    producer = await start_producer(
        platform.kafka_bootstrap,
        timeout=platform.startup_timeout_seconds,
        idempotent=platform.kafka_idempotent_producer,
    )
    relay = OutboxRelay(
        service=definition.name,
        db=db,
        producer=producer,
        bootstrap=platform.kafka_bootstrap,
        batch_size=platform.relay_batch_size,
        sweep_seconds=platform.relay_sweep_seconds,
        retention=timedelta(seconds=platform.outbox_retention_seconds),
    )
    committer = GroupCommitter(client, db, on_commit=relay.hand_over)
    runtime = Runtime(definition.name, platform, settings, client, db, producer, relay, committer)
    subscriptions = list(definition.subscriptions(runtime))
    consumed = [s.topic for s in subscriptions]
    topics = [*consumed, *map(dead_letter_topic, consumed), *definition.publishes]
    await ensure_topics(platform, topics)
    if definition.on_start:
        await definition.on_start(runtime)
    # What start-up loaded (modules, the enrichment models: millions of objects) lives as long as the
    # process: move it out of the collector's reach, or each full collection walks all of it and
    # stalls every request for half a second.
    gc.collect()
    gc.freeze()
    committer.start()
    relay.start()
    job_handlers = definition.jobs(runtime)
    if job_handlers:
        runtime.scheduler = Scheduler(
            service=definition.name, client=client, db=db, handlers=job_handlers, on_commit=relay.hand_over
        )
        runtime.scheduler.start()
    if subscriptions:
        runtime.consumer = BatchConsumer(
            service=definition.name,
            client=client,
            db=db,
            producer=producer,
            bootstrap=platform.kafka_bootstrap,
            subscriptions=subscriptions,
            on_commit=relay.hand_over,
            batch_size=platform.consumer_batch_size,
            max_attempts=platform.consumer_max_attempts,
            group_id=f"{platform.consumer_group_prefix}-{definition.name}",
            inbox_retention=timedelta(seconds=platform.outbox_retention_seconds),
            redact=definition.dead_letter_redaction(runtime),
            # After a broker restart, the topics come back with their partitions before the consumer rejoins.
            prepare_broker=lambda: ensure_topics(platform, topics),
        )
        await runtime.consumer.start()
    return runtime


async def stop_runtime(runtime: Runtime[Any]) -> None:
    """Stop taking work, finish the batch in hand, commit, publish what is pending, close."""
    if runtime.consumer:
        await runtime.consumer.stop()
    if runtime.scheduler:
        await runtime.scheduler.stop()
    await runtime.committer.stop()
    await runtime.relay.stop()
    await runtime.producer.stop()
    await runtime.client.close()
