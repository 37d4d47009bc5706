"""Event handlers of the improvement service: breaches in, actions assigned."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.improvement import repository
from services.improvement.domain import due_at, route
from shared.consumer import BatchContext
from shared.events import ActionAssigned, Envelope, ThresholdBreached
from shared.ids import new_id
from shared.tree import lineage


async def on_threshold_breached(envelopes: Sequence[Envelope[ThresholdBreached]], batch: BatchContext) -> None:
    """Open one action per breach, routed to the most specific responsible person."""
    breaches = [(e, e.data) for e in envelopes]
    orgs = sorted({breach.org for _, breach in breaches})
    matrix: dict[str, list[repository.Responsibility]] = {org: [] for org in orgs}
    async for document in batch.db[repository.RESPONSIBILITIES].find({"org": {"$in": orgs}}, session=batch.session):
        matrix[document["org"]].append(repository.responsibility_from(document))
    known = {
        d["alert_id"]
        async for d in batch.db[repository.ACTIONS].find(
            {"alert_id": {"$in": [breach.alert_id for _, breach in breaches]}},
            {"alert_id": 1},
            session=batch.session,  # type: ignore[attr-defined]
        )
    }
    now = datetime.now(UTC)
    for envelope, breach in breaches:
        if breach.alert_id in known:
            continue
        known.add(breach.alert_id)
        owner = route(matrix[breach.org], breach.unit_path, breach.indicator)
        action: dict[str, Any] = {
            "_id": new_id("act"),
            "org": breach.org,
            "alert_id": breach.alert_id,
            "unit_id": breach.unit_id,
            "unit_path": breach.unit_path,
            "lineage": lineage(breach.unit_path),
            "title": f"{breach.indicator} {breach.value:g} breached {breach.threshold:g} at {breach.unit_path}",
            "assignee": owner.responsible if owner else None,
            "accountable": owner.accountable if owner else None,
            "status": "open" if owner else "unassigned",
            "level": breach.level,
            "indicator": breach.indicator,
            "due_at": due_at(breach.level, now),
            "created_at": now,
        }
        batch.unit.insert(repository.ACTIONS, action)
        if owner:
            batch.unit.publish(
                ActionAssigned(
                    org=breach.org,
                    unit_id=breach.unit_id,
                    unit_path=breach.unit_path,
                    action_id=action["_id"],
                    alert_id=breach.alert_id,
                    assignee=owner.responsible,
                    title=action["title"],
                    due_at=action["due_at"],
                    level=breach.level,
                ),
                cause=envelope,
            )
