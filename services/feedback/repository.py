"""The feedback service's MongoDB collections: units and feedback."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel

from shared.auth import Principal
from shared.storage import Database, Document

UNITS = "units"
FEEDBACK = "feedback"

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


def unit_read(document: Document) -> dict[str, Any]:
    """A stored unit as the API shows it."""
    return {k: v for k, v in document.items() if k not in ("_id", "org", "lineage")}


def feedback_read(document: Document) -> dict[str, Any]:
    """A stored feedback as the API shows it."""
    shown = {k: v for k, v in document.items() if k not in ("_id", "org", "lineage")}
    return {"id": document["_id"], **shown}
