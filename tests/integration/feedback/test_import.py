"""Bulk import of a unit tree: JSON or CSV, parents in any order, all rows or none."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.harness import RunningService, Stack, read_topic, unique

pytestmark = pytest.mark.integration

Org = tuple[str, httpx.AsyncClient]


def generated_tree(regions: int, branches: int) -> list[dict[str, Any]]:
    """Regions under the existing unit ``north``, branches under them with a code each, shuffled."""
    rows: list[dict[str, Any]] = [
        {"id": f"r{r}", "name": f"区域{r}", "kind": "city", "parent_id": "north"} for r in range(regions)
    ]
    rows += [
        {"id": f"r{r}-b{b}", "name": f"支行{r}-{b}", "parent_id": f"r{r}", "external_code": f"C{r}-{b}"}
        for r in range(regions)
        for b in range(branches)
    ]
    random.Random(7).shuffle(rows)
    return rows


async def all_units(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every unit the client sees, page by page."""
    units: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (await http.get("/api/v1/units", params={"limit": 500, **({"cursor": cursor} if cursor else {})})).json()
        units += page["items"]
        if not (cursor := page["next_cursor"]):
            return units


async def test_import__adds_a_few_thousand_shuffled_rows_in_one_request(stack: Stack, org_client: Org) -> None:
    org, http = org_client
    rows = generated_tree(regions=30, branches=100)
    response = await http.post("/api/v1/units/import", json={"units": rows})
    assert response.status_code == 201, response.text[:2000]
    assert response.json() == {"created": 3030}
    units = {u["id"]: u for u in await all_units(http)}
    assert len(units) == 4 + 3030
    assert units["r17-b42"]["path"] == "north/r17/r17-b42"
    assert units["r17"]["kind"] == "city"
    posted = await http.post("/api/v1/feedback", json={"unit_code": "C17-42", "channel": "app", "ratings": {"csat": 5}})
    assert posted.json()["unit_path"] == "north/r17/r17-b42"

    def created(seen: list[dict[str, Any]]) -> set[str]:
        return {r["value"]["unit_id"] for r in seen if r["value"]["org"] == org and r["value"]["change"] == "created"}

    records = await read_topic(stack.bootstrap, "unit.changed", until=lambda seen: len(created(seen)) >= 3034)
    assert created(records) == set(units)


async def test_import__reads_csv_with_parents_after_children(org_client: Org) -> None:
    _, http = org_client
    text = (
        "id,name,kind,parent_id,external_code\n"
        "sz-01,深圳福田支行,branch,shenzhen,SZ01\n"
        'shenzhen,"深圳, 市分行",city,south,\n'
        "east,华东区,region,,\n"
    )
    response = await http.post("/api/v1/units/import", content=text.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    assert response.json() == {"created": 3}
    branch = (await http.get("/api/v1/units/sz-01")).json()
    assert (branch["path"], branch["external_code"], branch["parent_id"]) == (
        "south/shenzhen/sz-01",
        "SZ01",
        "shenzhen",
    )
    city = (await http.get("/api/v1/units/shenzhen")).json()
    assert (city["name"], city["kind"], city["external_code"]) == ("深圳, 市分行", "city", None)
    assert (await http.get("/api/v1/units/east")).json()["path"] == "east"


async def test_import__refuses_the_whole_file_with_a_report_per_row(org_client: Org) -> None:
    _, http = org_client
    rows: list[Any] = [
        {"id": "ok-1", "name": "好", "parent_id": "north"},
        {"id": "ok-1", "name": "重复", "parent_id": "north"},
        {"id": "lost", "name": "无父", "parent_id": "nowhere"},
        {"id": "x", "name": "环", "parent_id": "y"},
        {"id": "y", "name": "环", "parent_id": "x"},
        {"id": "bad id!", "name": "坏", "parent_id": "north"},
        {"id": "under-bad", "name": "坏下", "parent_id": "bad id!"},
        {"id": "b-001", "name": "已有", "parent_id": "north"},
        {"id": "no-name", "parent_id": "north", "colour": "red"},
        "not an object",
    ]
    response = await http.post("/api/v1/units/import", json={"units": rows})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    report = [(e["row"], e["field"]) for e in response.json()["errors"]]
    assert report == [
        (2, "id"),
        (3, "parent_id"),
        (4, "parent_id"),
        (5, "parent_id"),
        (6, "id"),
        (8, "id"),
        (9, "name"),
        (9, "colour"),
        (10, ""),
    ]
    reasons = {(e["row"], e["field"]): e["reason"] for e in response.json()["errors"]}
    assert reasons[(2, "id")] == "duplicate of row 1"
    assert reasons[(4, "parent_id")] == "is part of a cycle: x → y → x"
    assert "pattern" in reasons[(6, "id")]
    assert reasons[(8, "id")] == "unit 'b-001' already exists"
    assert (await http.get("/api/v1/units/ok-1")).status_code == 404, "nothing is stored"
    assert len(await all_units(http)) == 4


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        (b"id,name,colour\na,b,c\n", "text/csv", 422, "header"),
        (b"id,name\n\xff\xfe,x\n", "text/csv", 422, "body"),
        (b'{"units": []}', "application/json", 422, "units"),
        (b"<units/>", "application/xml", 415, None),
    ],
)
async def test_import__refuses_a_body_it_cannot_read(
    org_client: Org, content: bytes, content_type: str, status: int, field: str | None
) -> None:
    _, http = org_client
    response = await http.post("/api/v1/units/import", content=content, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    if field:
        assert response.json()["errors"][0]["field"] == field


async def test_import__answers_only_within_the_scope_and_role(
    stack: Stack, feedback_service: RunningService, org_client: Org
) -> None:
    org, _ = org_client
    rows = [{"id": "n-2", "name": "北二", "parent_id": "north"}, {"id": "s-2", "name": "南二", "parent_id": "south"}]
    async with httpx.AsyncClient(base_url=feedback_service.url) as client:
        scoped = await client.post(
            "/api/v1/units/import", json={"units": rows}, headers=stack.headers(org, "admin", scopes=["north"])
        )
        assert scoped.status_code == 422
        assert scoped.json()["errors"] == [
            {"row": 2, "field": "parent_id", "reason": "unit 'south' is deactivated or outside your scopes"}
        ]
        stranger = await client.post("/api/v1/units/import", json={"units": rows}, headers=stack.headers(unique("org")))
        reasons = [e["reason"] for e in stranger.json()["errors"]]
        assert reasons == ["unit 'north' does not exist", "unit 'south' does not exist"]
        manager = stack.headers(org, "quality_manager")
        assert (await client.post("/api/v1/units/import", json={"units": rows}, headers=manager)).status_code == 403
