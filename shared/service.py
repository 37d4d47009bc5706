"""The service runtime: wiring of database, broker, relay and consumer, and the FastAPI app around them."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import AsyncMongoClient, IndexModel
from pymongo.errors import PyMongoError

from shared.asyncapi import asyncapi_document
from shared.auth import TokenVerifier
from shared.consumer import BatchConsumer, Subscription
from shared.events import dead_letter_topic
from shared.problems import install_problem_handlers
from shared.relay import OutboxRelay
from shared.settings import PlatformSettings, ServiceSettings
from shared.storage import Database, Document, GroupCommitter, UnitOfWork, connect, ensure_collections
from shared.telemetry import RequestIds, setup_tracing

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """A running service's connections and background workers."""

    service: str
    platform: PlatformSettings
    settings: ServiceSettings
    client: AsyncMongoClient[Document]
    db: Database
    producer: AIOKafkaProducer
    relay: OutboxRelay
    committer: GroupCommitter
    consumer: BatchConsumer | None = None

    def unit_of_work(self) -> UnitOfWork:
        """A fresh unit of work for one use case."""
        return UnitOfWork(self.service)

    async def commit(self, unit: UnitOfWork) -> None:
        """Commit a unit of work with its events, grouped with concurrent requests into one transaction."""
        await self.committer.commit(unit)


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes one service: its routers, subscriptions, collections and the topics it publishes."""

    name: str
    settings_type: type[ServiceSettings]
    routers: Sequence[APIRouter]
    subscriptions: Callable[[Runtime], Sequence[Subscription]] = lambda runtime: ()
    indexes: dict[str, list[IndexModel]] = field(default_factory=dict)
    publishes: Sequence[str] = ()
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    description: str = ""


async def get_runtime(request: Request) -> Runtime:
    """FastAPI dependency: the service's runtime (async: FastAPI runs a plain function in a worker thread)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def start_producer(bootstrap: str, *, timeout: float) -> AIOKafkaProducer:
    """A producer with acks=all and no idempotence (the embedded broker lacks InitProducerId), with backoff."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2)
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


async def start_runtime(
    definition: ServiceDefinition, platform: PlatformSettings, settings: ServiceSettings
) -> Runtime:
    """Connect to the database and broker (with backoff), prepare storage and topics, start the workers."""
    client = await connect(platform.mongo_uri.get_secret_value(), timeout=platform.startup_timeout_seconds)
    db = client[settings.database]
    await ensure_collections(db, definition.indexes)
    producer = await start_producer(platform.kafka_bootstrap, timeout=platform.startup_timeout_seconds)
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
    await ensure_topics(platform, [*consumed, *map(dead_letter_topic, consumed), *definition.publishes])
    if definition.on_start:
        await definition.on_start(runtime)
    # What start-up loaded (modules, the enrichment models: millions of objects) lives as long as the
    # process: move it out of the collector's reach, or each full collection walks all of it and
    # stalls every request for half a second.
    gc.collect()
    gc.freeze()
    committer.start()
    relay.start()
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
        )
        await runtime.consumer.start()
    return runtime


async def stop_runtime(runtime: Runtime) -> None:
    """Stop taking work, finish the batch in hand, commit, publish what is pending, close."""
    if runtime.consumer:
        await runtime.consumer.stop()
    await runtime.committer.stop()
    await runtime.relay.stop()
    await runtime.producer.stop()
    await runtime.client.close()


def create_app(definition: ServiceDefinition, platform: PlatformSettings, settings: ServiceSettings) -> FastAPI:
    """The service's FastAPI app: its routers, health, readiness, metrics and problem+json errors."""
    setup_tracing(definition.name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await start_runtime(definition, platform, settings)
        try:
            yield
        finally:
            await stop_runtime(app.state.runtime)

    app = FastAPI(
        title=f"QualityLoop {definition.name} service",
        description=definition.description,
        version="1.0.0",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry: a server span per request (W3C context from the headers, the
        # route template as its name), around every middleware. Spans per dependency, endpoint and
        # serialisation are off: they cost a fifth of a request's CPU and say little the request's
        # own span and the database spans do not. Metrics are Prometheus' (/metrics).
        telemetry={"operation_spans": False, "metrics": False, "exclude": _unobserved},
    )
    app.state.token_verifier = TokenVerifier(platform)
    install_problem_handlers(app)
    for router in definition.routers:
        app.include_router(router)
    from shared.dead_letters import dead_letter_router  # it needs this module's RuntimeDep

    app.include_router(dead_letter_router(definition.name))
    app.add_api_route("/asyncapi.json", asyncapi_document, include_in_schema=False)
    app.add_api_route("/healthz", _healthz, include_in_schema=False)
    app.add_api_route("/readyz", _readyz, include_in_schema=False)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)

    app.add_middleware(RequestIds)
    return app


UNOBSERVED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _unobserved(scope: Any) -> bool:
    """Probes and scrapes get no span: they would drown the traces that matter."""
    return scope.get("path") in UNOBSERVED_PATHS


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _readyz(request: Request) -> JSONResponse:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    checks: dict[str, Any] = {"database": False, "broker": False}
    if runtime is not None:
        with suppress(PyMongoError, TimeoutError):
            await asyncio.wait_for(runtime.client.admin.command("ping"), 2)
            checks["database"] = True
        with suppress(KafkaError, TimeoutError, OSError):
            await asyncio.wait_for(runtime.producer.client.fetch_all_metadata(), 2)
            checks["broker"] = True
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503)
