"""The scoring service's MongoDB collections: aggregates, index systems and its read copy of the unit tree."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from services.scoring.aggregation import Window
from services.scoring.index_system import IndexSystem, default_index_system
from services.scoring.statistics import MetricStats, merge_all
from shared.storage import Database, Document

AGGREGATES = "aggregates"
UNITS = "units"
INDEX_SYSTEMS = "index_systems"

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
    UNITS: [
        IndexModel([("org", ASCENDING), ("id", ASCENDING)], unique=True),
        IndexModel([("org", ASCENDING), ("parent_id", ASCENDING)]),
    ],
    # Every version is kept; the unique version makes a concurrent change fail rather than fork.
    INDEX_SYSTEMS: [
        IndexModel([("org", ASCENDING), ("version", ASCENDING)], unique=True),
        IndexModel([("org", ASCENDING), ("current", ASCENDING)]),
    ],
}


async def current_index_system_documents(
    db: Database, orgs: Iterable[str], session: AsyncClientSession | None = None
) -> dict[str, Document]:
    """The stored current index system of each organisation that has one: one query for all."""
    query = {"org": {"$in": sorted(set(orgs))}, "current": True}
    return {document["org"]: document async for document in db[INDEX_SYSTEMS].find(query, session=session)}


async def current_index_systems(
    db: Database, orgs: Iterable[str], session: AsyncClientSession | None = None
) -> dict[str, IndexSystem]:
    """Each organisation's current index system, the default where it has set none."""
    wanted = set(orgs)
    stored = await current_index_system_documents(db, wanted, session)
    default = default_index_system()
    return {org: IndexSystem.model_validate(stored[org]["system"]) if org in stored else default for org in wanted}


def index_system_document(org: str, system: IndexSystem, details: dict[str, Any]) -> Document:
    """The stored form of one version of an organisation's index system."""
    return {
        "_id": f"{org}|{system.version}",
        "org": org,
        "version": system.version,
        "current": True,
        "system": system.model_dump(mode="json"),
        **details,
    }


async def window_stats(db: Database, org: str, paths: Iterable[str], span: Window) -> dict[str, MetricStats]:
    """Each unit path's statistics over a window: the sum of its stored aggregates in one query."""
    documents = db[AGGREGATES].find(
        {
            "org": org,
            "unit_path": {"$in": list(paths)},
            "period": span.period,
            "period_start": {"$gte": span.first, "$lte": span.last},
        },
        {"unit_path": 1, "stats": 1},
    )
    parts: dict[str, list[MetricStats]] = {}
    async for document in documents:
        parts.setdefault(document["unit_path"], []).append(MetricStats.from_document(document.get("stats", {})))
    return {path: merge_all(stats) for path, stats in parts.items()}


async def series_stats(
    db: Database, org: str, path: str, period: str, first: datetime, last: datetime, limit: int
) -> list[tuple[datetime, MetricStats]]:
    """A unit's stored aggregates of one period from ``first`` to ``last``: the newest ``limit``, oldest first."""
    documents = db[AGGREGATES].find(
        {"org": org, "unit_path": path, "period": period, "period_start": {"$gte": first, "$lte": last}},
        {"period_start": 1, "stats": 1},
        sort=[("period_start", DESCENDING)],
        limit=limit,
    )
    newest_first = [(d["period_start"], MetricStats.from_document(d.get("stats", {}))) async for d in documents]
    return newest_first[::-1]
