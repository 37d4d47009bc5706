"""The improvement service's REST API: responsibilities, settings, actions, plans, risks and figures.

Which roles may call each operation is the shared access table's (shared/access.py), enforced for every
route; views and use cases check the organisation, the subtrees and, per action, who works it.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.improvement import repository
from services.improvement.dependencies import Limit, RuntimeDep
from services.improvement.domain import risks as register
from services.improvement.domain.figures import figures as compute_figures
from services.improvement.domain.policy import settings_with_defaults
from services.improvement.models import (
    ActionCreate,
    ActionRead,
    ActionUpdate,
    AttachmentIn,
    CommentIn,
    FiguresRead,
    FiringRead,
    FollowUpIn,
    Level,
    MeasuresIn,
    OrgSettingsRead,
    OrgSettingsUpdate,
    OwnerRead,
    PhaseMoveIn,
    PlanCreate,
    PlanRead,
    PlanUpdate,
    ReassignIn,
    ResponsibilityCreate,
    ResponsibilityRead,
    ResponsibilityUpdate,
    RiskCreate,
    RiskRead,
    RiskUpdate,
    RootCauseIn,
    TransitionIn,
)
from services.improvement.service import actions, breaches, common, configuration
from shared.auth import CurrentPrincipal, Principal
from shared.contract import Moment
from shared.ids import new_id
from shared.pagination import DEFAULT_LIMIT, PAGE_KEYS, Page, public_view, visible_scopes
from shared.problems import Problem

router = APIRouter(prefix="/api/v1")


# Responsibilities.


@router.post("/responsibilities", status_code=201, response_model=ResponsibilityRead, tags=["responsibilities"])
async def create_responsibility(
    responsibility_in: ResponsibilityCreate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Add an entry to the responsibility matrix; actions nobody owned are routed again."""
    common.require_scope(principal, responsibility_in.scope)
    entry = configuration.responsibility_document(principal, responsibility_in.model_dump(), common.now_utc())
    work = runtime.unit_of_work()
    configuration.create_scoped(work, principal, repository.RESPONSIBILITIES, "responsibility", entry)
    await runtime.commit(work)
    await breaches.route_unassigned(runtime, org=principal.org)
    return public_view(entry)


@router.get("/responsibilities", response_model=Page, tags=["responsibilities"])
async def list_responsibilities(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The entries of the matrix set on the caller's subtrees, newest first."""
    return await repository.list_scoped(runtime.db, repository.RESPONSIBILITIES, principal, cursor=cursor, limit=limit)


@router.get("/responsibilities/owner", response_model=OwnerRead, tags=["responsibilities"])
async def get_owner(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    unit_id: str,
    indicator: str | None = None,
    level: Level | None = None,
    rule_kind: str | None = None,
) -> dict[str, Any]:
    """Who owns a breach of the indicator at the level on the unit, which entry matched and why."""
    return await configuration.explain_owner(
        runtime.db, principal, unit_id=unit_id, indicator=indicator, level=level, rule_kind=rule_kind
    )


@router.get("/responsibilities/settings", response_model=OrgSettingsRead, tags=["responsibilities"])
async def get_settings(runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The organisation's improvement settings: default owner, deadlines, calendar, verification, escalation."""
    return settings_with_defaults(await repository.get_org_settings(runtime.db, principal.org))


@router.patch("/responsibilities/settings", response_model=OrgSettingsRead, tags=["responsibilities"])
async def update_settings(
    settings_in: OrgSettingsUpdate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change the organisation's settings (whole-organisation quality managers); actions nobody owned are routed."""
    work = runtime.unit_of_work()
    await configuration.update_org_settings(
        runtime.db, work, principal, settings_in.model_dump(exclude_unset=True, mode="json")
    )
    await runtime.commit(work)
    await breaches.route_unassigned(runtime, org=principal.org)
    return settings_with_defaults(await repository.get_org_settings(runtime.db, principal.org))


@router.get("/responsibilities/{entry_id}", response_model=ResponsibilityRead, tags=["responsibilities"])
async def get_responsibility(entry_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One entry of the matrix."""
    return public_view(
        await common.get_scoped(runtime.db, repository.RESPONSIBILITIES, principal, entry_id, "responsibility")
    )


@router.patch("/responsibilities/{entry_id}", response_model=ResponsibilityRead, tags=["responsibilities"])
async def update_responsibility(
    entry_id: str, responsibility_in: ResponsibilityUpdate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change an entry; a new scope must lie inside the caller's own."""
    work = runtime.unit_of_work()
    changes = responsibility_in.model_dump(exclude_unset=True)
    entry = await configuration.update_responsibility(runtime.db, work, principal, entry_id, changes)
    await runtime.commit(work)
    await breaches.route_unassigned(runtime, org=principal.org)
    return public_view(entry)


@router.delete("/responsibilities/{entry_id}", status_code=204, tags=["responsibilities"])
async def delete_responsibility(entry_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> Response:
    """Remove an entry; actions it routed keep their people."""
    work = runtime.unit_of_work()
    await configuration.delete_scoped(
        runtime.db, work, principal, repository.RESPONSIBILITIES, "responsibility", entry_id
    )
    await runtime.commit(work)
    return Response(status_code=204)


# Actions.


def action_view(document: dict[str, Any]) -> dict[str, Any]:
    """An action as the API shows it."""
    view = public_view(document)
    for internal in ("watch_key", PAGE_KEYS):
        view.pop(internal, None)
    return view


@router.post("/actions", status_code=201, response_model=ActionRead, tags=["actions"])
async def create_action(action_in: ActionCreate, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Open an action by hand (unit managers in their subtree, quality managers)."""
    work = runtime.unit_of_work()
    action = await actions.create_action(runtime.db, work, principal, action_in.model_dump())
    await runtime.commit(work)
    return action_view(action)


@router.get("/actions", response_model=Page, tags=["actions"])
async def list_actions(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    status_: Annotated[str | None, Query(alias="status")] = None,
    assignee: str | None = None,
    unit_id: str | None = None,
    overdue: bool | None = None,
    level: Level | None = None,
    alert_id: str | None = None,
    plan_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page:
    """Actions in the caller's subtrees (or a unit's subtree in them), newest first, filtered.

    A page may hold fewer items than ``limit`` (even none) with a ``next_cursor``: follow it until null.
    """
    unit_path = None
    if unit_id is not None:
        unit_path = (await common.get_visible_unit(runtime.db, principal, unit_id))["path"]
    filters = {"status": status_, "assignee": assignee, "overdue": overdue, "level": level, "plan_id": plan_id}
    match: dict[str, Any] = {name: value for name, value in filters.items() if value is not None}
    if alert_id is not None:
        match["alert_ids"] = alert_id
    found = await repository.list_actions(
        runtime.db, principal, unit_path=unit_path, match=match, cursor=cursor, limit=limit
    )
    return Page(items=[action_view(item) for item in found.items], next_cursor=found.next_cursor)


@router.get("/actions/figures", response_model=FiguresRead, tags=["actions"])
async def get_figures(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    unit_id: str | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """Time to acknowledge and resolve, on-time, reopened, verified and recurrence rates, open work; CSV too."""
    now = common.now_utc()
    end = (end or now).astimezone(UTC)
    start = (start or end - timedelta(days=30)).astimezone(UTC)
    path = "*"
    if unit_id is not None:
        path = (await common.get_visible_unit(runtime.db, principal, unit_id))["path"]
    scopes = visible_scopes(principal.scopes, None if unit_id is None else path)
    policy = await common.load_policy(runtime.db, principal.org)
    days = policy.recurrence_days
    until = end + timedelta(days=days)
    stored = await repository.list_actions_for_figures(runtime.db, principal.org, scopes, start, until)
    facts = [actions.facts_of(d) for d in stored]
    inside = [f for f in facts if f.created_at < end]
    later = [f for f in facts if f.created_at >= end]
    result = compute_figures(inside, now=now, recurrence_days=days, later=later)
    body = {"unit_path": path, "start": start, "end": end, "recurrence_days": days, **result.__dict__}
    body["time_to_acknowledge"] = result.time_to_acknowledge.__dict__
    body["time_to_resolve"] = result.time_to_resolve.__dict__
    if format == "csv":
        return Response(figures_csv(body), media_type="text/csv")
    return body


def figures_csv(body: dict[str, Any]) -> str:
    """The figures as ``figure,value`` rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["figure", "value"])
    for name, value in body.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                writer.writerow([f"{name}.{key}", "" if inner is None else inner])
        else:
            writer.writerow(
                [name, "" if value is None else value.isoformat() if isinstance(value, datetime) else value]
            )
    return out.getvalue()


@router.get("/actions/{action_id}", response_model=ActionRead, tags=["actions"])
async def get_action(action_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One action with its comments and full history."""
    return action_view(await common.get_action(runtime.db, principal, action_id))


@router.patch("/actions/{action_id}", response_model=ActionRead, tags=["actions"])
async def update_action(
    action_id: str, action_in: ActionUpdate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change an action's title, description, priority, due date or plan."""
    changes = action_in.model_dump(exclude_unset=True)
    return await _change(runtime, principal, action_id, "updated", set_=changes, detail=", ".join(sorted(changes)))


@router.post("/actions/{action_id}/transitions", response_model=ActionRead, tags=["actions"])
async def transition_action(
    action_id: str, transition_in: TransitionIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Move an action to another state; a refused move answers 409 naming the current state and the allowed ones."""
    await common.in_one_transaction(
        runtime,
        lambda session, work: actions.transition_action(
            runtime.db, work, principal, action_id, transition_in.to, transition_in.reason, session
        ),
    )
    return action_view(await common.get_action(runtime.db, principal, action_id))


@router.post("/actions/{action_id}/comments", status_code=201, response_model=ActionRead, tags=["actions"])
async def comment_action(
    action_id: str, comment_in: CommentIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Comment on an action."""
    comment = {"id": new_id("cmt"), "by": principal.subject, "at": common.now_utc(), "text": comment_in.text}
    return await _change(runtime, principal, action_id, "commented", push={"comments": [comment]})


@router.put("/actions/{action_id}/root-cause", response_model=ActionRead, tags=["actions"])
async def set_root_cause(
    action_id: str, root_cause_in: RootCauseIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Record the root cause and its category (人机料法环测)."""
    cause = root_cause_in.model_dump()
    return await _change(
        runtime, principal, action_id, "root_cause", set_={"root_cause": cause}, detail=cause["category"]
    )


@router.put("/actions/{action_id}/measures", response_model=ActionRead, tags=["actions"])
async def set_measures(
    action_id: str, measures_in: MeasuresIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Record the corrective and preventive measures."""
    changes = measures_in.model_dump(exclude_none=True)
    return await _change(runtime, principal, action_id, "measures", set_=changes)


@router.put("/actions/{action_id}/follow-up", response_model=ActionRead, tags=["actions"])
async def set_follow_up(
    action_id: str, follow_up_in: FollowUpIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Record the follow-up with the customer of a complaint (contacted when, outcome)."""
    action = await common.get_action(runtime.db, principal, action_id)
    if not action.get("complaint"):
        raise Problem(422, "Not a complaint", "a customer follow-up belongs to actions on complaints")
    follow_up = {**follow_up_in.model_dump(), "by": principal.subject}
    return await _change(
        runtime, principal, action_id, "follow_up", set_={"follow_up": follow_up}, detail=follow_up["outcome"]
    )


@router.post("/actions/{action_id}/attachments", status_code=201, response_model=ActionRead, tags=["actions"])
async def attach(
    action_id: str, attachment_in: AttachmentIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Attach a file by reference."""
    attachment = {**attachment_in.model_dump(), "by": principal.subject, "at": common.now_utc()}
    return await _change(
        runtime, principal, action_id, "attached", push={"attachments": [attachment]}, detail=attachment["name"]
    )


@router.post("/actions/{action_id}/reassign", response_model=ActionRead, tags=["actions"])
async def reassign(
    action_id: str, reassign_in: ReassignIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Give the action to another responsible person (action.assigned, reassigned)."""
    await common.in_one_transaction(
        runtime,
        lambda session, work: actions.reassign_action(
            runtime.db,
            work,
            principal,
            action_id,
            reassign_in.assignee,
            reassign_in.accountable,
            reassign_in.reason,
            session,
        ),
    )
    return action_view(await common.get_action(runtime.db, principal, action_id))


async def _change(
    runtime: RuntimeDep,
    principal: Principal,
    action_id: str,
    change: str,
    *,
    set_: dict[str, Any] | None = None,
    push: dict[str, Any] | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    await common.in_one_transaction(
        runtime,
        lambda session, work: actions.change_action(
            runtime.db, work, principal, action_id, change=change, set_=set_, push=push, detail=detail, session=session
        ),
    )
    return action_view(await common.get_action(runtime.db, principal, action_id))


# Plans.


@router.post("/plans", status_code=201, response_model=PlanRead, tags=["plans"])
async def create_plan(plan_in: PlanCreate, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Start a PDCA plan under a target."""
    work = runtime.unit_of_work()
    plan = await configuration.create_plan(runtime.db, work, principal, plan_in.model_dump())
    await runtime.commit(work)
    return public_view(plan)


@router.get("/plans", response_model=Page, tags=["plans"])
async def list_plans(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """Plans in the caller's subtrees, newest first."""
    return await repository.list_scoped(runtime.db, repository.PLANS, principal, cursor=cursor, limit=limit)


@router.get("/plans/{plan_id}", response_model=PlanRead, tags=["plans"])
async def get_plan(plan_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A plan with its progress and its actions counted by state."""
    plan = await common.get_scoped(runtime.db, repository.PLANS, principal, plan_id, "plan")
    return public_view(await configuration.plan_with_progress(runtime.db, plan))


@router.patch("/plans/{plan_id}", response_model=PlanRead, tags=["plans"])
async def update_plan(
    plan_id: str, plan_in: PlanUpdate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change a plan's title, description, target or owner."""
    work = runtime.unit_of_work()
    changes = plan_in.model_dump(exclude_unset=True, mode="json")
    plan = await configuration.update_scoped(runtime.db, work, principal, repository.PLANS, "plan", plan_id, changes)
    await runtime.commit(work)
    return public_view(await configuration.plan_with_progress(runtime.db, plan))


@router.delete("/plans/{plan_id}", status_code=204, tags=["plans"])
async def delete_plan(plan_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> Response:
    """Remove a plan (its actions stay)."""
    work = runtime.unit_of_work()
    await configuration.delete_scoped(runtime.db, work, principal, repository.PLANS, "plan", plan_id)
    await runtime.commit(work)
    return Response(status_code=204)


@router.post("/plans/{plan_id}/phase", response_model=PlanRead, tags=["plans"])
async def move_plan(
    plan_id: str, move_in: PhaseMoveIn, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Move a plan plan → do → check → act (→ plan again, or closed); leaving check and act records the learning."""
    work = runtime.unit_of_work()
    await configuration.move_plan(runtime.db, work, principal, plan_id, move_in.to, move_in.learning)
    await runtime.commit(work)
    stored = await common.get_scoped(runtime.db, repository.PLANS, principal, plan_id, "plan")
    return public_view(await configuration.plan_with_progress(runtime.db, stored))


# Risks.


@router.post("/risks", status_code=201, response_model=RiskRead, tags=["risks"])
async def create_risk(risk_in: RiskCreate, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Register a service risk of a subtree with its playbook."""
    risk = configuration.new_risk(principal, risk_in.model_dump())
    work = runtime.unit_of_work()
    configuration.create_scoped(work, principal, repository.RISKS, "risk", risk)
    await runtime.commit(work)
    return public_view(risk)


@router.get("/risks", response_model=Page, tags=["risks"])
async def list_risks(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The register of the caller's subtrees, newest first."""
    return await repository.list_scoped(runtime.db, repository.RISKS, principal, cursor=cursor, limit=limit)


@router.get("/risks/matrix", tags=["risks"])
async def risk_matrix(principal: CurrentPrincipal) -> dict[str, Any]:
    """The 5×5 likelihood × impact matrix of ratings."""
    return {"likelihood_rows_impact_columns": register.matrix(), "bands": dict(register.BANDS)}


@router.get("/risks/{risk_id}", response_model=RiskRead, tags=["risks"])
async def get_risk(risk_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One risk with how often it fired."""
    risk = await common.get_scoped(runtime.db, repository.RISKS, principal, risk_id, "risk")
    return public_view({**risk, "firings": len(await repository.list_firings(runtime.db, risk_id))})


@router.patch("/risks/{risk_id}", response_model=RiskRead, tags=["risks"])
async def update_risk(
    risk_id: str, risk_in: RiskUpdate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change a risk; the rating follows likelihood and impact."""
    work = runtime.unit_of_work()
    risk = await configuration.update_risk(runtime.db, work, principal, risk_id, risk_in.model_dump(exclude_unset=True))
    await runtime.commit(work)
    return public_view(risk)


@router.delete("/risks/{risk_id}", status_code=204, tags=["risks"])
async def delete_risk(risk_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> Response:
    """Remove a risk from the register (its firings' actions stay)."""
    work = runtime.unit_of_work()
    await configuration.delete_scoped(runtime.db, work, principal, repository.RISKS, "risk", risk_id)
    await runtime.commit(work)
    return Response(status_code=204)


@router.get("/risks/{risk_id}/firings", response_model=list[FiringRead], tags=["risks"])
async def list_firings(risk_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """Each time the risk materialised: the alert, the actions it created and how it ended."""
    await common.get_scoped(runtime.db, repository.RISKS, principal, risk_id, "risk")
    firings = await repository.list_firings(runtime.db, risk_id)
    ids = [action_id for firing in firings for action_id in firing["action_ids"]]
    states = {a["_id"]: a["status"] for a in await repository.list_actions_by_id(runtime.db, ids)}
    return [
        public_view({**f, "outcome": register.firing_outcome([states.get(i, "open") for i in f["action_ids"]])})
        for f in firings
        if principal.can_see(f["unit_path"])
    ]
