"""Event handlers of the improvement service, one per consumed event type, a batch at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.improvement import repository
from services.improvement.domain.escalation import STEPS
from services.improvement.domain.plans import Target, progress, reached
from services.improvement.service import breaches, common, follow_up
from shared.consumer import BatchContext
from shared.events import AlertResolved, Envelope, ScoreUpdated, ThresholdBreached, UnitChanged
from shared.scheduler import Job

# Scores of the ``all`` period have no periods to count: each update after the action was done is one
# reading, and ``verification_periods`` consecutive readings past the bound verify it.
WHOLE_PERIOD_BEFORE = datetime(1970, 1, 2, tzinfo=UTC)


async def on_threshold_breached(envelopes: Sequence[Envelope[ThresholdBreached]], batch: BatchContext) -> None:
    """One action per alert group, never two per alert (also redelivered), and the linked risks' playbooks."""
    by_org: dict[str, list[Envelope[ThresholdBreached]]] = defaultdict(list)
    for envelope in envelopes:
        by_org[envelope.data.org].append(envelope)
    now = common.now_utc()
    for org, org_envelopes in by_org.items():
        loaded = await breaches.load_breach_batch(batch.db, batch.session, org, [e.data for e in org_envelopes])
        for envelope in breaches.deepest_first(org_envelopes):
            breaches.stage_breach(batch.unit, envelope, loaded, now)


async def on_alert_resolved(envelopes: Sequence[Envelope[AlertResolved]], batch: BatchContext) -> None:
    """Note on the alert's action that its condition cleared; that alone verifies nothing (ISO 9001 §10.2.1 d)."""
    keys = {repository.alert_key(e.data.org, e.data.alert_id): e for e in envelopes}
    claims = await repository.get_claims(batch.db, list(keys), batch.session)
    actions = {
        a["_id"]: a for a in await repository.list_actions_by_id(batch.db, list(set(claims.values())), batch.session)
    }
    now = common.now_utc()
    for key, action_id in claims.items():
        envelope, action = keys[key], actions.get(action_id)
        if action is None:
            continue
        resolved = envelope.data
        detail = f"alert {resolved.alert_id} resolved at {resolved.indicator} {resolved.value:g}"
        repository.stage_action_change(
            batch.unit,
            action_id,
            set_={"alert_resolved_at": now, "updated_at": now},
            push={"history": [common.history_entry(now, common.SYSTEM, "alert resolved", detail=detail)]},
        )
        batch.unit.publish(
            common.updated_event(
                action, status=action["status"], by=common.SYSTEM, change="alert_resolved", detail=detail
            ),
            cause=envelope,
        )


async def on_score_updated(envelopes: Sequence[Envelope[ScoreUpdated]], batch: BatchContext) -> None:
    """Scores verify done actions (or keep them watching) and move plans' progress."""
    by_key: dict[str, list[Envelope[ScoreUpdated]]] = defaultdict(list)
    for envelope in envelopes:
        score = envelope.data
        by_key[common.watch_key(score.org, score.unit_path, score.period)].append(envelope)
    keys = list(by_key)
    now = common.now_utc()
    watching = await repository.list_watching(batch.db, keys, batch.session)
    policies: dict[str, Any] = {}
    for action in watching:
        observations = [
            observation
            for envelope in by_key[action["watch_key"]]
            if (observation := observation_in(envelope, action["watch"]["indicator"])) is not None
        ]
        if not observations:
            continue
        if action["org"] not in policies:
            policies[action["org"]] = await common.load_policy(batch.db, action["org"], batch.session)
        follow_up.stage_observations(
            batch.unit,
            action,
            observations,
            policy=policies[action["org"]],
            now=now,
            cause=by_key[action["watch_key"]][-1],
        )
    for plan in await repository.list_plans_targeting(batch.db, keys, batch.session):
        target = plan["target"]
        latest = observation_in(by_key[plan["target_key"]][-1], target["indicator"])
        if latest is None or latest["value"] is None:
            continue
        goal = Target(target["indicator"], target["value"], target.get("baseline"))
        repository.stage_plan_change(
            batch.unit,
            plan["_id"],
            {
                "$set": {
                    "current_value": latest["value"],
                    "progress": progress(goal, latest["value"]),
                    "reached": reached(goal, latest["value"]),
                    "updated_at": now,
                }
            },
        )


def observation_in(envelope: Envelope[ScoreUpdated], indicator: str) -> dict[str, Any] | None:
    """The indicator's figure in a score update, as an action keeps it; None if the update lacks it."""
    score = envelope.data
    start = score.period_start
    if start is None or start < WHOLE_PERIOD_BEFORE:
        start = envelope.time
    if indicator == "composite":
        return {
            "period_start": start,
            "value": score.composite,
            "sample_size": score.sample_size,
            "insufficient": score.sample_size < score.min_samples,
        }
    figure = score.indicators.get(indicator)
    if figure is None:
        return None
    return {
        "period_start": start,
        "value": figure.value,
        "sample_size": figure.sample_size,
        "insufficient": figure.insufficient or figure.sample_size < score.min_samples,
    }


async def on_unit_changed(envelopes: Sequence[Envelope[UnitChanged]], batch: BatchContext) -> None:
    """Keep the read copy of the tree; a moved unit's actions, plans, entries and risks follow it."""
    for envelope in envelopes:
        unit = envelope.data
        repository.stage_unit(
            batch.unit,
            org=unit.org,
            unit_id=unit.unit_id,
            path=unit.unit_path,
            parent_id=unit.parent_id,
            active=unit.active,
        )
        if unit.change == "moved" and unit.previous_path and unit.previous_path != unit.unit_path:
            repository.stage_unit_moved(
                batch.unit, org=unit.org, unit_id=unit.unit_id, previous_path=unit.previous_path, path=unit.unit_path
            )


async def run_steps(jobs: Sequence[Job], batch: BatchContext) -> None:
    """Due escalation steps: reminder, overdue, the accountable person, the parent unit's owner."""
    now = common.now_utc()
    for job in jobs:
        step = job.payload.get("step")
        matched = next((s for s in STEPS if s == step), None)
        if matched is not None:
            await follow_up.run_step(batch.db, batch.session, batch.unit, job.key, matched, now)


async def run_window_ends(jobs: Sequence[Job], batch: BatchContext) -> None:
    """Verification windows that ended: verified if the scores recovered in time, reopened otherwise."""
    now = common.now_utc()
    for job in jobs:
        await follow_up.run_window_end(batch.db, batch.session, batch.unit, job.key, now)
