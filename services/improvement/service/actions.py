"""Working an action: its transitions and who may make them, changes, reassignment, actions opened by hand."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from services.improvement import repository
from services.improvement.domain import lifecycle
from services.improvement.domain.figures import ActionFacts
from services.improvement.domain.lifecycle import ACTIVE, CLOSED, Actor, State, TransitionRefused
from services.improvement.domain.policy import OrgPolicy
from services.improvement.domain.routing import route
from services.improvement.service.common import (
    STEP_JOB,
    WINDOW_JOB,
    Refused,
    apply_match,
    assigned_event,
    breach_of,
    get_action,
    get_scoped,
    get_visible_unit,
    history_entry,
    load_policy,
    new_action,
    now_utc,
    stage_new_action,
    stage_next_step,
    updated_event,
    watch_key,
)
from shared import audit
from shared.auth import Principal
from shared.events import Envelope
from shared.problems import Problem
from shared.scheduler import cancel, schedule
from shared.storage import Database, Document, UnitOfWork


def actors_of(principal: Principal, action: Document) -> frozenset[Actor]:
    """In which capacities the principal acts on this action."""
    actors: set[Actor] = set()
    if principal.subject == action.get("assignee"):
        actors.add("responsible")
    if principal.subject == action.get("accountable"):
        actors.add("accountable")
    if "unit_manager" in principal.roles:
        actors.add("unit_manager")
    if principal.roles & {"quality_manager", "admin"}:
        actors.add("quality_manager")
    return frozenset(actors)


def is_watched(action: Document) -> bool:
    """Whether scores decide the action's verification (it has an indicator and a bound)."""
    watch = action.get("watch")
    return bool(watch and watch.get("indicator") and watch.get("clear_bound") is not None)


def stage_transition(
    unit: UnitOfWork,
    action: Document,
    target: State,
    *,
    by: str,
    reason: str | None,
    policy: OrgPolicy,
    now: datetime,
    cause: Envelope[Any] | None = None,
) -> None:
    """Stage an accepted transition with its effects: acknowledgement, watch, claims, jobs, the event."""
    previous: State = action["status"]
    changes: dict[str, Any] = {"status": target, "status_reason": reason, "updated_at": now}
    unset: list[str] = []
    inc: dict[str, int] = {}
    action["status"] = target
    if target == "in_progress" and not action.get("acknowledged_at"):
        changes["acknowledged_at"] = now
    if target == "done":
        changes["done_at"] = now
        if is_watched(action):
            watch = action["watch"]
            ends = now + policy.verification_window
            changes["watch_key"] = watch_key(action["org"], action["unit_path"], watch["period"])
            changes["verification"] = {
                "since": now,
                "window_ends": ends,
                "periods": policy.verification_periods,
                "streak": 0,
                "observations": [],
                "outcome": "watching",
            }
            schedule(unit, kind=WINDOW_JOB, key=action["_id"], org=action["org"], due_at=ends, payload={})
    if previous == "done":
        unset.append("watch_key")
        cancel(unit, kind=WINDOW_JOB, key=action["_id"])
    if target == "verified":
        changes["verified_at"] = now
    if target == "reopened":
        inc["reopened"] = 1
        # Reopened work gets a fresh deadline and climbs the organisation again if it is late once more.
        changes["due_at"] = action["due_at"] = policy.deadlines.due_at(action["level"], now)
        changes["steps"] = action["steps"] = []
        changes["overdue"] = False
        changes["deadline_from"] = action["deadline_from"] = now
    if target in CLOSED and action.get("group_id"):
        repository.stage_release(unit, repository.group_key(action["org"], action["group_id"]))
    entry = history_entry(now, by, "status", **{"from": previous, "to": target, "reason": reason})
    repository.stage_action_change(
        unit, action["_id"], set_=changes, unset=unset, push={"history": [entry]}, inc=inc or None
    )
    if target in ACTIVE:
        stage_next_step(unit, action, policy)
    else:
        cancel(unit, kind=STEP_JOB, key=action["_id"])
    unit.publish(updated_event(action, status=target, previous_status=previous, by=by, detail=reason), cause=cause)


def require_actor(principal: Principal, action: Document) -> frozenset[Actor]:
    """The principal's capacities on the action; 403 if it has none (analysts, integrations)."""
    actors = actors_of(principal, action)
    if not actors:
        raise Problem(403, "Forbidden", "working on actions needs the unit_manager or quality_manager role")
    return actors


async def transition_action(
    db: Database,
    unit: UnitOfWork,
    principal: Principal,
    action_id: str,
    target: str,
    reason: str | None,
    session: AsyncClientSession | None = None,
) -> Document:
    """Move an action to ``target`` if its state and the principal allow it (409 / 403 otherwise)."""
    action = await get_action(db, principal, action_id, session)
    actors = require_actor(principal, action)
    try:
        transition = lifecycle.transition(action["status"], target, actors, watched=is_watched(action), reason=reason)
    except TransitionRefused as refused:
        raise Refused(refused) from refused
    policy = await load_policy(db, principal.org, session)
    previous = action["status"]
    stage_transition(
        unit, action, transition.state, by=principal.subject, reason=transition.reason, policy=policy, now=now_utc()
    )
    after = {"status": transition.state, "reason": transition.reason}
    audit.record(unit, principal, "transition", "action", action_id, {"status": previous}, after)
    return action


async def create_action(db: Database, unit: UnitOfWork, principal: Principal, fields: dict[str, Any]) -> Document:
    """An action opened by hand on a unit in the principal's scope, routed unless an assignee is given."""
    target_unit = await get_visible_unit(db, principal, fields["unit_id"])
    if fields.get("plan_id"):
        await get_scoped(db, repository.PLANS, principal, fields["plan_id"], "plan")
    policy = await load_policy(db, principal.org)
    now = now_utc()
    watch = None
    if fields.get("indicator") and fields.get("clear_bound") is not None:
        watch = {
            "indicator": fields["indicator"],
            "period": fields["period"],
            "clear_bound": fields["clear_bound"],
            "comparison": fields["comparison"],
        }
    action = new_action(
        org=principal.org,
        unit_id=target_unit["id"],
        unit_path=target_unit["path"],
        title=fields["title"],
        level=fields["level"],
        source="manual",
        now=now,
        due_at=fields.get("due_at") or policy.deadlines.due_at(fields["level"], now),
        by=principal.subject,
        alert_id=None,
        description=fields.get("description", ""),
        priority=fields["priority"],
        indicator=fields.get("indicator"),
        watch=watch,
        plan_id=fields.get("plan_id"),
        complaint=fields.get("complaint", False),
    )
    if fields.get("assignee"):
        action["assignee"] = fields["assignee"]
        action["accountable"] = fields.get("accountable")
        action["routing"] = {"entry_id": None, "reason": f"assigned by hand by {principal.subject}"}
    else:
        entries = await repository.list_entries_above(db, principal.org, [target_unit["path"]])
        apply_match(action, route(entries, breach_of(action), default_owner=policy.default_owner))
        if fields.get("accountable"):
            action["accountable"] = fields["accountable"]
    stage_new_action(unit, action, policy, None)
    audit.record(unit, principal, "create", "action", action["_id"], None, _audited(action, AUDITED_FIELDS))
    return action


async def change_action(
    db: Database,
    unit: UnitOfWork,
    principal: Principal,
    action_id: str,
    *,
    change: str,
    set_: dict[str, Any] | None = None,
    push: dict[str, Any] | None = None,
    detail: str | None = None,
    session: AsyncClientSession | None = None,
) -> Document:
    """Any change to an action but its state and assignee, by someone working on it; history and event."""
    action = await get_action(db, principal, action_id, session)
    require_actor(principal, action)
    if set_ and set_.get("plan_id"):
        await get_scoped(db, repository.PLANS, principal, set_["plan_id"], "plan", session)
    now = now_utc()
    entry = history_entry(now, principal.subject, change, detail=detail)
    repository.stage_action_change(
        unit,
        action_id,
        set_={**(set_ or {}), "updated_at": now},
        push={**(push or {}), "history": [entry]},
    )
    if set_ and "due_at" in set_ and action["status"] in ACTIVE:
        policy = await load_policy(db, principal.org, session)
        stage_next_step(unit, {**action, **set_}, policy)
    unit.publish(updated_event(action, status=action["status"], by=principal.subject, change=change, detail=detail))
    before = _audited(action, set_ or {})
    after = {**(set_ or {}), **(push or {}), **({"detail": detail} if detail else {})}
    audit.record(unit, principal, change, "action", action_id, before, after)
    action.update(set_ or {})
    return action


async def reassign_action(
    db: Database,
    unit: UnitOfWork,
    principal: Principal,
    action_id: str,
    assignee: str,
    accountable: str | None,
    reason: str | None,
    session: AsyncClientSession | None = None,
) -> Document:
    """Give an active action to another responsible person (a manager or its accountable person does)."""
    action = await get_action(db, principal, action_id, session)
    actors = require_actor(principal, action)
    if not actors & {"accountable", "unit_manager", "quality_manager"}:
        raise Problem(403, "Forbidden", "reassigning needs the accountable person or a manager")
    if action["status"] in CLOSED:
        raise Refused(TransitionRefused(action["status"], "reassigned", [], "a closed action cannot be reassigned"))
    now = now_utc()
    previous = action.get("assignee")
    action["assignee"] = assignee
    if accountable:
        action["accountable"] = accountable
    repository.stage_action_change(
        unit,
        action_id,
        set_={
            "assignee": assignee,
            "accountable": action.get("accountable"),
            "routing": {"entry_id": None, "reason": f"reassigned by {principal.subject}"},
            "updated_at": now,
        },
        push={
            "history": [
                history_entry(
                    now, principal.subject, "reassigned", **{"from": previous, "to": assignee, "reason": reason}
                )
            ]
        },
    )
    unit.publish(assigned_event(action, reassigned=previous is not None))
    after = {"assignee": assignee, "accountable": action.get("accountable"), "reason": reason}
    audit.record(unit, principal, "reassign", "action", action_id, {"assignee": previous}, after)
    if previous is None:
        stage_next_step(unit, action, await load_policy(db, principal.org, session))
    return action


# What the audit log keeps of an action opened by hand (its own history keeps every step after).
AUDITED_FIELDS = ("title", "unit_id", "level", "priority", "assignee", "accountable", "due_at", "plan_id", "status")


def _audited(action: Document, fields: Iterable[str]) -> Document:
    return {name: action.get(name) for name in fields}


def facts_of(document: Document) -> ActionFacts:
    """The figures' view of a stored action."""
    return ActionFacts(
        created_at=document["created_at"],
        due_at=document["due_at"],
        state=document["status"],
        assignee=document.get("assignee"),
        acknowledged_at=document.get("acknowledged_at"),
        done_at=document.get("done_at"),
        verified_at=document.get("verified_at"),
        reopened=document.get("reopened", 0),
        rule_id=document.get("rule_id"),
        unit_path=document.get("unit_path"),
    )
