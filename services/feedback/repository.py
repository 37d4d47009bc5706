"""The feedback service's collections (units, feedback, side rows, erasures): every query, every write staged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pymongo import ASCENDING, DeleteMany, IndexModel, UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from services.feedback.models import FeedbackFilter
from services.feedback.unit_cache import UNIT_CACHE
from shared.auth import Principal
from shared.pagination import (
    PAGE_KEYS,
    backfill_page_keys,
    key_prefix,
    keyed_in_window,
    keyset_page,
    list_scopes,
    matches,
    moved_page_keys,
    page_keys,
    page_keys_index,
    public_view,
    visible_scopes,
)
from shared.storage import Database, Document, UnitOfWork, chunks, find_in

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
        page_keys_index(),
        IndexModel(
            [("org", ASCENDING), ("external_code", ASCENDING)],
            unique=True,
            partialFilterExpression={"external_code": {"$type": "string"}},
        ),
    ],
    # The lists' keys (shared.pagination): one index, in place of the (org, lineage, _id) index of 0.1,
    # which served no list in bounded time and cost intake as much.
    FEEDBACK: [page_keys_index()],
    # No secondary index: created empty at start-up, because creating a collection inside concurrent
    # transactions conflicts on this database.
    SOURCE_IDS: [],
    CUSTOMER_FEEDBACK: [],
    ERASURES: [IndexModel([("org", ASCENDING), ("requested_at", ASCENDING)])],
}

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


async def get_subtree(db: Database, *, org: str, unit_path: str) -> list[Document]:
    """A unit and every unit below it, in one indexed query on the lineage."""
    return await db[UNITS].find({"org": org, "lineage": unit_path}).to_list(None)


async def list_units(
    db: Database, *, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[Document], str | None]:
    """A page of the units the principal may see, newest first, and the next cursor (keyset: costs the page)."""
    scopes = visible_scopes(principal.scopes)
    page = await keyset_page(db, UNITS, org=principal.org, scopes=scopes, cursor=cursor, limit=limit, view=_as_is)
    return page.items, page.next_cursor


def _as_is(document: Document) -> Document:
    return document


def unit_page_keys(unit: Document) -> list[str]:
    """A unit's keys in the unit list: under the organisation and each path of its lineage, by creation."""
    return page_keys(unit["org"], list_scopes(unit["lineage"]), unit["created_at"], unit["_id"])


def feedback_page_keys(feedback: Document) -> list[str]:
    """A feedback's keys in the feedback list: under the organisation and each path of its lineage, by occurrence."""
    return page_keys(feedback["org"], list_scopes(feedback["lineage"]), feedback["occurred_at"], feedback["_id"])


async def migrate_page_keys(db: Database) -> int:
    """Give the units and feedback of a 0.1 database their list keys, then drop the index they replace.

    Runs only while the old ``(org, lineage, _id)`` feedback index exists (a scan of both collections,
    once); safe to repeat if a start-up stops half-way. Returns how many documents got keys.
    """
    info = await db[FEEDBACK].index_information()
    old = [name for name, spec in info.items() if [f for f, _ in spec["key"]] == ["org", "lineage", "_id"]]
    if not old:
        return 0
    given = await backfill_page_keys(db, UNITS, unit_page_keys)
    given += await backfill_page_keys(db, FEEDBACK, feedback_page_keys)
    for name in old:
        await db[FEEDBACK].drop_index(name)
    return given


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


async def get_feedback(db: Database, *, principal: Principal, feedback_id: str) -> Document | None:
    """One feedback inside the principal's scopes (None if missing or outside them), read by ``_id`` alone."""
    feedback = await db[FEEDBACK].find_one({"_id": feedback_id})
    return feedback if feedback is not None and principal.can_read(feedback) else None


async def list_feedback(
    db: Database,
    *,
    principal: Principal,
    filters: FeedbackFilter,
    unit_path: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Document], str | None]:
    """A page of the matching feedback, newest occurrence first, and the next cursor (keyset: costs the page).

    The scope and the time range bound the key windows; the other filters are checked on each window.
    """
    page = await keyset_page(
        db,
        FEEDBACK,
        org=principal.org,
        scopes=visible_scopes(principal.scopes, unit_path),
        cursor=cursor,
        limit=limit,
        match=feedback_match(filters),
        since=filters.from_,
        until=filters.to,
        view=_as_is,
    )
    return page.items, page.next_cursor


def feedback_match(filters: FeedbackFilter) -> dict[str, Any]:
    """The filters other than scope and time, as plain field conditions (checked on each list window)."""
    query: dict[str, Any] = {}
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
    return query


# What a count reads of each feedback in its window: the grouping and every field a filter may check.
COUNTED_FIELDS = dict.fromkeys(("unit_id", "unit_path", "channel", "kind", "ratings", "polarity", "tags", "comment"), 1)


async def count_feedback(
    db: Database,
    *,
    principal: Principal,
    filters: FeedbackFilter,
    unit_path: str | None,
    since: datetime,
    until: datetime | None,
    group_by: str,
) -> list[tuple[str, str | None, int]]:
    """Counts of the matching feedback that occurred in [since, until) per ``group_by`` value, most first.

    Reads the key ranges of the visible scopes over that stretch (``keyed_in_window``): the cost is the
    stretch's feedback, never the collection, so the caller bounds the stretch.
    """
    scopes = visible_scopes(principal.scopes, unit_path)
    rows = await keyed_in_window(
        db, FEEDBACK, org=principal.org, scopes=scopes, since=since, until=until, projection=COUNTED_FIELDS
    )
    match = feedback_match(filters)
    counts: Counter[str] = Counter()
    paths: dict[str, str] = {}
    for row in rows:
        if matches(row, match):
            counts[row[group_by]] += 1
            paths.setdefault(row[group_by], row["unit_path"])
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(key, paths[key] if group_by == "unit_id" else None, count) for key, count in ordered]


def create_unit(work: UnitOfWork, unit: Document) -> None:
    """Stage the insert of a new unit with its list keys."""
    work.insert(UNITS, {**unit, PAGE_KEYS: unit_page_keys(unit)})


def update_unit(work: UnitOfWork, *, org: str, unit_id: str, changes: Document) -> None:
    """Stage new values of some of a unit's fields (a new lineage rewrites its list keys)."""
    if "lineage" not in changes:
        work.write(UNITS, UpdateOne({"org": org, "id": unit_id}, {"$set": changes}))
        return
    values = {k: {"$literal": v} for k, v in changes.items()}
    keys = moved_page_keys(org, list_scopes(changes["lineage"]))
    work.write(UNITS, UpdateOne({"org": org, "id": unit_id}, [{"$set": {**values, PAGE_KEYS: keys}}]))


def move_unit_feedback(work: UnitOfWork, *, unit: Document, new_path: str, new_lineage: list[str]) -> None:
    """Stage the move of a unit's own stored feedback (not its subtree's) to the unit's new path."""
    # One update per unit, not per feedback: a region's feedback may be millions of rows. The key range
    # of the unit's own path (first: it picks the index) reads its subtree's feedback, not the collection.
    prefix = key_prefix(unit["org"], unit["path"])
    moved = {"unit_path": {"$literal": new_path}, "lineage": {"$literal": new_lineage}}
    work.write(
        FEEDBACK,
        UpdateMany(
            {PAGE_KEYS: {"$gt": prefix, "$lt": prefix + "\x7f"}, "org": unit["org"], "unit_id": unit["id"]},
            [{"$set": {**moved, PAGE_KEYS: moved_page_keys(unit["org"], list_scopes(new_lineage))}}],
        ),
    )


def create_feedback(work: UnitOfWork, feedback: Document) -> None:
    """Stage the insert of a feedback with its list keys and side rows."""
    work.insert(FEEDBACK, {**feedback, PAGE_KEYS: feedback_page_keys(feedback)})
    # Same unit of work: a concurrent post of the same source id fails its commit on the row's _id.
    for collection, row in side_rows(feedback):
        work.insert(collection, row)


def delete_feedback(work: UnitOfWork, *, org: str, erased: Sequence[Document], erased_at: datetime) -> None:
    """Stage the deletion of feedback with their customer rows, and the tombstones of their source ids."""
    for chunk in chunks([f["_id"] for f in erased]):
        work.write(FEEDBACK, DeleteMany({"_id": {"$in": list(chunk)}}))
    for chunk in chunks([customer_key(org, f["customer_ref"], f["_id"]) for f in erased]):
        work.write(CUSTOMER_FEEDBACK, DeleteMany({"_id": {"$in": list(chunk)}}))
    for feedback in erased:
        if isinstance(feedback.get("source_id"), str):
            # Upserted, so the tombstone holds even if the row was never written.
            tombstone = {"feedback_id": feedback["_id"], "erased_at": erased_at}
            work.write(
                SOURCE_IDS, UpdateOne({"_id": source_key(org, feedback["source_id"])}, {"$set": tombstone}, upsert=True)
            )


def create_erasure(work: UnitOfWork, erasure: Document) -> None:
    """Stage the record of an erasure request."""
    work.insert(ERASURES, erasure)


def unit_read(document: Document) -> dict[str, Any]:
    """A stored unit as the API shows it."""
    return {k: v for k, v in document.items() if k not in ("_id", "org", "lineage", PAGE_KEYS)}


def feedback_read(document: Document) -> dict[str, Any]:
    """A stored feedback as the API shows it."""
    return public_view(document)


def erasure_read(document: Document) -> dict[str, Any]:
    """A recorded erasure request as the API shows it."""
    return public_view(document)
