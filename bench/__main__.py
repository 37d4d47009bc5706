"""`make bench`: the stack's raw limits and the platform's own figures, measured in one run.

Starts its own broker, database, nginx and services on free loopback ports under a temporary
directory, measures, prints a table and writes it as JSON (bench/results.json unless --out), and
stops everything it started, also on Ctrl-C. Nothing here asserts on time: it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import loadgen, raw, skeleton
from bench.pipeline import PipelineProbe
from bench.report import Figure, Report, machine_info, render_table, write_json
from bench.stack import (
    Processes,
    Servers,
    bare_upstreams,
    cpu_share,
    start_bare_app,
    start_bench_gateway,
    start_servers,
    start_services,
)

T = TypeVar("T")
DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does; the defaults fit in about four minutes on two cores."""

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


QUICK = Sizes(
    broker_records=10_000,
    bulk_documents=10_000,
    transactions=50,
    http_seconds=3.0,
    warmup_seconds=0.5,
    latency_samples=8,
    scoring_events=3_000,
    drain_timeout=45.0,
)


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def measure_raw(servers: Servers, sizes: Sizes, report: Report) -> None:
    """Broker produce rate, database bulk insert rate, feedback+outbox transaction rate."""
    log(f"broker: producing {sizes.broker_records:,} records of {sizes.record_bytes} bytes")
    produce = await raw.broker_produce_rate(servers.bootstrap, records=sizes.broker_records, size=sizes.record_bytes)
    report.details["broker_produce"] = produce
    report.add(
        Figure(
            "broker.produce",
            f"broker: produce {sizes.record_bytes} B records, 1 producer, acks=all",
            produce["rate"],
            "records/s",
            "DESIGN.md",
            100_000,
        )
    )
    log(f"database: insert_many(ordered=False) of {sizes.bulk_documents:,} documents")
    bulk = await raw.database_bulk_rate(servers.mongo_uri, documents=sizes.bulk_documents, batch=sizes.bulk_batch)
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
    txn = await raw.database_transaction_rate(
        servers.mongo_uri, transactions=sizes.transactions, per_transaction=sizes.per_transaction
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
    try:
        bodies = [{"unit_id": f"b-{i:03d}", "channel": "survey", "ratings": {"csat": 4}} for i in range(16)]
        common = {
            "path": "/api/v1/feedback",
            "bodies": bodies,
            "headers": [],
            "concurrency": sizes.concurrency,
            "duration": sizes.http_seconds,
            "warmup": sizes.warmup_seconds,
            "workdir": servers.workdir / "load",
        }
        log(f"bare FastAPI app: {sizes.concurrency} connections for {sizes.http_seconds:g} s, direct")
        direct = await loadgen.spawn(port=bare.port, **common)  # type: ignore[arg-type]
        gateway = start_bench_gateway(bare_upstreams(bare.port), servers.workdir / "gateway-bare", processes)
        log(f"bare FastAPI app: {sizes.concurrency} connections for {sizes.http_seconds:g} s, through nginx")
        via, cpu = await _with_cpu(processes, loadgen.spawn(port=gateway.port, **common))  # type: ignore[arg-type]
        cpu["load generator"] = round(via["cpu_seconds"] / max(1e-9, via["wall_seconds"]), 2)
        report.details["cpu_cores_bare_gateway"] = cpu
        report.note(f"cores busy during the bare POSTs via nginx: {_cores(cpu)}")
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
            note=_http_note("bare direct", direct),
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
            note=_http_note("bare via nginx", via),
        )
    )


async def _with_cpu(processes: Processes, work: Awaitable[T]) -> tuple[T, dict[str, float]]:
    """Await work and tell how many cores each child kept busy meanwhile."""
    before = processes.cpu_seconds()
    started = time.perf_counter()
    result = await work
    return result, cpu_share(before, processes.cpu_seconds(), time.perf_counter() - started)


def _cores(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {cores:.2f}" for name, cores in sorted(cpu.items(), key=lambda kv: -kv[1]) if cores)


def _http_note(name: str, summary: dict[str, Any]) -> str:
    bad = {k: v for k, v in summary["total_statuses"].items() if not k.startswith("2")}
    if not bad and not summary["errors"]:
        return ""
    return f"{name}: non-2xx {bad}, errors {summary['errors']}; first error body: {summary['first_error_body'][:200]}"


async def measure_platform(servers: Servers, processes: Processes, sizes: Sizes, report: Report) -> None:
    """The four services behind nginx: single POSTs, batch POSTs, POST → action latency, scoring throughput."""
    log("starting the four services (python -m devstack.cli serve <name>)")
    started = time.perf_counter()
    services = await start_services(servers, processes)
    gateway = start_bench_gateway(
        {name: child.port for name, child in services.items()}, servers.workdir / "gateway", processes
    )
    report.details["services_start_seconds"] = time.perf_counter() - started
    url = f"http://127.0.0.1:{gateway.port}"
    post_org = skeleton.make_org("bench-post", "p", 16)
    latency_org = skeleton.make_org("bench-lat", "l", sizes.latency_samples)
    scoring_org = skeleton.make_org("bench-score", "s", 12)
    apis = {org.name: skeleton.Api(url, servers, org.name) for org in (post_org, latency_org, scoring_org)}
    probe = PipelineProbe(servers.bootstrap, servers.mongo_uri)
    try:
        log("setting up units, a rule and a responsibility")
        for org in (post_org, latency_org, scoring_org):
            await skeleton.create_org(apis[org.name], org)
        latency_api = apis[latency_org.name]
        await latency_api.post(
            "/api/v1/rules",
            {
                "name": "floor",
                "indicator": "csat",
                "threshold": 60,
                "min_samples": 1,
                "level": "orange",
                "scope": latency_org.region,
            },
        )
        await latency_api.post("/api/v1/responsibilities", {"scope": latency_org.region, "responsible": "bench"})
        await probe.start()
        report.details["consumed_topics"] = probe.topics
        await _drain(probe, sizes, report, "after set-up")

        log(f"POST → action.assigned latency: {sizes.latency_samples} fresh units, one after another")
        latency = await skeleton.post_to_action_latency(
            servers.bootstrap, latency_api, latency_org, samples=sizes.latency_samples
        )
        report.details["latency"] = latency
        _latency_figures(latency, report)
        await _drain(probe, sizes, report, "after the latency samples")

        log(f"single POST /api/v1/feedback: {sizes.concurrency} connections for {sizes.http_seconds:g} s")
        totals_before = await probe.topic_totals()
        load_started = time.perf_counter()
        single, cpu = await _with_cpu(
            processes,
            skeleton.single_posts(
                gateway.port,
                apis[post_org.name],
                post_org,
                concurrency=sizes.concurrency,
                duration=sizes.http_seconds,
                warmup=sizes.warmup_seconds,
                workdir=servers.workdir / "load",
            ),
        )
        load_ended = time.perf_counter()
        report.details["single_post"] = single
        cpu["load generator"] = round(single["cpu_seconds"] / max(1e-9, single["wall_seconds"]), 2)
        report.details["cpu_cores_single_post"] = cpu
        report.note(f"cores busy during the single POSTs (of {os.cpu_count()}): {_cores(cpu)}")
        report.add(
            Figure(
                "post.single",
                f"single POST /api/v1/feedback via gateway ({sizes.concurrency} conns)",
                single["rate"],
                "req/s",
                "bare via nginx",
                report.value("http.bare_gateway"),
                goal=0.35,
                note=_http_note("single POST", single),
            )
        )
        report.add(Figure("post.single_p50", "  its latency p50", single["p50_ms"], "ms"))
        report.add(Figure("post.single_p99", "  its latency p99", single["p99_ms"], "ms"))
        log("waiting for scoring, alerts and improvement to catch up with the POSTs")
        catch_up, backlog = await probe.wait_quiet(timeout=sizes.drain_timeout)
        accepted = single["total_ok"]
        report.details["single_post_catch_up"] = {"seconds": catch_up, "backlog": backlog.describe()}
        totals_after = await probe.topic_totals()
        written = {t: totals_after.get(t, 0) - totals_before.get(t, 0) for t in totals_after}
        report.details["records_per_topic_single_post"] = written
        if accepted:
            report.note(
                "records per POSTed feedback: "
                + ", ".join(f"{t} {n / accepted:.2f}" for t, n in sorted(written.items()) if n)
            )
        report.add(
            Figure(
                "pipeline.catch_up",
                f"  pipeline caught up with {accepted:,} POSTed feedback after",
                catch_up if backlog.empty else None,
                "s",
                note="" if backlog.empty else f"pipeline not caught up after {catch_up:.0f} s: {backlog.describe()}",
            )
        )
        if backlog.empty:
            report.add(
                Figure(
                    "pipeline.end_to_end",
                    "  feedback fully processed per second (POST start → caught up)",
                    accepted / (load_ended - load_started + catch_up),
                    "feedback/s",
                    "single POST",
                    single["rate"],
                )
            )

        log("batch POST /api/v1/feedback/batch")
        batch = await skeleton.batch_posts(
            gateway.port,
            apis[post_org.name],
            post_org,
            items=sizes.batch_items,
            concurrency=sizes.batch_concurrency,
            duration=sizes.http_seconds,
            warmup=sizes.warmup_seconds,
            workdir=servers.workdir / "load",
        )
        report.details["batch_post"] = batch
        report.add(
            Figure(
                "post.batch",
                f"batch POST of {sizes.batch_items} via gateway ({sizes.batch_concurrency} conns)",
                batch.get("feedback_rate"),
                "feedback/s",
                "db feedback+outbox txn",
                report.value("db.feedback_outbox_txn"),
                goal=0.6,
                note=batch.get("skipped", "") or _http_note("batch POST", batch),
            )
        )
        await _drain(probe, sizes, report, "after the batch POSTs")

        log(f"scoring: {sizes.scoring_events:,} feedback.received events produced straight onto the topic")
        metrics_before = await skeleton.scrape_metrics(services["scoring"].port)
        scoring, cpu = await _with_cpu(
            processes,
            skeleton.scoring_throughput(
                servers.bootstrap,
                probe,
                apis[scoring_org.name],
                scoring_org,
                count=sizes.scoring_events,
                timeout=sizes.drain_timeout,
            ),
        )
        batches, batch_seconds = skeleton.batches_between(
            metrics_before, await skeleton.scrape_metrics(services["scoring"].port)
        )
        scoring["batches"] = batches
        scoring["mean_batch_seconds"] = batch_seconds
        report.details["scoring"] = scoring
        report.details["cpu_cores_scoring"] = cpu
        if batches:
            report.note(
                f"scoring took {batches:.0f} consumer batches (≈{sizes.scoring_events / batches:.0f} events each, "
                f"{batch_seconds * 1000:.0f} ms each on average); cores busy meanwhile: {_cores(cpu)}"
            )
        note = ""
        if scoring["sample_size"] != sizes.scoring_events:
            note = f"scoring: the region's sample_size is {scoring['sample_size']}, expected {sizes.scoring_events}"
        if scoring["rate"] is None:
            note = f"scoring had not committed past all {sizes.scoring_events} events after {sizes.drain_timeout:g} s"
        report.add(
            Figure(
                "scoring.throughput",
                f"scoring: {sizes.scoring_events:,} feedback.received consumed and committed",
                scoring["rate"],
                "feedback/s",
                "db bulk insert",
                report.value("db.bulk_insert"),
                note=note,
            )
        )
        txn_rate = report.value("db.feedback_outbox_txn")
        if scoring["rate"] and txn_rate:
            report.note(
                f"scoring throughput is {scoring['rate'] / txn_rate:.2f}× the raw feedback+outbox transaction rate"
            )
        await _drain(probe, sizes, report, "at the end")
    finally:
        await probe.stop()
        for api in apis.values():
            await api.close()


async def _drain(probe: PipelineProbe, sizes: Sizes, report: Report, when: str) -> None:
    seconds, backlog = await probe.wait_quiet(timeout=sizes.drain_timeout)
    report.details.setdefault("drains", []).append({"when": when, "seconds": seconds, "backlog": backlog.describe()})
    if not backlog.empty:
        report.note(f"pipeline still busy {when} after {seconds:.0f} s ({backlog.describe()}); later figures share CPU")


def _latency_figures(latency: dict[str, Any], report: Report) -> None:
    median = latency["median"]
    samples = latency["samples"]
    note = f"{latency['missing']} samples saw no action.assigned within 30 s" if latency["missing"] else ""
    report.add(Figure("latency.p50", f"POST → action.assigned p50 ({samples} samples)", _ms(median["action"]), "ms"))
    report.add(
        Figure(
            "latency.p99",
            "POST → action.assigned p99 (= max of the samples)",
            _ms(latency["p99_action"]),
            "ms",
            note=note
            or f"with {samples} sequential samples the p99 is the slowest sample; read it as a maximum, not a tail",
        )
    )
    for key, label in (
        ("post", "POST answered"),
        ("feedback.received", "feedback.received seen"),
        ("score.updated", "score.updated seen"),
        ("threshold.breached", "threshold.breached seen"),
    ):
        report.add(Figure(f"latency.{key}", f"  p50 after POST: {label}", _ms(median.get(key)), "ms"))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def run(args: argparse.Namespace, processes: Processes, workdir: Path, report: Report) -> None:
    """Every measurement, in order; a failure in one part is reported and ends the run."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    sizes: Sizes = args.sizes
    log(f"work directory {workdir}")
    servers = start_servers(workdir, processes)
    await measure_raw(servers, sizes, report)
    await measure_bare(servers, processes, sizes, report)
    await measure_platform(servers, processes, sizes, report)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every measurement, print the table and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in under a minute")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, logs) afterwards")
    parser.add_argument("--concurrency", type=int, default=None, help="connections of the HTTP load")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds of each HTTP load")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    overrides = {"concurrency": args.concurrency, "http_seconds": args.seconds}
    args.sizes = Sizes(**{**asdict(sizes), **{k: v for k, v in overrides.items() if v is not None}})

    workdir = Path(tempfile.mkdtemp(prefix="qualityloop-bench-"))
    processes = Processes()
    report = Report()
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    failure: BaseException | None = None
    try:
        asyncio.run(run(args, processes, workdir, report))
    except (KeyboardInterrupt, asyncio.CancelledError) as error:
        failure = error
        log("interrupted: stopping everything")
    except Exception as error:
        failure = error
        log(f"failed: {type(error).__name__}: {error}")
    finally:
        processes.stop_all()
    elapsed = time.perf_counter() - started
    if failure is not None:
        report.note(f"run incomplete: {type(failure).__name__}: {failure}")
    print(render_table(report))
    extra = {
        "started_at": started_at.isoformat(),
        "seconds": elapsed,
        "mode": "quick" if args.quick else "full",
        "complete": failure is None,
        "machine": machine_info(),
        "sizes": asdict(args.sizes),
    }
    write_json(args.out, report, extra)
    log(f"took {elapsed:.0f} s; wrote {args.out}")
    if args.keep or (failure is not None and not isinstance(failure, KeyboardInterrupt | asyncio.CancelledError)):
        log(f"kept the work directory with the logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if isinstance(failure, KeyboardInterrupt | asyncio.CancelledError):
        return 130
    return 1 if failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
