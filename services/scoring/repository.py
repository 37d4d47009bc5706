"""The scoring service's MongoDB collections: aggregates and its read copy of the unit tree."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

AGGREGATES = "aggregates"
UNITS = "units"

INDEXES = {
    AGGREGATES: [
        IndexModel(
            [
                ("org", ASCENDING),
                ("unit_path", ASCENDING),
                ("period", ASCENDING),
                ("period_start", DESCENDING),
            ]
        ),
    ],
    UNITS: [IndexModel([("org", ASCENDING), ("id", ASCENDING)], unique=True)],
}
