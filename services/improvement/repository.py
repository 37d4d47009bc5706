"""The improvement service's MongoDB collections: the responsibility matrix and actions."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from services.improvement.domain import Responsibility
from shared.storage import Document

RESPONSIBILITIES = "responsibilities"
ACTIONS = "actions"

INDEXES = {
    RESPONSIBILITIES: [IndexModel([("org", ASCENDING), ("scope", ASCENDING)])],
    ACTIONS: [
        # One action per alert, however often the breach is delivered.
        IndexModel([("alert_id", ASCENDING)], unique=True, partialFilterExpression={"alert_id": {"$type": "string"}}),
        IndexModel([("org", ASCENDING), ("lineage", ASCENDING), ("_id", ASCENDING)]),
    ],
}


def responsibility_from(document: Document) -> Responsibility:
    """The domain entry of a stored responsibility."""
    return Responsibility(
        id=document["_id"],
        scope=document["scope"],
        responsible=document["responsible"],
        accountable=document.get("accountable"),
        indicator=document.get("indicator"),
    )
