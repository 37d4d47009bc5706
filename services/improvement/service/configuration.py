"""The matrix, the organisation's settings, plans and risks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.improvement import repository
from services.improvement.domain import plans as pdca
from services.improvement.domain.risks import rating
from services.improvement.domain.routing import Breach, route
from services.improvement.service.common import (
    Refused,
    get_scoped,
    get_visible_unit,
    load_policy,
    now_utc,
    require_scope,
    watch_key,
)
from shared import audit
from shared.auth import Principal
from shared.ids import new_id
from shared.pagination import PAGE_KEYS, public_view
from shared.storage import Database, Document, UnitOfWork
from shared.tree import lineage


def responsibility_document(principal: Principal, fields: dict[str, Any], now: datetime) -> Document:
    """A new entry of the matrix."""
    return {
        "_id": new_id("resp"),
        "org": principal.org,
        **fields,
        "lineage": repository.scope_lineage(fields["scope"]),
        "created_at": now,
        "created_by": principal.subject,
    }


async def explain_owner(
    db: Database, principal: Principal, *, unit_id: str, indicator: str | None, level: str | None, rule_kind: str | None
) -> dict[str, Any]:
    """Who owns a breach of ``indicator`` at ``level`` on the unit, which entry matched and why."""
    unit = await get_visible_unit(db, principal, unit_id)
    policy = await load_policy(db, principal.org)
    entries = await repository.list_entries_above(db, principal.org, [unit["path"]])
    match = route(entries, Breach(unit["path"], indicator, level, rule_kind), default_owner=policy.default_owner)
    people: list[Document] = []
    if match.entry is not None:
        stored = await repository.find_one(db, repository.RESPONSIBILITIES, {"_id": match.entry.id})
        named = {match.responsible, match.accountable, *match.consulted, *match.informed}
        people = [person for person in (stored or {}).get("people", []) if person.get("id") in named]
    return {
        "people": people,
        "unit_id": unit_id,
        "unit_path": unit["path"],
        "indicator": indicator,
        "level": level,
        "rule_kind": rule_kind,
        "responsible": match.responsible,
        "accountable": match.accountable,
        "consulted": list(match.consulted),
        "informed": list(match.informed),
        "entry_id": match.entry.id if match.entry else None,
        "default_owner": match.entry is None and match.responsible is not None,
        "reason": match.reason,
        "candidates": list(match.candidates),
    }


async def create_plan(db: Database, unit: UnitOfWork, principal: Principal, fields: dict[str, Any]) -> Document:
    """A new PDCA plan on a unit in the principal's scope, in its plan phase."""
    target_unit = await get_visible_unit(db, principal, fields["unit_id"])
    now = now_utc()
    target = {**fields["target"], "date": fields["target"]["date"].isoformat()}
    plan = {
        "_id": new_id("plan"),
        "org": principal.org,
        "unit_id": target_unit["id"],
        "unit_path": target_unit["path"],
        "lineage": lineage(target_unit["path"]),
        "title": fields["title"],
        "description": fields.get("description", ""),
        "target": target,
        "period": fields["period"],
        "owner": fields.get("owner"),
        "phase": "plan",
        "cycle": 1,
        "learnings": [],
        "target_key": watch_key(principal.org, target_unit["path"], fields["period"]),
        "created_at": now,
        "updated_at": now,
        "created_by": principal.subject,
    }
    return create_scoped(unit, principal, repository.PLANS, "plan", plan)


async def plan_with_progress(db: Database, plan: Document) -> Document:
    """A plan with its actions counted by state."""
    return {**plan, "actions": await repository.count_plan_actions(db, plan["_id"])}


def create_scoped(unit: UnitOfWork, principal: Principal, collection: str, kind: str, document: Document) -> Document:
    """Stage a new scoped document (entry, plan, risk), with its list keys and audit entry."""
    document = {**document, PAGE_KEYS: repository.listed_keys(document)}
    repository.stage_insert(unit, collection, document)
    audit.record(unit, principal, "create", kind, document["_id"], None, public_view(document))
    return document


async def update_scoped(
    db: Database,
    unit: UnitOfWork,
    principal: Principal,
    collection: str,
    kind: str,
    document_id: str,
    changes: Document,
) -> Document:
    """Stage changed fields of a scoped document the principal sees (404 otherwise), audited; the document after."""
    before = await get_scoped(db, collection, principal, document_id, kind)
    if "scope" in changes:
        changes = {**changes, PAGE_KEYS: repository.listed_keys({**before, **changes})}
    after = {**before, **changes, "updated_at": now_utc()}
    repository.stage_set(unit, collection, document_id, {**changes, "updated_at": after["updated_at"]})
    audit.record(unit, principal, "update", kind, document_id, public_view(before), public_view(after))
    return after


async def delete_scoped(
    db: Database, unit: UnitOfWork, principal: Principal, collection: str, kind: str, document_id: str
) -> None:
    """Stage the deletion of a scoped document the principal sees (404 otherwise), audited."""
    before = await get_scoped(db, collection, principal, document_id, kind)
    repository.stage_delete(unit, collection, document_id)
    audit.record(unit, principal, "delete", kind, document_id, public_view(before), None)


async def update_responsibility(
    db: Database, unit: UnitOfWork, principal: Principal, entry_id: str, changes: Document
) -> Document:
    """Change an entry of the matrix; a new scope must lie inside the caller's own."""
    if "scope" in changes:
        require_scope(principal, changes["scope"])
        changes = {**changes, "lineage": repository.scope_lineage(changes["scope"])}
    return await update_scoped(db, unit, principal, repository.RESPONSIBILITIES, "responsibility", entry_id, changes)


async def update_org_settings(db: Database, unit: UnitOfWork, principal: Principal, changes: Document) -> None:
    """Change the organisation's improvement settings, audited."""
    before = await repository.get_org_settings(db, principal.org)
    repository.stage_org_settings(unit, principal.org, changes)
    after = {**before, **changes}
    audit.record(unit, principal, "update", "improvement_settings", principal.org, before or None, after)


def risk_fields(fields: Document) -> Document:
    """A risk's fields with its 5×5 rating."""
    score, band = rating(fields["likelihood"], fields["impact"])
    return {**fields, "score": score, "rating": band}


def new_risk(principal: Principal, fields: Document) -> Document:
    """A new risk of a subtree inside the principal's own, rated."""
    require_scope(principal, fields["scope"])
    return {
        "_id": new_id("risk"),
        "org": principal.org,
        **risk_fields(fields),
        "lineage": repository.scope_lineage(fields["scope"]),
        "created_at": now_utc(),
        "created_by": principal.subject,
    }


async def update_risk(
    db: Database, unit: UnitOfWork, principal: Principal, risk_id: str, changes: Document
) -> Document:
    """Change a risk; its rating follows likelihood and impact."""
    risk = await get_scoped(db, repository.RISKS, principal, risk_id, "risk")
    rated = risk_fields({**risk, **changes})
    changes = {**changes, "score": rated["score"], "rating": rated["rating"]}
    return await update_scoped(db, unit, principal, repository.RISKS, "risk", risk_id, changes)


async def move_plan(
    db: Database, unit: UnitOfWork, principal: Principal, plan_id: str, target: str, learning: str | None
) -> None:
    """Move a plan to its next phase (409 naming the allowed ones otherwise), recording what was learned."""
    plan = await get_scoped(db, repository.PLANS, principal, plan_id, "plan")
    try:
        phase = pdca.move(plan["phase"], target, learning=learning)
    except pdca.PhaseRefused as refused:
        raise Refused(refused) from refused
    now = now_utc()
    update: Document = {"$set": {"phase": phase, "updated_at": now}}
    if learning:
        entry = {
            "phase": plan["phase"],
            "cycle": plan["cycle"],
            "learning": learning,
            "by": principal.subject,
            "at": now,
        }
        update["$push"] = {"learnings": entry}
    if plan["phase"] == "act" and phase == "plan":
        update["$inc"] = {"cycle": 1}
    if phase == "closed":
        update["$unset"] = {"target_key": ""}
    repository.stage_plan_change(unit, plan_id, update)
    after = {"phase": phase, "learning": learning}
    audit.record(unit, principal, "phase", "plan", plan_id, {"phase": plan["phase"], "cycle": plan["cycle"]}, after)
