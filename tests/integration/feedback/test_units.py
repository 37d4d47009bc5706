"""Changing the organisation tree: rename, move with the subtree and its feedback, deactivate."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.harness import RunningService, Stack, read_topic, unique

pytestmark = pytest.mark.integration

Org = tuple[str, httpx.AsyncClient]


async def unit_changes(stack: Stack, org: str, expected: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The ``unit.changed`` payloads of one organisation by (unit id, change), once all ``expected`` are there."""

    def mine(seen: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r["value"]["unit_id"], r["value"]["change"]): r["value"] for r in seen if r["value"]["org"] == org}

    records = await read_topic(stack.bootstrap, "unit.changed", until=lambda seen: expected <= mine(seen).keys())
    return mine(records)


async def test_update_unit__renames_and_changes_kind_and_code(stack: Stack, org_client: Org) -> None:
    org, http = org_client
    response = await http.patch("/api/v1/units/b-001", json={"name": "北京朝阳支行", "kind": "sub-branch"})
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["kind"]) == ("北京朝阳支行", "sub-branch")
    assert response.json()["external_code"] == "BJ001", "a field not sent is left alone"
    recoded = await http.patch("/api/v1/units/b-001", json={"external_code": "BJ-CY"})
    assert recoded.json()["external_code"] == "BJ-CY"
    posted = await http.post("/api/v1/feedback", json={"unit_code": "BJ-CY", "channel": "app", "ratings": {"csat": 4}})
    assert posted.json()["unit_id"] == "b-001"
    events = await unit_changes(stack, org, {("b-001", "renamed")})
    renamed = events[("b-001", "renamed")]
    assert (renamed["name"], renamed["kind"], renamed["unit_path"]) == ("北京朝阳支行", "sub-branch", "north/b-001")


async def test_update_unit__refuses_null_name_an_unknown_field_and_a_taken_code(org_client: Org) -> None:
    _, http = org_client
    await http.patch("/api/v1/units/s-001", json={"external_code": "GZ001"})
    for body, status, field in (
        ({"name": None}, 422, "name"),
        ({"colour": "red"}, 422, "colour"),
        ({"external_code": "GZ001"}, 409, None),
    ):
        response = await http.patch("/api/v1/units/b-001", json=body)
        assert response.status_code == status, response.text
        if field:
            assert response.json()["errors"][0]["field"] == field


async def test_update_unit__a_move_carries_the_subtree_and_its_feedback(
    stack: Stack, feedback_service: RunningService, org_client: Org
) -> None:
    org, http = org_client
    await http.post("/api/v1/units", json={"id": "c-1", "name": "柜台一", "kind": "counter", "parent_id": "b-001"})
    ids = []
    for unit_id in ("b-001", "c-1"):
        posted = await http.post(
            "/api/v1/feedback", json={"unit_id": unit_id, "channel": "app", "ratings": {"csat": 3}}
        )
        ids.append(posted.json()["id"])

    moved = await http.patch("/api/v1/units/b-001", json={"parent_id": "south", "name": "广州二分行"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["path"], moved.json()["parent_id"], moved.json()["name"]) == (
        "south/b-001",
        "south",
        "广州二分行",
    )
    assert (await http.get("/api/v1/units/c-1")).json()["path"] == "south/b-001/c-1"
    stored = {f["id"]: f["unit_path"] for f in (await http.get("/api/v1/feedback")).json()["items"]}
    assert stored == {ids[0]: "south/b-001", ids[1]: "south/b-001/c-1"}

    async with httpx.AsyncClient(base_url=feedback_service.url) as client:
        north = stack.headers(org, "analyst", scopes=["north"])
        south = stack.headers(org, "analyst", scopes=["south"])
        assert (await client.get("/api/v1/feedback", headers=north)).json()["items"] == []
        assert (await client.get(f"/api/v1/feedback/{ids[1]}", headers=north)).status_code == 404
        assert (await client.get("/api/v1/units/c-1", headers=north)).status_code == 404
        seen = (await client.get("/api/v1/feedback", headers=south)).json()["items"]
        assert sorted(f["id"] for f in seen) == sorted(ids)
    subtree = (await http.get("/api/v1/feedback", params={"unit_id": "south"})).json()["items"]
    assert len(subtree) == 2

    events = await unit_changes(stack, org, {("b-001", "moved"), ("c-1", "moved")})
    assert events[("b-001", "moved")]["previous_path"] == "north/b-001"
    assert events[("b-001", "moved")]["parent_id"] == "south"
    assert events[("c-1", "moved")]["previous_path"] == "north/b-001/c-1"
    assert events[("c-1", "moved")]["unit_path"] == "south/b-001/c-1"
    assert ("b-001", "renamed") not in events, "a move that renames is one 'moved' event carrying the new name"


async def test_update_unit__moving_to_the_root_needs_an_organisation_wide_token(
    stack: Stack, feedback_service: RunningService, org_client: Org
) -> None:
    org, http = org_client
    scoped = stack.headers(org, "admin", scopes=["north"])
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=scoped) as client:
        assert (await client.patch("/api/v1/units/b-001", json={"parent_id": None})).status_code == 403
    rooted = await http.patch("/api/v1/units/b-001", json={"parent_id": None})
    assert (rooted.json()["path"], rooted.json()["parent_id"]) == ("b-001", None)


@pytest.mark.parametrize(
    ("unit_id", "parent_id", "reason"),
    [
        ("north", "north", "under itself"),
        ("north", "b-001", "under itself or one of its descendants"),
        ("north", "nowhere", "no unit 'nowhere'"),
    ],
)
async def test_update_unit__refuses_a_cycle_or_an_unknown_parent(
    org_client: Org, unit_id: str, parent_id: str, reason: str
) -> None:
    _, http = org_client
    response = await http.patch(f"/api/v1/units/{unit_id}", json={"parent_id": parent_id})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["field"] == "parent_id"
    assert reason in error["reason"]
    assert (await http.get("/api/v1/units/b-001")).json()["path"] == "north/b-001"


async def test_update_unit__answers_404_outside_the_scope_and_403_without_admin(
    stack: Stack, feedback_service: RunningService, org_client: Org
) -> None:
    org, _ = org_client
    async with httpx.AsyncClient(base_url=feedback_service.url) as client:
        for headers in (stack.headers(org, "admin", scopes=["north"]), stack.headers(unique("org"), "admin")):
            assert (await client.patch("/api/v1/units/s-001", json={"name": "x"}, headers=headers)).status_code == 404
            assert (await client.post("/api/v1/units/s-001/deactivate", headers=headers)).status_code == 404
        scoped_admin = stack.headers(org, "admin", scopes=["north"])
        into_south = await client.patch("/api/v1/units/b-001", json={"parent_id": "south"}, headers=scoped_admin)
        assert into_south.status_code == 422, "a parent outside the scope is as unknown"
        manager = stack.headers(org, "quality_manager")
        assert (await client.patch("/api/v1/units/b-001", json={"name": "x"}, headers=manager)).status_code == 403
        assert (await client.post("/api/v1/units/b-001/deactivate", headers=manager)).status_code == 403


async def test_deactivate_unit__refuses_feedback_at_once_and_publishes_deactivated(
    stack: Stack, org_client: Org
) -> None:
    org, http = org_client
    body = {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 4}}
    assert (await http.post("/api/v1/feedback", json=body)).status_code == 201, "the unit is now cached"
    response = await http.post("/api/v1/units/b-001/deactivate")
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    refused = await http.post("/api/v1/feedback", json=body)
    assert refused.status_code == 422
    assert refused.json()["errors"][0] == {"field": "unit_id", "reason": "unit 'b-001' is deactivated"}
    under = await http.patch("/api/v1/units/s-001", json={"parent_id": "b-001"})
    assert under.json()["errors"][0]["reason"] == "unit 'b-001' is deactivated"
    events = await unit_changes(stack, org, {("b-001", "deactivated")})
    assert events[("b-001", "deactivated")]["active"] is False


async def test_create_unit__a_taken_id_or_code_answers_409(org_client: Org) -> None:
    _, http = org_client
    for body in (
        {"id": "b-001", "name": "again", "parent_id": "north"},
        {"id": "b-9", "name": "x", "external_code": "BJ001"},
    ):
        response = await http.post("/api/v1/units", json=body)
        assert response.status_code == 409, response.text
