"""List reads at two sizes: a page of each list, first and later, must cost the page, not the collection.

Stores feedback shaped as the feedback service stores it (its own documents and indexes, written
straight into a database of its own, in bulk: going through intake would take most of the run) across
1,000 branches (10 regions x 10 cities x 10 branches), with one dead letter per ten feedback, and the
other services' share (aggregates, alerts, actions, audit entries). The two sizes are stored side by
side in databases of their own on one server, and each read runs on them in turn, small then large,
so that both sizes meet the same moments of a busy machine: the ratio compares like with like. Reads
go through the code the endpoints call (``repository.list_feedback``/``list_units``, the dead-letter
list's ``keyset_page``, the services' list and score functions), without HTTP. Prints p50/p99 per
list and the ratio large/small. Storing both sizes takes about 15 minutes on two shared cores. Run alone:
``.venv/bin/python -m bench.reads [--small N --large N --samples N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench import service_reads
from bench.measure import log
from bench.report import Figure, Report
from devstack.processes import free_port, start_database
from services.feedback import repository
from services.feedback.models import FeedbackQuery
from shared.auth import Principal
from shared.dead_letters import DEAD_LETTER_INDEXES, dead_letter_document
from shared.ids import new_id
from shared.pagination import Page, keyset_page
from shared.storage import DEAD_LETTERS, Database, Document
from shared.tree import WHOLE_ORGANISATION, lineage

ORG = "bench-org"
REGIONS, CITIES, BRANCHES = 10, 10, 10
CHANNELS = ("survey", "app", "web", "call_centre", "kiosk", "sms")
KINDS = ("rating", "comment", "complaint")
SPAN = timedelta(days=365)
INSERT_BATCH = 5_000
LIMIT = 50


@dataclass(frozen=True)
class ReadSizes:
    """How many feedback at each size, and how many timed samples per list."""

    small: int = 20_000
    large: int = 200_000
    # A hundred, so that the p99 is the second slowest run and not just the slowest: the first read of a
    # list at a new size is often that one (a cold cache, and a window width learnt at the old density).
    # It is reported apart, as the first call.
    samples: int = 100


QUICK_READS = ReadSizes(small=2_000, large=6_000, samples=5)


def unit_paths() -> list[str]:
    """Every unit path of the bench tree: regions, cities and branches."""
    paths = []
    for r in range(REGIONS):
        paths.append(f"r{r}")
        for c in range(CITIES):
            paths.append(f"r{r}/c{c}")
            paths.extend(f"r{r}/c{c}/b{b}" for b in range(BRANCHES))
    return paths


def unit_document(path: str, created_at: datetime) -> Document:
    """A unit as the feedback service stores it, with its list keys."""
    unit = {
        "_id": new_id("un"),
        "id": path.rpartition("/")[2] + "-" + path.replace("/", "-"),
        "name": path,
        "kind": "branch" if path.count("/") == 2 else "area",
        "org": ORG,
        "path": path,
        "lineage": lineage(path),
        "active": True,
        "created_at": created_at,
    }
    return {**unit, "page_keys": repository.unit_page_keys(unit)}


def feedback_document(rng: random.Random, branch: str, occurred_at: datetime) -> Document:
    """A feedback as the feedback service stores it, with its list keys."""
    feedback = {
        "_id": new_id("fb"),
        "org": ORG,
        "unit_id": branch.rpartition("/")[2],
        "unit_path": branch,
        "lineage": lineage(branch),
        "channel": rng.choice(CHANNELS),
        "kind": rng.choice(KINDS),
        "ratings": {"csat": rng.randint(1, 5), "nps": rng.randint(0, 10)},
        "comment": "排队时间太长，服务态度还可以" if rng.random() < 0.4 else None,
        "polarity": rng.choice(("negative", "neutral", "positive")),
        "tags": ["queue"] if rng.random() < 0.2 else [],
        "occurred_at": occurred_at,
        "received_at": occurred_at,
    }
    return {**feedback, "page_keys": repository.feedback_page_keys(feedback)}


async def store(
    db: Database, others: dict[str, Database], rng: random.Random, branches: list[str], count: int, now: datetime
) -> None:
    """``count`` more feedback spread over the last year, a dead letter per ten, and the other services' share."""
    for start in range(0, count, INSERT_BATCH):
        size = min(INSERT_BATCH, count - start)
        docs = [feedback_document(rng, rng.choice(branches), now - SPAN * rng.random()) for _ in range(size)]
        await db[repository.FEEDBACK].insert_many(docs, ordered=False)
        dead = [_dead_letter(rng, n) for n in range(size // 10)]
        if dead:
            await db[DEAD_LETTERS].insert_many(dead, ordered=False)
        await service_reads.store(others, rng, docs, now)


def _dead_letter(rng: random.Random, n: int) -> Document:
    topic = rng.choice(("feedback.ingest", "unit.changed"))
    return dead_letter_document(
        org=ORG, topic=topic, partition=0, offset=n, key=None, value=b"{}", headers=[], reason="bench"
    )


def percentile(samples: list[float], share: float) -> float:
    """The sample at ``share`` (0-1) of the sorted samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class Timing:
    """One read's runs at one size: the first call, then ``samples`` more, and the items of a page."""

    first: float
    samples: list[float]
    items: int | None


async def timed(read: Callable[[], Awaitable[Any]], samples: int) -> Timing:
    """Milliseconds of a first run of ``read`` and of ``samples`` runs after it."""
    spent = []
    items = None
    for _ in range(samples + 1):
        started = time.perf_counter()
        result = await read()
        spent.append((time.perf_counter() - started) * 1000)
        page = result[0] if isinstance(result, tuple) else result
        items = len(page) if isinstance(page, list) else None
    return Timing(spent[0], spent[1:], items)


ListRead = Callable[[str | None], Awaitable[tuple[Any, str | None]]]


def list_reads(db: Database, now: datetime) -> dict[str, ListRead]:
    """Each list as the endpoints read it: one page from a cursor (None: the first page)."""
    everyone = Principal(subject="bench", org=ORG, scopes=(WHOLE_ORGANISATION,), roles=frozenset({"admin"}))
    region = Principal(subject="bench", org=ORG, scopes=("r3",), roles=frozenset({"unit_manager"}))
    filtered = FeedbackQuery.model_validate(
        {"channel": ["app", "sms"], "csat_min": 2, "from": now - timedelta(days=90), "to": now - timedelta(days=30)}
    )

    def feedback(principal: Principal, filters: FeedbackQuery, unit_path: str | None) -> Any:
        async def read(cursor: str | None) -> tuple[Any, str | None]:
            return await repository.list_feedback(
                db, principal=principal, filters=filters, unit_path=unit_path, cursor=cursor, limit=LIMIT
            )

        return read

    async def units(cursor: str | None) -> tuple[Any, str | None]:
        return await repository.list_units(db, principal=everyone, cursor=cursor, limit=LIMIT)

    async def dead_letters(cursor: str | None) -> tuple[Any, str | None]:
        match = {"topic": "feedback.ingest"}
        page: Page = await keyset_page(
            db, DEAD_LETTERS, org=ORG, scopes=[WHOLE_ORGANISATION], cursor=cursor, limit=LIMIT, match=match
        )
        return page.items, page.next_cursor

    return {
        "feedback, whole organisation": feedback(everyone, FeedbackQuery(), None),
        "feedback, a region's manager": feedback(region, FeedbackQuery(), None),
        "feedback, one branch": feedback(everyone, FeedbackQuery(), "r3/c4/b5"),
        "feedback, region + channels + csat + 60 days": feedback(region, filtered, None),
        "units": units,
        "dead letters of a topic": dead_letters,
    }


def _page_of(read: ListRead, cursor: str | None) -> Callable[[], Awaitable[Any]]:
    async def once() -> Any:
        return await read(cursor)

    return once


async def timed_in_turn(reads: dict[int, Callable[[], Awaitable[Any]]], samples: int) -> dict[int, Timing]:
    """Each size's read run in turn, a first call and then ``samples`` rounds: paired under the same load."""
    runs: dict[int, list[Timing]] = {size: [] for size in reads}
    for _ in range(samples + 1):
        for size, read in reads.items():
            runs[size].append(await timed(read, 0))
    return {size: Timing(done[0].first, [t.first for t in done[1:]], done[-1].items) for size, done in runs.items()}


async def measure_sizes(
    stores: dict[int, tuple[Database, dict[str, Database]]], now: datetime, samples: int
) -> dict[int, dict[str, Timing]]:
    """Milliseconds of the first and the third page of every list, and of each score read, at each size."""
    reads = {size: {**list_reads(db, now), **service_reads.reads(others, now)} for size, (db, others) in stores.items()}
    figures: dict[int, dict[str, Timing]] = {size: {} for size in stores}
    for name in next(iter(reads.values())):
        firsts = await timed_in_turn({size: _page_of(read[name], None) for size, read in reads.items()}, samples)
        thirds: dict[int, Callable[[], Awaitable[Any]]] = {}
        for size, read in reads.items():
            figures[size][f"{name}: first page"] = firsts[size]
            _, second = await read[name](None)
            third = (await read[name](second))[1] if second else None
            if third:
                thirds[size] = _page_of(read[name], third)
        for size, timing in (await timed_in_turn(thirds, samples)).items():
            figures[size][f"{name}: third page"] = timing
    return figures


async def prepare_size(
    client: AsyncMongoClient[Document], size: int, paths: list[str], now: datetime
) -> tuple[Database, dict[str, Database]]:
    """The feedback database of one size, with its indexes and units, and the other services' databases."""
    db = client[f"bench_reads_{size}"]
    for collection, indexes in repository.INDEXES.items():
        await db.create_collection(collection)
        if indexes:
            await db[collection].create_indexes(indexes)
    await db[DEAD_LETTERS].create_indexes(DEAD_LETTER_INDEXES)
    await db[repository.UNITS].insert_many([unit_document(p, now - SPAN) for p in paths])
    return db, await service_reads.prepare(client, paths, suffix=f"_{size}")


async def measure_reads(report: Report, sizes: ReadSizes, workdir: Path) -> None:
    """Store both sizes side by side, time every list on them in turn; figures into ``report``."""
    database = start_database(free_port(), workdir / "reads-db", workdir / "reads-db.log")
    client: AsyncMongoClient[Document] = AsyncMongoClient(f"mongodb://127.0.0.1:{database.port}/?directConnection=true")
    try:
        rng, now = random.Random(10), datetime.now(UTC)
        paths = unit_paths()
        branches = [p for p in paths if p.count("/") == 2]
        stores: dict[int, tuple[Database, dict[str, Database]]] = {}
        for size in (sizes.small, sizes.large):
            started = time.perf_counter()
            stores[size] = await prepare_size(client, size, paths, now)
            await store(*stores[size], rng, branches, size, now)
            log(f"reads: {size:,} feedback stored in {time.perf_counter() - started:.0f} s")
        _report(report, sizes, await measure_sizes(stores, now, sizes.samples))
    finally:
        await client.close()
        database.stop()


def _report(report: Report, sizes: ReadSizes, results: dict[int, dict[str, Timing]]) -> None:
    small, large = results[sizes.small], results[sizes.large]
    for name, timing in large.items():
        before = small.get(name)
        p99_small = percentile(before.samples, 0.99) if before else None
        note = f"p50 {statistics.median(timing.samples):.1f} ms at {sizes.large:,}"
        if before:
            note += f", {statistics.median(before.samples):.1f} ms at {sizes.small:,}"
        note += f"; first call {timing.first:.1f} ms at {sizes.large:,}"
        if before:
            note += f", {before.first:.1f} ms at {sizes.small:,}"
        if timing.items is not None:
            note += f"; {timing.items} items a page at {sizes.large:,}"
            note += f", {before.items} at {sizes.small:,}" if before else ""
        report.add(
            Figure(
                key=f"reads.{name}",
                label=f"list read p99, {name}",
                value=percentile(timing.samples, 0.99),
                unit="ms",
                baseline=f"p99 at {sizes.small:,}",
                baseline_value=p99_small,
                note=note,
            )
        )


def render(report: Report) -> str:
    """The list figures as a table: p50 and p99 at each size and the ratio large/small of p99."""
    lines = [f"{'list page':58s} {'p50 small':>10s} {'p50 large':>10s} {'p99 small':>10s} {'p99 large':>10s} ratio"]
    for figure in report.figures:
        if not figure.key.startswith("reads."):
            continue
        p50s = [part.split(" ms")[0].split()[-1] for part in figure.note.split(";")[0].split(", ")]
        p50_large, p50_small = [*p50s, "-"][:2]
        ratio = f"{figure.ratio:.2f}" if figure.ratio else "-"
        small = f"{figure.baseline_value:.1f}" if figure.baseline_value else "-"
        lines.append(
            f"{figure.key[6:]:58s} {p50_small:>10s} {p50_large:>10s} {small:>10s} {figure.value or 0:>10.1f} {ratio}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the list reads alone and print their table."""
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__)
    parser.add_argument("--small", type=int, default=ReadSizes.small)
    parser.add_argument("--large", type=int, default=ReadSizes.large)
    parser.add_argument("--samples", type=int, default=ReadSizes.samples)
    args = parser.parse_args(argv)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="qualityloop-reads-") as workdir:
        asyncio.run(measure_reads(report, ReadSizes(args.small, args.large, args.samples), Path(workdir)))
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
