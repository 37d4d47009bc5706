"""Sizes, progress, CPU accounting and the raw-limit measurements (broker, database, bare FastAPI)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from bench import loadgen, raw
from bench.report import Figure, Report
from bench.stack import (
    Processes,
    Servers,
    bare_upstreams,
    cpu_share,
    machine_busy_seconds,
    start_bare_app,
    start_bench_gateway,
)

T = TypeVar("T")
MACHINE = "(machine)"


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does; the defaults fit in a few minutes on two cores."""

    broker_records: int = 50_000
    record_bytes: int = 300
    bulk_documents: int = 50_000
    bulk_batch: int = 1_000
    transactions: int = 300
    per_transaction: int = 100
    http_seconds: float = 10.0
    warmup_seconds: float = 1.0
    concurrency: int = 64
    latency_samples: int = 30
    scoring_events: int = 20_000
    batch_items: int = 100
    batch_concurrency: int = 8
    drain_timeout: float = 150.0
    steady_rate: float = 200.0
    steady_seconds: float = 60.0
    steady_branches: int = 1_000
    chaos_feedback: int = 2_000


QUICK = Sizes(
    broker_records=10_000,
    bulk_documents=10_000,
    transactions=50,
    http_seconds=3.0,
    warmup_seconds=0.5,
    latency_samples=8,
    scoring_events=3_000,
    drain_timeout=45.0,
    steady_rate=50.0,
    steady_seconds=10.0,
    steady_branches=100,
    chaos_feedback=600,
)


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def with_cpu(processes: Processes, work: Awaitable[T], report: Report, phase: str) -> tuple[T, dict[str, float]]:
    """Await work; record how many cores each child, this process and the whole machine kept busy meanwhile."""
    before = processes.cpu_seconds()
    machine_before = machine_busy_seconds()
    own_before = time.process_time()
    started = time.perf_counter()
    result = await work
    elapsed = max(1e-9, time.perf_counter() - started)
    cpu = cpu_share(before, processes.cpu_seconds(), elapsed)
    cpu["bench"] = round((time.process_time() - own_before) / elapsed, 2)
    cpu[MACHINE] = round((machine_busy_seconds() - machine_before) / elapsed, 2)
    if isinstance(result, dict) and "cpu_seconds" in result:  # a load generator's summary
        cpu["load generator"] = round(result["cpu_seconds"] / max(1e-9, result["wall_seconds"]), 2)
    report.details.setdefault("cpu_cores", {})[phase] = cpu
    return result, cpu


def others(cpu: dict[str, float]) -> float:
    """Cores kept busy by processes this run did not start (other work on the machine)."""
    if MACHINE not in cpu:
        return 0.0
    return max(0.0, cpu[MACHINE] - sum(v for k, v in cpu.items() if k != MACHINE))


def cores(cpu: dict[str, float]) -> str:
    """Busy cores per process, busiest first, plus what other processes used."""
    shown = sorted(((k, v) for k, v in cpu.items() if k != MACHINE and v), key=lambda kv: -kv[1])
    text = ", ".join(f"{name} {n:.2f}" for name, n in shown)
    return f"{text}, other processes {others(cpu):.2f}" if MACHINE in cpu else text


def interference_note(report: Report) -> None:
    """Say which figures were taken while other processes kept the machine busy."""
    busy = {phase: others(cpu) for phase, cpu in report.details.get("cpu_cores", {}).items()}
    disturbed = {phase: n for phase, n in busy.items() if n >= 0.25}
    if disturbed:
        report.note(
            "other processes on this machine were busy while measuring: "
            + ", ".join(f"{phase} {n:.2f} cores" for phase, n in disturbed.items())
            + f" (of {os.cpu_count()}); those figures are lower than on an idle machine"
        )


def http_note(name: str, summary: dict[str, Any]) -> str:
    """A note when a load saw anything but 2xx answers."""
    bad = {k: v for k, v in summary["total_statuses"].items() if not k.startswith("2")}
    if not bad and not summary["errors"]:
        return ""
    return f"{name}: non-2xx {bad}, errors {summary['errors']}; first error body: {summary['first_error_body'][:200]}"


async def measure_raw(servers: Servers, processes: Processes, sizes: Sizes, report: Report) -> None:
    """Broker produce rate, database bulk insert rate, feedback+outbox transaction rate."""
    log(f"broker: producing {sizes.broker_records:,} records of {sizes.record_bytes} bytes")
    produce, cpu = await with_cpu(
        processes,
        raw.broker_produce_rate(servers.bootstrap, records=sizes.broker_records, size=sizes.record_bytes),
        report,
        "broker produce",
    )
    report.details["broker_produce"] = produce
    client_bound = cpu.get("bench", 0) >= 0.8
    produce_note = (
        f"broker produce is bound by the one aiokafka producer (bench process {cpu['bench']:.2f} cores, "
        f"broker {cpu.get('broker', 0):.2f})"
        if client_bound
        else ""
    )
    report.add(
        Figure(
            "broker.produce",
            f"broker: produce {sizes.record_bytes} B records, 1 producer, acks=all",
            produce["rate"],
            "records/s",
            "DESIGN.md",
            100_000,
            note=produce_note,
        )
    )
    log(f"database: insert_many(ordered=False) of {sizes.bulk_documents:,} documents")
    bulk, _ = await with_cpu(
        processes,
        raw.database_bulk_rate(servers.mongo_uri, documents=sizes.bulk_documents, batch=sizes.bulk_batch),
        report,
        "db bulk insert",
    )
    report.details["db_bulk"] = bulk
    report.add(
        Figure(
            "db.bulk_insert",
            f"db: unordered insert_many, {sizes.bulk_batch:,} a batch",
            bulk["rate"],
            "docs/s",
            "DESIGN.md",
            19_000,
        )
    )
    log(f"database: {sizes.transactions} transactions of {sizes.per_transaction} feedback + outbox rows")
    txn, _ = await with_cpu(
        processes,
        raw.database_transaction_rate(
            servers.mongo_uri, transactions=sizes.transactions, per_transaction=sizes.per_transaction
        ),
        report,
        "db transactions",
    )
    report.details["db_transactions"] = txn
    report.add(
        Figure(
            "db.feedback_outbox_txn",
            f"db: {sizes.per_transaction} feedback + {sizes.per_transaction} outbox per transaction",
            txn["rate"],
            "feedback/s",
            "DESIGN.md",
            7_300,
        )
    )


async def measure_bare(servers: Servers, processes: Processes, sizes: Sizes, report: Report) -> None:
    """A bare FastAPI POST on one uvicorn worker, direct and through the platform's nginx config."""
    bare = start_bare_app(servers.workdir, processes)
    gateway = None
    bodies = [{"unit_id": f"b-{i:03d}", "channel": "survey", "ratings": {"csat": 4}} for i in range(16)]

    def load(port: int) -> Awaitable[dict[str, Any]]:
        return loadgen.spawn(
            port=port,
            path="/api/v1/feedback",
            bodies=bodies,
            headers=[],
            concurrency=sizes.concurrency,
            duration=sizes.http_seconds,
            warmup=sizes.warmup_seconds,
            workdir=servers.workdir / "load",
        )

    try:
        log(f"bare FastAPI app: {sizes.concurrency} connections for {sizes.http_seconds:g} s, direct")
        direct, _ = await with_cpu(processes, load(bare.port), report, "bare direct")
        gateway = start_bench_gateway(bare_upstreams(bare.port), servers.workdir / "gateway-bare", processes)
        log(f"bare FastAPI app: {sizes.concurrency} connections for {sizes.http_seconds:g} s, through nginx")
        via, cpu = await with_cpu(processes, load(gateway.port), report, "bare via nginx")
        report.note(f"cores busy during the bare POSTs via nginx: {cores(cpu)}")
    finally:
        if gateway is not None:
            processes.stop(gateway)
        processes.stop(bare)
    report.details["bare_direct"] = direct
    report.details["bare_gateway"] = via
    report.add(
        Figure(
            "http.bare_direct",
            f"bare FastAPI POST, 1 uvicorn worker, direct ({sizes.concurrency} conns)",
            direct["rate"],
            "req/s",
            "DESIGN.md (low end)",
            6_000,
            note=http_note("bare direct", direct),
        )
    )
    report.add(
        Figure(
            "http.bare_gateway",
            "bare FastAPI POST through nginx (platform config)",
            via["rate"],
            "req/s",
            "bare direct",
            direct["rate"],
            note=http_note("bare via nginx", via),
        )
    )
