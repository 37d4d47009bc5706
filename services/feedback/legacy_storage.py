"""The migration of feedback storage written before the side rows; it ends with 0.1 and goes in 0.2.

Versions before the side rows (``source_ids``, ``customer_feedback``) found duplicates and a customer's
feedback through two secondary indexes on ``feedback``. Every release of 0.1 migrates such a database
at start-up; 0.2 drops this module, so a database must have been started once by a 0.1 release first.
"""

from __future__ import annotations

import logging

from services.feedback.repository import CUSTOMER_FEEDBACK, FEEDBACK, SOURCE_IDS, side_rows
from shared.storage import Database, Document, insert_new

log = logging.getLogger(__name__)

# The first release without this migration; a unit test fails once the project reaches it.
LEGACY_STORAGE_REMOVED_IN = "0.2.0"

# The secondary indexes ``feedback`` had before the side collections; dropped by ``migrate_legacy_indexes``.
LEGACY_FEEDBACK_INDEXES = (
    (("org", 1), ("source_id", 1)),
    (("org", 1), ("customer_ref", 1)),
)
MIGRATION_BATCH = 1000


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
