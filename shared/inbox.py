"""The consumers' inbox: the ids of handled events, so that a redelivered event changes nothing.

The ids live in generations (``shared.generations``) twice the outbox retention long. A lookup reads
the current and the previous generation, so an id is remembered for at least twice the retention:
longer than any relay keeps events it might publish again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo import InsertOne
from pymongo.asynchronous.client_session import AsyncClientSession

from shared.generations import Generations
from shared.storage import Database, UnitOfWork, find_in

LEGACY_INBOX = "inbox"  # the single, indexed inbox of earlier versions
PREFIX = "inbox_"


class Inbox:
    """Handled event ids by generation; ``prepare()`` before each transaction, outside it."""

    def __init__(self, db: Database, *, retention: timedelta) -> None:
        self._db = db
        self._generations = Generations(db, PREFIX, 2 * retention, adopt=LEGACY_INBOX)

    async def prepare(self, now: datetime) -> None:
        """Make the generation collections ready (see ``Generations.prepare``)."""
        await self._generations.prepare(now)

    async def seen(self, ids: Sequence[str], session: AsyncClientSession) -> set[str]:
        """Which of these event ids were handled already."""
        found: set[str] = set()
        for name in self._generations.kept:
            found.update(row["_id"] for row in await find_in(self._db, name, "_id", ids, session=session))
        return found

    async def forget(self, event_id: str) -> None:
        """Forget an event's id, so that it is handled when it comes again (a dead letter replayed after a fix)."""
        for name in self._generations.kept:
            await self._db[name].delete_one({"_id": event_id})

    def record(self, unit: UnitOfWork, event_id: str, topic: str, now: datetime) -> None:
        """Stage an event's id, to be written with the handlers' writes."""
        unit.write(self._generations.current, InsertOne({"_id": event_id, "topic": topic, "received_at": now}))
