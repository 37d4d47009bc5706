"""The scoring service's MongoDB collections: aggregates, index systems and its read copy of the unit tree."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from services.scoring.aggregation import Window
from services.scoring.index_system import IndexSystem, default_index_system
from services.scoring.statistics import MetricStats, merge_all
from shared.events import FeedbackErased, FeedbackReceived
from shared.storage import Database, Document, find_in

AGGREGATES = "aggregates"
UNITS = "units"
INDEX_SYSTEMS = "index_systems"
# One row per feedback added to the aggregates (insert-only), and one tombstone per erased feedback:
# erasures travel on another topic than the feedback, so either may come first.
COUNTED = "counted"
ERASED = "erased"

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
    # Looked up by _id only (feedback_key).
    COUNTED: [],
    ERASED: [],
}


def feedback_key(org: str, feedback_id: str) -> str:
    """The id of a feedback's counted row and tombstone."""
    return f"{org}|{feedback_id}"


def counted_document(event: FeedbackReceived, now: datetime) -> Document:
    """The row recording that a feedback was added to the aggregates."""
    return {
        "_id": feedback_key(event.org, event.feedback_id),
        "org": event.org,
        "feedback_id": event.feedback_id,
        "unit_id": event.unit_id,
        "counted_at": now,
    }


def tombstone_document(event: FeedbackErased, now: datetime) -> Document:
    """The tombstone of an erased feedback: it is never added, and taken out at most once."""
    return {
        "_id": feedback_key(event.org, event.feedback_id),
        "org": event.org,
        "feedback_id": event.feedback_id,
        "erased_at": now,
    }


async def stored_ids(
    db: Database, collection: str, ids: Sequence[str], session: AsyncClientSession | None = None
) -> set[str]:
    """Which of ``ids`` the collection holds: one chunked lookup for all."""
    return {document["_id"] for document in await find_in(db, collection, "_id", ids, session=session)}


async def current_index_system_documents(
    db: Database, orgs: Iterable[str], session: AsyncClientSession | None = None
) -> dict[str, Document]:
    """The stored current index system of each organisation that has one: one query for all."""
    query = {"org": {"$in": sorted(set(orgs))}, "current": True}
    return {document["org"]: document async for document in db[INDEX_SYSTEMS].find(query, session=session)}


@dataclass(frozen=True)
class ScoringPolicy:
    """How an organisation is scored: its current index system and the sample size below which a figure is flagged."""

    system: IndexSystem
    min_samples: int


async def current_policies(
    db: Database, orgs: Iterable[str], *, default_min_samples: int, session: AsyncClientSession | None = None
) -> dict[str, ScoringPolicy]:
    """Each organisation's scoring policy: the defaults for what it has not set, one query for all."""
    wanted = set(orgs)
    stored = await current_index_system_documents(db, wanted, session)
    default = default_index_system()
    return {
        org: ScoringPolicy(
            IndexSystem.model_validate(stored[org]["system"]) if org in stored else default,
            stored.get(org, {}).get("min_samples") or default_min_samples,
        )
        for org in wanted
    }


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


async def current_paths(
    db: Database, units: Iterable[tuple[str, str]], session: AsyncClientSession | None = None
) -> dict[tuple[str, str], str]:
    """The path the read copy of the tree has for each (org, unit id) it knows."""
    by_org: dict[str, list[str]] = {}
    for org, unit_id in set(units):
        by_org.setdefault(org, []).append(unit_id)
    paths: dict[tuple[str, str], str] = {}
    for org, unit_ids in by_org.items():
        for unit in await find_in(db, UNITS, "id", sorted(unit_ids), query={"org": org}, session=session):
            paths[org, unit["id"]] = unit["path"]
    return paths
