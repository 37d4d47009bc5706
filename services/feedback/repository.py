"""The feedback service's MongoDB collections: units, feedback and erasure requests."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from shared.auth import Principal
from shared.storage import Database, Document, find_in

UNITS = "units"
FEEDBACK = "feedback"
ERASURES = "erasures"

INDEXES = {
    UNITS: [
        IndexModel([("org", ASCENDING), ("id", ASCENDING)], unique=True),
        IndexModel([("org", ASCENDING), ("path", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("lineage", ASCENDING)]),
        IndexModel(
            [("org", ASCENDING), ("external_code", ASCENDING)],
            unique=True,
            partialFilterExpression={"external_code": {"$type": "string"}},
        ),
    ],
    FEEDBACK: [
        IndexModel(
            [("org", ASCENDING), ("source_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"source_id": {"$type": "string"}},
        ),
        IndexModel([("org", ASCENDING), ("lineage", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("customer_ref", ASCENDING)]),
    ],
    ERASURES: [IndexModel([("org", ASCENDING), ("requested_at", ASCENDING)])],
}


async def get_unit(db: Database, *, org: str, unit_id: str) -> Document | None:
    """A unit by its id within an organisation."""
    return await db[UNITS].find_one({"org": org, "id": unit_id})


async def get_unit_by_code(db: Database, *, org: str, external_code: str) -> Document | None:
    """A unit by the customer's own code for it."""
    return await db[UNITS].find_one({"org": org, "external_code": external_code})


async def get_feedback(db: Database, *, principal: Principal, feedback_id: str) -> Document | None:
    """A feedback, if it lies inside the principal's organisation and scopes."""
    return await db[FEEDBACK].find_one({"_id": feedback_id, **principal.scope_filter()})


async def get_feedback_by_source_id(db: Database, *, org: str, source_id: str) -> Document | None:
    """The feedback an integration already posted under its own id."""
    return await db[FEEDBACK].find_one({"org": org, "source_id": source_id})


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


async def find_units(
    db: Database,
    *,
    org: str,
    ids: Iterable[str],
    codes: Iterable[str],
    session: AsyncClientSession | None = None,
) -> tuple[dict[str, Document], dict[str, Document]]:
    """The units named by id or by external code: (by id, by code).

    One indexed query per kind of name: an ``$or`` of both made the database scan every unit.
    """
    ids, codes = sorted(set(ids)), sorted(set(codes))
    by_id = UNIT_CACHE.get_many(db.name, org, ids)
    by_code: dict[str, Document] = {}
    missing = [i for i in ids if i not in by_id]
    if missing:
        found = {u["id"]: u for u in await find_in(db, UNITS, "id", missing, query={"org": org}, session=session)}
        UNIT_CACHE.put_many(db.name, org, found)
        by_id.update(found)
    if codes:
        units = await find_in(db, UNITS, "external_code", codes, query={"org": org}, session=session)
        by_code = {u["external_code"]: u for u in units}
    return by_id, by_code


async def find_feedback_by_source_ids(
    db: Database, *, org: str, source_ids: Iterable[str], session: AsyncClientSession | None = None
) -> dict[str, Document]:
    """The feedback already stored under any of these integration ids, by id."""
    wanted = sorted(set(source_ids))
    if not wanted:
        return {}
    rows = await find_in(db, FEEDBACK, "source_id", wanted, query={"org": org}, session=session)
    return {row["source_id"]: row for row in rows}


async def find_feedback_of_customer(db: Database, *, principal: Principal, customer_ref: str) -> list[Document]:
    """Every feedback of one (pseudonymised) customer inside the principal's scopes."""
    return await db[FEEDBACK].find({**principal.scope_filter(), "customer_ref": customer_ref}).to_list(None)


def unit_read(document: Document) -> dict[str, Any]:
    """A stored unit as the API shows it."""
    return {k: v for k, v in document.items() if k not in ("_id", "org", "lineage")}


def feedback_read(document: Document) -> dict[str, Any]:
    """A stored feedback as the API shows it."""
    shown = {k: v for k, v in document.items() if k not in ("_id", "org", "lineage")}
    return {"id": document["_id"], **shown}
