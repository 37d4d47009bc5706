"""Durable timers on the real database: each due job runs once, also with two schedulers polling."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient, InsertOne

from shared.consumer import BatchContext
from shared.scheduler import JOB_INDEXES, JOBS, Job, Scheduler, cancel, schedule
from shared.storage import Database, UnitOfWork, apply, ensure_collections, in_transaction
from tests.harness import Stack, unique

pytestmark = pytest.mark.integration


class Runs:
    """A job handler that records each run in the job's transaction; fails on payloads marked so."""

    async def __call__(self, jobs: Sequence[Job], batch: BatchContext) -> None:
        for job in jobs:
            if job.payload.get("fail"):
                raise ValueError("this job always fails")
            batch.unit.write("runs", InsertOne({"job": job.key, "attempts": job.attempts}))
            if job.payload.get("again"):
                schedule(
                    batch.unit,
                    kind=job.kind,
                    key=job.key,
                    org=job.org,
                    due_at=job.due_at,
                    payload={"again": False},
                    attempts=job.attempts + 1,
                )


@pytest.fixture
async def database(stack: Stack):
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    db = client[unique("scheduler")]
    await ensure_collections(db, {**JOB_INDEXES, "runs": []})
    yield client, db
    await client.close()


async def _stage(client: AsyncMongoClient, db: Database, *jobs: dict) -> None:
    unit = UnitOfWork("test")
    for job in jobs:
        schedule(unit, kind="step", org="acme", **job)
    await in_transaction(client, lambda session: apply(db, session, [unit]))


def _scheduler(client: AsyncMongoClient, db: Database) -> Scheduler:
    return Scheduler(service="test", client=client, db=db, handlers={"step": Runs()})


async def test_a_job__runs_once_when_due_and_not_before(database):
    client, db = database
    now = datetime.now(UTC)
    await _stage(client, db, {"key": "soon", "due_at": now}, {"key": "later", "due_at": now + timedelta(hours=1)})

    assert await _scheduler(client, db).run_due(now) == 1
    assert await _scheduler(client, db).run_due(now) == 0

    assert [r["job"] async for r in db.runs.find()] == ["soon"]
    assert await db[JOBS].count_documents({}) == 1


async def test_two_schedulers_polling_together__run_each_job_once(database):
    client, db = database
    now = datetime.now(UTC)
    await _stage(client, db, *({"key": f"job-{i}", "due_at": now} for i in range(40)))

    first, second = _scheduler(client, db), _scheduler(client, db)
    await asyncio.gather(first.run_due(now), second.run_due(now), first.run_due(now), second.run_due(now))

    keys = [r["job"] async for r in db.runs.find()]
    assert sorted(keys) == sorted(f"job-{i}" for i in range(40))
    assert await db[JOBS].count_documents({}) == 0


async def test_a_failing_job__is_postponed_alone_and_the_others_run(database):
    client, db = database
    now = datetime.now(UTC)
    await _stage(client, db, {"key": "bad", "due_at": now, "payload": {"fail": True}}, {"key": "good", "due_at": now})

    await _scheduler(client, db).run_due(now)

    assert [r["job"] async for r in db.runs.find()] == ["good"]
    postponed = await db[JOBS].find_one({"key": "bad"})
    assert postponed["attempts"] == 1 and postponed["due_at"] > now


async def test_a_job_rescheduled_by_its_handler__runs_again_and_cancel_removes_one(database):
    client, db = database
    now = datetime.now(UTC)
    await _stage(
        client, db, {"key": "twice", "due_at": now, "payload": {"again": True}}, {"key": "gone", "due_at": now}
    )
    unit = UnitOfWork("test")
    cancel(unit, kind="step", key="gone")
    await in_transaction(client, lambda session: apply(db, session, [unit]))

    scheduler = _scheduler(client, db)
    await scheduler.run_due(now)
    await scheduler.run_due(now)

    runs = [(r["job"], r["attempts"]) async for r in db.runs.find()]
    assert runs == [("twice", 0), ("twice", 1)]


async def test_a_started_scheduler__runs_a_job_that_comes_due_while_it_polls(database):
    client, db = database
    scheduler = _scheduler(client, db)
    scheduler.start()
    try:
        await _stage(client, db, {"key": "polled", "due_at": datetime.now(UTC) + timedelta(milliseconds=300)})
        for _ in range(100):
            if await db.runs.find_one({"job": "polled"}):
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert await db.runs.count_documents({"job": "polled"}) == 1
