"""Watching the running platform from outside: consumer lag per group, outbox backlog, event arrivals.

The embedded broker answers ListOffsets(latest) with the base offset of the partition's last record
batch plus one, not its end, so end offsets here come from fetch responses (their high watermark).
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from bench.stack import SERVICES, group_id
from shared.storage import Document

OUTBOX_BACKLOG = "qualityloop_outbox_backlog"

# What each service consumed when this was written; used if the definitions cannot be asked.
FALLBACK_TOPICS = {
    "feedback": [],
    "scoring": ["unit.changed", "feedback.received", "feedback.erased"],
    "alerts": ["score.updated"],
    "improvement": ["threshold.breached"],
}


class _Stub:
    """Just enough of a Runtime for a service definition to list its subscriptions."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings


def consumed_topics() -> dict[str, list[str]]:
    """The topics each service consumes, from its definition (falling back to a list kept here)."""
    topics: dict[str, list[str]] = {}
    for name in SERVICES:
        try:
            definition = importlib.import_module(f"services.{name}.main").DEFINITION
            runtime = _Stub(definition.settings_type.model_construct())
            topics[name] = sorted({s.topic for s in definition.subscriptions(runtime)})
        except Exception:
            topics[name] = FALLBACK_TOPICS[name]
    return topics


@dataclass
class Backlog:
    """What is still in flight: records not yet committed per group, outbox rows not yet published."""

    lag: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing is in flight."""
        return not self.unknown and not any(self.lag.values()) and not any(self.pending.values())

    def describe(self) -> str:
        """A one-line summary."""
        lag = ", ".join(f"{g}={n}" for g, n in self.lag.items() if n) or "none"
        pending = ", ".join(f"{s}={n}" for s, n in self.pending.items() if n) or "none"
        unknown = f"; end offsets unknown for {', '.join(self.unknown[:5])}" if self.unknown else ""
        return f"consumer lag: {lag}; outbox pending: {pending}{unknown}"


async def scrape_metrics(port: int, names: tuple[str, ...]) -> dict[str, float]:
    """The named samples of one service's /metrics (name without labels → value); empty if it is unreachable."""
    values: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=5, follow_redirects=True) as http:
        try:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.HTTPError:
            return values
    for line in text.splitlines():
        if line.startswith(names):
            name, _, value = line.rpartition(" ")
            try:
                values[name.split("{")[0]] = float(value)
            except ValueError:
                continue
    return values


class PipelineProbe:
    """Committed offsets of the services' consumer groups, high watermarks, and outbox backlogs."""

    def __init__(self, bootstrap: str, mongo_uri: str, service_ports: dict[str, int]) -> None:
        self._bootstrap = bootstrap
        self._service_ports = service_ports
        self._mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongo_uri)
        self.topics = consumed_topics()
        self._groups: dict[str, AIOKafkaConsumer] = {}
        self._tail: AIOKafkaConsumer | None = None
        self._partitions: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        """Connect a (never subscribing) consumer per group and a tail reader of every consumed topic."""
        for service, topics in self.topics.items():
            if topics:
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self._bootstrap, group_id=group_id(service), enable_auto_commit=False
                )
                await consumer.start()
                self._groups[service] = consumer
        self._tail = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await self._tail.start()
        await self._tail.topics()
        every = sorted({t for topics in self.topics.values() for t in topics})
        for topic in every:
            partitions = self._tail.partitions_for_topic(topic) or set()
            self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(partitions)]
        assigned = [tp for tps in self._partitions.values() for tp in tps]
        self._tail.assign(assigned)
        # Read only what the groups have not committed yet, to learn each partition's high watermark.
        for tp in assigned:
            committed = [
                await self.committed(service, tp) for service in self._groups if tp.topic in self.topics[service]
            ]
            self._tail.seek(tp, min(committed, default=0))

    async def stop(self) -> None:
        """Close the consumers and the database client."""
        for consumer in [*self._groups.values(), *([self._tail] if self._tail else [])]:
            await consumer.stop()
        await self._mongo.close()

    async def db_snapshot(self) -> dict[str, Any]:
        """The database's operation counters and per-collection busy time (serverStatus, top), if it has them."""
        snapshot: dict[str, Any] = {"opcounters": {}, "top": {}}
        try:
            status = await self._mongo.admin.command("serverStatus")
            snapshot["opcounters"] = dict(status.get("opcounters", {}))
            top = await self._mongo.admin.command("top")
            snapshot["top"] = {
                ns: (v["total"]["count"], v["total"]["time"])
                for ns, v in top.get("totals", {}).items()
                if isinstance(v, dict) and "total" in v
            }
        except PyMongoError:
            pass
        return snapshot

    def partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of a consumed topic."""
        return self._partitions.get(topic, [])

    async def committed(self, service: str, tp: TopicPartition) -> int:
        """The offset a service's group committed on a partition (0 if none)."""
        return await self._groups[service].committed(tp) or 0

    async def _drain_tail(self) -> None:
        assert self._tail is not None
        await self._tail.getmany(timeout_ms=50, max_records=20_000)

    async def topic_totals(self) -> dict[str, int]:
        """Records ever written to each consumed topic (sum of the partitions' high watermarks)."""
        assert self._tail is not None
        await self._drain_tail()
        return {
            topic: sum(self._tail.highwater(tp) or 0 for tp in self.partitions(topic)) for topic in self._partitions
        }

    async def backlog(self) -> Backlog:
        """Lag per group (high watermark − committed, over its topics) and pending outbox rows per service."""
        assert self._tail is not None
        await self._drain_tail()
        result = Backlog()
        for service, topics in self.topics.items():
            if service not in self._groups:
                continue
            lag = 0
            for topic in topics:
                for tp in self.partitions(topic):
                    highwater = self._tail.highwater(tp)
                    if highwater is None:
                        result.unknown.append(f"{tp.topic}[{tp.partition}]")
                        continue
                    lag += max(0, highwater - await self.committed(service, tp))
            result.lag[service] = lag
        for service, port in self._service_ports.items():
            backlog = (await scrape_metrics(port, (OUTBOX_BACKLOG,))).get(OUTBOX_BACKLOG)
            if backlog is None:
                result.unknown.append(f"{service} outbox backlog")
            else:
                result.pending[service] = int(backlog)
        return result

    async def wait_quiet(self, *, timeout: float, settle: int = 3, interval: float = 0.25) -> tuple[float, Backlog]:
        """Wait until nothing is in flight for ``settle`` checks in a row; return the seconds and last backlog."""
        started = time.perf_counter()
        calm = 0
        backlog = Backlog()
        while time.perf_counter() - started < timeout:
            backlog = await self.backlog()
            calm = calm + 1 if backlog.empty else 0
            if calm >= settle:
                break
            await asyncio.sleep(interval)
        return time.perf_counter() - started, backlog


@dataclass
class DatabaseWork:
    """What the database did between two snapshots."""

    operations: dict[str, int]
    namespaces: list[tuple[str, int, float]]  # (namespace, operations, busy ms), busiest first

    @property
    def total_operations(self) -> int:
        """Every counted operation (inserts, queries, updates, deletes, getmores, commands)."""
        return sum(self.operations.values())

    @property
    def busy_ms(self) -> float:
        """Server time spent on collections, in milliseconds."""
        return sum(ms for _, _, ms in self.namespaces)

    def describe(self, per: int, limit: int = 5) -> str:
        """The busiest collections, per unit of work."""
        busiest = [f"{ns} {n / per:.2f} ops {ms / per:.2f} ms" for ns, n, ms in self.namespaces[:limit] if n]
        return "; ".join(busiest)


def database_work(before: dict[str, Any], after: dict[str, Any]) -> DatabaseWork:
    """The difference of two database snapshots."""
    operations = {k: int(v) - int(before["opcounters"].get(k, 0)) for k, v in after["opcounters"].items()}
    namespaces = []
    for ns, (count, micros) in after["top"].items():
        count_before, micros_before = before["top"].get(ns, (0, 0))
        if count - count_before:
            namespaces.append((ns, count - count_before, (micros - micros_before) / 1000))
    namespaces.sort(key=lambda row: -row[2])
    return DatabaseWork(operations, namespaces)


class Arrivals:
    """When the first record for a key showed up on each watched topic (perf_counter seconds)."""

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10
        )
        self._topics = list(topics)
        self.first: dict[tuple[str, str], float] = {}
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start reading at the end of every watched topic (records before are of other keys anyway)."""
        await self._consumer.start()
        await self._consumer.topics()
        partitions = [
            TopicPartition(t, p) for t in self._topics for p in sorted(self._consumer.partitions_for_topic(t) or ())
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop reading."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    key = (record.topic, (record.key or b"").decode(errors="replace"))
                    if key not in self.first:
                        self.first[key] = now
                        waiter = self._waiters.pop(key, None)
                        if waiter:
                            waiter.set()

    async def wait(self, topic: str, key: str, *, timeout: float) -> float | None:
        """When the first record with this key arrived on the topic, waiting up to ``timeout`` seconds."""
        if (topic, key) in self.first:
            return self.first[(topic, key)]
        waiter = self._waiters.setdefault((topic, key), asyncio.Event())
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            return None
        return self.first.get((topic, key))
