"""Use cases of the improvement service: load, decide with the domain, stage into a unit of work, commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from services.improvement import repository
from services.improvement.domain import lifecycle
from services.improvement.domain import plans as pdca
from services.improvement.domain.escalation import Step, next_step
from services.improvement.domain.figures import ActionFacts
from services.improvement.domain.lifecycle import ACTIVE, CLOSED, Actor, State, TransitionRefused
from services.improvement.domain.policy import OrgPolicy, policy_from
from services.improvement.domain.risks import PlaybookStep, rating, run_playbook
from services.improvement.domain.routing import Breach, Entry, Match, route, route_up
from services.improvement.domain.verification import Observation, Verdict, Watch, assess, infer_comparison
from shared import audit
from shared.auth import Principal
from shared.events import ActionAssigned, ActionUpdated, Envelope, ThresholdBreached
from shared.ids import new_id
from shared.pagination import public_view
from shared.problems import NotFound, Problem
from shared.runtime import Runtime
from shared.scheduler import cancel, schedule
from shared.storage import Database, Document, UnitOfWork, apply, in_transaction
from shared.tree import WHOLE_ORGANISATION, in_subtree, lineage

T = TypeVar("T")
STEP_JOB = "improvement.action-step"
WINDOW_JOB = "improvement.verification-window"
OBSERVATIONS_KEPT = 200
SYSTEM = "system"
SINGLE_FEEDBACK_RULE = "event"


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


# Events out.


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


# Creating and assigning actions.


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


def watch_of(breach: ThresholdBreached) -> dict[str, Any]:
    """What a breach's action is verified on: the indicator back past the rule's clearing bound."""
    comparison = breach.comparison or infer_comparison(breach.value, breach.threshold)
    bound = breach.clear_bound
    return {
        "indicator": breach.indicator,
        "period": breach.period,
        "clear_bound": breach.threshold if bound is None else bound,
        "comparison": comparison,
    }


@dataclass
class BreachBatch:
    """What one organisation's breaches of a batch need: claims, the groups' actions, the matrix, policy, risks."""

    claims: dict[str, str]
    actions: dict[str, Document]
    entries: list[Entry]
    policy: OrgPolicy
    risks: list[Document]
    firings: set[str]


async def load_breach_batch(
    db: Database, session: AsyncClientSession, org: str, breaches: Sequence[ThresholdBreached]
) -> BreachBatch:
    """Everything deciding one organisation's breaches needs, in a handful of bulk reads."""
    keys = [repository.alert_key(org, b.alert_id) for b in breaches]
    keys += [repository.group_key(org, b.group_id) for b in breaches if b.group_id]
    claims = await repository.get_claims(db, keys, session)
    actions = await repository.list_actions_by_id(db, sorted(set(claims.values())), session)
    risks = await repository.list_risks_for_rules(db, org, sorted({b.rule_id for b in breaches}), session)
    firing_keys = [repository.firing_key(r["_id"], b.alert_id) for r in risks for b in breaches]
    return BreachBatch(
        claims=claims,
        actions={a["_id"]: a for a in actions},
        entries=await repository.list_entries_above(db, org, [b.unit_path for b in breaches], session),
        policy=await load_policy(db, org, session),
        risks=risks,
        firings=await repository.get_firings(db, firing_keys, session),
    )


def deepest_first(envelopes: Sequence[Envelope[ThresholdBreached]]) -> list[Envelope[ThresholdBreached]]:
    """Breaches with the deepest units first: a group's action addresses the most specific unit that fired."""
    return sorted(envelopes, key=lambda e: -e.data.unit_path.count("/"))


def stage_breach(unit: UnitOfWork, envelope: Envelope[ThresholdBreached], loaded: BreachBatch, now: datetime) -> None:
    """One action per alert group (a new alert of the group joins it), never two per alert; then the playbooks."""
    breach = envelope.data
    alert_claim = repository.alert_key(breach.org, breach.alert_id)
    if alert_claim in loaded.claims:
        return  # this alert already has its action (a redelivery, or an earlier alert of a batch)
    group_claim = repository.group_key(breach.org, breach.group_id) if breach.group_id else None
    if group_claim and group_claim in loaded.claims:
        stage_join(unit, envelope, loaded, loaded.claims[group_claim], now)
        return
    action = breach_action(breach, loaded, now)
    stage_new_action(unit, action, loaded.policy, envelope)
    loaded.actions[action["_id"]] = action
    repository.stage_claim(unit, alert_claim, action["_id"])
    loaded.claims[alert_claim] = action["_id"]
    if group_claim:
        repository.stage_claim(unit, group_claim, action["_id"])
        loaded.claims[group_claim] = action["_id"]
    stage_playbooks(unit, envelope, action, loaded, now)


def stage_join(
    unit: UnitOfWork, envelope: Envelope[ThresholdBreached], loaded: BreachBatch, action_id: str, now: datetime
) -> None:
    """Another alert of the group joins its action; an untouched action moves down to a deeper unit that fired.

    A region's score falls because a branch's did: while nobody has taken the action in hand, it
    addresses (and is routed and verified on) the most specific unit of the group.
    """
    breach = envelope.data
    repository.stage_claim(unit, repository.alert_key(breach.org, breach.alert_id), action_id)
    loaded.claims[repository.alert_key(breach.org, breach.alert_id)] = action_id
    joined = history_entry(now, SYSTEM, "alert joined", alert_id=breach.alert_id, unit=breach.unit_path)
    changes: dict[str, Any] = {"updated_at": now}
    action = loaded.actions.get(action_id)
    deeper = (
        action is not None
        and action["status"] == "open"
        and action["source"] == "breach"
        and breach.unit_path != action["unit_path"]
        and in_subtree(breach.unit_path, action["unit_path"])
    )
    if action is None or not deeper:
        repository.stage_action_change(
            unit, action_id, set_=changes, push={"alert_ids": [breach.alert_id], "history": [joined]}
        )
        if action is not None:
            detail = f"alert {breach.alert_id} on {breach.unit_path}"
            event = updated_event(action, status=action["status"], by=SYSTEM, change="alert_joined", detail=detail)
            unit.publish(event, cause=envelope)
        return
    previous = action.get("assignee")
    title = action["title"].replace(f" at {action['unit_path']}", f" at {breach.unit_path}")
    action.update(unit_id=breach.unit_id, unit_path=breach.unit_path, lineage=lineage(breach.unit_path), title=title)
    match = route(loaded.entries, breach_of(action), default_owner=loaded.policy.default_owner)
    apply_match(action, match)
    moved = history_entry(now, SYSTEM, "addressed", unit=breach.unit_path, to=action["assignee"], why=match.reason)
    changes.update(
        {
            name: action[name]
            for name in ("unit_id", "unit_path", "lineage", "title", "assignee", "accountable", "consulted", "informed")
        }
    )
    changes["routing"] = action["routing"]
    repository.stage_action_change(
        unit, action_id, set_=changes, push={"alert_ids": [breach.alert_id], "history": [joined, moved]}
    )
    if action["assignee"] and action["assignee"] != previous:
        unit.publish(assigned_event(action, reassigned=previous is not None), cause=envelope)
        if previous is None:
            stage_next_step(unit, action, loaded.policy)
    else:
        detail = f"now addresses {breach.unit_path}"
        unit.publish(
            updated_event(action, status=action["status"], by=SYSTEM, change="addressed", detail=detail), cause=envelope
        )


def breach_action(breach: ThresholdBreached, loaded: BreachBatch, now: datetime) -> Document:
    """The action a breach opens, routed by the matrix."""
    action = new_action(
        org=breach.org,
        unit_id=breach.unit_id,
        unit_path=breach.unit_path,
        title=f"{breach.rule_name or breach.indicator}: {breach.indicator} {breach.value:g} "
        f"past {breach.threshold:g} at {breach.unit_path}",
        level=breach.level,
        source="breach",
        now=now,
        due_at=loaded.policy.deadlines.due_at(breach.level, now),
        by=SYSTEM,
        alert_id=breach.alert_id,
        group_id=breach.group_id,
        rule_id=breach.rule_id,
        rule_kind=breach.rule_kind,
        indicator=breach.indicator,
        priority="urgent" if breach.level == "red" else "high" if breach.level == "orange" else "normal",
        # A rule on single feedback (a serious complaint, say) has no score to recover: its action is
        # verified by a quality manager, after the follow-up with the customer.
        watch=None if breach.rule_kind == SINGLE_FEEDBACK_RULE else watch_of(breach),
        complaint=breach.rule_kind == SINGLE_FEEDBACK_RULE,
        breach={"value": breach.value, "threshold": breach.threshold, "period": breach.period},
    )
    match = route(loaded.entries, breach_of(action), default_owner=loaded.policy.default_owner)
    apply_match(action, match)
    return action


def stage_playbooks(
    unit: UnitOfWork, envelope: Envelope[ThresholdBreached], breach_act: Document, loaded: BreachBatch, now: datetime
) -> None:
    """The playbook actions of every risk linked to the rule that fired on a unit it covers, once per firing."""
    breach = envelope.data
    for risk in loaded.risks:
        key = repository.firing_key(risk["_id"], breach.alert_id)
        linked = breach.rule_id in risk.get("rule_ids", ())
        if key in loaded.firings or not linked or not in_subtree(breach.unit_path, risk["scope"]):
            continue
        loaded.firings.add(key)
        steps = [PlaybookStep(**step) for step in risk.get("playbook", [])]
        planned = run_playbook(
            steps,
            fired_at=now,
            responsible=breach_act["assignee"],
            accountable=breach_act["accountable"],
            risk_owner=risk.get("owner"),
        )
        action_ids = []
        for item in planned:
            action = new_action(
                org=breach.org,
                unit_id=breach.unit_id,
                unit_path=breach.unit_path,
                title=item.title,
                level=breach.level,
                source="playbook",
                now=now,
                due_at=item.due_at,
                by=SYSTEM,
                description=item.description,
                rule_id=breach.rule_id,
                indicator=breach.indicator,
                risk_id=risk["_id"],
                firing_id=key,
                playbook_step=item.step,
                triggered_by={"alert_id": breach.alert_id, "action_id": breach_act["_id"]},
            )
            if item.assignee:
                action["assignee"] = item.assignee
                action["accountable"] = risk.get("owner")
                action["routing"] = {"entry_id": None, "reason": f"playbook of risk {risk['_id']}, step {item.step}"}
            else:
                apply_match(action, route(loaded.entries, breach_of(action), default_owner=loaded.policy.default_owner))
            stage_new_action(unit, action, loaded.policy, envelope)
            action_ids.append(action["_id"])
        repository.stage_firing(
            unit,
            {
                "_id": key,
                "org": breach.org,
                "risk_id": risk["_id"],
                "alert_id": breach.alert_id,
                "rule_id": breach.rule_id,
                "unit_path": breach.unit_path,
                "lineage": lineage(breach.unit_path),
                "fired_at": now,
                "breach_action_id": breach_act["_id"],
                "action_ids": action_ids,
            },
        )


async def route_unassigned(runtime: Runtime[Any], *, org: str | None = None) -> int:
    """Route again the active actions nobody owns (at start, or after an entry or default owner was set).

    In one transaction with its reads, so a breach or a person assigning one of them at the same moment
    conflicts with it rather than being overwritten.
    """
    return await in_one_transaction(runtime, lambda session, unit: stage_routing(runtime.db, session, unit, org))


async def stage_routing(db: Database, session: AsyncClientSession, unit: UnitOfWork, org: str | None) -> int:
    """Stage the assignment of every unassigned active action (of one organisation, or all) that has an owner now."""
    by_org: dict[str, list[Document]] = defaultdict(list)
    for action in await repository.list_unassigned(db, org, session):
        by_org[action["org"]].append(action)
    routed = 0
    now = now_utc()
    for org_id, actions in by_org.items():
        policy = await load_policy(db, org_id, session)
        entries = await repository.list_entries_above(db, org_id, [a["unit_path"] for a in actions], session)
        for action in actions:
            match = route(entries, breach_of(action), default_owner=policy.default_owner)
            if not match.routed:
                continue
            apply_match(action, match)
            repository.stage_action_change(
                unit,
                action["_id"],
                set_={
                    "assignee": action["assignee"],
                    "accountable": action["accountable"],
                    "consulted": action["consulted"],
                    "informed": action["informed"],
                    "routing": action["routing"],
                    "updated_at": now,
                },
                push={"history": [history_entry(now, SYSTEM, "assigned", to=action["assignee"], why=match.reason)]},
            )
            unit.publish(assigned_event(action, reassigned=False))
            stage_next_step(unit, action, policy)
            routed += 1
    return routed


# Transitions.


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


class Refused(Problem):
    """A refused transition: 409 naming the current state and the allowed ones."""

    def __init__(self, refused: TransitionRefused | Any) -> None:
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


# Reading actions within the caller's scope.


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
    stage_transition(
        unit, action, transition.state, by=principal.subject, reason=transition.reason, policy=policy, now=now_utc()
    )
    return action


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


# Verification on scores.


def observation_of(document: dict[str, Any]) -> Observation:
    """A stored observation."""
    return Observation(
        period_start=document["period_start"],
        value=document.get("value"),
        sample_size=document.get("sample_size", 0),
        insufficient=document.get("insufficient", False),
    )


def watch_from(action: Document) -> Watch:
    """The domain watch of a done action."""
    spec, verification = action["watch"], action["verification"]
    return Watch(
        indicator=spec["indicator"],
        clear_bound=spec["clear_bound"],
        comparison=spec["comparison"],
        periods=verification["periods"],
        min_samples=1,
        since=verification["since"],
        window_ends=verification["window_ends"],
    )


def stage_observations(
    unit: UnitOfWork,
    action: Document,
    observations: Sequence[dict[str, Any]],
    *,
    policy: OrgPolicy,
    now: datetime,
    cause: Envelope[Any] | None,
) -> Verdict:
    """Record a done action's new observations and decide: verified, still watching (or reopened at window's end)."""
    verification = action["verification"]
    every = [*verification.get("observations", []), *observations][-OBSERVATIONS_KEPT:]
    verdict = assess(watch_from(action), [observation_of(o) for o in every], now=now)
    if verdict.outcome == "watching":
        repository.stage_action_change(
            unit,
            action["_id"],
            set_={
                "verification.observations": every,
                "verification.streak": verdict.streak,
                "verification.reason": verdict.reason,
            },
        )
        # Every score update would be noise; a run of recovered periods that grows or breaks is news.
        if verdict.streak != verification.get("streak", 0):
            event = updated_event(action, status="done", by=SYSTEM, change="verification", detail=verdict.reason)
            unit.publish(event, cause=cause)
        return verdict
    repository.stage_action_change(
        unit,
        action["_id"],
        set_={
            "verification.observations": every,
            "verification.streak": verdict.streak,
            "verification.outcome": verdict.outcome,
            "verification.reason": verdict.reason,
        },
    )
    accepted = lifecycle.transition("done", verdict.outcome, frozenset({"system"}), watched=True, reason=verdict.reason)
    stage_transition(
        unit, action, accepted.state, by=SYSTEM, reason=accepted.reason, policy=policy, now=now, cause=cause
    )
    return verdict


# Escalation steps.


async def run_step(
    db: Database, session: AsyncClientSession, unit: UnitOfWork, action_id: str, step: Step, now: datetime
) -> None:
    """Take one escalation step of an action (once: a step already taken, or a closed action, changes nothing)."""
    action = await repository.get_action(db, {"_id": action_id}, session)
    if action is None or action["status"] not in ACTIVE or step in action.get("steps", []):
        return
    policy = await load_policy(db, action["org"], session)
    target: str | None = action.get("assignee")
    detail = None
    if step == "escalated_accountable":
        target = action.get("accountable")
        detail = None if target else "no accountable person: the parent unit's owner is next"
    elif step == "escalated_parent":
        entries = await repository.list_entries_above(db, action["org"], [action["unit_path"]], session)
        passed = [p for p in (action.get("assignee"), action.get("accountable")) if p]
        match = route_up(entries, breach_of(action), default_owner=policy.default_owner, passed=passed)
        target, detail = match.responsible, match.reason
    changes: dict[str, Any] = {"updated_at": now}
    if step == "overdue":
        changes["overdue"] = True
    action["steps"] = [*action.get("steps", []), step]
    push: dict[str, Any] = {
        "steps": [step],
        "history": [history_entry(now, SYSTEM, step, to=target, detail=detail)],
    }
    if step.startswith("escalated") and target:
        push["escalations"] = [{"step": step, "to": target, "at": now}]
    repository.stage_action_change(unit, action_id, set_=changes, push=push)
    unit.publish(
        updated_event(action, status=action["status"], by=SYSTEM, change=step, detail=detail, escalated_to=target)
    )
    stage_next_step(unit, action, policy)


async def run_window_end(
    db: Database, session: AsyncClientSession, unit: UnitOfWork, action_id: str, now: datetime
) -> None:
    """The verification window of a done action ended: verified if the scores say so, else reopened."""
    action = await repository.get_action(db, {"_id": action_id}, session)
    if action is None or action["status"] != "done" or not action.get("verification"):
        return
    policy = await load_policy(db, action["org"], session)
    end = max(now, action["verification"]["window_ends"])
    stage_observations(unit, action, [], policy=policy, now=end, cause=None)


# Responsibilities.


def require_scope(principal: Principal, scope: str) -> None:
    """403 unless the scope written lies inside the writer's own subtrees."""
    if not principal.can_see(scope):
        raise Problem(403, "Forbidden", f"the scope {scope!r} lies outside your own")


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


# Actions by hand.


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
    if previous is None:
        stage_next_step(unit, action, await load_policy(db, principal.org, session))
    return action


# Plans.


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


# Figures.


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


# Configuration: the matrix, the organisation's settings, plans and risks.


def record_org_wide(
    unit: UnitOfWork,
    principal: Principal,
    action: str,
    kind: str,
    document: Document,
    before: Document | None,
    after: Document | None,
) -> None:
    """Audit a change of an organisation-wide document (scope ``*``).

    The shared audit log is read organisation-wide: an entry about an object of one subtree would show
    it to an admin of a sibling subtree. Until its entries carry a subtree, only organisation-wide
    objects (and the organisation's settings) are recorded there; an action's own history records who
    changed what on it.
    """
    if document.get("lineage") == [WHOLE_ORGANISATION]:
        audit.record(unit, principal, action, kind, document["_id"], before, after)


def create_scoped(unit: UnitOfWork, principal: Principal, collection: str, kind: str, document: Document) -> Document:
    """Stage a new scoped document (entry, plan, risk) with its audit entry."""
    repository.stage_insert(unit, collection, document)
    record_org_wide(unit, principal, "create", kind, document, None, public_view(document))
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
    after = {**before, **changes, "updated_at": now_utc()}
    repository.stage_set(unit, collection, document_id, {**changes, "updated_at": after["updated_at"]})
    record_org_wide(unit, principal, "update", kind, before, public_view(before), public_view(after))
    return after


async def delete_scoped(
    db: Database, unit: UnitOfWork, principal: Principal, collection: str, kind: str, document_id: str
) -> None:
    """Stage the deletion of a scoped document the principal sees (404 otherwise), audited."""
    before = await get_scoped(db, collection, principal, document_id, kind)
    repository.stage_delete(unit, collection, document_id)
    record_org_wide(unit, principal, "delete", kind, before, public_view(before), None)


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
