"""Verified closure: a done action is verified by later recovering scores, reopened when they do not recover."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from shared.auth import issue_token
from shared.events import AlertResolved
from tests.harness import RunningService, Stack, deliver, eventually, handled, unique
from tests.integration.improvement.conftest import (
    action_where,
    actions_of,
    breach,
    client,
    db_of,
    envelope,
    events_of,
    score,
)

pytestmark = pytest.mark.integration


async def _done_action(stack: Stack, improvement: RunningService, org: str, settings: dict) -> dict:
    """A breach's action, taken in hand and done by its responsible person."""
    db = db_of(improvement)
    async with client(stack, improvement, org, "quality_manager") as http:
        response = await http.patch("/api/v1/responsibilities/settings", json=settings)
        assert response.status_code == 200, response.text
        entry = {"scope": "north/b-1", "responsible": "li.wei"}
        assert (await http.post("/api/v1/responsibilities", json=entry)).status_code == 201
    fired = breach(org, "north/b-1", threshold=60, clear_bound=65)
    await deliver(stack, fired)
    await handled(db, fired)
    action = await action_where(db, org, lambda a: a["source"] == "breach")
    # The responsible person works their own action.
    token = issue_token(
        stack.private_key.read_bytes(), org=org, roles=["unit_manager"], scopes=["north/b-1"], subject="li.wei"
    )
    async with httpx.AsyncClient(base_url=improvement.url, headers={"Authorization": f"Bearer {token}"}) as http:
        for to in ("in_progress", "done"):
            response = await http.post(f"/api/v1/actions/{action['_id']}/transitions", json={"to": to})
            assert response.status_code == 200, response.text
    return await action_where(db, org, lambda a: a["status"] == "done")


async def test_taking_an_action_in_hand__publishes_the_acknowledgement(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    action = await _done_action(stack, improvement, org, {"verification_periods": 2})
    updates = [e for e in await events_of(db, "action.updated", org) if e["change"] == "status"]
    assert [(e["previous_status"], e["status"]) for e in updates] == [("open", "in_progress"), ("in_progress", "done")]
    assert updates[0]["alert_id"] == action["alert_id"] and updates[0]["group_id"] == action["group_id"]
    assert action["acknowledged_at"] is not None


async def test_a_done_action_is_verified_by_later_recovering_scores(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    action = await _done_action(stack, improvement, org, {"verification_periods": 2})
    done_at = action["done_at"]
    # Before it was done, and too few samples, and below the clearing bound: none of these count.
    ignored = [
        score(org, "north/b-1", done_at - timedelta(days=1), 90),
        score(org, "north/b-1", done_at + timedelta(days=1), 90, samples=2),
        score(org, "north/b-1", done_at + timedelta(days=2), 63),
    ]
    await deliver(stack, *ignored)
    await handled(db, *ignored)
    assert (await action_where(db, org, lambda a: True))["status"] == "done"

    recovering = [score(org, "north/b-1", done_at + timedelta(days=d), v) for d, v in ((3, 66), (4, 70))]
    await deliver(stack, *recovering)
    await handled(db, *recovering)
    verified = await action_where(db, org, lambda a: a["status"] == "verified")
    assert verified["verification"]["outcome"] == "verified"
    assert "back past 65 for 2 consecutive period(s)" in verified["status_reason"]
    assert "watch_key" not in verified
    last = (await events_of(db, "action.updated", org))[-1]
    assert (last["previous_status"], last["status"], last["by"]) == ("done", "verified", "system")


async def test_an_alert_resolved_alone_does_not_verify(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    action = await _done_action(stack, improvement, org, {})
    resolved = envelope(
        AlertResolved(
            org=org,
            unit_id="b-1",
            unit_path="north/b-1",
            alert_id=action["alert_id"],
            group_id=action["group_id"],
            rule_id="rule-csat",
            fingerprint="fp",
            indicator="csat",
            value=70,
        )
    )
    await deliver(stack, resolved)
    await handled(db, resolved)
    stored = (await actions_of(db, org))[0]
    assert stored["status"] == "done"
    assert stored["alert_resolved_at"] is not None


async def test_a_done_action_is_reopened_when_the_window_ends_without_recovery(
    stack: Stack, improvement: RunningService
):
    org, db = unique("org"), db_of(improvement)
    action = await _done_action(
        stack, improvement, org, {"verification_periods": 2, "verification_window_hours": 3 / 3600}
    )
    still_bad = [score(org, "north/b-1", action["done_at"] + timedelta(hours=h), 50, period="day") for h in (1,)]
    await deliver(stack, *still_bad)
    await handled(db, *still_bad)
    reopened = await action_where(db, org, lambda a: a["status"] == "reopened")
    assert "was not back past 65 for 2 consecutive period(s)" in reopened["status_reason"]
    assert "last value 50" in reopened["status_reason"]
    assert reopened["reopened"] == 1
    assert reopened["due_at"] > action["due_at"]

    async def reopened_event() -> dict | None:
        events = [e for e in await events_of(db, "action.updated", org) if e["status"] == "reopened"]
        return events[0] if events else None

    event = await eventually(reopened_event)
    assert event["previous_status"] == "done" and "was not back past" in event["detail"]
