"""The improvement service's MongoDB collections, indexes, and every query and write on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DeleteOne, IndexModel, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from services.improvement.domain.routing import Entry
from shared.auth import Principal
from shared.pagination import (
    PAGE_KEYS,
    Page,
    backfill_page_keys,
    exact_scope,
    keyed_in_window,
    keyset_page,
    list_scopes,
    moved_page_keys,
    page_keys,
    page_keys_index,
    scope_page_keys,
    visible_scopes,
)
from shared.storage import Database, Document, UnitOfWork, find_in
from shared.tree import WHOLE_ORGANISATION, lineage

UNITS = "units"
RESPONSIBILITIES = "responsibilities"
ORG_SETTINGS = "org_settings"
ACTIONS = "actions"
# Claims that keep one action per alert and one per alert group: ``_id`` is the claim, unique by
# nature; a redelivered breach (even under a new event id) finds its claim and joins that action.
ACTION_KEYS = "action_keys"
PLANS = "plans"
RISKS = "risks"
FIRINGS = "firings"

INDEXES = {
    UNITS: [],  # read by _id (org/unit id) only
    # The configuration lists (entries, plans, risks): keyset pages by scope too, newest first.
    RESPONSIBILITIES: [IndexModel([("org", ASCENDING), ("scope", ASCENDING)]), page_keys_index()],
    ORG_SETTINGS: [],
    ACTION_KEYS: [],
    ACTIONS: [
        IndexModel([("lineage", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("unit_id", ASCENDING)]),
        # Set only while an action is done and waits for its scores: a score.updated looks its key up.
        IndexModel([("watch_key", ASCENDING)], sparse=True),
        IndexModel([("plan_id", ASCENDING)], sparse=True),
        # The list's ?alert_id= filter (the console and the tests look an alert's action up).
        IndexModel([("alert_ids", ASCENDING)]),
        # The list: keyset pages (shared.pagination), newest first, per scope of the caller.
        page_keys_index(),
    ],
    PLANS: [page_keys_index(), IndexModel([("target_key", ASCENDING)], sparse=True)],
    RISKS: [IndexModel([("org", ASCENDING), ("rule_ids", ASCENDING)]), page_keys_index()],
    FIRINGS: [IndexModel([("risk_id", ASCENDING)]), IndexModel([("lineage", ASCENDING)])],
}


def scope_lineage(scope: str) -> list[str]:
    """The lineage a scoped document (entry, risk) keeps: its scope's ancestors; ``*`` for the whole organisation."""
    return [WHOLE_ORGANISATION] if scope == WHOLE_ORGANISATION else lineage(scope)


# Units: the read copy of the tree.


def unit_id_key(org: str, unit_id: str) -> str:
    """A unit's ``_id`` in the read copy."""
    return f"{org}/{unit_id}"


async def get_unit(db: Database, org: str, unit_id: str, session: AsyncClientSession | None = None) -> Document | None:
    """A unit of the read copy of the tree."""
    return await db[UNITS].find_one({"_id": unit_id_key(org, unit_id)}, session=session)


def stage_unit(unit: UnitOfWork, *, org: str, unit_id: str, path: str, parent_id: str | None, active: bool) -> None:
    """Create or update a unit of the read copy."""
    unit.write(
        UNITS,
        ReplaceOne(
            {"_id": unit_id_key(org, unit_id)},
            {"org": org, "id": unit_id, "path": path, "parent_id": parent_id, "active": active},
            upsert=True,
        ),
    )


def stage_unit_moved(unit: UnitOfWork, *, org: str, unit_id: str, previous_path: str, path: str) -> None:
    """A moved unit's actions and plans follow it, entries and risks on its old path move; list keys with them."""
    moved = {"unit_path": {"$literal": path}, "lineage": {"$literal": lineage(path)}}
    keys = moved_page_keys(org, list_scopes(lineage(path)))
    unit.write(ACTIONS, UpdateMany({"org": org, "unit_id": unit_id}, [{"$set": {**moved, PAGE_KEYS: keys}}]))
    scoped_keys = moved_page_keys(org, [*list_scopes(lineage(path)), exact_scope(path)])
    unit.write(PLANS, UpdateMany({"org": org, "unit_id": unit_id}, [{"$set": {**moved, PAGE_KEYS: scoped_keys}}]))
    scoped = {"scope": {"$literal": path}, "lineage": {"$literal": lineage(path)}, PAGE_KEYS: scoped_keys}
    for collection in (RESPONSIBILITIES, RISKS):
        unit.write(collection, UpdateMany({"org": org, "scope": previous_path}, [{"$set": scoped}]))


def listed_keys(document: Document) -> list[str]:
    """The list keys of a matrix entry or risk (set on a subtree), or of a plan (on its unit)."""
    scope = document["scope"] if "scope" in document else document["unit_path"]
    return scope_page_keys(document["org"], scope, document["created_at"], document["_id"])


async def list_scoped(db: Database, collection: str, principal: Principal, *, cursor: str | None, limit: int) -> Page:
    """A page of the entries, plans or risks set in the caller's subtrees, newest first."""
    scopes = visible_scopes(principal.scopes)
    return await keyset_page(db, collection, org=principal.org, scopes=scopes, cursor=cursor, limit=limit)


# Responsibilities and settings.


def entry_from(document: Document) -> Entry:
    """The domain entry of a stored responsibility."""
    return Entry(
        id=document["_id"],
        scope=document["scope"],
        responsible=document["responsible"],
        accountable=document.get("accountable"),
        consulted=tuple(document.get("consulted", ())),
        informed=tuple(document.get("informed", ())),
        indicators=frozenset(document.get("indicators", ())),
        rule_kinds=frozenset(document.get("rule_kinds", ())),
        levels=frozenset(document.get("levels", ())),
    )


async def list_entries_above(
    db: Database, org: str, unit_paths: Sequence[str], session: AsyncClientSession | None = None
) -> list[Entry]:
    """The entries that may cover any of these units: those set on one of their ancestors or on the whole org."""
    scopes = sorted({WHOLE_ORGANISATION, *(p for path in unit_paths for p in lineage(path))})
    documents = await find_in(db, RESPONSIBILITIES, "scope", scopes, query={"org": org}, session=session)
    return [entry_from(document) for document in documents]


async def get_org_settings(db: Database, org: str, session: AsyncClientSession | None = None) -> Document:
    """The organisation's stored settings (empty until it sets some)."""
    return await db[ORG_SETTINGS].find_one({"_id": org}, session=session) or {}


def stage_org_settings(unit: UnitOfWork, org: str, changes: dict[str, Any]) -> None:
    """Store changed settings of the organisation."""
    unit.write(ORG_SETTINGS, UpdateOne({"_id": org}, {"$set": changes}, upsert=True))


# Actions.


def alert_key(org: str, alert_id: str) -> str:
    """The claim of an alert on its action."""
    return f"alert:{org}:{alert_id}"


def group_key(org: str, group_id: str) -> str:
    """The claim of an alert group on its open action."""
    return f"group:{org}:{group_id}"


def firing_key(risk_id: str, alert_id: str) -> str:
    """A firing's ``_id``: one per risk and alert."""
    return f"{risk_id}:{alert_id}"


async def get_claims(db: Database, keys: Sequence[str], session: AsyncClientSession | None = None) -> dict[str, str]:
    """The action id each of these claims points to."""
    return {d["_id"]: d["action_id"] for d in await find_in(db, ACTION_KEYS, "_id", list(keys), session=session)}


def stage_claim(unit: UnitOfWork, key: str, action_id: str) -> None:
    """Claim ``key`` for an action: a second claim of the key fails the transaction (unique ``_id``)."""
    unit.insert(ACTION_KEYS, {"_id": key, "action_id": action_id})


def stage_release(unit: UnitOfWork, key: str) -> None:
    """Free a group's claim once its action is closed: the group's next alert opens a new action."""
    unit.write(ACTION_KEYS, DeleteOne({"_id": key}))


async def get_action(db: Database, query: dict[str, Any], session: AsyncClientSession | None = None) -> Document | None:
    """The action matching ``query`` (which carries the tenancy)."""
    return await db[ACTIONS].find_one(query, session=session)


async def list_actions_by_id(
    db: Database, action_ids: Sequence[str], session: AsyncClientSession | None = None
) -> list[Document]:
    """Actions by id."""
    return await find_in(db, ACTIONS, "_id", list(action_ids), session=session)


async def list_watching(db: Database, keys: Sequence[str], session: AsyncClientSession | None = None) -> list[Document]:
    """Done actions waiting for the scores of these (org, unit, period) keys."""
    return await find_in(db, ACTIONS, "watch_key", list(keys), session=session)


async def list_unassigned(
    db: Database, org: str | None = None, session: AsyncClientSession | None = None
) -> list[Document]:
    """Active actions that nobody owns yet (of one organisation, or all)."""
    query: dict[str, Any] = {"status": {"$in": ["open", "reopened"]}, "assignee": None}
    if org is not None:
        query["org"] = org
    return await db[ACTIONS].find(query, session=session).to_list(None)


async def list_actions_for_figures(
    db: Database, org: str, scopes: Sequence[str], start: datetime, end: datetime
) -> list[Document]:
    """Actions under ``scopes`` created in [start, end), with the fields the figures need.

    Their list keys' ranges for that stretch: the read costs the stretch's actions, not the collection.
    """
    fields = {
        "created_at": 1,
        "due_at": 1,
        "status": 1,
        "assignee": 1,
        "acknowledged_at": 1,
        "done_at": 1,
        "verified_at": 1,
        "reopened": 1,
        "rule_id": 1,
        "unit_path": 1,
    }
    return await keyed_in_window(db, ACTIONS, org=org, scopes=scopes, since=start, until=end, projection=fields)


def action_page_keys(action: Document) -> list[str]:
    """An action's list keys: under the organisation and each path of its unit, by creation time."""
    return page_keys(action["org"], list_scopes(action["lineage"]), action["created_at"], action["_id"])


def stage_action(unit: UnitOfWork, action: Document) -> None:
    """Insert a new action with its list keys."""
    unit.insert(ACTIONS, {**action, PAGE_KEYS: action_page_keys(action)})


async def list_actions(
    db: Database,
    principal: Principal,
    *,
    unit_path: str | None,
    match: dict[str, Any],
    cursor: str | None,
    limit: int,
) -> Page:
    """A page of the actions in the caller's subtrees (or a unit's subtree in them), newest first.

    Keyset pages: the scope and the creation time bound the index range, the other filters are
    checked on what each window read, so a page costs the page and not the collection.
    """
    scopes = visible_scopes(principal.scopes, unit_path)
    return await keyset_page(
        db, ACTIONS, org=principal.org, scopes=scopes, cursor=cursor, limit=limit, match=match, view=_as_is
    )


def _as_is(document: Document) -> Document:
    return document


async def backfill_list_keys(db: Database) -> None:
    """Give what was stored before the keyed lists its keys (a scan of those without; once, at start).

    Entries, plans and risks were listed by their ``lineage`` index, which the keys replace.
    """
    await backfill_page_keys(db, ACTIONS, action_page_keys)
    for collection in (RESPONSIBILITIES, PLANS, RISKS):
        await backfill_page_keys(db, collection, listed_keys)
        if "lineage_1" in await db[collection].index_information():
            await db[collection].drop_index("lineage_1")


def stage_action_change(
    unit: UnitOfWork,
    action_id: str,
    *,
    set_: dict[str, Any] | None = None,
    unset: Sequence[str] = (),
    push: dict[str, Any] | None = None,
    inc: dict[str, int] | None = None,
) -> None:
    """Stage changes to an action: fields set and unset, entries appended to its lists, counters."""
    update: dict[str, Any] = {}
    if set_:
        update["$set"] = set_
    if unset:
        update["$unset"] = {name: "" for name in unset}
    if push:
        update["$push"] = {name: {"$each": values} for name, values in push.items()}
    if inc:
        update["$inc"] = inc
    unit.write(ACTIONS, UpdateOne({"_id": action_id}, update))


# Plans.


async def list_plans_targeting(
    db: Database, keys: Sequence[str], session: AsyncClientSession | None = None
) -> list[Document]:
    """Open plans whose target is on these (org, unit, period) keys."""
    return await find_in(db, PLANS, "target_key", list(keys), session=session)


async def count_plan_actions(db: Database, plan_id: str) -> dict[str, int]:
    """A plan's actions by status."""
    rows = await db[ACTIONS].find({"plan_id": plan_id}, {"status": 1}).to_list(None)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def stage_plan_change(unit: UnitOfWork, plan_id: str, update: dict[str, Any]) -> None:
    """Stage a change of a plan (a MongoDB update document)."""
    unit.write(PLANS, UpdateOne({"_id": plan_id}, update))


# Risks and firings.


async def list_risks_for_rules(
    db: Database, org: str, rule_ids: Sequence[str], session: AsyncClientSession | None = None
) -> list[Document]:
    """Risks of the organisation linked to any of these rules."""
    return await find_in(db, RISKS, "rule_ids", list(rule_ids), query={"org": org}, session=session)


async def get_firings(db: Database, keys: Sequence[str], session: AsyncClientSession | None = None) -> set[str]:
    """Which of these firings are already recorded."""
    return {d["_id"] for d in await find_in(db, FIRINGS, "_id", list(keys), session=session)}


def stage_firing(unit: UnitOfWork, firing: Document) -> None:
    """Record a firing (its ``_id`` is unique per risk and alert)."""
    unit.insert(FIRINGS, firing)


async def list_firings(db: Database, risk_id: str) -> list[Document]:
    """A risk's firings."""
    return await db[FIRINGS].find({"risk_id": risk_id}).to_list(None)


# Documents in general.


async def find_one(
    db: Database, collection: str, query: dict[str, Any], session: AsyncClientSession | None = None
) -> Document | None:
    """One document of a collection matching ``query`` (which carries the tenancy)."""
    return await db[collection].find_one(query, session=session)


def stage_insert(unit: UnitOfWork, collection: str, document: Document) -> None:
    """Insert a document."""
    unit.write(collection, InsertOne(document))


def stage_set(unit: UnitOfWork, collection: str, document_id: str, changes: dict[str, Any]) -> None:
    """Set fields of a document."""
    unit.write(collection, UpdateOne({"_id": document_id}, {"$set": changes}))


def stage_delete(unit: UnitOfWork, collection: str, document_id: str) -> None:
    """Delete a document."""
    unit.write(collection, DeleteOne({"_id": document_id}))
