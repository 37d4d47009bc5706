"""The other services' reads at two sizes: scores, rankings and series; the alerts, actions and audit lists.

Stored as each service stores them (its own document builders and indexes, each in a database of its
own on the reads bench's server), grown with the feedback: the scoring aggregates are what the bench's
feedback adds up to, through scoring's own ``Contributions`` and ``increment_aggregate``, for the day,
week, month and all-time periods (hourly aggregates, a fifth of the writes and read only by the
24-hour window and hourly series, are left out to keep the store phase within minutes); and one alert
per ten feedback, one action and one audit entry per twenty. Each read goes through the code its
endpoint calls (``services.scoring.service``, ``keyset_page`` via the alerts and improvement code).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from pymongo import AsyncMongoClient, IndexModel, UpdateOne

from services.alerts import repository as alerts_repository
from services.alerts import service as alerts_service
from services.alerts.dependencies import AlertsRuntime
from services.improvement import repository as improvement_repository
from services.scoring import repository as scoring_repository
from services.scoring import service as scoring_service
from services.scoring.aggregation import Contributions, feedback_stats
from services.scoring.dependencies import ScoringRuntime
from services.scoring.settings import ScoringSettings
from shared import audit
from shared.auth import Principal
from shared.events import Ratings
from shared.ids import new_id
from shared.pagination import PAGE_KEYS, Page, page_keys
from shared.storage import Database, Document
from shared.tree import WHOLE_ORGANISATION, lineage

ORG = "bench-org"
LEVELS = ("blue", "yellow", "orange", "red")
STORED_PERIODS = ("day", "week", "month", "all")
WRITE_BATCH = 5_000
ALERTS_PER_FEEDBACK = 10
ACTIONS_PER_FEEDBACK = 20

Read = Callable[[str | None], Awaitable[tuple[Any, str | None]]]


async def prepare(client: AsyncMongoClient[Document], paths: list[str], suffix: str = "") -> dict[str, Database]:
    """A database per service (``bench_<service><suffix>``) with its indexes, and scoring's copy of the tree."""
    databases = {name: client[f"bench_{name}{suffix}"] for name in ("scoring", "alerts", "improvement")}
    indexes: list[tuple[Database, dict[str, list[IndexModel]]]] = [
        (databases["scoring"], scoring_repository.INDEXES),
        (databases["alerts"], alerts_repository.INDEXES),
        (databases["improvement"], {**improvement_repository.INDEXES, **audit.AUDIT_INDEXES}),
    ]
    for db, collections in indexes:
        for collection, models in collections.items():
            if models:
                await db[collection].create_indexes(models)
    await databases["scoring"][scoring_repository.UNITS].insert_many([_scoring_unit(path) for path in paths])
    return databases


def _scoring_unit(path: str) -> Document:
    parent = path.rpartition("/")[0]
    return {
        "org": ORG,
        "id": path.replace("/", "-"),
        "path": path,
        "lineage": lineage(path),
        "name": path,
        "kind": "branch" if path.count("/") == 2 else "area",
        "parent_id": parent.replace("/", "-") or None,
        "active": True,
    }


async def store(databases: dict[str, Database], rng: random.Random, feedback: list[Document], now: datetime) -> None:
    """What ``feedback`` adds to the scores, and its share of alerts, actions and audit entries."""
    await _store_aggregates(databases["scoring"], feedback, now)
    sample = rng.sample(feedback, len(feedback) // ALERTS_PER_FEEDBACK)
    await databases["alerts"][alerts_repository.ALERTS].insert_many([_alert(rng, f) for f in sample])
    sample = sample[: len(feedback) // ACTIONS_PER_FEEDBACK]
    await databases["improvement"][improvement_repository.ACTIONS].insert_many([_action(rng, f) for f in sample])
    await databases["improvement"][audit.AUDIT].insert_many([_audit_entry(rng, f) for f in sample])


async def _store_aggregates(db: Database, feedback: list[Document], now: datetime) -> None:
    for start in range(0, len(feedback), WRITE_BATCH):
        contributions = Contributions()
        for item in feedback[start : start + WRITE_BATCH]:
            ratings = Ratings.model_validate(item["ratings"])
            stats = feedback_stats(ratings, None, polarity=item["polarity"])
            contributions.add(ORG, lineage(item["unit_path"]), item["occurred_at"], stats)
        writes: list[UpdateOne] = [
            scoring_repository.increment_aggregate(key, delta, 1, now)
            for key, delta in contributions.deltas.items()
            if key.period in STORED_PERIODS
        ]
        for first in range(0, len(writes), WRITE_BATCH):
            await db[scoring_repository.AGGREGATES].bulk_write(writes[first : first + WRITE_BATCH], ordered=False)


def _alert(rng: random.Random, feedback: Document) -> Document:
    """An alert as the alerts service stores it: most resolved long ago, a few open."""
    status = rng.choices(("resolved", "firing", "acknowledged"), weights=(96, 3, 1))[0]
    document: Document = {
        "_id": new_id("al"),
        "org": ORG,
        "rule_id": rng.choice(("ru-csat", "ru-nps", "ru-drop")),
        "fingerprint": new_id("fp"),
        "group_id": new_id("gr"),
        "unit_id": feedback["unit_id"],
        "unit_path": feedback["unit_path"],
        "lineage": feedback["lineage"],
        "indicator": "csat",
        "period": "day",
        "level": rng.choice(LEVELS),
        "status": status,
        "open": status != "resolved",
        "value": 55.0,
        "started_at": feedback["occurred_at"],
        "history": [],
        "details": {},
    }
    return {**document, PAGE_KEYS: alerts_repository.alert_page_keys(document)}


def _action(rng: random.Random, feedback: Document) -> Document:
    document: Document = {
        "_id": new_id("ac"),
        "org": ORG,
        "unit_id": feedback["unit_id"],
        "unit_path": feedback["unit_path"],
        "lineage": feedback["lineage"],
        "status": rng.choices(("verified", "assigned", "in_progress"), weights=(90, 5, 5))[0],
        "level": rng.choice(LEVELS),
        "assignee": f"manager-{rng.randrange(100)}",
        "created_at": feedback["occurred_at"],
    }
    return {**document, PAGE_KEYS: improvement_repository.action_page_keys(document)}


def _audit_entry(rng: random.Random, feedback: Document) -> Document:
    ident, actor, kind, object_id = new_id("au"), f"admin-{rng.randrange(20)}", "action", new_id("ac")
    at = feedback["occurred_at"]
    keys = audit.audit_scopes(kind, object_id, actor)
    return {
        "_id": ident,
        "org": ORG,
        "at": at,
        "actor": actor,
        "roles": ["admin"],
        "action": "update",
        "kind": kind,
        "object_id": object_id,
        "before": {},
        "after": {},
        PAGE_KEYS: page_keys(ORG, keys, at, ident),
    }


def reads(databases: dict[str, Database], now: datetime) -> dict[str, Read]:
    """Each read as its endpoint makes it; the score reads have no cursor (one answer, no pages)."""
    everyone = Principal(subject="bench", org=ORG, scopes=(WHOLE_ORGANISATION,), roles=frozenset({"admin"}))
    scoring = cast(ScoringRuntime, SimpleNamespace(db=databases["scoring"], settings=ScoringSettings()))
    alerts = cast(AlertsRuntime, SimpleNamespace(db=databases["alerts"]))
    improvement = databases["improvement"]

    def answer(read: Callable[[Document], Awaitable[Any]], unit_id: str) -> Read:
        async def once(cursor: str | None) -> tuple[Any, str | None]:
            unit = await scoring_repository.get_unit(scoring.db, ORG, unit_id)
            assert unit is not None, unit_id
            return await read(unit), None

        return once

    def alerts_list(**filters: Any) -> Read:
        selection = alerts_service.select_alerts(everyone, **filters)

        async def page(cursor: str | None) -> tuple[Any, str | None]:
            found: Page = await alerts_service.list_alerts(alerts, everyone, selection, cursor=cursor, limit=50)
            return found.items, found.next_cursor

        return page

    def actions_list(**match: Any) -> Read:
        async def page(cursor: str | None) -> tuple[Any, str | None]:
            found = await improvement_repository.list_actions(
                improvement, everyone, unit_path=None, match=match, cursor=cursor, limit=50
            )
            return found.items, found.next_cursor

        return page

    def audit_list(**filters: Any) -> Read:
        selection = audit.audit_selection(**filters)

        async def page(cursor: str | None) -> tuple[Any, str | None]:
            found = await audit.audit_page(improvement, ORG, selection, cursor=cursor, limit=50)
            return found.items, found.next_cursor

        return page

    month_ago = now - timedelta(days=30)
    return {
        "score, a branch, this month": answer(
            lambda unit: scoring_service.get_score(scoring, unit=unit, period="month"), "r3-c4-b5"
        ),
        "score, a region, rolling 30 days": answer(
            lambda unit: scoring_service.get_score(scoring, unit=unit, period="rolling_30d"), "r3"
        ),
        "ranking, a city's branches, rolling 30 days": answer(
            lambda unit: scoring_service.get_ranking(
                scoring, unit=unit, indicator="csat", period="rolling_30d", at=None
            ),
            "r3-c4",
        ),
        "series, a region, 90 days": answer(
            lambda unit: scoring_service.get_series(
                scoring, unit=unit, indicator="csat", period="day", start=now - timedelta(days=90), end=None
            ),
            "r3",
        ),
        "series, a branch, weekly for a year": answer(
            lambda unit: scoring_service.get_series(
                scoring, unit=unit, indicator="csat", period="week", start=now - timedelta(days=365), end=None
            ),
            "r3-c4-b5",
        ),
        "alerts, whole organisation": alerts_list(),
        "alerts, firing": alerts_list(status="firing"),
        "alerts, a region's red, last 30 days": alerts_list(unit="r3", level="red", since=month_ago),
        "actions, whole organisation": actions_list(),
        "actions, assigned": actions_list(status="assigned"),
        "audit, whole organisation": audit_list(),
        "audit, one actor": audit_list(actor="admin-7"),
    }
