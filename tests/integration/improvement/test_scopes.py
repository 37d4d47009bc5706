"""Every endpoint answers only within the token's organisation and subtrees; changes need their roles."""

from __future__ import annotations

import pytest

from tests.harness import RunningService, Stack, deliver, handled, unique
from tests.integration.improvement.conftest import action_where, breach, client, db_of, unit_created

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def world(stack: Stack, improvement: RunningService) -> dict[str, str]:
    """An organisation with two regions, an entry, a plan, a risk and an action on north/b-1."""
    org, db = unique("org"), db_of(improvement)
    units = [unit_created(org, p) for p in ("north", "north/b-1", "south", "south/b-2")]
    await deliver(stack, *units)
    await handled(db, *units)
    async with client(stack, improvement, org, "quality_manager") as http:
        entry_in = {
            "scope": "north/b-1",
            "responsible": "li.wei",
            "people": [{"id": "li.wei", "name": "李伟", "contacts": {"wecom": "LiWei", "phone": "+86 10 0000 0000"}}],
        }
        entry = (await http.post("/api/v1/responsibilities", json=entry_in)).json()
        plan = await http.post(
            "/api/v1/plans",
            json={
                "title": "CSAT back to 80",
                "unit_id": "b-1",
                "target": {"indicator": "csat", "value": 80, "date": "2027-03-31", "baseline": 55},
            },
        )
        assert plan.status_code == 201, plan.text
        risk = await http.post(
            "/api/v1/risks",
            json={"title": "Staff shortage", "scope": "north/b-1", "likelihood": 3, "impact": 2, "owner": "li.wei"},
        )
        assert risk.status_code == 201, risk.text
    fired = breach(org, "north/b-1")
    await deliver(stack, fired)
    await handled(db, fired)
    action = await action_where(db, org, lambda a: True)
    return {
        "org": org,
        "entry": entry["id"],
        "plan": plan.json()["id"],
        "risk": risk.json()["id"],
        "action": action["_id"],
    }


def paths(world: dict[str, str]) -> list[str]:
    return [
        f"/api/v1/responsibilities/{world['entry']}",
        f"/api/v1/plans/{world['plan']}",
        f"/api/v1/risks/{world['risk']}",
        f"/api/v1/risks/{world['risk']}/firings",
        f"/api/v1/actions/{world['action']}",
        "/api/v1/responsibilities/owner?unit_id=b-1&indicator=csat",
    ]


async def test_own_subtree__sees_everything(stack: Stack, improvement: RunningService, world: dict[str, str]):
    async with client(stack, improvement, world["org"], "analyst", scopes=("north",)) as http:
        for path in paths(world):
            assert (await http.get(path)).status_code == 200, path
        owner = (
            await http.get("/api/v1/responsibilities/owner", params={"unit_id": "b-1", "indicator": "csat"})
        ).json()
        assert owner["responsible"] == "li.wei" and owner["entry_id"] == world["entry"]
        assert owner["people"] == [
            {"id": "li.wei", "name": "李伟", "contacts": {"wecom": "LiWei", "phone": "+86 10 0000 0000"}}
        ]
        listed = (await http.get("/api/v1/actions")).json()["items"]
        assert [a["id"] for a in listed] == [world["action"]]


@pytest.mark.parametrize("who", ["other organisation", "sibling subtree"])
async def test_outside__answers_404_as_for_missing(
    stack: Stack, improvement: RunningService, world: dict[str, str], who: str
):
    org, scopes = (unique("org"), ("*",)) if who == "other organisation" else (world["org"], ("south",))
    async with client(stack, improvement, org, "quality_manager", scopes=scopes) as http:
        for path in paths(world):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"
        assert (await http.get("/api/v1/actions")).json()["items"] == []
        assert (await http.get("/api/v1/plans")).json()["items"] == []
        transition = await http.post(f"/api/v1/actions/{world['action']}/transitions", json={"to": "in_progress"})
        assert transition.status_code == 404
        assert (await http.delete(f"/api/v1/risks/{world['risk']}")).status_code == 404


async def test_without_the_role__403(stack: Stack, improvement: RunningService, world: dict[str, str]):
    async with client(stack, improvement, world["org"], "analyst") as http:
        assert (await http.post("/api/v1/responsibilities", json={"responsible": "x"})).status_code == 403
        assert (await http.patch("/api/v1/responsibilities/settings", json={"default_owner": "x"})).status_code == 403
        assert (await http.delete(f"/api/v1/risks/{world['risk']}")).status_code == 403
        response = await http.post(f"/api/v1/actions/{world['action']}/transitions", json={"to": "in_progress"})
        assert response.status_code == 403
        assert (await http.post(f"/api/v1/actions/{world['action']}/comments", json={"text": "hi"})).status_code == 403
    async with client(stack, improvement, world["org"], "unit_manager", scopes=("north",)) as http:
        assert (await http.post("/api/v1/plans/x/phase", json={"to": "do"})).status_code == 403


async def test_a_written_scope_must_lie_inside_the_writers_own(
    stack: Stack, improvement: RunningService, world: dict[str, str]
):
    async with client(stack, improvement, world["org"], "quality_manager", scopes=("north",)) as http:
        outside = await http.post("/api/v1/responsibilities", json={"scope": "south", "responsible": "x"})
        assert outside.status_code == 403
        whole = await http.post("/api/v1/responsibilities", json={"scope": "*", "responsible": "x"})
        assert whole.status_code == 403
        inside = await http.post("/api/v1/responsibilities", json={"scope": "north/b-1/desk", "responsible": "x"})
        assert inside.status_code == 201


async def test_a_refused_transition__409_naming_the_current_and_allowed_states(
    stack: Stack, improvement: RunningService, world: dict[str, str]
):
    async with client(stack, improvement, world["org"], "unit_manager", scopes=("north",)) as http:
        response = await http.post(f"/api/v1/actions/{world['action']}/transitions", json={"to": "verified"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["current_state"] == "open"
    assert problem["errors"][0]["allowed"] == ["in_progress"]
    assert "it is open; allowed from there: in_progress" in problem["detail"]


async def test_working_an_action__comments_root_cause_measures_history(
    stack: Stack, improvement: RunningService, world: dict[str, str]
):
    action = world["action"]
    async with client(stack, improvement, world["org"], "unit_manager", scopes=("north/b-1",)) as http:
        assert (await http.post(f"/api/v1/actions/{action}/comments", json={"text": "两个窗口关闭"})).status_code == 201
        cause = {"category": "people", "description": "午间只有一名柜员"}
        assert (await http.put(f"/api/v1/actions/{action}/root-cause", json=cause)).status_code == 200
        measures = {"corrective": ["open the spare counter"], "preventive": ["lunch rota"]}
        assert (await http.put(f"/api/v1/actions/{action}/measures", json=measures)).status_code == 200
        follow_up = {"contacted_at": "2026-12-01T10:00:00Z", "outcome": "resolved"}
        assert (await http.put(f"/api/v1/actions/{action}/follow-up", json=follow_up)).status_code == 422
        body = (await http.get(f"/api/v1/actions/{action}")).json()
    assert body["comments"][0]["text"] == "两个窗口关闭"
    assert body["root_cause"]["category"] == "people"
    assert body["preventive"] == ["lunch rota"]
    assert [h["what"] for h in body["history"]] == ["created", "commented", "root_cause", "measures"]


async def test_every_change__is_audited_whatever_its_scope(
    stack: Stack, improvement: RunningService, world: dict[str, str]
):
    async with client(stack, improvement, world["org"], "quality_manager") as http:
        whole = (await http.post("/api/v1/responsibilities", json={"scope": "*", "responsible": "quality.head"})).json()
        changed = await http.patch(f"/api/v1/responsibilities/{whole['id']}", json={"accountable": "ceo"})
        assert changed.status_code == 200 and changed.json()["accountable"] == "ceo"
        assert (await http.patch("/api/v1/responsibilities/settings", json={"recurrence_days": 14})).status_code == 200
        rated = await http.patch(f"/api/v1/risks/{world['risk']}", json={"likelihood": 5, "impact": 5})
        assert (rated.json()["score"], rated.json()["rating"]) == (25, "critical")
        renamed = await http.patch(f"/api/v1/plans/{world['plan']}", json={"title": "CSAT back to 85"})
        assert renamed.status_code == 200, renamed.text
        made = await http.post("/api/v1/actions", json={"unit_id": "b-1", "title": "回访投诉客户"})
        assert made.status_code == 201, made.text
        started = await http.post(f"/api/v1/actions/{made.json()['id']}/transitions", json={"to": "in_progress"})
        assert started.status_code == 200, started.text
    async with client(stack, improvement, world["org"], "admin") as http:
        entries = (await http.get("/api/v1/audit/improvement", params={"limit": 500})).json()["items"]
        # Only an organisation-wide admin reads the log, so subtree objects are recorded like the others.
        scoped = stack.headers(world["org"], "admin", scopes=["north"])
        assert (await http.get("/api/v1/audit/improvement", headers=scoped)).status_code == 403
    seen = {(e["action"], e["kind"], e["object_id"]) for e in entries}
    assert {("create", "responsibility", whole["id"]), ("update", "responsibility", whole["id"])} <= seen
    assert ("update", "improvement_settings", world["org"]) in seen
    assert {("update", "risk", world["risk"]), ("update", "plan", world["plan"])} <= seen
    assert {("create", "action", made.json()["id"]), ("transition", "action", made.json()["id"])} <= seen
    update = next(e for e in entries if e["action"] == "update" and e["kind"] == "responsibility")
    assert (update["before"].get("accountable"), update["after"]["accountable"]) == (None, "ceo")
    risk = next(e for e in entries if e["action"] == "update" and e["kind"] == "risk")
    assert risk["after"]["likelihood"] == 5 and risk["before"]["likelihood"] != 5
    moved = next(e for e in entries if e["action"] == "transition" and e["object_id"] == made.json()["id"])
    assert (moved["before"]["status"], moved["after"]["status"], moved["actor"]) == ("open", "in_progress", "developer")


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("risk", {"title": None}),
        ("risk", {"likelihood": None}),
        ("risk", {"playbook": None}),
        ("plan", {"target": None}),
        ("plan", {"title": None}),
        ("entry", {"responsible": None}),
        ("entry", {"scope": None}),
        ("action", {"title": None}),
        ("action", {"priority": None}),
    ],
)
async def test_a_null_for_a_field_that_cannot_be_removed__answers_422_and_changes_nothing(
    stack: Stack, improvement: RunningService, world: dict[str, str], kind: str, change: dict[str, None]
):
    path = {
        "risk": f"/api/v1/risks/{world['risk']}",
        "plan": f"/api/v1/plans/{world['plan']}",
        "entry": f"/api/v1/responsibilities/{world['entry']}",
        "action": f"/api/v1/actions/{world['action']}",
    }[kind]
    async with client(stack, improvement, world["org"], "quality_manager") as http:
        before = (await http.get(path)).json()
        refused = await http.patch(path, json=change)
        after = (await http.get(path)).json()
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "removed" in refused.text
    assert after == before
