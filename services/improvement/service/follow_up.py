"""After the work: verification on the scores, and the escalation steps of overdue actions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from services.improvement import repository
from services.improvement.domain import lifecycle
from services.improvement.domain.escalation import Step
from services.improvement.domain.lifecycle import ACTIVE
from services.improvement.domain.policy import OrgPolicy
from services.improvement.domain.routing import route_up
from services.improvement.domain.verification import Observation, Verdict, Watch, assess
from services.improvement.service.actions import stage_transition
from services.improvement.service.common import (
    SYSTEM,
    breach_of,
    history_entry,
    load_policy,
    stage_next_step,
    updated_event,
)
from shared.events import Envelope
from shared.storage import Database, Document, UnitOfWork

OBSERVATIONS_KEPT = 200


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
