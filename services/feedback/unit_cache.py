"""A process's cache of recently read units, so that intake seldom reads a unit from the database."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

from shared.storage import Document


class UnitCache:
    """Recently read units by id, so that a feedback POST needs no database read for its unit.

    Intake reads a unit for every feedback, and on this stack those reads queued behind each other
    and starved the writes. Units change rarely; a change made elsewhere (a move, a deactivation) is
    seen here within ``ttl_seconds``. A unit never read before is always looked up.
    """

    def __init__(self, *, ttl_seconds: float = 30.0, max_entries: int = 100_000) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, Document]] = OrderedDict()

    def get_many(self, database: str, org: str, ids: Iterable[str]) -> dict[str, Document]:
        """The fresh cached units among ``ids``."""
        now = time.monotonic()
        found: dict[str, Document] = {}
        for unit_id in ids:
            entry = self._entries.get((database, org, unit_id))
            if entry and now - entry[0] < self._ttl:
                found[unit_id] = entry[1]
        return found

    def put_many(self, database: str, org: str, units: dict[str, Document]) -> None:
        """Remember units just read, forgetting the oldest beyond ``max_entries``."""
        now = time.monotonic()
        for unit_id, unit in units.items():
            self._entries[(database, org, unit_id)] = (now, unit)
            self._entries.move_to_end((database, org, unit_id))
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, database: str, org: str) -> None:
        """Drop an organisation's units, after this process changed its tree."""
        for key in [k for k in self._entries if k[:2] == (database, org)]:
            del self._entries[key]


UNIT_CACHE = UnitCache()
