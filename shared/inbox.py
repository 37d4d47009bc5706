"""The consumers' inbox: the ids of handled events, so that a redelivered event changes nothing.

The ids live in one collection per generation (``inbox_<n>``, a generation being twice the outbox
retention long) and a whole generation is dropped when it is too old. On this database a secondary
index (``received_at``, to delete old ids) costs about as much as the insert of every id, and deleting
ids one by one costs several inserts more; dropping a collection costs nothing per id. A lookup reads
the current and the previous generation, so an id is remembered for at least one generation: longer
than any relay keeps events it might publish again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime, timedelta

from pymongo import InsertOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import CollectionInvalid, PyMongoError

from shared.storage import Database, UnitOfWork, find_in

log = logging.getLogger(__name__)

LEGACY_INBOX = "inbox"  # the single, indexed inbox of earlier versions
PREFIX = "inbox_"
SHORTEST_GENERATION = timedelta(hours=1)


def generation_collection(generation: int) -> str:
    """The collection of one generation of ids."""
    return f"{PREFIX}{generation}"


class Inbox:
    """Handled event ids by generation; ``prepare()`` before each transaction, outside it."""

    def __init__(self, db: Database, *, retention: timedelta) -> None:
        self._db = db
        self._length = max(2 * retention, SHORTEST_GENERATION).total_seconds()
        self._generation: int | None = None
        self._read_from: list[str] = []

    @property
    def current(self) -> str:
        """The collection new ids go to."""
        assert self._generation is not None, "prepare() first"
        return generation_collection(self._generation)

    async def prepare(self, now: datetime) -> None:
        """Make sure this generation's and the next one's collections exist; drop the ones too old.

        Collections are created here, outside any transaction: creating one inside concurrent
        transactions conflicts on this database. Cheap when the generation has not changed.
        """
        generation = int(now.timestamp() // self._length)
        if generation == self._generation:
            return
        existing = set(await self._db.list_collection_names())
        if LEGACY_INBOX in existing and generation_collection(generation - 1) not in existing:
            # The earlier single inbox becomes the previous generation and ages out with it.
            with suppress(PyMongoError):
                await self._db[LEGACY_INBOX].rename(generation_collection(generation - 1))
                existing = set(await self._db.list_collection_names())
        for name in (generation_collection(generation), generation_collection(generation + 1)):
            if name not in existing:
                with suppress(CollectionInvalid):
                    await self._db.create_collection(name)
        for name in existing:
            if name.startswith(PREFIX) and name[len(PREFIX) :].isdigit() and int(name[len(PREFIX) :]) < generation - 1:
                await self._db.drop_collection(name)
                log.info("dropped an inbox generation past its time", extra={"collection": name})
        self._generation = generation
        kept = (generation_collection(generation), generation_collection(generation - 1), LEGACY_INBOX)
        self._read_from = [name for name in kept if name in existing or name == self.current]

    async def seen(self, ids: Sequence[str], session: AsyncClientSession) -> set[str]:
        """Which of these event ids were handled already."""
        found: set[str] = set()
        for name in self._read_from:
            found.update(row["_id"] for row in await find_in(self._db, name, "_id", ids, session=session))
        return found

    def record(self, unit: UnitOfWork, event_id: str, topic: str, now: datetime) -> None:
        """Stage an event's id, to be written with the handlers' writes."""
        unit.write(self.current, InsertOne({"_id": event_id, "topic": topic, "received_at": now}))
