"""Silences, acknowledgement and escalation on the real broker and database, also with two instances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.main import DEFINITION
from shared.app import create_app
from shared.events import ActionUpdated
from tests.harness import RunningService, eventually, staged_events
from tests.integration.alerts.conftest import Org, alerts_settings, db_of, envelope, in_one_batch, score

pytestmark = pytest.mark.integration


async def _settled(org: Org, group_id: str) -> dict | None:
    """The group once its pending notification was decided."""
    db = db_of(org.service)
    group = await db["groups"].find_one({"_id": group_id})
    return group if group and not group["notify_pending"] else None


async def _silence(org: Org, **body) -> dict:
    response = await org.http.post("/api/v1/silences", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_silence__holds_back_the_notification_until_it_ends(org: Org):
    await org.tree("north", "north/b-001")
    now = datetime.now(UTC)
    silence = await _silence(
        org,
        matchers={"scope": "north"},
        starts_at=(now - timedelta(minutes=1)).isoformat(),
        ends_at=(now + timedelta(seconds=4)).isoformat(),
    )
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")

    async def held() -> dict | None:
        found = await db_of(org.service)["alerts"].find_one({"_id": alert["id"]})
        return found if found["suppressed"] == f"silenced:{silence['id']}" else None

    await eventually(held)
    assert await org.notifications(alert["group_id"]) == []

    async def told() -> list:
        return await org.notifications(alert["group_id"])

    [notification] = await eventually(told, timeout=30)
    assert notification["alert_ids"] == [alert["id"]]


async def test_silence__a_recurring_one_holds_only_inside_its_window(org: Org):
    await org.tree("north", "north/b-001", "south", "south/b-002")
    today = datetime.now(UTC).weekday()
    await _silence(org, matchers={"scope": "south"}, weekly=[{"days": list(range(7))}], timezone="UTC")
    await _silence(org, matchers={"scope": "north"}, weekly=[{"days": [(today + 3) % 7]}], timezone="UTC")
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30), score(org.name, "south/b-002", 30))
    alerts = {a["unit_path"]: a for a in await org.alerts(status="firing")}
    north = await eventually(lambda: _settled(org, alerts["north/b-001"]["group_id"]))
    assert len(await org.notifications(north["_id"])) == 1

    async def held() -> dict | None:
        found = await db_of(org.service)["alerts"].find_one({"_id": alerts["south/b-002"]["id"]})
        return found if (found["suppressed"] or "").startswith("silenced:") else None

    stored = await eventually(held)
    assert stored["status"] == "firing"
    assert await org.notifications(stored["group_id"]) == []
    # Held back until the window ends (midnight UTC): the group's notification waits for it.
    job = await db_of(org.service)["jobs"].find_one({"_id": f"notify:{stored['group_id']}:firing"})
    assert job["due_at"].hour == 0 and job["due_at"].minute == 0


async def test_acknowledge__by_a_unit_manager_in_their_subtree_with_a_comment(org: Org):
    await org.tree("north", "north/b-001", "south")
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    await eventually(lambda: _settled(org, alert["group_id"]))  # told of it first
    async with (
        org.client("unit_manager", scopes=("north",)) as manager,
        org.client("unit_manager", scopes=("south",)) as other,
        org.client("analyst") as analyst,
    ):
        assert (await other.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={})).status_code == 404
        assert (await analyst.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={})).status_code == 403
        response = await manager.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"comment": "排队调整中"})
        assert response.status_code == 200, response.text
        again = await manager.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={})
        assert again.status_code == 409
        shown = (await analyst.get(f"/api/v1/alerts/{alert['id']}")).json()
    assert (shown["status"], shown["comment"]) == ("acknowledged", "排队调整中")
    assert [h["status"] for h in shown["history"]] == ["firing", "acknowledged"]
    assert shown["group"]["id"] == alert["group_id"]

    async def acknowledged_event() -> list:
        events = await staged_events(db_of(org.service), "alert.acknowledged")
        return [e for e in events if e["value"]["alert_id"] == alert["id"]]

    [event] = await eventually(acknowledged_event)
    assert event["value"]["comment"] == "排队调整中"

    async def acknowledgement_notice() -> list:
        return [n for n in await org.notifications(alert["group_id"]) if n["kind"] == "acknowledged"]

    [notice] = await eventually(acknowledgement_notice)
    assert notice["alert_ids"] == [alert["id"]]


async def test_acknowledge__when_its_action_is_taken_in_hand_the_whole_group_is(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30), score(org.name, "north", 40))
    branch, region = sorted(await org.alerts(status="firing"), key=lambda a: a["unit_path"], reverse=True)
    assert branch["group_id"] == region["group_id"]
    taken = ActionUpdated(
        org=org.name,
        unit_id="b-001",
        unit_path="north/b-001",
        action_id="act-1",
        alert_id=branch["id"],
        group_id=branch["group_id"],
        status="in_progress",
        previous_status="open",
        by="li.wei",
    )
    await org.send(envelope(taken))
    acknowledged = await org.alerts(status="acknowledged")
    assert sorted(a["unit_path"] for a in acknowledged) == ["north", "north/b-001"]
    assert {a["acknowledged_by"] for a in acknowledged} == {"li.wei"}


async def _chain(org: Org) -> None:
    steps = [
        {"wait_minutes": 5, "notify": ["role:quality_manager"]},
        {"wait_minutes": 10, "notify": ["owner_up", "user:zhang.san"], "repeat": 1},
    ]
    response = await org.http.put("/api/v1/escalations/orange", json={"steps": steps})
    assert response.status_code == 200, response.text


async def _escalations(org: Org, alert_id: str) -> list[int]:
    events = await staged_events(db_of(org.service), "alert.escalated")
    return [e["value"]["step"] for e in events if e["value"]["alert_id"] == alert_id]


async def test_escalation__each_step_once_with_two_instances(org: Org, stack):
    await org.tree("north", "north/b-001")
    await _chain(org)
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    first = org.service.app.state.runtime
    second = await RunningService(
        create_app(
            DEFINITION,
            stack.platform(consumer_group_prefix=first.platform.consumer_group_prefix),
            alerts_settings(first.settings.database),
        )
    ).start()
    try:
        later = datetime.now(UTC) + timedelta(days=1)
        for _ in range(5):
            # Both instances run what is due a day from now, at the same moment.
            await asyncio.gather(first.scheduler.run_due(later), second.app.state.runtime.scheduler.run_due(later))
    finally:
        await second.stop()
    assert await _escalations(org, alert["id"]) == [1, 2, 3]
    stored = await db_of(org.service)["alerts"].find_one({"_id": alert["id"]})
    assert stored["escalation_step"] == 3
    events = await staged_events(db_of(org.service), "alert.escalated")
    assert [e["value"]["targets"] for e in events if e["value"]["alert_id"] == alert["id"]][1] == [
        "owner:north",
        "user:zhang.san",
    ]


async def test_escalation__stops_once_acknowledged(org: Org):
    await org.tree("north", "north/b-001")
    await _chain(org)
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    response = await org.http.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"comment": "on it"})
    assert response.status_code == 200
    await org.service.app.state.runtime.scheduler.run_due(datetime.now(UTC) + timedelta(days=1))
    assert await _escalations(org, alert["id"]) == []
    reminded = await db_of(org.service)["alerts"].find_one({"_id": alert["id"]})
    assert reminded.get("reminders") == 1  # still firing after the patience: notified again


async def test_silence__ended_early_tells_what_it_held_back_at_once(org: Org):
    await org.tree("north", "north/b-001")
    now = datetime.now(UTC)
    silence = await _silence(
        org, matchers={"scope": "north"}, starts_at=now.isoformat(), ends_at=(now + timedelta(days=2)).isoformat()
    )
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")

    async def held() -> dict | None:
        found = await db_of(org.service)["alerts"].find_one({"_id": alert["id"]})
        return found if found["suppressed"] == f"silenced:{silence['id']}" else None

    await eventually(held)
    assert (await org.http.delete(f"/api/v1/silences/{silence['id']}")).status_code == 204

    async def told() -> list:
        return await org.notifications(alert["group_id"])

    [notification] = await eventually(told)
    assert notification["alert_ids"] == [alert["id"]]


async def test_acknowledge__an_action_taken_in_hand_in_the_batch_that_resolves_its_alert_leaves_it_resolved(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    taken = ActionUpdated(
        org=org.name,
        unit_id="b-001",
        unit_path="north/b-001",
        action_id="act-1",
        alert_id=alert["id"],
        group_id=alert["group_id"],
        status="in_progress",
        previous_status="open",
        by="li.wei",
    )
    recovered = score(org.name, "north/b-001", 90)
    await in_one_batch(org.service, ("on_score_updated", [recovered]), ("on_action_updated", [envelope(taken)]))
    [resolved] = await org.alerts(status="resolved")
    assert resolved["id"] == alert["id"]
    assert await org.alerts(status="acknowledged") == []
