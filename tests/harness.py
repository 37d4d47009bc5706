"""Test support: the real local servers, in-process services on free ports, tokens, topic readers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI

from devstack.processes import free_port
from shared.auth import issue_token
from shared.events import Envelope, decode_headers
from shared.inbox import PREFIX as INBOX_PREFIX
from shared.settings import PlatformSettings
from shared.storage import OUTBOX, OUTBOX_SENT_PREFIX, Database


@dataclass
class Stack:
    """Addresses of the broker and database the tests share, and the signing key pair."""

    bootstrap: str
    mongo_uri: str
    private_key: Path
    public_key: Path

    def platform(self, **overrides: Any) -> PlatformSettings:
        """Platform settings for a service under test: its own consumer groups."""
        values: dict[str, Any] = {
            "kafka_bootstrap": self.bootstrap,
            "mongo_uri": self.mongo_uri,
            "auth_public_key_file": self.public_key,
            "consumer_group_prefix": f"test-{uuid.uuid4().hex[:8]}",
            "startup_timeout_seconds": 30,
        }
        values.update(overrides)
        return PlatformSettings(**values)

    def token(self, org: str, *roles: str, scopes: Sequence[str] = ("*",)) -> str:
        """A bearer token signed with the test key."""
        return issue_token(self.private_key.read_bytes(), org=org, roles=roles or ("admin",), scopes=scopes)

    def headers(self, org: str, *roles: str, scopes: Sequence[str] = ("*",)) -> dict[str, str]:
        """Authorization headers for a token."""
        return {"Authorization": f"Bearer {self.token(org, *roles, scopes=scopes)}"}


class RunningService:
    """A service app served by uvicorn inside the test's event loop."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        # Idle connections stay open longer than any wait of a test: with uvicorn's 5 s, a client that
        # reused a pooled connection just as the server closed it got a ReadError.
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            access_log=False,
            timeout_keep_alive=300,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The service's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RunningService:
        """Serve, and wait until the lifespan has started the runtime."""
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(600):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
                raise RuntimeError("the service stopped during start-up")
            await asyncio.sleep(0.05)
        raise TimeoutError("the service did not start")

    async def stop(self) -> None:
        """Shut down gracefully, as on SIGTERM."""
        self.server.should_exit = True
        if self.task:
            await self.task


async def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 90
) -> list[dict[str, Any]]:
    """Read a topic from the start until ``until`` holds for what was read; each item has headers and value."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    seen.append(
                        {
                            "headers": decode_headers(record.headers),
                            "value": _json(record.value),
                            "key": record.key,
                        }
                    )
            if until(seen):
                return seen
        raise TimeoutError(f"{topic}: condition not met after {timeout} s; read {len(seen)} records")
    finally:
        await consumer.stop()


def _json(value: bytes | None) -> Any:
    try:
        return json.loads(value or b"null")
    except ValueError:
        return value


async def produce(
    bootstrap: str, topic: str, value: bytes, *, key: bytes | None = None, headers: dict[str, str]
) -> None:
    """Produce one raw record, as an integration or a misbehaving producer would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
    finally:
        await producer.stop()


async def deliver(stack: Stack, *envelopes: Envelope, topic: str | None = None) -> None:
    """Produce each event as a CloudEvents record, in order, onto its topic (or ``topic``)."""
    for envelope in envelopes:
        await produce(
            stack.bootstrap,
            topic or envelope.topic,
            envelope.value(),
            key=envelope.data.key().encode(),
            headers={name: value.decode() for name, value in envelope.headers()},
        )


async def handled(db: Database, *envelopes: Envelope, timeout: float = 30) -> None:
    """Wait until a service has recorded every one of these events in its inbox."""

    async def all_in_inbox() -> bool:
        return {e.id for e in envelopes} <= await inbox_ids(db)

    await eventually(all_in_inbox, timeout=timeout)


async def inbox_ids(db: Database) -> set[str]:
    """Every event id a service's inbox holds, whatever its generation."""
    names = [name for name in await db.list_collection_names() if name.startswith(INBOX_PREFIX)]
    return {row["_id"] for name in names for row in await db[name].find({}, {"_id": 1}).to_list(None)}


async def eventually(check: Callable[[], Any], *, timeout: float = 30, interval: float = 0.1) -> Any:
    """Poll an async check until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met after {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)


def unique(prefix: str) -> str:
    """A random name so runs and tests never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def staged_events(db: Database, topic: str) -> list[dict[str, Any]]:
    """The events a service staged for ``topic`` (published or not), oldest first, each with its decoded value."""
    # The outbox first: a document the relay moves meanwhile is then read twice (kept once), never missed.
    pending = await db[OUTBOX].find().to_list(None)
    documents = {d["_id"]: d for d in [*pending, *await published_documents(db)]}
    events = [event for _, document in sorted(documents.items()) for event in document["events"]]
    return [{**event, "value": json.loads(event["value"])} for event in events if event["topic"] == topic]


async def published_documents(db: Database) -> list[dict[str, Any]]:
    """The outbox documents a service's relay published and keeps, whatever their generation."""
    kept = [name for name in await db.list_collection_names() if name.startswith(OUTBOX_SENT_PREFIX)]
    return [document for name in kept for document in await db[name].find().to_list(None)]
