"""The batch endpoint: one transaction, a result per item, one bad item never loses the others."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.feedback.conftest import listed

pytestmark = pytest.mark.integration


async def test_post_batch__accepts_good_flags_duplicates_and_rejects_bad_items(
    org_client: tuple[str, httpx.AsyncClient],
) -> None:
    _, http = org_client
    earlier = await http.post(
        "/api/v1/feedback", json={"unit_id": "b-001", "channel": "app", "ratings": {"csat": 5}, "source_id": "s-0"}
    )
    items = [
        {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 4}, "source_id": "s-1"},
        {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 9}},
        {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 5}, "source_id": "s-0"},
        {"unit_code": "BJ001", "channel": "kiosk", "comment": "很好的服务", "source_id": "s-2"},
        {"unit_id": "nowhere", "channel": "app", "ratings": {"nps": 3}},
        {"unit_id": "s-001", "channel": "app", "ratings": {"nps": 3}, "source_id": "s-1"},
        {"unit_id": "s-001", "channel": "sms", "kind": "complaint", "ratings": {"nps": 1}},
        {"unit_id": "s-001", "channel": "web", "ratings": {"ces": 2}, "bogus": 1},
    ]
    response = await http.post("/api/v1/feedback/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 2, 4)
    results = body["results"]
    assert results[2]["id"] == earlier.json()["id"]
    assert results[5]["id"] == results[0]["id"]
    assert [e["field"] for e in results[1]["errors"]] == ["ratings.csat"]
    assert results[4]["errors"][0]["field"] == "unit_id"
    assert results[6]["errors"][0]["field"] == "complaint"
    assert results[7]["errors"][0]["field"] == "bogus"
    stored = await listed(http, 3)
    assert sorted(f["source_id"] for f in stored) == ["s-0", "s-1", "s-2"]
    comment = next(f for f in stored if f["source_id"] == "s-2")
    assert comment["comment_language"] == "zh"


async def test_post_batch__refuses_more_than_a_thousand_items(org_client: tuple[str, httpx.AsyncClient]) -> None:
    _, http = org_client
    items = [{"unit_id": "b-001", "channel": "app", "ratings": {"csat": 4}}] * 1001
    response = await http.post("/api/v1/feedback/batch", json={"items": items})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "items"
