"""Durable timers: jobs written with the state change that wants them, run once when due.

A use case stages ``schedule(unit, ...)`` in its unit of work, so the timer exists exactly when the
change committed (an escalation step, an overdue action, a notification to send after the commit).
Each service runs a ``Scheduler`` that polls the ``jobs`` collection on its indexed ``due_at`` (a
bounded range: it costs the due jobs, not the collection) and runs each due job in one transaction
with the job's removal. Two instances may poll at once: both read the job, both try to delete it in
their transactions, and the database lets only one commit (the other's write conflicts, its
transaction is retried and finds the job gone), so each job's effect happens once. A job whose handler
fails is retried alone with backoff; the others of its pass go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, DeleteOne, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure, PyMongoError

from shared.consumer import BatchContext
from shared.storage import Database, Document, UnitOfWork, apply, in_transaction

log = logging.getLogger(__name__)

JOBS = "jobs"
JOB_INDEXES = {JOBS: [IndexModel([("due_at", ASCENDING)])]}
POLL_SECONDS = 0.25
JOBS_PER_PASS = 200
# A failing job waits 1 s, 2 s, 4 s … up to an hour between attempts; it is never dropped silently.
MAX_RETRY_DELAY = timedelta(hours=1)


@dataclass(frozen=True)
class Job:
    """A timer that came due: what kind of work, for which key, and what its scheduler wrote down."""

    id: str
    kind: str
    key: str
    org: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int = 0

    @classmethod
    def from_document(cls, document: Document) -> Job:
        """The job a stored document describes."""
        return cls(
            id=document["_id"],
            kind=document["kind"],
            key=document["key"],
            org=document["org"],
            due_at=document["due_at"],
            payload=document.get("payload") or {},
            attempts=document.get("attempts", 0),
        )


JobHandler = Callable[[Sequence[Job], BatchContext], Awaitable[None]]


def job_id(kind: str, key: str) -> str:
    """The id of a kind's job for a key: scheduling the same key again moves the one job."""
    return f"{kind}:{key}"


def schedule(
    unit: UnitOfWork,
    *,
    kind: str,
    key: str,
    org: str,
    due_at: datetime,
    payload: Mapping[str, Any] | None = None,
    attempts: int = 0,
) -> None:
    """Stage a job (or move an existing one) in the unit of work: it exists once the unit commits."""
    fields = {"kind": kind, "key": key, "org": org, "due_at": due_at, "payload": dict(payload or {})}
    unit.write(JOBS, UpdateOne({"_id": job_id(kind, key)}, {"$set": {**fields, "attempts": attempts}}, upsert=True))


def cancel(unit: UnitOfWork, *, kind: str, key: str) -> None:
    """Stage the removal of a kind's job for a key, if there is one."""
    unit.write(JOBS, DeleteOne({"_id": job_id(kind, key)}))


def retry_delay(attempts: int) -> timedelta:
    """How long a job that failed ``attempts`` times waits before its next attempt."""
    return min(timedelta(seconds=2 ** min(attempts, 20)), MAX_RETRY_DELAY)


class Scheduler:
    """Runs a service's due jobs, each once, in a transaction with the job's removal."""

    def __init__(
        self,
        *,
        service: str,
        client: AsyncMongoClient[Document],
        db: Database,
        handlers: Mapping[str, JobHandler],
        on_commit: Callable[[list[Document]], None] = lambda rows: None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._service = service
        self._client = client
        self._db = db
        self._handlers = dict(handlers)
        self._on_commit = on_commit
        self._poll_seconds = poll_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling in the background."""
        self._task = asyncio.create_task(self._run(), name=f"{self._service}-scheduler")

    async def stop(self) -> None:
        """Finish the pass in hand and stop."""
        self._stopping.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                ran = await self.run_due()
            except (PyMongoError, OSError) as error:
                log.warning("scheduler pass failed, retrying", extra={"error": repr(error)})
                ran = 0
            if ran < JOBS_PER_PASS:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll_seconds)

    async def run_due(self, now: datetime | None = None) -> int:
        """Run the jobs due at ``now`` (default: the present); how many were taken."""
        now = now or datetime.now(UTC)
        documents = await self._db[JOBS].find({"due_at": {"$lte": now}}).limit(JOBS_PER_PASS).to_list(None)
        by_kind: dict[str, list[Job]] = {}
        for document in documents:
            by_kind.setdefault(document["kind"], []).append(Job.from_document(document))
        for kind, jobs in by_kind.items():
            await self._run_kind(kind, jobs)
        return len(documents)

    async def _run_kind(self, kind: str, jobs: list[Job]) -> None:
        handler = self._handlers.get(kind)
        if handler is None:
            log.error("no handler for due jobs; they wait", extra={"kind": kind, "jobs": len(jobs)})
            await self._postpone(jobs, "no handler for this kind of job")
            return
        try:
            await self._attempt(handler, jobs)
        except ConnectionFailure:
            raise
        except Exception:
            if len(jobs) == 1:
                log.exception("job failed", extra={"kind": kind, "job": jobs[0].id})
                await self._postpone(jobs, "handler failed")
                return
            # One bad job must not hold back the others: run each alone.
            for job in jobs:
                await self._run_kind(kind, [job])

    async def _attempt(self, handler: JobHandler, jobs: list[Job]) -> None:
        async def work(session: AsyncClientSession) -> list[Document]:
            claimed = [job for job in jobs if await self._claim(job, session)]
            unit = UnitOfWork(self._service)
            if claimed:
                await handler(claimed, BatchContext(self._db, session, unit))
            return await apply(self._db, session, [unit])

        self._on_commit(await in_transaction(self._client, work))

    async def _claim(self, job: Job, session: AsyncClientSession) -> bool:
        """Remove the job in the transaction; False if another pass already ran it or it was moved."""
        removed = await self._db[JOBS].delete_one({"_id": job.id, "due_at": job.due_at}, session=session)
        return removed.deleted_count == 1

    async def _postpone(self, jobs: Sequence[Job], reason: str) -> None:
        for job in jobs:
            await self._db[JOBS].update_one(
                {"_id": job.id, "due_at": job.due_at},
                {
                    "$set": {"due_at": datetime.now(UTC) + retry_delay(job.attempts), "last_error": reason},
                    "$inc": {"attempts": 1},
                },
            )
