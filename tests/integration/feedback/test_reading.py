"""Reading feedback: filters, counts by unit and channel, paging while feedback arrives, scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.harness import RunningService, Stack, unique
from tests.integration.feedback.conftest import make_tree

pytestmark = pytest.mark.integration

BASE = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
NEGATIVE = "排队时间太长了，柜员态度很差，非常失望"
POSITIVE = "The staff were wonderful and the branch was clean. Great service!"
FEEDBACK: dict[str, dict[str, Any]] = {
    "A": {"unit_id": "b-001", "channel": "survey", "ratings": {"csat": 5, "nps": 9}, "tags": ["vip", "queue"]}
    | {"comment": POSITIVE},
    "B": {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 2, "nps": 3}, "tags": ["queue"]}
    | {"comment": NEGATIVE},
    "C": {"unit_id": "s-001", "channel": "app", "ratings": {"csat": 4, "nps": 10}, "tags": ["vip"]},
    "D": {"unit_id": "s-001", "channel": "web", "complaint": {"category": "fees", "severity": "minor"}},
    "E": {"unit_id": "north", "channel": "kiosk", "ratings": {"measures": {"waiting_time_seconds": 300}}},
}


@dataclass
class Posted:
    """An organisation with the feedback A–E, one day apart from BASE, and an admin client of it."""

    org: str
    http: httpx.AsyncClient
    ids: dict[str, str]

    def labels(self, items: list[dict[str, Any]]) -> set[str]:
        """Which of A–E the items are."""
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id[item["id"]] for item in items}


@pytest.fixture(scope="module")
async def posted(stack: Stack, feedback_service: RunningService) -> AsyncIterator[Posted]:
    """One data set for every filter test: posting it once keeps the module fast."""
    org = unique("org")
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=stack.headers(org, "admin")) as http:
        await make_tree(http)
        ids = {}
        for day, (label, body) in enumerate(FEEDBACK.items()):
            occurred_at = (BASE + timedelta(days=day)).isoformat()
            response = await http.post("/api/v1/feedback", json={**body, "occurred_at": occurred_at})
            assert response.status_code == 201, response.text
            ids[label] = response.json()["id"]
        yield Posted(org, http, ids)


def day(offset: int) -> str:
    """BASE plus some days, as a query value."""
    return (BASE + timedelta(days=offset)).isoformat()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "ABCDE"),
        ({"unit_id": "north"}, "ABE"),
        ({"unit_id": "b-001"}, "AB"),
        ({"from": day(1)}, "BCDE"),
        ({"from": day(1), "to": day(3)}, "BC"),
        ({"to": day(0)}, ""),
        ({"channel": "app"}, "BC"),
        ({"channel": ["app", "survey"]}, "ABC"),
        ({"kind": "complaint"}, "D"),
        ({"kind": "measure"}, "E"),
        ({"csat_min": 4}, "AC"),
        ({"csat_max": 2}, "B"),
        ({"csat_min": 2, "csat_max": 4}, "BC"),
        ({"nps_min": 9}, "AC"),
        ({"nps_max": 3}, "B"),
        ({"sentiment": "negative"}, "B"),
        ({"sentiment": "positive"}, "A"),
        ({"tag": "queue"}, "AB"),
        ({"tag": ["queue", "vip"]}, "A"),
        ({"has_comment": "true"}, "AB"),
        ({"has_comment": "false"}, "CDE"),
        ({"unit_id": "north", "channel": "app", "csat_max": 3, "tag": "queue"}, "B"),
    ],
)
async def test_list_feedback__each_filter_narrows_the_list(
    posted: Posted, params: dict[str, Any], expected: str
) -> None:
    response = await posted.http.get("/api/v1/feedback", params=params)
    assert response.status_code == 200, response.text
    assert posted.labels(response.json()["items"]) == set(expected)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"chanel": "app"}, "chanel"),
        ({"channel": "fax"}, "channel.0"),
        ({"csat_min": 9}, "csat_min"),
        ({"csat_min": 5, "csat_max": 1}, ""),
        ({"from": day(3), "to": day(1)}, ""),
        ({"sentiment": "angry"}, "sentiment"),
    ],
)
async def test_list_feedback__rejects_a_bad_filter_naming_it(
    posted: Posted, params: dict[str, Any], field: str
) -> None:
    response = await posted.http.get("/api/v1/feedback", params=params)
    assert response.status_code == 422, response.text
    assert any(e["field"].endswith(field) for e in response.json()["errors"]), response.json()


async def test_count_feedback__counts_by_direct_unit_and_by_channel(posted: Posted) -> None:
    by_unit = (await posted.http.get("/api/v1/feedback/counts", params={"group_by": "unit"})).json()
    assert by_unit["total"] == 5
    assert {(c["key"], c["unit_path"], c["count"]) for c in by_unit["counts"]} == {
        ("b-001", "north/b-001", 2),
        ("s-001", "south/s-001", 2),
        ("north", "north", 1),
    }
    assert by_unit["counts"][-1]["key"] == "north", "most first"
    by_channel = (await posted.http.get("/api/v1/feedback/counts", params={"group_by": "channel"})).json()
    assert {c["key"]: c["count"] for c in by_channel["counts"]} == {"app": 2, "survey": 1, "web": 1, "kiosk": 1}
    assert by_channel["counts"][0] == {"key": "app", "unit_path": None, "count": 2}
    filtered = await posted.http.get(
        "/api/v1/feedback/counts", params={"group_by": "unit", "channel": "app", "unit_id": "north"}
    )
    assert [(c["key"], c["count"]) for c in filtered.json()["counts"]] == [("b-001", 1)]


async def test_count_feedback__counts_a_bounded_stretch_of_occurrence(posted: Posted) -> None:
    default = (await posted.http.get("/api/v1/feedback/counts", params={"group_by": "channel"})).json()
    assert datetime.fromisoformat(default["since"]) < BASE and default["until"] is None, "the last 30 days"
    params = {"group_by": "channel", "from": day(1), "to": day(3)}  # B (app) and C (app) occurred then
    middle = (await posted.http.get("/api/v1/feedback/counts", params=params)).json()
    assert (middle["total"], middle["counts"]) == (2, [{"key": "app", "unit_path": None, "count": 2}])
    later = (await posted.http.get("/api/v1/feedback/counts", params={"group_by": "unit", "from": day(30)})).json()
    assert later["total"] == 0
    too_long = await posted.http.get("/api/v1/feedback/counts", params={"group_by": "unit", "from": day(-100)})
    assert too_long.status_code == 422
    assert "92 days" in too_long.json()["detail"]


@pytest.mark.parametrize("params", [{}, {"group_by": "colour"}])
async def test_count_feedback__needs_a_known_grouping(posted: Posted, params: dict[str, Any]) -> None:
    response = await posted.http.get("/api/v1/feedback/counts", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.group_by"


async def test_reading__another_organisation_or_a_sibling_subtree_sees_none(
    stack: Stack, feedback_service: RunningService, posted: Posted
) -> None:
    south = stack.headers(posted.org, "analyst", scopes=["south"])
    stranger = stack.headers(unique("org"), "admin")
    async with httpx.AsyncClient(base_url=feedback_service.url) as client:
        listed = await client.get("/api/v1/feedback", headers=south)
        assert posted.labels(listed.json()["items"]) == {"C", "D"}
        narrowed = await client.get("/api/v1/feedback", params={"unit_id": "s-001", "kind": "complaint"}, headers=south)
        assert posted.labels(narrowed.json()["items"]) == {"D"}, "the scope and the subtree both hold"
        counts = (await client.get("/api/v1/feedback/counts", params={"group_by": "unit"}, headers=south)).json()
        assert {c["key"] for c in counts["counts"]} == {"s-001"}
        for params in ({"unit_id": "north"}, {"unit_id": "b-001", "group_by": "unit"}):
            path = "/api/v1/feedback/counts" if "group_by" in params else "/api/v1/feedback"
            assert (await client.get(path, params=params, headers=south)).status_code == 404
        assert (await client.get("/api/v1/feedback", headers=stranger)).json()["items"] == []
        nothing = (await client.get("/api/v1/feedback/counts", params={"group_by": "channel"}, headers=stranger)).json()
        assert (nothing["total"], nothing["counts"]) == (0, [])


async def test_list_feedback__paging_stays_correct_while_feedback_arrives(
    org_client: tuple[str, httpx.AsyncClient],
) -> None:
    _, http = org_client
    body = {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 3}}
    before = [(await http.post("/api/v1/feedback", json=body)).json()["id"] for _ in range(5)]
    first = (await http.get("/api/v1/feedback", params={"limit": 2, "channel": "app"})).json()
    during = [(await http.post("/api/v1/feedback", json=body)).json()["id"] for _ in range(3)]
    await http.post("/api/v1/feedback", json={**body, "channel": "web"})
    seen, cursor = [f["id"] for f in first["items"]], first["next_cursor"]
    while cursor:
        page = (await http.get("/api/v1/feedback", params={"limit": 2, "channel": "app", "cursor": cursor})).json()
        seen += [f["id"] for f in page["items"]]
        cursor = page["next_cursor"]
    # Newest first: the ones posted after the first page are newer than it, so not in this walk.
    assert seen == before[::-1], "each feedback once, newest first"
    assert (
        during[-1]
        == (await http.get("/api/v1/feedback", params={"limit": 1, "channel": "app"})).json()["items"][0]["id"]
    )
