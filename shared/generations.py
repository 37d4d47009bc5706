"""Collections by generation: one per slice of time, dropped whole when it is too old.

On this database a secondary index to find old documents costs about as much as each insert, and
deleting documents one by one costs several inserts more; dropping a collection costs nothing per
document. So what must be kept for a while and then forgotten (the inboxes' event ids, the relays'
published events) lives in ``<prefix><n>`` collections, the current and the previous one kept.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import datetime, timedelta

from pymongo.errors import CollectionInvalid, PyMongoError

from shared.storage import Database

log = logging.getLogger(__name__)

SHORTEST = timedelta(hours=1)


class Generations:
    """The generation collections of one prefix; ``prepare()`` before use, outside any transaction."""

    def __init__(self, db: Database, prefix: str, length: timedelta, *, adopt: str | None = None) -> None:
        self._db = db
        self._prefix = prefix
        self._length = max(length, SHORTEST).total_seconds()
        # A single collection of an earlier version, taken in as the previous generation.
        self._adopt = adopt
        self._generation: int | None = None
        self.kept: list[str] = []

    def collection(self, generation: int) -> str:
        """The collection of one generation."""
        return f"{self._prefix}{generation}"

    @property
    def current(self) -> str:
        """The collection new documents go to."""
        assert self._generation is not None, "prepare() first"
        return self.collection(self._generation)

    async def prepare(self, now: datetime) -> None:
        """Make sure this generation's and the next one's collections exist; drop the ones too old.

        Collections are created here, outside any transaction: creating one inside concurrent
        transactions conflicts on this database. Cheap when the generation has not changed.
        """
        generation = int(now.timestamp() // self._length)
        if generation == self._generation:
            return
        existing = set(await self._db.list_collection_names())
        previous = self.collection(generation - 1)
        if self._adopt in existing and previous not in existing:
            with suppress(PyMongoError):
                await self._db[self._adopt].rename(previous)
                existing = set(await self._db.list_collection_names())
        for name in (self.collection(generation), self.collection(generation + 1)):
            if name not in existing:
                with suppress(CollectionInvalid):
                    await self._db.create_collection(name)
        for name in existing:
            number = name[len(self._prefix) :]
            if name.startswith(self._prefix) and number.isdigit() and int(number) < generation - 1:
                await self._db.drop_collection(name)
                log.info("dropped a generation past its time", extra={"collection": name})
        self._generation = generation
        candidates = (self.current, previous, *([self._adopt] if self._adopt else []))
        self.kept = [name for name in candidates if name in existing or name == self.current]
