"""The platform's own figures, measured through the gateway with the four services running."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer, TopicPartition

from bench import loadgen, pipeline
from bench.pipeline import Arrivals, PipelineProbe
from bench.stack import Servers
from shared.events import (
    ActionAssigned,
    Envelope,
    FeedbackReceived,
    Ratings,
    ScoreUpdated,
    ThresholdBreached,
)
from shared.ids import new_id


@dataclass(frozen=True)
class Org:
    """An organisation the bench sets up: a region and the units under it."""

    name: str
    region: str
    units: list[str]

    def path(self, unit: str) -> str:
        """A unit's path."""
        return f"{self.region}/{unit}"


class Api:
    """REST calls through the gateway as an admin of one organisation."""

    def __init__(self, gateway: str, servers: Servers, org: str) -> None:
        self.token = servers.token(org)
        self.http = httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def post(self, path: str, body: Any, *, expect: int = 201) -> dict[str, Any]:
        """POST and insist on the expected status (a failed setup is not a measurement)."""
        response = await self.http.post(path, json=body)
        if response.status_code != expect:
            raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:500]}")
        result: dict[str, Any] = response.json()
        return result


async def create_org(api: Api, org: Org) -> None:
    """Create the region and its units."""
    await api.post("/api/v1/units", {"id": org.region, "name": f"bench {org.region}", "kind": "region"})
    for unit in org.units:
        await api.post("/api/v1/units", {"id": unit, "name": f"bench {unit}", "parent_id": org.region})


def make_org(name: str, region: str, count: int) -> Org:
    """An organisation with ``count`` branch units under one region."""
    return Org(name, region, [f"{region}-{i:03d}" for i in range(1, count + 1)])


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile."""
    return loadgen.percentile(values, q)


async def single_posts(
    gateway_port: int, api: Api, org: Org, *, concurrency: int, duration: float, warmup: float, workdir: Path
) -> dict[str, Any]:
    """Single-feedback POSTs through the gateway from a separate load-generator process."""
    bodies = [{"unit_id": u, "channel": "survey", "ratings": {"csat": 4}} for u in org.units]
    return await loadgen.spawn(
        port=gateway_port,
        path="/api/v1/feedback",
        bodies=bodies,
        headers=[f"Authorization: Bearer {api.token}"],
        concurrency=concurrency,
        duration=duration,
        warmup=warmup,
        workdir=workdir,
    )


async def batch_posts(
    gateway_port: int,
    api: Api,
    org: Org,
    *,
    items: int,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
) -> dict[str, Any]:
    """Batch POSTs of ``items`` feedback each, if the platform has the endpoint; else why not."""
    feedback = [
        {"unit_id": org.units[i % len(org.units)], "channel": "survey", "ratings": {"csat": 1 + i % 5}}
        for i in range(items)
    ]
    shapes: list[tuple[str, Any]] = [("{items: [...]}", {"items": feedback}), ("[...]", feedback)]
    answers = []
    for shape, body in shapes:
        response = await api.http.post("/api/v1/feedback/batch", json=body)
        answers.append(f"{shape} → {response.status_code} {response.text[:200]}")
        if response.status_code in (404, 405):
            return {"skipped": f"POST /api/v1/feedback/batch answered {response.status_code}: no batch endpoint yet"}
        if 200 <= response.status_code < 300:
            summary = await loadgen.spawn(
                port=gateway_port,
                path="/api/v1/feedback/batch",
                bodies=[body],
                headers=[f"Authorization: Bearer {api.token}"],
                concurrency=concurrency,
                duration=duration,
                warmup=warmup,
                workdir=workdir,
            )
            summary["shape"] = shape
            summary["items"] = items
            accepted = _accepted(response)
            summary["accepted_in_first_batch"] = accepted
            if accepted is not None and accepted < items:
                summary["warning"] = f"the first batch accepted only {accepted} of {items} items: {response.text[:300]}"
            summary["feedback_rate"] = summary["rate"] * items
            return summary
    return {"skipped": "POST /api/v1/feedback/batch took no body shape tried: " + " | ".join(answers)}


def _accepted(response: httpx.Response) -> int | None:
    """The accepted count a batch answer reports, if it reports one."""
    try:
        body = response.json()
    except ValueError:
        return None
    accepted = body.get("accepted") if isinstance(body, dict) else None
    return accepted if isinstance(accepted, int) else None


async def post_to_action_latency(
    bootstrap: str, api: Api, org: Org, *, samples: int, timeout: float = 30
) -> dict[str, Any]:
    """Per fresh unit: one csat-1 feedback, timed until its action.assigned (and each hop before) appears."""
    hops = [FeedbackReceived.topic, ScoreUpdated.topic, ThresholdBreached.topic, ActionAssigned.topic]
    arrivals = Arrivals(bootstrap, hops)
    await arrivals.start()
    rows: list[dict[str, float | None]] = []
    missing = 0
    try:
        for unit in org.units[:samples]:
            await asyncio.sleep(random.uniform(0.05, 0.25))  # do not phase-lock with pollers
            key = f"{org.name}/{unit}"
            started = time.perf_counter()
            await api.post("/api/v1/feedback", {"unit_id": unit, "channel": "survey", "ratings": {"csat": 1}})
            answered = time.perf_counter()
            done = await arrivals.wait(ActionAssigned.topic, key, timeout=timeout)
            if done is None:
                missing += 1
                continue
            row: dict[str, float | None] = {"post": answered - started, "action": done - started}
            for topic in hops[:-1]:
                seen = arrivals.first.get((topic, key))
                row[topic] = None if seen is None else seen - started
            rows.append(row)
    finally:
        await arrivals.stop()

    def column(name: str) -> list[float]:
        return [v for r in rows if (v := r.get(name)) is not None]

    return {
        "samples": len(rows),
        "missing": missing,
        "rows": rows,
        "median": {name: _median(column(name)) for name in ("post", *hops[:-1], "action")},
        "p99_action": percentile(column("action"), 0.99),
        "max_action": max(column("action"), default=None),
    }


METRICS = ("qualityloop_batch_processing_seconds_count", "qualityloop_batch_processing_seconds_sum")


async def scrape_metrics(port: int) -> dict[str, float]:
    """The consumer batch counters of one service's /metrics (name → value)."""
    return await pipeline.scrape_metrics(port, METRICS)


def batches_between(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """How many consumer batches ran between two scrapes, and their mean duration in seconds."""
    count = after.get(METRICS[0], 0.0) - before.get(METRICS[0], 0.0)
    total = after.get(METRICS[1], 0.0) - before.get(METRICS[1], 0.0)
    return count, (total / count if count else 0.0)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def scoring_events(org: Org, count: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """``count`` feedback.received records (key, value, CloudEvents headers) spread over the org's units."""
    records = []
    now = datetime.now(UTC)
    rng = random.Random(7)
    for i in range(count):
        unit = org.units[i % len(org.units)]
        event = FeedbackReceived(
            org=org.name,
            unit_id=unit,
            unit_path=org.path(unit),
            feedback_id=new_id("fb"),
            channel="survey",
            occurred_at=now,
            received_at=now,
            ratings=Ratings(csat=rng.randint(1, 5), nps=rng.randint(0, 10)),
        )
        envelope = Envelope(data=event, source="/services/bench")
        records.append((event.key().encode(), envelope.value(), envelope.headers()))
    return records


async def scoring_throughput(
    bootstrap: str, probe: PipelineProbe, api: Api, org: Org, *, count: int, timeout: float
) -> dict[str, Any]:
    """Produce ``count`` feedback.received events and time until scoring has committed past all of them."""
    records = scoring_events(org, count)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    ends: dict[TopicPartition, int] = {}
    try:
        started = time.perf_counter()
        for start in range(0, count, 1000):
            deliveries = [
                await producer.send(FeedbackReceived.topic, key=key, value=value, headers=headers)
                for key, value, headers in records[start : start + 1000]
            ]
            for metadata in await asyncio.gather(*deliveries):
                tp = TopicPartition(metadata.topic, metadata.partition)
                ends[tp] = max(ends.get(tp, 0), metadata.offset + 1)
        produced = time.perf_counter()
    finally:
        await producer.stop()
    finished: float | None = None
    while time.perf_counter() - started < timeout:
        behind = [tp for tp, end in ends.items() if await probe.committed("scoring", tp) < end]
        if not behind:
            finished = time.perf_counter()
            break
        await asyncio.sleep(0.05)
    result: dict[str, Any] = {
        "events": count,
        "produce_seconds": produced - started,
        "seconds": None if finished is None else finished - started,
        "rate": None if finished is None else count / (finished - started),
    }
    result["sample_size"] = await _region_sample_size(api, org, expected=count, timeout=30)
    return result


async def _region_sample_size(api: Api, org: Org, *, expected: int, timeout: float) -> int | None:
    """The region's all-time sample size once it reaches ``expected`` (or the last seen after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: int | None = None
    while loop.time() < deadline:
        response = await api.http.get(f"/api/v1/scores/{org.region}")
        if response.status_code == 200:
            seen = response.json().get("sample_size")
            if seen is not None and seen >= expected:
                return seen
        await asyncio.sleep(0.2)
    return seen
