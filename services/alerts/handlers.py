"""Event handlers of the alerts service: scores in, alerts raised and resolved."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne

from services.alerts import repository
from services.alerts.domain import ThresholdRule, Transition, evaluate, fingerprint
from shared.consumer import BatchContext
from shared.events import AlertResolved, Envelope, ScoreUpdated, ThresholdBreached
from shared.ids import new_id
from shared.storage import Document
from shared.tree import lineage


async def on_score_updated(envelopes: Sequence[Envelope[ScoreUpdated]], batch: BatchContext) -> None:
    """Evaluate every rule that watches the updated units; raise or resolve alerts once per transition."""
    scores = [(e, e.data) for e in envelopes]
    orgs = sorted({score.org for _, score in scores})
    rules = [
        repository.rule_from(d)
        async for d in batch.db[repository.RULES].find({"org": {"$in": orgs}}, session=batch.session)
    ]
    watched = [(e, s, r) for e, s in scores for r in rules if r.org == s.org and r.applies_to(s.unit_path, s.period)]
    fingerprints = sorted({fingerprint(r.id, s.unit_path) for _, s, r in watched})
    firing: dict[str, Document] = {
        d["fingerprint"]: d
        async for d in batch.db[repository.ALERTS].find(
            {"fingerprint": {"$in": fingerprints}, "status": "firing"}, session=batch.session
        )
    }
    # In batch order, so a breach and its clearing within one batch both count.
    for envelope, score, rule in watched:
        _apply(envelope, score, rule, firing, batch)


def _apply(
    envelope: Envelope[ScoreUpdated],
    score: ScoreUpdated,
    rule: ThresholdRule,
    firing: dict[str, Document],
    batch: BatchContext,
) -> None:
    figure = score.indicators.get(rule.indicator)
    if figure is None:
        return
    key = fingerprint(rule.id, score.unit_path)
    transition = evaluate(
        rule,
        value=figure.value,
        sample_size=figure.sample_size,
        insufficient=figure.insufficient,
        firing=key in firing,
    )
    if figure.value is None:
        return
    if transition is Transition.BREACH:
        alert = _new_alert(rule, score, key, figure.value, figure.sample_size)
        batch.unit.insert(repository.ALERTS, alert)
        firing[key] = alert
        batch.unit.publish(
            ThresholdBreached(
                **_alert_facts(score, rule, alert, figure.value),
                threshold=rule.threshold,
                level=rule.level,
                sample_size=figure.sample_size,
                period=score.period,
            ),
            cause=envelope,
        )
    elif transition is Transition.CLEAR:
        alert = firing.pop(key)
        batch.unit.write(
            repository.ALERTS,
            UpdateOne(
                {"_id": alert["_id"]},
                {"$set": {"status": "resolved", "resolved_at": datetime.now(UTC), "value": figure.value}},
            ),
        )
        batch.unit.publish(AlertResolved(**_alert_facts(score, rule, alert, figure.value)), cause=envelope)


def _alert_facts(score: ScoreUpdated, rule: ThresholdRule, alert: Document, value: float) -> dict[str, Any]:
    """What both a breach and its resolution say about the alert."""
    return {
        "org": score.org,
        "unit_id": score.unit_id,
        "unit_path": score.unit_path,
        "alert_id": alert["_id"],
        "group_id": alert["_id"],
        "rule_id": rule.id,
        "fingerprint": alert["fingerprint"],
        "indicator": rule.indicator,
        "value": value,
    }


def _new_alert(rule: ThresholdRule, score: ScoreUpdated, key: str, value: float, sample_size: int) -> Document:
    return {
        "_id": new_id("al"),
        "org": score.org,
        "rule_id": rule.id,
        "fingerprint": key,
        "unit_id": score.unit_id,
        "unit_path": score.unit_path,
        "lineage": lineage(score.unit_path),
        "indicator": rule.indicator,
        "status": "firing",
        "level": rule.level,
        "value": value,
        "threshold": rule.threshold,
        "sample_size": sample_size,
        "started_at": datetime.now(UTC),
        "resolved_at": None,
    }
