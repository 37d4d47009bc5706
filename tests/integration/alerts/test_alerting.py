"""Alerts end to end on the real broker and database: one alert per problem, one group and one
notification per regional decline, recovery, event rules."""

from __future__ import annotations

import pytest

from shared.events import UnitChanged
from tests.harness import eventually, staged_events
from tests.integration.alerts.conftest import (
    Org,
    WebhookReceiver,
    complaint,
    db_of,
    envelope,
    in_one_batch,
    new_webhook_secret,
    rating,
    score,
)

pytestmark = pytest.mark.integration


async def _notified_group(org: Org, group_id: str) -> dict | None:
    db = db_of(org.service)
    group = await db["groups"].find_one({"_id": group_id})
    pending = await db["jobs"].find_one({"_id": f"notify:{group_id}:firing"})
    return group if group and group["notified_at"] and pending is None else None


async def _breaches(org: Org) -> list[dict]:
    return [e for e in await staged_events(db_of(org.service), "threshold.breached") if e["value"]["org"] == org.name]


async def test_decline__fires_one_alert_and_one_breach_even_when_the_score_comes_twice(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(indicator="csat", threshold=60, clear_bound=65, min_samples=5, level="orange")
    low = score(org.name, "north/b-001", 40)
    await org.send(low, low)
    await org.send(score(org.name, "north/b-001", 35))

    firing = await org.alerts(status="firing")
    assert [(a["unit_path"], a["value"], a["threshold"], a["level"]) for a in firing] == [
        ("north/b-001", 40, 60, "orange")
    ]
    breaches = await _breaches(org)
    assert len(breaches) == 1
    breach = breaches[0]["value"]
    assert breach["alert_id"] == firing[0]["id"] and breach["group_id"] == firing[0]["group_id"]
    assert (breach["clear_bound"], breach["comparison"], breach["rule_revision"]) == (65, "below", 1)


async def test_regional_decline__is_one_group_and_one_notification_naming_the_branches(
    org: Org, receiver: tuple[WebhookReceiver, str]
):
    hooks, url = receiver
    branches = [f"north/b-{i:03}" for i in range(1, 7)]
    await org.tree("north", *branches, "south", "south/b-100")
    response = await org.http.post(
        "/api/v1/channels",
        json={"name": "ops", "config": {"type": "webhook", "url": url, "secret": hooks.secret, "language": "en"}},
    )
    assert response.status_code == 201, response.text
    assert "secret" not in response.json()["config"]
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(*[score(org.name, path, 30) for path in ["north", *branches]])

    firing = await org.alerts(status="firing")
    assert len(firing) == 7
    assert len({a["group_id"] for a in firing}) == 1
    group = await eventually(lambda: _notified_group(org, firing[0]["group_id"]))
    assert sorted(group["unit_paths"]) == sorted(["north", *branches])
    notifications = await org.notifications(group["_id"])
    assert len(notifications) == 1
    assert sorted(notifications[0]["unit_paths"]) == sorted(["north", *branches])
    await eventually(lambda: _received(hooks, 1))
    assert hooks.rejected == []
    assert sorted(hooks.received[0]["body"]["data"]["unit_paths"]) == sorted(["north", *branches])

    # Another region is another problem: its own group.
    await org.send(score(org.name, "south/b-100", 30))
    south = [a for a in await org.alerts(status="firing") if a["unit_path"] == "south/b-100"]
    assert len(south) == 1 and south[0]["group_id"] != firing[0]["group_id"]


async def _received(hooks: WebhookReceiver, count: int) -> bool:
    return len(hooks.received) >= count


async def test_recovery__resolves_the_alert_and_publishes_alert_resolved(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(indicator="csat", threshold=60, clear_bound=70, min_samples=5, level="yellow")
    await org.send(score(org.name, "north/b-001", 50))
    [alert] = await org.alerts(status="firing")
    await org.send(score(org.name, "north/b-001", 65))  # inside the hysteresis band: still firing
    assert [a["id"] for a in await org.alerts(status="firing")] == [alert["id"]]
    await org.send(score(org.name, "north/b-001", 75))

    [resolved] = await org.alerts(status="resolved")
    assert resolved["id"] == alert["id"] and resolved["value"] == 75
    assert [h["status"] for h in resolved["history"]] == ["firing", "resolved"]
    events = [e for e in await staged_events(db_of(org.service), "alert.resolved") if e["value"]["org"] == org.name]
    assert [e["value"]["alert_id"] for e in events] == [alert["id"]]
    assert events[0]["value"]["group_id"] == alert["group_id"]


async def test_event_rule__a_serious_complaint_fires_at_once(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(kind="event", match="complaint", severity_at_least="serious", level="red")
    await org.send(complaint(org.name, "north/b-001", "moderate"))
    assert await org.alerts() == []
    await org.send(complaint(org.name, "north/b-001", "critical"), complaint(org.name, "north/b-001", "serious"))
    [alert] = await org.alerts(status="firing")
    assert (alert["unit_path"], alert["kind"], alert["level"]) == ("north/b-001", "event", "red")
    assert len(await _breaches(org)) == 1
    # Nothing clears a complaint but time or a person: the quality manager resolves it, saying why.
    response = await org.http.post(f"/api/v1/alerts/{alert['id']}/resolve", json={"comment": "客户已回访"})
    assert response.status_code == 200, response.text
    assert response.json()["history"][-1] == {
        **response.json()["history"][-1],
        "status": "resolved",
        "why": "客户已回访",
    }
    assert (await org.http.post(f"/api/v1/alerts/{alert['id']}/resolve", json={})).status_code == 409
    resolved = [e for e in await staged_events(db_of(org.service), "alert.resolved") if e["value"]["org"] == org.name]
    assert [e["value"]["alert_id"] for e in resolved] == [alert["id"]]


async def test_delivery__a_failing_receiver_gets_the_same_signed_message_again(
    org: Org, receiver: tuple[WebhookReceiver, str]
):
    hooks, url = receiver
    hooks.failures = 1
    await org.tree("north", "north/b-001")
    config = {"type": "webhook", "url": url, "secret": hooks.secret}
    assert (await org.http.post("/api/v1/channels", json={"name": "ops", "config": config})).status_code == 201
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="red")
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    await eventually(lambda: _received(hooks, 1), timeout=60)

    detail = (await org.http.get(f"/api/v1/alerts/{alert['id']}")).json()
    [delivery] = detail["deliveries"]
    assert delivery["status"] == "sent"
    assert [a["ok"] for a in delivery["attempts"]] == [False, True]
    assert hooks.received[0]["id"] == delivery["id"]  # webhook-id: the same on every try
    assert hooks.rejected == []


async def test_move__a_moved_unit_keeps_its_alert_which_resolves_at_its_new_place(org: Org):
    await org.tree("north", "north/b-001", "south")
    await org.rule(indicator="csat", threshold=60, min_samples=5)
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    moved = UnitChanged(
        org=org.name,
        unit_id="b-001",
        unit_path="south/b-001",
        change="moved",
        name="B-001",
        kind="branch",
        parent_id="south",
        previous_path="north/b-001",
    )
    await org.send(envelope(moved), score(org.name, "south/b-001", 20))
    [still] = await org.alerts(status="firing")
    assert (still["id"], still["unit_path"]) == (alert["id"], "south/b-001")
    # Listed under its new subtree only: its list keys followed the move.
    assert [a["id"] for a in await org.alerts(unit="south", status="firing")] == [alert["id"]]
    assert await org.alerts(unit="north") == []
    await org.send(score(org.name, "south/b-001", 90))
    [resolved] = await org.alerts(status="resolved")
    assert resolved["id"] == alert["id"]
    assert await org.alerts(status="firing") == []


async def test_move__rules_silences_and_channels_set_on_the_unit_move_with_it(org: Org):
    await org.tree("north", "north/b-001", "south")
    rule = await org.rule(indicator="csat", threshold=60, min_samples=5, scope="north/b-001")
    silence = await org.http.post(
        "/api/v1/silences", json={"matchers": {"scope": "north/b-001", "levels": ["red"]}, "weekly": [{"days": [0]}]}
    )
    channel = await org.http.post(
        "/api/v1/channels",
        json={
            "name": "b-001 duty",
            "scope": "north/b-001",
            "config": {"type": "webhook", "url": "https://hooks.example.com/b-001", "secret": new_webhook_secret()},
        },
    )
    assert silence.status_code == 201 and channel.status_code == 201, (silence.text, channel.text)
    moved = UnitChanged(
        org=org.name,
        unit_id="b-001",
        unit_path="south/b-001",
        change="moved",
        name="B-001",
        kind="branch",
        parent_id="south",
        previous_path="north/b-001",
    )
    await org.send(envelope(moved))
    assert (await org.http.get(f"/api/v1/rules/{rule['id']}")).json()["scope"] == "south/b-001"
    assert (await org.http.get(f"/api/v1/silences/{silence.json()['id']}")).json()["matchers"]["scope"] == "south/b-001"
    assert (await org.http.get(f"/api/v1/channels/{channel.json()['id']}")).json()["scope"] == "south/b-001"
    # Listed for the unit's new region, not its old one.
    south = org.stack.headers(org.name, "analyst", scopes=["south"])
    north = org.stack.headers(org.name, "analyst", scopes=["north"])
    for listed in ("rules", "silences", "channels"):
        assert len((await org.http.get(f"/api/v1/{listed}", headers=south)).json()["items"]) == 1
        assert (await org.http.get(f"/api/v1/{listed}", headers=north)).json()["items"] == []
    # The rule still watches the unit at its new place.
    await org.send(score(org.name, "south/b-001", 30))
    [alert] = await org.alerts(status="firing")
    assert (alert["rule_id"], alert["unit_path"]) == (rule["id"], "south/b-001")


async def test_for__a_breach_fires_only_once_it_has_held_long_enough_without_a_new_score(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(indicator="csat", threshold=60, min_samples=5, for_seconds=5)
    await org.send(score(org.name, "north/b-001", 30))
    assert await org.alerts() == []  # pending: the condition has not held for 5 s yet

    async def fired() -> list:
        return await org.alerts(status="firing")

    [alert] = await eventually(fired)
    assert alert["value"] == 30


async def test_burn_rate__bad_ratings_burn_the_branch_and_its_region_in_one_group(org: Org):
    await org.tree("north", "north/b-001")
    window = {"burn_rate": 14.4, "long_seconds": 3600, "short_seconds": 300}
    await org.rule(kind="burn_rate", objective=0.99, windows=[window], min_samples=5, level="red")
    await org.send(*[rating(org.name, "north/b-001", 1) for _ in range(6)])
    firing = await org.alerts(status="firing")
    assert sorted(a["unit_path"] for a in firing) == ["north", "north/b-001"]
    assert len({a["group_id"] for a in firing}) == 1
    assert all(a["value"] == 0 and a["threshold"] == pytest.approx(85.6) for a in firing)


async def test_inhibition__a_red_alert_holds_back_lower_ones_beneath_it_until_it_resolves(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(name="red floor", indicator="csat", threshold=40, clear_bound=45, depths=[1], level="red")
    await org.rule(name="orange floor", indicator="csat", threshold=60, depths=[2], level="orange")
    await org.send(score(org.name, "north", 30), score(org.name, "north/b-001", 50))
    alerts = {a["level"]: a for a in await org.alerts(status="firing")}
    assert set(alerts) == {"red", "orange"}
    orange = alerts["orange"]

    async def inhibited() -> dict | None:
        found = await db_of(org.service)["alerts"].find_one({"_id": orange["id"]})
        return found if found["suppressed"] == "inhibited" else None

    await eventually(inhibited)
    assert await org.notifications(orange["group_id"]) == []
    await org.send(score(org.name, "north", 80))  # the red alert resolves: the orange one is told now

    async def told() -> list:
        return await org.notifications(orange["group_id"])

    [notification] = await eventually(told)
    assert notification["alert_ids"] == [orange["id"]]


async def test_grouping__a_group_takes_new_alerts_only_inside_its_window(org: Org):
    await org.tree("north", "north/b-1", "north/b-2", "north/b-3")
    await org.rule(indicator="csat", threshold=60, min_samples=5)
    await org.send(score(org.name, "north/b-1", 30))
    # As if the window had passed: b-2's decline is another problem, with a group of its own…
    await in_one_batch(org.service, ("on_score_updated", [score(org.name, "north/b-2", 30)]), group_window_seconds=0)
    # …which b-3 joins inside its window.
    await in_one_batch(org.service, ("on_score_updated", [score(org.name, "north/b-3", 30)]))
    groups = {a["unit_path"]: a["group_id"] for a in await org.alerts(status="firing")}
    assert groups["north/b-1"] != groups["north/b-2"] == groups["north/b-3"]
    first = await db_of(org.service)["groups"].find_one({"_id": groups["north/b-1"]})
    assert (first["open"], first["joinable"]) == (True, False)
