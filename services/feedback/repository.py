"""The feedback service's MongoDB collections: units, feedback and erasure requests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from shared.auth import Principal
from shared.storage import Database, Document

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


async def find_units(
    db: Database,
    *,
    org: str,
    ids: Iterable[str],
    codes: Iterable[str],
    session: AsyncClientSession | None = None,
) -> tuple[dict[str, Document], dict[str, Document]]:
    """The units named by id or by external code, in one query: (by id, by code)."""
    ids, codes = sorted(set(ids)), sorted(set(codes))
    if not ids and not codes:
        return {}, {}
    query = {"org": org, "$or": [{"id": {"$in": ids}}, {"external_code": {"$in": codes}}]}
    units = await db[UNITS].find(query, session=session).to_list(None)
    return {u["id"]: u for u in units}, {u["external_code"]: u for u in units if u.get("external_code")}


async def find_feedback_by_source_ids(
    db: Database, *, org: str, source_ids: Iterable[str], session: AsyncClientSession | None = None
) -> dict[str, Document]:
    """The feedback already stored under any of these integration ids, by id."""
    wanted = sorted(set(source_ids))
    if not wanted:
        return {}
    rows = db[FEEDBACK].find({"org": org, "source_id": {"$in": wanted}}, session=session)
    return {row["source_id"]: row async for row in rows}


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
