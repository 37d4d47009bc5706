"""The feedback service's MongoDB collections: units, feedback and erasure requests."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Literal

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from services.feedback.models import FeedbackFilter
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


async def get_subtree(db: Database, *, org: str, unit_path: str) -> list[Document]:
    """A unit and every unit below it, in one indexed query on the lineage."""
    return await db[UNITS].find({"org": org, "lineage": unit_path}).to_list(None)


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
    """The units named by id or by external code: (by id, by code); units by id may come from the cache.

    One indexed query per kind of name: an ``$or`` of both made the database scan every unit.
    """
    ids = sorted(set(ids))
    by_id = UNIT_CACHE.get_many(db.name, org, ids)
    missing = [i for i in ids if i not in by_id]
    if missing:
        found = await find_units_by(db, org=org, field_name="id", values=missing, session=session)
        UNIT_CACHE.put_many(db.name, org, found)
        by_id.update(found)
    by_code = await find_units_by(db, org=org, field_name="external_code", values=codes, session=session)
    return by_id, by_code


async def find_units_by(
    db: Database,
    *,
    org: str,
    field_name: Literal["id", "external_code"],
    values: Iterable[str],
    session: AsyncClientSession | None = None,
) -> dict[str, Document]:
    """The units whose id (or external code) is one of ``values``, read from the database, by that field."""
    wanted = sorted(set(values))
    if not wanted:
        return {}
    units = await find_in(db, UNITS, field_name, wanted, query={"org": org}, session=session)
    return {unit[field_name]: unit for unit in units}


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


def feedback_query(principal: Principal, filters: FeedbackFilter, *, unit_path: str | None) -> dict[str, Any]:
    """The MongoDB filter of the feedback inside the principal's scopes that match ``filters``."""
    query: dict[str, Any] = principal.scope_filter()
    occurred = {op: t for op, t in (("$gte", filters.from_), ("$lt", filters.to)) if t is not None}
    if occurred:
        query["occurred_at"] = occurred
    if filters.channel:
        query["channel"] = {"$in": filters.channel}
    if filters.kind is not None:
        query["kind"] = filters.kind
    for rating, low, high in (("csat", filters.csat_min, filters.csat_max), ("nps", filters.nps_min, filters.nps_max)):
        bounds = {op: v for op, v in (("$gte", low), ("$lte", high)) if v is not None}
        if bounds:
            query[f"ratings.{rating}"] = bounds
    if filters.sentiment is not None:
        query["polarity"] = filters.sentiment
    if filters.tag:
        query["tags"] = {"$all": filters.tag}
    if filters.has_comment is not None:
        query["comment"] = {"$type": "string"} if filters.has_comment else None
    if unit_path is None:
        return query
    # The scope may already constrain the lineage: both must hold.
    return {"$and": [query, {"lineage": unit_path}]} if "lineage" in query else {**query, "lineage": unit_path}


async def count_feedback(db: Database, query: dict[str, Any], *, group_by: str) -> list[Document]:
    """Counts of the feedback matching ``query`` per value of ``group_by`` (``unit_id`` or ``channel``), most first."""
    pipeline: list[dict[str, Any]] = [
        {"$match": query},
        {"$group": {"_id": f"${group_by}", "count": {"$sum": 1}, "unit_path": {"$first": "$unit_path"}}},
        {"$sort": {"count": -1, "_id": 1}},
    ]
    return await (await db[FEEDBACK].aggregate(pipeline)).to_list(None)


def unit_read(document: Document) -> dict[str, Any]:
    """A stored unit as the API shows it."""
    return {k: v for k, v in document.items() if k not in ("_id", "org", "lineage")}


def feedback_read(document: Document) -> dict[str, Any]:
    """A stored feedback as the API shows it."""
    shown = {k: v for k, v in document.items() if k not in ("_id", "org", "lineage")}
    return {"id": document["_id"], **shown}
