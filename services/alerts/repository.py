"""The alerts service's MongoDB collections, their indexes, and every query and write it makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DeleteOne, IndexModel, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from shared.pagination import (
    PAGE_KEYS,
    backfill_page_keys,
    keyed_in_window,
    list_scopes,
    page_keys,
    page_keys_index,
    scope_page_keys,
)
from shared.storage import Database, Document, UnitOfWork, find_in

RULES = "rules"
RULE_REVISIONS = "rule_revisions"
ALERTS = "alerts"
GROUPS = "groups"
RULE_STATES = "rule_states"
SERIES = "series"
UNITS = "units"
INDICATORS = "indicators"
SILENCES = "silences"
CHANNELS = "channels"
ESCALATIONS = "escalations"
POLICIES = "policies"
NOTIFICATIONS = "notifications"
DELIVERIES = "deliveries"

INDEXES = {
    RULES: [IndexModel([("org", ASCENDING), ("_id", ASCENDING)]), page_keys_index()],
    RULE_REVISIONS: [],
    ALERTS: [
        # One open alert per rule and unit: the database enforces the deduplication.
        IndexModel([("fingerprint", ASCENDING)], unique=True, partialFilterExpression={"open": True}),
        # The list and the counts read key ranges (shared/pagination.py); it replaced (org, lineage, _id).
        page_keys_index(),
        IndexModel([("group_id", ASCENDING)]),
    ],
    # One group per rule and grouping root takes new alerts at a time.
    GROUPS: [
        IndexModel([("key", ASCENDING)], name="key_joinable", unique=True, partialFilterExpression={"joinable": True})
    ],
    # Keyed by _id (fingerprint, org/unit/period, org/unit, org, org/level): point lookups only.
    RULE_STATES: [],
    SERIES: [],
    UNITS: [],
    INDICATORS: [],
    SILENCES: [IndexModel([("org", ASCENDING), ("_id", ASCENDING)]), page_keys_index()],
    CHANNELS: [IndexModel([("org", ASCENDING), ("_id", ASCENDING)]), page_keys_index()],
    ESCALATIONS: [],
    POLICIES: [],
    NOTIFICATIONS: [IndexModel([("group_id", ASCENDING)])],
    DELIVERIES: [IndexModel([("group_id", ASCENDING)])],
}


ALERT_STATUSES = ("firing", "acknowledged", "resolved")


async def drop_superseded_indexes(db: Database) -> None:
    """Drop indexes a later version superseded: the first groups index, and the alerts' scope index.

    The first (one open group per key) gave way to a group's window; the alerts' ``(org, lineage, _id)``
    to their list keys, which alerts stored before them get here (a scan, once), like rules, silences
    and channels, which were listed in ``_id`` order before.
    """
    if "key_1" in await db[GROUPS].index_information():
        await db[GROUPS].drop_index("key_1")
    await backfill_page_keys(db, ALERTS, alert_page_keys)
    for collection in (RULES, SILENCES, CHANNELS):
        await backfill_page_keys(db, collection, scoped_page_keys)
    if "org_1_lineage_1__id_1" in await db[ALERTS].index_information():
        await db[ALERTS].drop_index("org_1_lineage_1__id_1")


def scoped_page_keys(document: Document) -> list[str]:
    """The list keys of a rule, silence or channel (set on a subtree): none once deleted or expired."""
    if document.get("deleted") or document.get("expired"):
        return []
    return scope_page_keys(document["org"], document["scope"], document["created_at"], document["_id"])


async def move_scopes(db: Database, org: str, previous_path: str, path: str, session: AsyncClientSession) -> None:
    """Rules, silences and channels set on a moved unit move with it, their list keys too.

    Written now rather than staged, in the batch's transaction: a later move in the batch reads them.
    """
    for collection in (RULES, SILENCES, CHANNELS):
        for document in await db[collection].find({"org": org, "scope": previous_path}, session=session).to_list(None):
            moved: Document = {"scope": path}
            if collection == SILENCES:
                moved["spec.matchers.scope"] = path  # what the silence matches alerts with
            moved[PAGE_KEYS] = scoped_page_keys({**document, **moved})
            await db[collection].update_one({"_id": document["_id"]}, {"$set": moved}, session=session)


def status_scope(scope: str, status: str) -> str:
    """The list scope of a subtree's alerts in one status (``r1/c2#firing``)."""
    return f"{scope}#{status}"


def alert_page_keys(alert: Document) -> list[str]:
    """An alert's list keys, by start time: under the organisation and each path of its unit, then the same per status.

    The status scopes make the lists people watch (what is firing, what is acknowledged) read the open
    alerts alone, however many resolved ones the years have left; a change of status rewrites them.
    """
    scopes = list_scopes(alert["lineage"])
    status = alert["status"]
    every = [*scopes, *(status_scope(scope, status) for scope in scopes)]
    return page_keys(alert["org"], every, alert["started_at"], alert["_id"])


def unit_key(org: str, unit_id: str) -> str:
    """The _id of a unit in the read copy of the tree."""
    return f"{org}\x1f{unit_id}"


def series_key(org: str, unit_id: str, period: str) -> str:
    """The _id of a unit's stored series for one period."""
    return f"{org}\x1f{unit_id}\x1f{period}"


def chain_key(org: str, level: str) -> str:
    """The _id of an organisation's escalation chain for a level."""
    return f"{org}\x1f{level}"


# --- reads -------------------------------------------------------------------------------------


async def list_active_rules(
    db: Database, orgs: Sequence[str], *, session: AsyncClientSession | None = None
) -> list[Document]:
    """The enabled, undeleted rules of these organisations."""
    return await find_in(db, RULES, "org", orgs, query={"enabled": True, "deleted": False}, session=session)


async def get_rule(
    db: Database, org: str, rule_id: str, *, session: AsyncClientSession | None = None
) -> Document | None:
    """One rule of an organisation (deleted ones too)."""
    return await db[RULES].find_one({"_id": rule_id, "org": org}, session=session)


async def list_units(db: Database, keys: Sequence[str], *, session: AsyncClientSession | None = None) -> list[Document]:
    """Units of the read copy of the tree, by unit_key."""
    return await find_in(db, UNITS, "_id", keys, session=session)


async def list_by_ids(
    db: Database, collection: str, ids: Sequence[str], *, session: AsyncClientSession | None = None
) -> list[Document]:
    """Documents of a collection by _id."""
    return await find_in(db, collection, "_id", ids, session=session)


async def list_open_alerts(
    db: Database, fingerprints: Sequence[str], *, session: AsyncClientSession | None = None
) -> list[Document]:
    """The open (firing or acknowledged) alerts with these fingerprints."""
    return await find_in(db, ALERTS, "fingerprint", fingerprints, query={"open": True}, session=session)


async def list_open_rule_alerts(
    db: Database, org: str, rule_id: str, *, session: AsyncClientSession | None = None
) -> list[Document]:
    """A rule's open alerts (a rare read, when the rule is disabled or deleted: no index of its own)."""
    return await db[ALERTS].find({"org": org, "rule_id": rule_id, "open": True}, session=session).to_list(None)


async def list_open_unit_alerts(
    db: Database, org: str, unit_id: str, *, session: AsyncClientSession | None = None
) -> list[Document]:
    """A unit's open alerts (a rare read, when the unit moves: no index of its own)."""
    return await db[ALERTS].find({"org": org, "unit_id": unit_id, "open": True}, session=session).to_list(None)


async def list_group_alerts(
    db: Database, group_id: str, *, session: AsyncClientSession | None = None
) -> list[Document]:
    """Every alert of a group."""
    return await db[ALERTS].find({"group_id": group_id}, session=session).to_list(None)


async def list_open_groups(
    db: Database, keys: Sequence[str], *, session: AsyncClientSession | None = None
) -> list[Document]:
    """The open groups with these keys."""
    return await find_in(db, GROUPS, "key", keys, query={"joinable": True}, session=session)


async def list_open_red_alerts(
    db: Database, org: str, indicators: Sequence[str], *, session: AsyncClientSession | None = None
) -> list[Document]:
    """An organisation's open red alerts on these indicators (they inhibit lower levels beneath them)."""
    query = {"org": org, "open": True, "level": "red", "indicator": {"$in": list(indicators)}}
    return await db[ALERTS].find(query, session=session).to_list(None)


async def list_inhibited_alerts(
    db: Database, org: str, unit_path: str, indicator: str, *, session: AsyncClientSession | None = None
) -> list[Document]:
    """Open alerts held back by inhibition under a unit, on an indicator."""
    query = {"org": org, "lineage": unit_path, "open": True, "indicator": indicator, "suppressed": "inhibited"}
    return await db[ALERTS].find(query, session=session).to_list(None)


async def list_silenced_alerts(db: Database, org: str, silence_id: str) -> list[Document]:
    """Open alerts a silence holds back (a rare read, when the silence is ended early)."""
    query = {"org": org, "open": True, "suppressed": f"silenced:{silence_id}"}
    return await db[ALERTS].find(query).to_list(None)


async def list_silences(db: Database, org: str, *, session: AsyncClientSession | None = None) -> list[Document]:
    """An organisation's silences that have not been expired."""
    return await db[SILENCES].find({"org": org, "expired": False}, session=session).to_list(None)


async def list_channels(db: Database, org: str, *, session: AsyncClientSession | None = None) -> list[Document]:
    """An organisation's enabled channels."""
    return await db[CHANNELS].find({"org": org, "enabled": True}, session=session).to_list(None)


async def get_one(
    db: Database, collection: str, ident: str, *, session: AsyncClientSession | None = None
) -> Document | None:
    """One document by _id."""
    return await db[collection].find_one({"_id": ident}, session=session)


async def list_group_deliveries(db: Database, group_id: str) -> list[Document]:
    """The delivery log of a group's notifications."""
    return await db[DELIVERIES].find({"group_id": group_id}).to_list(None)


async def list_group_notifications(db: Database, group_id: str) -> list[Document]:
    """A group's notifications (sent or held back)."""
    return await db[NOTIFICATIONS].find({"group_id": group_id}).to_list(None)


async def list_chains(db: Database, org: str) -> list[Document]:
    """An organisation's escalation chains."""
    return await find_in(
        db, ESCALATIONS, "_id", [chain_key(org, level) for level in ("blue", "yellow", "orange", "red")]
    )


async def list_alert_levels(
    db: Database, org: str, scopes: Sequence[str], status: str, *, since: datetime | None = None
) -> list[Document]:
    """The level and status of the subtrees' alerts in ``status`` that started since ``since`` (key ranges only)."""
    in_status = [status_scope(scope, status) for scope in scopes]
    projection = {"level": 1, "status": 1}
    return await keyed_in_window(db, ALERTS, org=org, scopes=in_status, since=since, projection=projection)


# --- writes (staged into a unit of work) --------------------------------------------------------


def put(unit: UnitOfWork, collection: str, document: Document) -> None:
    """Stage a whole document, inserted or replaced."""
    unit.write(collection, ReplaceOne({"_id": document["_id"]}, document, upsert=True))


def put_alert(unit: UnitOfWork, alert: Document) -> None:
    """Stage a whole alert with its list keys (its status or unit's path may have changed)."""
    put(unit, ALERTS, {**alert, PAGE_KEYS: alert_page_keys(alert)})


def update(unit: UnitOfWork, collection: str, ident: str, changes: dict[str, Any]) -> None:
    """Stage an update of one document by _id."""
    unit.write(collection, UpdateOne({"_id": ident}, changes))


def set_series_point(
    unit: UnitOfWork,
    key: str,
    *,
    org: str,
    unit_id: str,
    period: str,
    at: str,
    figures: dict[str, Any],
    drop: list[str],
) -> None:
    """Stage one point of a unit's series (replacing that period's point) and drop the oldest beyond its cap."""
    changes: dict[str, Any] = {"$set": {f"points.{at}": figures, "org": org, "unit_id": unit_id, "period": period}}
    if drop:
        changes["$unset"] = {f"points.{old}": "" for old in drop}
    unit.write(SERIES, UpdateOne({"_id": key}, changes, upsert=True))


def last_revision_id(rule_id: str, revision: int) -> str:
    """The _id of a rule's stored revision."""
    return f"{rule_id}:{revision}"


def stamp(document: Document, at: datetime) -> Document:
    """A copy of a document as a revision record."""
    return {
        **{k: v for k, v in document.items() if k != PAGE_KEYS},
        "_id": last_revision_id(document["_id"], document["revision"]),
        "rule_id": document["_id"],
        "recorded_at": at,
    }


def delete_op(ident: str) -> DeleteOne:
    """A staged delete of one document by _id."""
    return DeleteOne({"_id": ident})
