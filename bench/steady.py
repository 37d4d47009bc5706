"""Latency under load: a steady stream of single POSTs, timed from acceptance to each downstream event.

Open loop: feedback is sent at fixed instants (``rate`` a second) whatever the answers do, so a slow
platform meets the load it would meet in production instead of slowing the load down. Every feedback
goes to one of the organisation's branches; a few branches are "bad" (CSAT 1) and cross the rule
after ``MIN_SAMPLES`` feedback, so breaches and actions happen throughout the run. For each feedback
the bench takes the time its POST was answered (acceptance) and, from the topics it reads itself:

- ``score.updated``: the first score of its branch (period ``all``) whose sample size counts it;
- ``threshold.breached``: for the feedback whose score crossed the rule (the breach's sample size
  names it), and ``action.assigned`` for the breach's alert.

Then a ramp finds the highest rate the pipeline keeps up with: from an eighth of the steady rate up,
each step runs ``STEP_SECONDS`` and passes if the platform accepted feedback at (nearly) the step's
rate and every feedback's score arrived within ``KEEP_UP_SECONDS`` of its acceptance. Both matter:
a platform that answers slower than the rate queues the requests, so its scores may follow each
acceptance quickly while the step's real rate is far below the one asked for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import threading
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from bench.loadgen import percentile
from bench.measure import log
from bench.report import Figure, Report
from bench.stack import Processes, Servers
from devstack.processes import free_port
from shared.events import ActionAssigned, ScoreUpdated, ThresholdBreached

ORG = "bench-steady"
LOAD_GENERATOR = "load generator"
REGION = "st"
MIN_SAMPLES = 3
BAD_SHARE = 0.05
CONNECTIONS = 64
KEEP_UP_SECONDS = 2.0
# A ramp step counts only if the platform accepted feedback at nearly the step's rate.
RATE_KEPT = 0.95
STEP_SECONDS = 10.0
ALL_TIME_MARK = b'"all"'


@dataclass
class Sent:
    """One feedback of the stream: where it went, its number on that branch, when it was due and accepted."""

    unit: str
    number: int
    due: float = 0.0
    accepted: float | None = None


def achieved_rate(sent: list[Sent]) -> float:
    """Feedback accepted a second, from the first one due to the last one accepted.

    Open loop sends at fixed instants, but a platform that answers slower than the rate queues the
    requests: then the step took longer than planned and its rate was not the one asked for.
    """
    accepted = [s.accepted for s in sent if s.accepted is not None]
    if not accepted or not sent:
        return 0.0
    return len(accepted) / max(max(accepted) - sent[0].due, 1e-9)


@dataclass
class Seen:
    """What the bench's own consumer saw on the topics, with the moment it saw it."""

    scores: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    breaches: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    assigned: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)


class TopicWatch:
    """Reads score.updated, threshold.breached and action.assigned of the bench's organisation."""

    def __init__(self, bootstrap: str) -> None:
        self.seen = Seen()
        self._consumer = AIOKafkaConsumer(
            ScoreUpdated.topic,
            ThresholdBreached.topic,
            ActionAssigned.topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="latest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join at the topics' ends and read in the background."""
        await self._consumer.start()
        await self._consumer.seek_to_end()
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        """Stop reading."""
        if self._task:
            self._task.cancel()
        await self._consumer.stop()

    async def _read(self) -> None:
        prefix = f"{ORG}/".encode()
        async for record in self._consumer:
            if not (record.key or b"").startswith(prefix):
                continue
            now = time.monotonic()
            if record.topic == ScoreUpdated.topic:
                # Most scores are of other periods: skip them before parsing (the bench shares the CPU).
                if ALL_TIME_MARK in (record.value or b""):
                    payload = json.loads(record.value or b"{}")
                    if payload["period"] == "all":
                        self.seen.scores[payload["unit_id"]].append((payload["sample_size"], now))
            elif record.topic == ThresholdBreached.topic:
                breach = ThresholdBreached.model_validate_json(record.value or b"")
                self.seen.breaches[breach.alert_id] = (breach.unit_id, breach.sample_size, now)
            else:
                action = ActionAssigned.model_validate_json(record.value or b"")
                if action.alert_id and action.alert_id not in self.seen.assigned:
                    self.seen.assigned[action.alert_id] = now


def start_webhook_receiver(seen: Seen) -> int:
    """A local receiver for the bench's webhook channel: the first delivery naming each alert, when it came."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.monotonic()
            with suppress(ValueError, AttributeError):
                for alert_id in json.loads(body).get("data", {}).get("alert_ids", []):
                    seen.delivered.setdefault(alert_id, now)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


async def create_org(http: httpx.AsyncClient, branches: int) -> tuple[list[str], set[str]]:
    """The region, its branches (some of them bad), a CSAT rule and an owner; the branches and the bad ones."""
    units = [f"{REGION}-{i:04d}" for i in range(branches)]
    await _post(http, "/api/v1/units", {"id": REGION, "name": "steady region", "kind": "region"})
    for chunk in range(0, branches, 50):
        await asyncio.gather(
            *(
                _post(http, "/api/v1/units", {"id": unit, "name": unit, "kind": "branch", "parent_id": REGION})
                for unit in units[chunk : chunk + 50]
            )
        )
    # Each branch its own alert group (group_depth 2), so every bad branch's breach opens its own action.
    rule = {
        "name": "steady floor",
        "indicator": "csat",
        "threshold": 60,
        "min_samples": MIN_SAMPLES,
        "level": "red",
        "unit_kinds": ["branch"],
        "group_depth": 2,
    }
    await _post(http, "/api/v1/rules", {**rule, "scope": REGION})
    await _post(http, "/api/v1/responsibilities", {"scope": REGION, "responsible": "bench"})
    bad = set(random.Random(7).sample(units, max(1, int(branches * BAD_SHARE))))
    return units, bad


async def _post(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    response = await http.post(path, json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:300]}")


async def stream(
    http: httpx.AsyncClient,
    units: list[str],
    bad: set[str],
    rate: float,
    seconds: float,
    counts: dict[str, int],
) -> list[Sent]:
    """POST ``rate`` feedback a second for ``seconds``, open loop; each one's acceptance time.

    ``counts`` numbers each branch's feedback across every stream of the run (a score's sample size
    says which of them it counts), so it is carried from the steady phase through the ramp.
    """
    chooser = random.Random(int(rate))
    sent: list[Sent] = []
    tasks: list[asyncio.Task[None]] = []
    limit = asyncio.Semaphore(CONNECTIONS * 4)
    started = time.monotonic()
    for index in range(int(rate * seconds)):
        unit = chooser.choice(units)
        counts[unit] = counts.get(unit, 0) + 1
        item = Sent(unit, counts[unit], due=started + index / rate)
        sent.append(item)
        body = {"unit_id": unit, "channel": "kiosk", "ratings": {"csat": 1 if unit in bad else 5}}
        delay = item.due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_send(http, body, item, limit)))
    await asyncio.gather(*tasks)
    return sent


async def _send(http: httpx.AsyncClient, body: dict[str, Any], item: Sent, limit: asyncio.Semaphore) -> None:
    async with limit:
        try:
            response = await http.post("/api/v1/feedback", json=body)
        except httpx.HTTPError:
            return
        if response.status_code < 300:
            item.accepted = time.monotonic()


def latencies(sent: list[Sent], seen: Seen) -> dict[str, list[float]]:
    """Seconds from acceptance to score.updated, threshold.breached and action.assigned, per feedback."""
    by_number = {(s.unit, s.number): s for s in sent if s.accepted is not None}
    scores: list[float] = []
    for item in by_number.values():
        arrived = [at for size, at in seen.scores.get(item.unit, []) if size >= item.number]
        if arrived:
            scores.append(min(arrived) - (item.accepted or 0))
    breaches, assigned, delivered = [], [], []
    for alert_id, (unit, number, at) in seen.breaches.items():
        cause = by_number.get((unit, number))
        if cause is None or cause.accepted is None:
            continue
        breaches.append(at - cause.accepted)
        if alert_id in seen.assigned:
            assigned.append(seen.assigned[alert_id] - cause.accepted)
        if alert_id in seen.delivered:
            delivered.append(seen.delivered[alert_id] - cause.accepted)
    return {
        "score.updated": scores,
        "threshold.breached": breaches,
        "action.assigned": assigned,
        "delivery": delivered,
    }


def score_timeline(sent: list[Sent], seen: Seen, bucket: float = 5.0) -> list[dict[str, Any]]:
    """Acceptance → score.updated per ``bucket`` seconds of the run: when in the run the slow ones were."""
    accepted = [s for s in sent if s.accepted is not None]
    if not accepted:
        return []
    start = min(s.accepted or 0 for s in accepted)
    buckets: dict[int, list[float]] = defaultdict(list)
    for item in accepted:
        arrived = [at for size, at in seen.scores.get(item.unit, []) if size >= item.number]
        if arrived:
            buckets[int(((item.accepted or 0) - start) // bucket)].append(min(arrived) - (item.accepted or 0))
    return [
        {
            "from_second": index * bucket,
            "count": len(values),
            "p50_ms": round((percentile(values, 0.5) or 0) * 1000),
            "max_ms": round(max(values) * 1000),
        }
        for index, values in sorted(buckets.items())
    ]


async def _settle(seen: Seen, sent: list[Sent], timeout: float) -> None:
    """Wait until every accepted feedback's score arrived, or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(latencies(sent, seen)["score.updated"]) >= sum(s.accepted is not None for s in sent):
            return
        await asyncio.sleep(0.25)


def resident_mb(pid: int) -> float | None:
    """A process's resident memory in MB (VmRSS), with its direct children's."""
    total = 0.0
    for candidate in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total or None


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def measure_steady(
    gateway: str, servers: Servers, processes: Processes, report: Report, *, rate: float, seconds: float, branches: int
) -> None:
    """The steady-load phase and the ramp; figures into the report."""
    headers = {"Authorization": f"Bearer {servers.token(ORG)}"}
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30, limits=limits) as http:
        log(f"steady load: {branches} branches, {rate:g} feedback/s for {seconds:g} s")
        units, bad = await create_org(http, branches)
        watch = TopicWatch(servers.bootstrap)
        receiver = start_webhook_receiver(watch.seen)
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        channel = {"type": "webhook", "url": f"http://127.0.0.1:{receiver}/hook", "secret": secret}
        await _post(http, "/api/v1/channels", {"name": "bench webhook", "config": channel})
        await watch.start()
        try:
            cpu_before = {**processes.cpu_seconds(), LOAD_GENERATOR: time.process_time()}
            counts: dict[str, int] = {}
            sent = await stream(http, units, bad, rate, seconds, counts)
            await _settle(watch.seen, sent, timeout=60)
            cpu_after = {**processes.cpu_seconds(), LOAD_GENERATOR: time.process_time()}
            _report_steady(report, sent, watch.seen, rate, cpu_before, cpu_after, processes)
            await _ramp(http, units, bad, watch, report, counts, start=rate / 8, ceiling=rate * 8)
            # Notifications wait for the rest of their group (30 s) first: by now the steady run's have come.
            _add_percentiles(report, rate, "delivery", latencies(sent, watch.seen)["delivery"])
        finally:
            await watch.stop()


def _add_percentiles(report: Report, rate: float, hop: str, values: list[float]) -> None:
    for q in (0.5, 0.95, 0.99):
        value = percentile(values, q)
        report.add(
            Figure(
                f"steady.{hop}.p{round(q * 100)}",
                f"at {rate:g}/s: acceptance → {hop} p{round(q * 100)} ({len(values)} samples)",
                None if value is None else value * 1000,
                "ms",
            )
        )


def _report_steady(
    report: Report,
    sent: list[Sent],
    seen: Seen,
    rate: float,
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    processes: Processes,
) -> None:
    accepted = sum(s.accepted is not None for s in sent)
    measured = latencies(sent, seen)
    report.details["steady"] = {
        "rate": rate,
        "achieved_rate": achieved_rate(sent),
        "sent": len(sent),
        "accepted": accepted,
        "samples": {k: len(v) for k, v in measured.items()},
        "score_latency_over_time": score_timeline(sent, seen),
    }
    report.add(
        Figure(
            "steady.achieved_rate",
            f"steady load: feedback accepted a second (asked {rate:g}/s)",
            achieved_rate(sent),
            "feedback/s",
        )
    )
    for hop, values in measured.items():
        if hop != "delivery":
            _add_percentiles(report, rate, hop, values)

    per_feedback = {
        child.name: (cpu_after.get(child.name, 0.0) - cpu_before.get(child.name, 0.0)) * 1000 / accepted
        for child in processes.children
        if accepted
    }
    for child in processes.children:
        used = per_feedback.get(child.name)
        report.add(Figure(f"cpu_per_feedback.{child.name}", f"CPU per feedback: {child.name}", used, "ms"))
        report.add(
            Figure(
                f"rss.{child.name}",
                f"resident memory after the load: {child.name}",
                resident_mb(child.process.pid),
                "MB",
            )
        )
    if per_feedback:
        generator = (cpu_after[LOAD_GENERATOR] - cpu_before[LOAD_GENERATOR]) * 1000 / accepted
        _report_cores_needed(report, rate, per_feedback, generator)


def _report_cores_needed(report: Report, rate: float, per_feedback: dict[str, float], generator: float) -> None:
    """The cores ``rate`` would keep busy at the CPU per feedback just measured, against the machine's."""
    needed = sum(per_feedback.values()) * rate / 1000
    without_database = needed - per_feedback.get("database", 0.0) * rate / 1000
    report.add(
        Figure(
            "steady.cores_needed",
            f"CPU the platform needs for {rate:g} feedback/s (CPU per feedback × rate)",
            needed,
            "cores",
            baseline="cores of this machine",
            baseline_value=float(os.cpu_count() or 1),
            note=f"{without_database:.2f} cores without the database; from the CPU per feedback at the rate"
            " achieved (consumers batch more at a higher rate, so their share is an upper bound); not counted:"
            f" the load generator and topic watcher, {generator:.2f} ms per feedback",
        )
    )


async def _ramp(
    http: httpx.AsyncClient,
    units: list[str],
    bad: set[str],
    watch: TopicWatch,
    report: Report,
    counts: dict[str, int],
    *,
    start: float,
    ceiling: float,
) -> None:
    """Raise the rate step by step until the platform stops keeping up; the highest step that kept up."""
    kept_up: float | None = None
    steps: list[dict[str, Any]] = []
    rate = start
    while rate <= ceiling:
        log(f"ramp: {rate:g} feedback/s for {STEP_SECONDS:g} s")
        sent = await stream(http, units, bad, rate, STEP_SECONDS, counts)
        await _settle(watch.seen, sent, timeout=KEEP_UP_SECONDS + 10)
        scores = latencies(sent, watch.seen)["score.updated"]
        accepted = sum(s.accepted is not None for s in sent)
        slowest = max(scores, default=None)
        achieved = achieved_rate(sent)
        ok = (
            accepted >= 0.99 * len(sent)
            and achieved >= RATE_KEPT * rate
            and len(scores) == accepted
            and (slowest or 0) <= KEEP_UP_SECONDS
        )
        steps.append(
            {
                "rate": rate,
                "achieved": achieved,
                "accepted": accepted,
                "scored": len(scores),
                "slowest": slowest,
                "kept_up": ok,
            }
        )
        if not ok:
            break
        kept_up = rate
        rate = round(rate * 1.5, 1)
        await asyncio.sleep(KEEP_UP_SECONDS)
    report.details["ramp"] = steps
    report.add(
        Figure(
            "steady.max_rate",
            f"highest steady rate kept up with (every score within {KEEP_UP_SECONDS:g} s)",
            kept_up,
            "feedback/s",
            note="; ".join(
                f"{s['rate']:g}/s (accepted {s['achieved']:.0f}/s) {'kept up' if s['kept_up'] else 'fell behind'}"
                for s in steps
            ),
        )
    )
