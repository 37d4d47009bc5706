"""The platform's own figures, phase by phase, with the four services running behind nginx."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from bench import skeleton
from bench.measure import Sizes, cores, http_note, log, with_cpu
from bench.pipeline import DatabaseWork, PipelineProbe, database_work
from bench.report import Figure, Report
from bench.stack import Child, Processes, Servers, start_bench_gateway, start_services
from bench.steady import measure_steady


@dataclass
class PlatformBench:
    """One run against the running platform: its orgs, gateway, probe and the report it fills."""

    servers: Servers
    processes: Processes
    sizes: Sizes
    report: Report
    services: dict[str, Child] = field(default_factory=dict)
    gateway_port: int = 0
    apis: dict[str, skeleton.Api] = field(default_factory=dict)
    probe: PipelineProbe | None = None

    def __post_init__(self) -> None:
        self.post_org = skeleton.make_org("bench-post", "p", 16)
        self.latency_org = skeleton.make_org("bench-lat", "l", self.sizes.latency_samples)
        self.scoring_org = skeleton.make_org("bench-score", "s", 12)

    @property
    def _probe(self) -> PipelineProbe:
        assert self.probe is not None, "start() first"
        return self.probe

    async def run(self) -> None:
        """Start the platform and measure every phase; always close what was opened."""
        try:
            await self.start()
            await self.latency()
            await self.steady()
            await self.single_posts()
            await self.batch_posts()
            await self.scoring()
            await self.drain("at the end")
        finally:
            if self.probe is not None:
                await self.probe.stop()
            for api in self.apis.values():
                await api.close()

    async def start(self) -> None:
        """The four services and nginx, then the units, a rule and a responsibility."""
        log("starting the four services (python -m devstack.cli serve <name>)")
        started = time.perf_counter()
        self.services = await start_services(self.servers, self.processes)
        gateway = start_bench_gateway(
            {name: child.port for name, child in self.services.items()},
            self.servers.workdir / "gateway",
            self.processes,
        )
        self.gateway_port = gateway.port
        self.report.details["services_start_seconds"] = time.perf_counter() - started
        url = f"http://127.0.0.1:{gateway.port}"
        orgs = (self.post_org, self.latency_org, self.scoring_org)
        self.apis = {org.name: skeleton.Api(url, self.servers, org.name) for org in orgs}
        log("setting up units, a rule and a responsibility")
        for org in orgs:
            await skeleton.create_org(self.apis[org.name], org)
        api = self.apis[self.latency_org.name]
        # Each branch its own alert group (group_depth 2), so every sample's breach opens its own action.
        rule = {
            "name": "floor",
            "indicator": "csat",
            "threshold": 60,
            "min_samples": 1,
            "level": "orange",
            "group_depth": 2,
        }
        await api.post("/api/v1/rules", {**rule, "scope": self.latency_org.region})
        await api.post("/api/v1/responsibilities", {"scope": self.latency_org.region, "responsible": "bench"})
        self.probe = PipelineProbe(
            self.servers.bootstrap,
            self.servers.mongo_uri,
            {name: child.port for name, child in self.services.items()},
        )
        await self.probe.start()
        self.report.details["consumed_topics"] = self.probe.topics
        await self.drain("after set-up")

    async def drain(self, when: str) -> None:
        """Wait until every consumer and outbox has caught up, so the next phase starts on a quiet platform."""
        seconds, backlog = await self._probe.wait_quiet(timeout=self.sizes.drain_timeout)
        self.report.details.setdefault("drains", []).append(
            {"when": when, "seconds": seconds, "backlog": backlog.describe()}
        )
        if not backlog.empty:
            self.report.note(
                f"pipeline still busy {when} after {seconds:.0f} s ({backlog.describe()}); later figures share CPU"
            )

    async def latency(self) -> None:
        """(f) POST → action.assigned on fresh units, one after another, with the time of each hop."""
        samples = self.sizes.latency_samples
        log(f"POST → action.assigned latency: {samples} fresh units, one after another")
        latency = await skeleton.post_to_action_latency(
            self.servers.bootstrap, self.apis[self.latency_org.name], self.latency_org, samples=samples
        )
        self.report.details["latency"] = latency
        median = latency["median"]
        missing = f"{latency['missing']} samples saw no action.assigned within 30 s" if latency["missing"] else ""
        self.report.add(
            Figure(
                "latency.p50", f"POST → action.assigned p50 ({latency['samples']} samples)", _ms(median["action"]), "ms"
            )
        )
        self.report.add(
            Figure(
                "latency.p99",
                "POST → action.assigned p99 (= max of the samples)",
                _ms(latency["p99_action"]),
                "ms",
                note=missing
                or f"with {latency['samples']} sequential samples the p99 is the slowest one: a maximum, not a tail",
            )
        )
        for key, label in (
            ("post", "POST answered"),
            ("feedback.received", "feedback.received seen"),
            ("score.updated", "score.updated seen"),
            ("threshold.breached", "threshold.breached seen"),
        ):
            self.report.add(Figure(f"latency.{key}", f"  p50 after POST: {label}", _ms(median.get(key)), "ms"))
        await self.drain("after the latency samples")

    async def steady(self) -> None:
        """Latency under a steady load and the highest rate the pipeline keeps up with (bench/steady.py)."""
        await measure_steady(
            f"http://127.0.0.1:{self.gateway_port}",
            self.servers,
            self.processes,
            self.report,
            rate=self.sizes.steady_rate,
            seconds=self.sizes.steady_seconds,
            branches=self.sizes.steady_branches,
        )
        await self.drain("after the steady load")

    async def single_posts(self) -> None:
        """(e) Single-feedback POSTs through the gateway, then how long the pipeline takes to catch up."""
        sizes, report = self.sizes, self.report
        log(f"single POST /api/v1/feedback: {sizes.concurrency} connections for {sizes.http_seconds:g} s")
        totals_before = await self._probe.topic_totals()
        db_before = await self._probe.db_snapshot()
        started = time.perf_counter()
        single, cpu = await with_cpu(
            self.processes,
            skeleton.single_posts(
                self.gateway_port,
                self.apis[self.post_org.name],
                self.post_org,
                concurrency=sizes.concurrency,
                duration=sizes.http_seconds,
                warmup=sizes.warmup_seconds,
                workdir=self.servers.workdir / "load",
            ),
            report,
            "single POST",
        )
        ended = time.perf_counter()
        report.details["single_post"] = single
        report.note(f"cores busy during the single POSTs (of {os.cpu_count()}): {cores(cpu)}")
        report.add(
            Figure(
                "post.single",
                f"single POST /api/v1/feedback via gateway ({sizes.concurrency} conns)",
                single["rate"],
                "req/s",
                "bare via nginx",
                report.value("http.bare_gateway"),
                goal=0.35,
                note=http_note("single POST", single),
            )
        )
        report.add(Figure("post.single_p50", "  its latency p50", single["p50_ms"], "ms"))
        report.add(Figure("post.single_p99", "  its latency p99", single["p99_ms"], "ms"))
        log("waiting for scoring, alerts and improvement to catch up with the POSTs")
        catch_up, backlog = await self._probe.wait_quiet(timeout=sizes.drain_timeout)
        accepted = single["total_ok"]
        report.details["single_post_catch_up"] = {"seconds": catch_up, "backlog": backlog.describe()}
        self._database_figures(
            database_work(db_before, await self._probe.db_snapshot()), accepted, "POSTed feedback", "post"
        )
        totals_after = await self._probe.topic_totals()
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
                    accepted / (ended - started + catch_up),
                    "feedback/s",
                    "single POST",
                    single["rate"],
                )
            )

    async def batch_posts(self) -> None:
        """Batch POSTs through the gateway, if the platform has the endpoint."""
        sizes, report = self.sizes, self.report
        log("batch POST /api/v1/feedback/batch")
        db_before = await self._probe.db_snapshot()
        batch, cpu = await with_cpu(
            self.processes,
            skeleton.batch_posts(
                self.gateway_port,
                self.apis[self.post_org.name],
                self.post_org,
                items=sizes.batch_items,
                concurrency=sizes.batch_concurrency,
                duration=sizes.http_seconds,
                warmup=sizes.warmup_seconds,
                workdir=self.servers.workdir / "load",
            ),
            report,
            "batch POST",
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
                note=batch.get("skipped", "") or batch.get("warning", "") or http_note("batch POST", batch),
            )
        )
        if "skipped" in batch:
            return
        report.add(Figure("post.batch_p50", "  its latency p50 (per batch)", batch["p50_ms"], "ms"))
        report.note(f"cores busy during the batch POSTs: {cores(cpu)}")
        await self.drain("after the batch POSTs")
        self._database_figures(
            database_work(db_before, await self._probe.db_snapshot()),
            batch["total_ok"] * sizes.batch_items,
            "batched feedback",
            "batched",
        )

    async def scoring(self) -> None:
        """(g) feedback.received produced straight onto the topic: how fast scoring consumes and commits it."""
        sizes, report = self.sizes, self.report
        log(f"scoring: {sizes.scoring_events:,} feedback.received events produced straight onto the topic")
        scoring_port = self.services["scoring"].port
        metrics_before = await skeleton.scrape_metrics(scoring_port)
        db_before = await self._probe.db_snapshot()
        scoring, cpu = await with_cpu(
            self.processes,
            skeleton.scoring_throughput(
                self.servers.bootstrap,
                self._probe,
                self.apis[self.scoring_org.name],
                self.scoring_org,
                count=sizes.scoring_events,
                timeout=sizes.drain_timeout,
            ),
            report,
            "scoring",
        )
        work = database_work(db_before, await self._probe.db_snapshot())
        batches, batch_seconds = skeleton.batches_between(metrics_before, await skeleton.scrape_metrics(scoring_port))
        scoring["batches"] = batches
        scoring["mean_batch_seconds"] = batch_seconds
        report.details["scoring"] = scoring
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
        self._database_figures(work, sizes.scoring_events, "scored feedback", "scored")
        if batches:
            report.note(
                f"scoring took {batches:.0f} consumer batches (≈{sizes.scoring_events / batches:.0f} events each, "
                f"{batch_seconds * 1000:.0f} ms each on average); cores busy meanwhile: {cores(cpu)}"
            )
        txn_rate = report.value("db.feedback_outbox_txn")
        if scoring["rate"] and txn_rate:
            report.note(
                f"scoring throughput is {scoring['rate'] / txn_rate:.2f}× the raw feedback+outbox transaction rate"
            )

    def _database_figures(self, work: DatabaseWork, count: int, what: str, key: str) -> None:
        if not count or not work.operations:
            return
        self.report.details.setdefault("database_work", {})[what] = {
            "operations": work.operations,
            "namespaces": work.namespaces,
            "count": count,
        }
        self.report.add(
            Figure(
                f"db.ops_per_{key}",
                f"  database operations per {what}",
                work.total_operations / count,
                "ops",
                note=f"database per {what}, by collection (ops, server-side ms incl. queueing): {work.describe(count)}",
            )
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
