"""Plans move through PDCA and follow their target on the scores; figures of the work, also as CSV; moves."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.improvement.main import DEFINITION
from shared.app import create_app
from shared.events import UnitChanged
from tests.harness import RunningService, Stack, deliver, eventually, handled, unique
from tests.integration.improvement.conftest import (
    action_where,
    actions_of,
    breach,
    client,
    db_of,
    envelope,
    score,
    settings,
    unit_created,
)

pytestmark = pytest.mark.integration


async def _units(stack: Stack, improvement: RunningService, org: str, *paths: str) -> None:
    units = [unit_created(org, p) for p in paths]
    await deliver(stack, *units)
    await handled(db_of(improvement), *units)


async def test_a_plan__goes_round_pdca_and_shows_progress_from_the_scores(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    await _units(stack, improvement, org, "north", "north/b-1")
    async with client(stack, improvement, org, "quality_manager") as http:
        created = await http.post(
            "/api/v1/plans",
            json={
                "title": "CSAT back to 80",
                "unit_id": "b-1",
                "period": "week",
                "target": {"indicator": "csat", "value": 80, "date": "2027-03-31", "baseline": 60},
            },
        )
        assert created.status_code == 201, created.text
        plan_id = created.json()["id"]
        skipped = await http.post(f"/api/v1/plans/{plan_id}/phase", json={"to": "check"})
        assert skipped.status_code == 409
        assert skipped.json()["errors"][0]["allowed"] == ["do"]

        week = score(org, "north/b-1", datetime(2026, 11, 30, tzinfo=UTC), 70, period="week")
        await deliver(stack, week)
        await handled(db, week)
        plan = (await http.get(f"/api/v1/plans/{plan_id}")).json()
        assert (plan["current_value"], plan["progress"], plan["reached"]) == (70, 0.5, False)

        grouped = {"unit_id": "b-1", "title": "Lunch-time rota", "assignee": "li.wei", "plan_id": plan_id}
        assert (await http.post("/api/v1/actions", json=grouped)).status_code == 201
        assert (await http.post("/api/v1/actions", json={**grouped, "plan_id": "plan_missing"})).status_code == 404
        assert (await http.get(f"/api/v1/plans/{plan_id}")).json()["actions"] == {"open": 1}

        assert (await http.post(f"/api/v1/plans/{plan_id}/phase", json={"to": "do"})).status_code == 200
        assert (await http.post(f"/api/v1/plans/{plan_id}/phase", json={"to": "check"})).status_code == 200
        no_learning = await http.post(f"/api/v1/plans/{plan_id}/phase", json={"to": "act"})
        assert no_learning.status_code == 409
        for to, learning in (("act", "午间加开窗口有效"), ("plan", "写入排班制度")):
            response = await http.post(f"/api/v1/plans/{plan_id}/phase", json={"to": to, "learning": learning})
            assert response.status_code == 200, response.text
        plan = response.json()
    assert (plan["phase"], plan["cycle"]) == ("plan", 2)
    assert [(item["phase"], item["learning"]) for item in plan["learnings"]] == [
        ("check", "午间加开窗口有效"),
        ("act", "写入排班制度"),
    ]


async def test_figures__of_worked_actions_as_json_and_csv(stack: Stack, improvement: RunningService):
    org = unique("org")
    await _units(stack, improvement, org, "north", "north/b-1", "south", "south/b-2")
    async with client(stack, improvement, org, "quality_manager") as http:
        elsewhere = {"unit_id": "b-2", "title": "Elsewhere", "assignee": "zhao"}
        assert (await http.post("/api/v1/actions", json=elsewhere)).status_code == 201
        ids = []
        for title in ("Retrain the counter staff", "Fix the queue display"):
            created = await http.post("/api/v1/actions", json={"unit_id": "b-1", "title": title, "assignee": "li.wei"})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        for to in ("in_progress", "done", "verified"):
            response = await http.post(f"/api/v1/actions/{ids[0]}/transitions", json={"to": to})
            assert response.status_code == 200, response.text
        figures = (await http.get("/api/v1/actions/figures", params={"unit_id": "north"})).json()
        assert figures["actions"] == 2
        assert figures["time_to_acknowledge"]["count"] == 1
        assert (figures["on_time_rate"], figures["verified_rate"], figures["reopened_rate"]) == (1.0, 1.0, 0.0)
        assert figures["open_by_owner"] == {"li.wei": 1}
        response = await http.get("/api/v1/actions/figures", params={"unit_id": "north", "format": "csv"})
        everywhere = (await http.get("/api/v1/actions/figures")).json()
        assert (everywhere["actions"], everywhere["open_by_owner"]) == (3, {"li.wei": 1, "zhao": 1})
    async with client(stack, improvement, org, "analyst", scopes=("south",)) as http:
        assert (await http.get("/api/v1/actions/figures")).json()["open_by_owner"] == {"zhao": 1}
    assert response.headers["content-type"].startswith("text/csv")
    rows = dict(csv.reader(io.StringIO(response.text)))
    assert rows["verified_rate"] == "1.0" and rows["open_by_owner.li.wei"] == "1"


async def test_a_moved_unit__its_actions_plans_entries_and_risks_follow_it(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    await _units(stack, improvement, org, "north", "south", "north/b-1")
    fired = breach(org, "north/b-1")
    await deliver(stack, fired)
    await handled(db, fired)
    await action_where(db, org, lambda a: True)
    target = {"indicator": "csat", "value": 80, "date": "2027-03-31"}
    configured = {
        "plans": {"title": "CSAT back", "unit_id": "b-1", "target": target},
        "responsibilities": {"scope": "north/b-1", "responsible": "li.wei"},
        "risks": {"title": "queues", "scope": "north/b-1", "likelihood": 3, "impact": 3, "owner": "li.wei"},
    }
    async with client(stack, improvement, org, "quality_manager") as http:
        made = {name: (await http.post(f"/api/v1/{name}", json=body)).json()["id"] for name, body in configured.items()}
    moved = envelope(
        UnitChanged(
            org=org,
            unit_id="b-1",
            unit_path="south/b-1",
            change="moved",
            name="B-1",
            kind="unit",
            parent_id="south",
            previous_path="north/b-1",
        )
    )
    await deliver(stack, moved)
    await handled(db, moved)
    action = (await actions_of(db, org))[0]
    assert (action["unit_path"], action["lineage"]) == ("south/b-1", ["south", "south/b-1"])
    async with client(stack, improvement, org, "analyst", scopes=("south",)) as http:
        assert (await http.get(f"/api/v1/actions/{action['_id']}")).status_code == 200
        assert [a["id"] for a in (await http.get("/api/v1/actions")).json()["items"]] == [action["_id"]]
        for name, ident in made.items():
            assert [item["id"] for item in (await http.get(f"/api/v1/{name}")).json()["items"]] == [ident]
        assert (await http.get(f"/api/v1/plans/{made['plans']}")).json()["unit_path"] == "south/b-1"
        assert (await http.get(f"/api/v1/risks/{made['risks']}")).json()["scope"] == "south/b-1"
    async with client(stack, improvement, org, "analyst", scopes=("north",)) as http:
        assert (await http.get("/api/v1/actions")).json()["items"] == []
        for name in made:
            assert (await http.get(f"/api/v1/{name}")).json()["items"] == []


async def test_actions_nobody_owned__are_routed_when_the_service_starts(stack: Stack, improvement: RunningService):
    org, db = unique("org"), db_of(improvement)
    lonely = breach(org, "east/b-7")
    await deliver(stack, lonely)
    await handled(db, lonely)
    assert (await actions_of(db, org))[0]["assignee"] is None
    # The default owner arrives while no instance routes (written straight into the settings).
    await db["org_settings"].update_one({"_id": org}, {"$set": {"default_owner": "ops.duty"}}, upsert=True)
    restarted = await RunningService(create_app(DEFINITION, stack.platform(), settings(db.name))).start()
    try:

        async def routed() -> bool:
            return (await actions_of(db, org))[0]["assignee"] == "ops.duty"

        assert await eventually(routed)
    finally:
        await restarted.stop()


async def test_due_dates_in_the_organisations_working_hours(stack: Stack, improvement: RunningService):
    org = unique("org")
    await _units(stack, improvement, org, "north", "north/b-1")
    calendar = {
        "timezone": "Asia/Shanghai",
        "workdays": [0, 1, 2, 3, 4],
        "start": "09:00",
        "end": "18:00",
        "holidays": [],
        "extra_workdays": [],
    }
    async with client(stack, improvement, org, "quality_manager") as http:
        settings_in = {"calendar": calendar, "use_calendar": True, "deadline_hours": {"red": 9}}
        response = await http.patch("/api/v1/responsibilities/settings", json=settings_in)
        assert response.status_code == 200, response.text
        assert response.json()["deadline_hours"]["red"] == 9 and response.json()["use_calendar"] is True
        created = await http.post(
            "/api/v1/actions", json={"unit_id": "b-1", "title": "Counter closed", "level": "red", "assignee": "li.wei"}
        )
    action = created.json()
    created_at = datetime.fromisoformat(action["created_at"])
    due_at = datetime.fromisoformat(action["due_at"])
    # Nine working hours are one whole working day: at least a day later, and on a weekday in Shanghai.
    assert due_at - created_at >= timedelta(hours=9)
    local = due_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert local.weekday() < 5 and time(9) <= local.time() <= time(18)


async def test_the_actions_list__newest_first_filtered_and_paged(stack: Stack, improvement: RunningService):
    org = unique("org")
    await _units(stack, improvement, org, "north", "north/b-1", "north/b-2")
    async with client(stack, improvement, org, "quality_manager") as http:
        ids = []
        for unit_id, title, level in (("b-1", "one", "red"), ("b-2", "two", "yellow"), ("b-1", "three", "red")):
            body = {"unit_id": unit_id, "title": title, "level": level, "assignee": "li.wei"}
            ids.append((await http.post("/api/v1/actions", json=body)).json()["id"])
        await http.post(f"/api/v1/actions/{ids[2]}/transitions", json={"to": "in_progress"})

        async def walk(**params: str) -> list[str]:
            seen: list[str] = []
            cursor = None
            while True:
                query: dict[str, str | int] = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
                body = (await http.get("/api/v1/actions", params=query)).json()
                seen += [item["id"] for item in body["items"]]
                cursor = body["next_cursor"]
                if cursor is None:
                    return seen

        assert await walk() == list(reversed(ids))
        assert await walk(unit_id="b-1") == [ids[2], ids[0]]
        assert await walk(level="red", status="open") == [ids[0]]
        assert await walk(status="in_progress") == [ids[2]]
        items = (await http.get("/api/v1/actions")).json()["items"]
    assert all("page_keys" not in item and "lineage" not in item for item in items)
