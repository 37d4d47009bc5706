"""What the use cases share: events out, new actions and their routing, scoped reads, one action's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from services.improvement import repository
from services.improvement.domain.escalation import next_step
from services.improvement.domain.policy import OrgPolicy, policy_from
from services.improvement.domain.routing import Breach, Match
from shared.auth import Principal
from shared.events import ActionAssigned, ActionUpdated, Envelope
from shared.ids import new_id
from shared.problems import NotFound, Problem
from shared.runtime import Runtime
from shared.scheduler import cancel, schedule
from shared.storage import Database, Document, UnitOfWork, apply, in_transaction
from shared.tree import lineage

T = TypeVar("T")
STEP_JOB = "improvement.action-step"
WINDOW_JOB = "improvement.verification-window"
SYSTEM = "system"


def now_utc() -> datetime:
    """The current moment in UTC."""
    return datetime.now(UTC)


def watch_key(org: str, unit_path: str, period: str) -> str:
    """The key a done action and a plan wait on: the scores of one unit and period."""
    return f"{org}|{unit_path}|{period}"


async def load_policy(db: Database, org: str, session: AsyncClientSession | None = None) -> OrgPolicy:
    """The organisation's policy (defaults until it sets its own)."""
    return policy_from(await repository.get_org_settings(db, org, session))


def breach_of(action: Document) -> Breach:
    """What routing sees of an action."""
    return Breach(action["unit_path"], action.get("indicator"), action.get("level"), action.get("rule_kind"))


def assigned_event(action: Document, *, reassigned: bool) -> ActionAssigned:
    """``action.assigned`` for an action that got its responsible person."""
    return ActionAssigned(
        org=action["org"],
        unit_id=action["unit_id"],
        unit_path=action["unit_path"],
        action_id=action["_id"],
        alert_id=action.get("alert_id"),
        group_id=action.get("group_id"),
        assignee=action["assignee"],
        accountable=action.get("accountable"),
        title=action["title"],
        due_at=action["due_at"],
        level=action["level"],
        indicator=action.get("indicator"),
        reassigned=reassigned,
    )


def updated_event(
    action: Document,
    *,
    status: str,
    by: str,
    change: str = "status",
    previous_status: str | None = None,
    detail: str | None = None,
    escalated_to: str | None = None,
) -> ActionUpdated:
    """``action.updated`` for any change but an assignment."""
    return ActionUpdated(
        org=action["org"],
        unit_id=action["unit_id"],
        unit_path=action["unit_path"],
        action_id=action["_id"],
        alert_id=action.get("alert_id"),
        group_id=action.get("group_id"),
        status=status,
        previous_status=status if previous_status is None else previous_status,
        by=by,
        change=change,
        detail=detail,
        assignee=action.get("assignee"),
        escalated_to=escalated_to,
    )


def history_entry(at: datetime, by: str, what: str, **details: Any) -> dict[str, Any]:
    """One line of an action's history."""
    return {"at": at, "by": by, "what": what, **{k: v for k, v in details.items() if v is not None}}


def new_action(
    *,
    org: str,
    unit_id: str,
    unit_path: str,
    title: str,
    level: str,
    source: str,
    now: datetime,
    due_at: datetime,
    by: str,
    **fields: Any,
) -> Document:
    """A new, unassigned action document."""
    action: Document = {
        "_id": new_id("act"),
        "org": org,
        "unit_id": unit_id,
        "unit_path": unit_path,
        "lineage": lineage(unit_path),
        "title": title,
        "description": "",
        "priority": "normal",
        "level": level,
        "source": source,
        "status": "open",
        "assignee": None,
        "accountable": None,
        "consulted": [],
        "informed": [],
        "due_at": due_at,
        "overdue": False,
        "steps": [],
        "escalations": [],
        "comments": [],
        "attachments": [],
        "corrective": [],
        "preventive": [],
        "alert_ids": [],
        "reopened": 0,
        "created_at": now,
        "updated_at": now,
        "history": [history_entry(now, by, "created", source=source)],
    }
    action.update(fields)
    if action.get("alert_id"):
        action["alert_ids"] = [action["alert_id"]]
    return action


def apply_match(action: Document, match: Match) -> None:
    """Give the action the people the routing chose, with the explanation."""
    action["assignee"] = match.responsible
    action["accountable"] = action.get("accountable") or match.accountable
    action["consulted"] = list(match.consulted)
    action["informed"] = list(match.informed)
    action["routing"] = {"entry_id": match.entry.id if match.entry else None, "reason": match.reason}


def stage_new_action(unit: UnitOfWork, action: Document, policy: OrgPolicy, cause: Envelope[Any] | None) -> None:
    """Insert the action; if somebody owns it, publish action.assigned and schedule its first escalation step."""
    repository.stage_action(unit, action)
    if action["assignee"]:
        unit.publish(assigned_event(action, reassigned=False), cause=cause)
        stage_next_step(unit, action, policy)


def stage_next_step(unit: UnitOfWork, action: Document, policy: OrgPolicy) -> None:
    """Schedule the action's next escalation step (moving its one job), or cancel it when there is none."""
    step = next_step(
        policy.escalation,
        state=action["status"],
        done=action.get("steps", []),
        created_at=action.get("deadline_from") or action["created_at"],
        due_at=action["due_at"],
    )
    if step is None:
        cancel(unit, kind=STEP_JOB, key=action["_id"])
        return
    name, at = step
    schedule(unit, kind=STEP_JOB, key=action["_id"], org=action["org"], due_at=at, payload={"step": name})


class Refusal(Protocol):
    """A refused move of a state machine (an action's transition, a plan's phase)."""

    @property
    def current(self) -> str:
        """The state it is in."""

    @property
    def allowed(self) -> Sequence[str]:
        """The states it may move to from there."""

    @property
    def why(self) -> str:
        """Why the move was refused."""


class Refused(Problem):
    """A refused transition: 409 naming the current state and the allowed ones."""

    def __init__(self, refused: Refusal) -> None:
        allowed = ", ".join(refused.allowed) or "nothing"
        super().__init__(
            409,
            "Transition refused",
            f"{refused.why}: it is {refused.current}; allowed from there: {allowed}",
            errors=[
                {
                    "field": "to",
                    "reason": refused.why,
                    "current_state": refused.current,
                    "allowed": list(refused.allowed),
                }
            ],
        )


def scoped(principal: Principal, **query: Any) -> dict[str, Any]:
    """A query within the principal's organisation and subtrees."""
    return {**principal.scope_filter(), **query}


async def get_action(
    db: Database, principal: Principal, action_id: str, session: AsyncClientSession | None = None
) -> Document:
    """The action, if the principal may see it; 404 otherwise, as for a missing one."""
    action = await repository.get_action(db, scoped(principal, _id=action_id), session)
    if action is None:
        raise NotFound("action", action_id)
    return action


async def get_visible_unit(db: Database, principal: Principal, unit_id: str) -> Document:
    """A unit of the read copy that the principal may see; 404 otherwise."""
    unit = await repository.get_unit(db, principal.org, unit_id)
    if unit is None or not principal.can_see(unit["path"]):
        raise NotFound("unit", unit_id)
    return unit


async def in_one_transaction(
    runtime: Runtime[Any], decide: Callable[[AsyncClientSession, UnitOfWork], Awaitable[T]]
) -> T:
    """Read, decide and write one action's change in one transaction, then hand its events to the relay.

    A change of an action reads its state first (may it move from there?). Reading inside the
    transaction that writes makes two concurrent changes of one action conflict: the database lets one
    commit and the other is run again on the new state (and refused if it no longer applies), where a
    group commit of changes decided on reads made before it would let both through.
    """

    async def work(session: AsyncClientSession) -> tuple[T, list[Document]]:
        unit = runtime.unit_of_work()
        result = await decide(session, unit)
        return result, await apply(runtime.db, session, [unit])

    result, documents = await in_transaction(runtime.client, work)
    runtime.relay.hand_over(documents)
    return result


def require_scope(principal: Principal, scope: str) -> None:
    """403 unless the scope written lies inside the writer's own subtrees."""
    if not principal.can_see(scope):
        raise Problem(403, "Forbidden", f"the scope {scope!r} lies outside your own")


def scoped_document_query(principal: Principal, document_id: str) -> dict[str, Any]:
    """One scoped document (entry, risk) of the principal's organisation inside their subtrees."""
    return scoped(principal, _id=document_id)


async def get_scoped(
    db: Database,
    collection: str,
    principal: Principal,
    document_id: str,
    kind: str,
    session: AsyncClientSession | None = None,
) -> Document:
    """A scoped document the principal may see; 404 otherwise, as for a missing one."""
    document = await repository.find_one(db, collection, scoped_document_query(principal, document_id), session)
    if document is None:
        raise NotFound(kind, document_id)
    return document
