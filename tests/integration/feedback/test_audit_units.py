"""Every change of the unit tree is in the feedback service's audit log: who, what, before and after."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.harness import Stack

pytestmark = pytest.mark.integration


async def _entries(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/audit/feedback", params={"kind": "unit", "limit": 200})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_unit_changes__are_audited_with_before_and_after(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client  # its tree (north/b-001, south/s-001) was created by this admin
    assert (await http.patch("/api/v1/units/b-001", json={"name": "北京第一分行"})).status_code == 200
    assert (await http.patch("/api/v1/units/b-001", json={"parent_id": "south"})).status_code == 200
    assert (await http.post("/api/v1/units/s-001/deactivate")).status_code == 200
    imported = await http.post(
        "/api/v1/units/import", json={"units": [{"id": "east", "name": "华东区", "kind": "region"}]}
    )
    assert imported.status_code == 201, imported.text

    entries = await _entries(http)
    by_action = {(e["action"], e["object_id"]): e for e in entries}
    assert {("create", u) for u in ("north", "b-001", "south", "s-001")} <= by_action.keys()
    renamed = by_action[("update", "b-001")]
    assert (renamed["before"]["name"], renamed["after"]["name"]) == ("北京一分行", "北京第一分行")
    moved = by_action[("move", "b-001")]
    assert (moved["before"]["path"], moved["after"]["path"]) == ("north/b-001", "south/b-001")
    deactivated = by_action[("deactivate", "s-001")]
    assert (deactivated["before"]["active"], deactivated["after"]["active"]) == (True, False)
    (import_entry,) = [e for e in entries if e["action"] == "import"]
    assert import_entry["after"] == {"created": 1, "units": ["east"]}
    assert {e["actor"] for e in entries} == {"developer"} and all(e["org"] == org for e in entries if "org" in e)


async def test_a_refused_change__leaves_no_entry(stack: Stack, org_client: tuple[str, httpx.AsyncClient]) -> None:
    _, http = org_client
    before = len(await _entries(http))
    assert (await http.patch("/api/v1/units/north", json={"parent_id": "b-001"})).status_code == 422
    assert (await http.post("/api/v1/units", json={"id": "north", "name": "again"})).status_code == 409
    assert len(await _entries(http)) == before
