"""Breaches in: one action per alert group, never two per alert; playbooks once per firing; routing the unowned."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from services.improvement import repository
from services.improvement.domain.policy import OrgPolicy
from services.improvement.domain.risks import PlaybookStep, run_playbook
from services.improvement.domain.routing import Entry, route
from services.improvement.domain.verification import infer_comparison
from services.improvement.service.common import (
    SYSTEM,
    apply_match,
    assigned_event,
    breach_of,
    history_entry,
    in_one_transaction,
    load_policy,
    new_action,
    now_utc,
    stage_new_action,
    stage_next_step,
    updated_event,
)
from shared.events import Envelope, ThresholdBreached
from shared.pagination import PAGE_KEYS
from shared.runtime import Runtime
from shared.storage import Database, Document, UnitOfWork
from shared.tree import in_subtree, lineage

SINGLE_FEEDBACK_RULE = "event"


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
    changes[PAGE_KEYS] = repository.action_page_keys(action)
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
