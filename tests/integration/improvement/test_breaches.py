"""Breaches become actions: one per alert group, never two per alert; linked risks run their playbooks per firing."""

from __future__ import annotations

import asyncio

import pytest

from tests.harness import RunningService, Stack, deliver, handled, unique
from tests.integration.improvement.conftest import (
    actions_of,
    breach,
    client,
    db_of,
    envelope,
    events_of,
    unit_created,
)

pytestmark = pytest.mark.integration


async def test_a_breach_delivered_twice__one_action_and_one_assignment(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    async with client(stack, improvement, org, "quality_manager") as http:
        entry = {"scope": "north/b-1", "responsible": "li.wei", "accountable": "zhang.min"}
        r = await http.post("/api/v1/responsibilities", json=entry)
        assert r.status_code == 201, r.text
    first = breach(org, "north/b-1")
    # The same event twice, and the same alert again under a new event id (a producer that re-sent it).
    again = envelope(first.data)
    await deliver(stack, first, first, again)
    await handled(db, first, again)

    actions = await actions_of(db, org)
    assert len(actions) == 1
    action = actions[0]
    assert (action["assignee"], action["accountable"], action["status"]) == ("li.wei", "zhang.min", "open")
    assert action["alert_id"] == first.data.alert_id
    assert "set on north/b-1 itself" in action["routing"]["reason"]
    assigned = await events_of(db, "action.assigned", org)
    assert len(assigned) == 1
    assert assigned[0]["assignee"] == "li.wei" and assigned[0]["group_id"] == first.data.group_id


async def test_a_second_alert_of_the_group_joins_its_action(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    first = breach(org, "north/b-1", group_id="g-north")
    second = breach(org, "north/b-2", group_id="g-north")
    await deliver(stack, first, second)
    await handled(db, first, second)

    actions = await actions_of(db, org)
    assert len(actions) == 1
    assert sorted(actions[0]["alert_ids"]) == sorted([first.data.alert_id, second.data.alert_id])
    joined = [e for e in await events_of(db, "action.updated", org) if e["change"] == "alert_joined"]
    assert len(joined) == 1 and joined[0]["previous_status"] == joined[0]["status"] == "open"
    assert len(await events_of(db, "action.assigned", org)) == 0  # no owner, no default owner


async def test_a_breach_nobody_owns__is_routed_when_a_default_owner_is_set(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    lonely = breach(org, "south/b-9")
    await deliver(stack, lonely)
    await handled(db, lonely)
    assert [a["assignee"] for a in await actions_of(db, org)] == [None]
    assert await events_of(db, "action.assigned", org) == []

    async with client(stack, improvement, org, "quality_manager") as http:
        response = await http.patch("/api/v1/responsibilities/settings", json={"default_owner": "ops.duty"})
        assert response.status_code == 200, response.text
    actions = await actions_of(db, org)
    assert [a["assignee"] for a in actions] == ["ops.duty"]
    assigned = await events_of(db, "action.assigned", org)
    assert [e["assignee"] for e in assigned] == ["ops.duty"]


async def test_a_rule_linked_to_a_risk__runs_its_playbook_once_per_firing(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    await deliver(stack, unit_created(org, "north"), unit_created(org, "north/b-1"))
    async with client(stack, improvement, org, "quality_manager") as http:
        await http.post(
            "/api/v1/responsibilities", json={"scope": "north", "responsible": "wang.fang", "accountable": "zhao.lei"}
        )
        risk = {
            "title": "Queue overflow at peak hours",
            "scope": "north",
            "likelihood": 4,
            "impact": 4,
            "rule_ids": ["rule-queue"],
            "owner": "ops.head",
            "playbook": [
                {"title": "Open the spare counter", "assignee": "responsible", "due_in_hours": 1},
                {"title": "Call back the waiting customers", "assignee": "accountable", "due_in_hours": 24},
                {"title": "Review the rota", "assignee": "risk_owner", "due_in_hours": 72},
            ],
        }
        created = await http.post("/api/v1/risks", json=risk)
        assert created.status_code == 201, created.text
        risk_id = created.json()["id"]
        assert (created.json()["score"], created.json()["rating"]) == (16, "high")

        fired = breach(org, "north/b-1", rule_id="rule-queue")
        await deliver(stack, fired, fired, envelope(fired.data))
        await handled(db, fired)
        actions = await actions_of(db, org)
        playbook = [a for a in actions if a["source"] == "playbook"]
        assert len([a for a in actions if a["source"] == "breach"]) == 1
        assert [(a["title"], a["assignee"]) for a in sorted(playbook, key=lambda a: a["playbook_step"])] == [
            ("Open the spare counter", "wang.fang"),
            ("Call back the waiting customers", "zhao.lei"),
            ("Review the rota", "ops.head"),
        ]
        assigned = await events_of(db, "action.assigned", org)
        assert sorted(e["assignee"] for e in assigned) == ["ops.head", "wang.fang", "wang.fang", "zhao.lei"]

        # A later firing of the rule (a new alert) runs the playbook once more.
        again = breach(org, "north/b-1", rule_id="rule-queue")
        await deliver(stack, again)
        await handled(db, again)
        assert len([a for a in await actions_of(db, org) if a["source"] == "playbook"]) == 6

        firings = (await http.get(f"/api/v1/risks/{risk_id}/firings")).json()
        assert sorted(f["alert_id"] for f in firings) == sorted([fired.data.alert_id, again.data.alert_id])
        assert {f["outcome"] for f in firings} == {"active"}
        assert (await http.get(f"/api/v1/risks/{risk_id}")).json()["firings"] == 2


async def test_a_rule_not_linked__or_a_unit_outside_the_risk__runs_no_playbook(
    stack: Stack, improvement: RunningService
):
    org, db = unique("org"), db_of(improvement)
    async with client(stack, improvement, org, "quality_manager") as http:
        risk = {
            "title": "Queue overflow",
            "scope": "north",
            "likelihood": 2,
            "impact": 3,
            "rule_ids": ["rule-queue"],
            "owner": "ops.head",
            "playbook": [{"title": "Open the spare counter", "assignee": "risk_owner", "due_in_hours": 1}],
        }
        assert (await http.post("/api/v1/risks", json=risk)).status_code == 201
    other_rule, other_unit = (
        breach(org, "north/b-1", rule_id="rule-csat"),
        breach(org, "south/b-1", rule_id="rule-queue"),
    )
    await deliver(stack, other_rule, other_unit)
    await handled(db, other_rule, other_unit)
    actions = await actions_of(db, org)
    assert sorted((a["source"], a["unit_path"]) for a in actions) == [("breach", "north/b-1"), ("breach", "south/b-1")]


async def test_a_group_action__addresses_the_deepest_unit_that_fired(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    async with client(stack, improvement, org, "quality_manager") as http:
        await http.patch("/api/v1/responsibilities/settings", json={"default_owner": "ops.duty"})
        await http.post("/api/v1/responsibilities", json={"scope": "north/b-1", "responsible": "li.wei"})
        await http.post("/api/v1/responsibilities", json={"scope": "south/b-2", "responsible": "wu.hao"})
    # Together: the region and its branch fire at once (one batch, or two: their keys differ).
    together = [breach(org, "north", group_id="g-north"), breach(org, "north/b-1", group_id="g-north")]
    await deliver(stack, *together)
    await handled(db, *together)
    # Apart: the region fires first (its action goes to the default owner), then the branch.
    region, branch = breach(org, "south", group_id="g-south"), breach(org, "south/b-2", group_id="g-south")
    await deliver(stack, region)
    await handled(db, region)
    await deliver(stack, branch)
    await handled(db, branch)

    actions = {a["group_id"]: a for a in await actions_of(db, org)}
    assert len(actions) == 2
    assert (actions["g-north"]["unit_path"], actions["g-north"]["assignee"]) == ("north/b-1", "li.wei")
    assert (actions["g-south"]["unit_path"], actions["g-south"]["assignee"]) == ("south/b-2", "wu.hao")
    assert actions["g-south"]["title"].endswith("at south/b-2")
    assigned = await events_of(db, "action.assigned", org)

    def assignments(group: str) -> list[tuple[str, bool]]:
        return [(e["assignee"], e["reassigned"]) for e in assigned if e["action_id"] == actions[group]["_id"]]

    assert assignments("g-north") in ([("li.wei", False)], [("ops.duty", False), ("li.wei", True)])
    assert assignments("g-south") == [("ops.duty", False), ("wu.hao", True)]


async def test_a_complaint_rule__an_action_with_follow_up_verified_by_hand(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    complaint = breach(org, "north/b-1", level="red")
    complaint = envelope(
        complaint.data.model_copy(update={"rule_kind": "event", "indicator": "feedback", "clear_bound": None})
    )
    await deliver(stack, complaint)
    await handled(db, complaint)
    action_id = (await actions_of(db, org))[0]["_id"]
    async with client(stack, improvement, org, "quality_manager") as http:
        follow_up = {"contacted_at": "2026-12-03T09:00:00Z", "outcome": "resolved", "notes": "致电道歉并退款"}
        assert (await http.put(f"/api/v1/actions/{action_id}/follow-up", json=follow_up)).status_code == 200
        for to in ("in_progress", "done", "verified"):
            response = await http.post(f"/api/v1/actions/{action_id}/transitions", json={"to": to})
            assert response.status_code == 200, response.text
    action = response.json()
    assert (action["complaint"], action["follow_up"]["outcome"], action["status"]) == (True, "resolved", "verified")
    assert action["verification"] is None


async def test_two_people_take_the_same_action_at_once__one_succeeds(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    fired = breach(org, "north/b-1")
    await deliver(stack, fired)
    await handled(db, fired)
    action_id = (await actions_of(db, org))[0]["_id"]
    async with client(stack, improvement, org, "unit_manager") as http:
        path = f"/api/v1/actions/{action_id}/transitions"
        answers = await asyncio.gather(*(http.post(path, json={"to": "in_progress"}) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    taken = [e for e in await events_of(db, "action.updated", org) if e["status"] == "in_progress"]
    assert len(taken) == 1
    history = (await actions_of(db, org))[0]["history"]
    assert [h.get("to") for h in history if h["what"] == "status"] == ["in_progress"]
