"""The feedback service's MongoDB collections: units, feedback, its side rows and erasure requests."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from services.feedback.models import FeedbackFilter
from shared.auth import Principal
from shared.storage import Database, Document, find_in, insert_new

log = logging.getLogger(__name__)

UNITS = "units"
FEEDBACK = "feedback"
# Side rows of a feedback, keyed by ``_id`` only and written in the feedback's unit of work. They stand in
# for secondary indexes on ``feedback``: the database pays for every secondary index of a collection on
# every insert (even a partial index the document does not qualify for), but an insert into an ``_id``
# index alone is cheap, and only feedback that has the value gets a row.
SOURCE_IDS = "source_ids"  # (org, source id) → feedback: idempotency; a duplicate ``_id`` is a duplicate post
CUSTOMER_FEEDBACK = "customer_feedback"  # (org, customer, feedback) → feedback: erasure by customer
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
    FEEDBACK: [IndexModel([("org", ASCENDING), ("lineage", ASCENDING), ("_id", ASCENDING)])],
    # No secondary index: created empty at start-up, because creating a collection inside concurrent
    # transactions conflicts on this database.
    SOURCE_IDS: [],
    CUSTOMER_FEEDBACK: [],
    ERASURES: [IndexModel([("org", ASCENDING), ("requested_at", ASCENDING)])],
}

# The secondary indexes ``feedback`` had before the side collections; dropped by ``migrate_legacy_indexes``.
LEGACY_FEEDBACK_INDEXES = (
    (("org", 1), ("source_id", 1)),
    (("org", 1), ("customer_ref", 1)),
)
MIGRATION_BATCH = 1000

KEY_SEPARATOR = "\x1f"
_KEY_ESCAPE = "\x1e"


def side_key(*parts: str) -> str:
    """A side row's ``_id``: the parts joined by the unit separator, each escaped so the key is unambiguous.

    An organisation (a token claim) or a source id may contain any character, the separator (US,
    0x1f) included. The escape (RS, 0x1e) keeps ("a" US "b", "c") apart from ("a", "b" US "c"), and since
    no escaped part holds a separator, a prefix of whole parts finds only the keys that begin with those
    very parts. Strings without these two control characters are kept as they are.
    """
    escaped = (p.replace(_KEY_ESCAPE, _KEY_ESCAPE + "e").replace(KEY_SEPARATOR, _KEY_ESCAPE + "s") for p in parts)
    return KEY_SEPARATOR.join(escaped)


def source_key(org: str, source_id: str) -> str:
    """The ``_id`` of a source-id row: one per organisation and integration id."""
    return side_key(org, source_id)


def customer_key(org: str, customer_ref: str, feedback_id: str) -> str:
    """The ``_id`` of a customer row: the customer's prefix and the feedback id."""
    return side_key(org, customer_ref, feedback_id)


def side_rows(feedback: Document) -> list[tuple[str, Document]]:
    """The side rows a stored feedback needs, by collection: none without a source id or customer reference."""
    rows: list[tuple[str, Document]] = []
    org, feedback_id = feedback["org"], feedback["_id"]
    if isinstance(feedback.get("source_id"), str):
        rows.append((SOURCE_IDS, {"_id": source_key(org, feedback["source_id"]), "feedback_id": feedback_id}))
    if isinstance(feedback.get("customer_ref"), str):
        key = customer_key(org, feedback["customer_ref"], feedback_id)
        rows.append((CUSTOMER_FEEDBACK, {"_id": key, "feedback_id": feedback_id}))
    return rows


async def get_unit(db: Database, *, org: str, unit_id: str) -> Document | None:
    """A unit by its id within an organisation."""
    return await db[UNITS].find_one({"org": org, "id": unit_id})


async def get_unit_by_code(db: Database, *, org: str, external_code: str) -> Document | None:
    """A unit by the customer's own code for it."""
    return await db[UNITS].find_one({"org": org, "external_code": external_code})


async def get_subtree(db: Database, *, org: str, unit_path: str) -> list[Document]:
    """A unit and every unit below it, in one indexed query on the lineage."""
    return await db[UNITS].find({"org": org, "lineage": unit_path}).to_list(None)


async def get_feedback_by_source_id(db: Database, *, org: str, source_id: str) -> Document | None:
    """The feedback an integration already posted under its own id (None if none, or if it was erased)."""
    found = await find_feedback_by_source_ids(db, org=org, source_ids=[source_id])
    return found.get(source_id)


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
) -> dict[str, Document | None]:
    """The feedback already taken under any of these integration ids, by id; None where it was erased.

    Two reads by ``_id`` alone: the source-id rows, then their feedback. (A filter of ``_id`` with any
    other field is no point lookup on this database: it walked the lineage index, seconds on a big
    collection. So the organisation is checked here rather than in the query.)
    """
    by_key = {source_key(org, source_id): source_id for source_id in set(source_ids)}
    if not by_key:
        return {}
    rows = await find_in(db, SOURCE_IDS, "_id", sorted(by_key), session=session)
    feedback = await find_feedback_by_ids(db, [r["feedback_id"] for r in rows if "erased_at" not in r], session)
    found: dict[str, Document | None] = {}
    for row in rows:
        stored = feedback.get(row["feedback_id"])
        # A row whose feedback is gone answers as erased: the feedback and its row are written and
        # erased in one transaction, so the row alone means the erasure won between the two reads.
        found[by_key[row["_id"]]] = stored if stored is not None and stored["org"] == org else None
    return found


async def find_feedback_by_ids(
    db: Database, ids: Sequence[str], session: AsyncClientSession | None = None
) -> dict[str, Document]:
    """Feedback by ``_id``, in chunked point lookups; the caller checks organisation and scope."""
    return {doc["_id"]: doc for doc in await find_in(db, FEEDBACK, "_id", sorted(set(ids)), session=session)}


async def find_feedback_of_customer(db: Database, *, principal: Principal, customer_ref: str) -> list[Document]:
    """Every feedback of one (pseudonymised) customer inside the principal's scopes.

    The customer's rows share a key prefix. A range of ``_id`` is no indexed scan on this database (it
    reads every customer row, about 12 µs a row), which an erasure, being rare, can afford; intake
    cannot afford a secondary index instead. The scope is applied to the feedback read by ``_id`` (see
    ``find_feedback_by_source_ids`` for why not in the query).
    """
    prefix = side_key(principal.org, customer_ref) + KEY_SEPARATOR
    # The separator's successor bounds every key that begins with the prefix, and only those.
    end = prefix[:-1] + chr(ord(KEY_SEPARATOR) + 1)
    rows = await db[CUSTOMER_FEEDBACK].find({"_id": {"$gte": prefix, "$lt": end}}).to_list(None)
    feedback = await find_feedback_by_ids(db, [r["feedback_id"] for r in rows])
    return [doc for doc in feedback.values() if doc.get("customer_ref") == customer_ref and principal.can_read(doc)]


async def migrate_legacy_indexes(db: Database) -> bool:
    """Move a database of an earlier version off the legacy ``feedback`` indexes; True if there were any.

    Backfills the side rows of every stored feedback with a source id or customer reference, then drops
    the legacy indexes. Safe to repeat: rows already there are skipped, so a start-up that stopped
    half-way simply does it again. Run it before the service takes writes; a process of the earlier
    version still writing meanwhile would store feedback without side rows, so stop those first.
    """
    legacy = await _legacy_index_names(db)
    if not legacy:
        return False
    rows = 0
    batch: dict[str, list[Document]] = {SOURCE_IDS: [], CUSTOMER_FEEDBACK: []}
    wanted = {"$or": [{"source_id": {"$type": "string"}}, {"customer_ref": {"$type": "string"}}]}
    cursor = db[FEEDBACK].find(wanted, {"org": 1, "source_id": 1, "customer_ref": 1}, batch_size=MIGRATION_BATCH)
    async for feedback in cursor:
        for collection, row in side_rows(feedback):
            batch[collection].append(row)
            if len(batch[collection]) >= MIGRATION_BATCH:
                rows += await insert_new(db, collection, batch[collection])
                batch[collection] = []
    for collection, pending in batch.items():
        rows += await insert_new(db, collection, pending)
    for name in legacy:
        await db[FEEDBACK].drop_index(name)
    log.info("feedback side rows backfilled, legacy indexes dropped", extra={"rows": rows, "indexes": legacy})
    return True


async def _legacy_index_names(db: Database) -> list[str]:
    info = await db[FEEDBACK].index_information()
    return [
        name
        for name, spec in info.items()
        if tuple((field, int(direction)) for field, direction in spec["key"]) in LEGACY_FEEDBACK_INDEXES
    ]


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
