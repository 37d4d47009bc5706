"""The alerts service's MongoDB collections: rules and alerts."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from services.alerts.domain import ThresholdRule
from shared.storage import Document

RULES = "rules"
ALERTS = "alerts"

INDEXES = {
    RULES: [IndexModel([("org", ASCENDING), ("_id", ASCENDING)])],
    ALERTS: [
        # One firing alert per rule and unit: the database enforces the deduplication.
        IndexModel([("fingerprint", ASCENDING)], unique=True, partialFilterExpression={"status": "firing"}),
        IndexModel([("org", ASCENDING), ("lineage", ASCENDING), ("_id", ASCENDING)]),
    ],
}

RULE_FIELDS = (
    "org",
    "indicator",
    "comparison",
    "threshold",
    "min_samples",
    "scope",
    "period",
    "level",
    "clear_margin",
)


def rule_from(document: Document) -> ThresholdRule:
    """The domain rule of a stored rule."""
    return ThresholdRule(id=document["_id"], **{name: document[name] for name in RULE_FIELDS})
