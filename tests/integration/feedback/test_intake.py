"""Feedback intake over REST against the real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.harness import Stack, read_topic
from tests.integration.feedback.conftest import received

pytestmark = pytest.mark.integration

Org = tuple[str, httpx.AsyncClient]


async def test_post_feedback__stores_it_and_publishes_feedback_received(stack: Stack, org_client: Org) -> None:
    org, http = org_client
    posted = await http.post("/api/v1/feedback", json={"unit_id": "b-001", "channel": "survey", "ratings": {"csat": 2}})
    assert posted.status_code == 201, posted.text
    feedback_id = posted.json()["id"]
    fetched = await http.get(f"/api/v1/feedback/{feedback_id}")
    assert fetched.json()["ratings"]["csat"] == 2
    assert fetched.json()["kind"] == "rating"

    records = await read_topic(
        stack.bootstrap,
        "feedback.received",
        until=lambda seen: any(r["value"]["feedback_id"] == feedback_id for r in seen),
    )
    record = next(r for r in records if r["value"]["feedback_id"] == feedback_id)
    assert record["headers"]["ce_type"] == "qualityloop.feedback.received.v1"
    assert record["headers"]["ce_subject"] == "north/b-001"
    assert record["key"] == f"{org}/b-001".encode()
    assert "traceparent" in record["headers"]


FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"unit_id": "nowhere"}, "unit_id"),
        ({"unit_id": None, "unit_code": "XX"}, "unit_code"),
        ({"ratings": {"csat": 6}}, "ratings.csat"),
        ({"ratings": {"nps": 11}}, "ratings.nps"),
        ({"ratings": {"ces": 0}}, "ratings.ces"),
        ({"ratings": {"csat": 4, "servqual": {"empathy": {"perception": 8, "expectation": 5}}}}, "perception"),
        ({"ratings": {"csat": 4, "dimensions": {"speed": 0}}}, "ratings.dimensions.speed"),
        ({"ratings": {"csat": 4, "stars": 5}}, "ratings.stars"),
        ({"ratings": {"measures": {"waiting_time_seconds": -1}}}, "ratings.measures.waiting_time_seconds"),
        ({"colour": "red"}, "colour"),
        ({"occurred_at": FUTURE}, "occurred_at"),
        ({"comment": "x" * 4001}, "comment"),
        ({"kind": "complaint"}, "complaint"),
        ({"kind": "audit"}, "audit"),
        ({"kind": "measure"}, "ratings.measures"),
        ({"ratings": {}, "kind": "comment"}, "comment"),
        ({"complaint": {"category": "queue", "severity": "serious", "urgent": True}}, "complaint.urgent"),
        (
            {"kind": "audit", "audit": {"visit_date": "2026-01-05", "checklist": [{"item": "a", "score": 3}]}},
            "audit.checklist.0.max_score",
        ),
    ],
)
async def test_post_feedback__rejects_invalid_input_naming_the_field(
    org_client: Org, change: dict[str, Any], field: str
) -> None:
    _, http = org_client
    body = {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 4}, **change}
    response = await http.post("/api/v1/feedback", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(field in error["field"] for error in response.json()["errors"]), response.json()


async def test_post_feedback__same_source_id_or_idempotency_key_stores_one(org_client: Org) -> None:
    _, http = org_client
    body = {"unit_code": "BJ001", "channel": "app", "ratings": {"nps": 9}, "source_id": "crm-1"}
    first, again = await http.post("/api/v1/feedback", json=body), await http.post("/api/v1/feedback", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    keyed = {"unit_id": "b-001", "channel": "app", "ratings": {"nps": 3}}
    headers = {"Idempotency-Key": "key-1"}
    one = await http.post("/api/v1/feedback", json=keyed, headers=headers)
    two = await http.post("/api/v1/feedback", json=keyed, headers=headers)
    assert (one.status_code, two.status_code) == (201, 200)
    assert one.json()["id"] == two.json()["id"] != first.json()["id"]
    items = (await http.get("/api/v1/feedback")).json()["items"]
    assert len(items) == 2


@pytest.mark.parametrize(
    ("comment", "language", "polarity", "keyword"),
    [
        ("排队时间太长了，柜员态度很差，非常失望", "zh", "negative", "排队"),
        ("The staff were wonderful and the branch was clean. Great service!", "en", "positive", "staff"),
    ],
)
async def test_post_feedback__enriches_the_comment_in_store_and_event(
    stack: Stack, org_client: Org, comment: str, language: str, polarity: str, keyword: str
) -> None:
    _, http = org_client
    posted = await http.post("/api/v1/feedback", json={"unit_id": "b-001", "channel": "web", "comment": comment})
    assert posted.status_code == 201, posted.text
    stored = (await http.get(f"/api/v1/feedback/{posted.json()['id']}")).json()
    assert stored["kind"] == "comment"
    assert (stored["comment_language"], stored["polarity"]) == (language, polarity)
    assert keyword in stored["keywords"]
    event = await received(stack, stored["id"])
    assert event["comment_language"] == language
    assert event["keywords"] == stored["keywords"]
    assert event["sentiment"] == stored["sentiment"]
    assert (event["sentiment"] < 0.4) if polarity == "negative" else (event["sentiment"] > 0.6)


@pytest.mark.parametrize(
    ("body", "kind", "expect"),
    [
        (
            {"complaint": {"category": "waiting", "severity": "serious"}, "comment": "等了一个小时"},
            "complaint",
            lambda e: e["complaint"] == {"category": "waiting", "severity": "serious"},
        ),
        (
            {
                "audit": {
                    "visit_date": "2026-01-05",
                    "checklist": [
                        {"item": "greeting", "score": 4, "max_score": 5},
                        {"item": "cleanliness", "score": 5, "max_score": 5},
                    ],
                }
            },
            "audit",
            lambda e: e["audit"]["visit_date"] == "2026-01-05" and len(e["audit"]["checklist"]) == 2,
        ),
        (
            {"ratings": {"measures": {"waiting_time_seconds": 310, "first_contact_resolution": 1}}},
            "measure",
            lambda e: e["ratings"]["measures"] == {"waiting_time_seconds": 310, "first_contact_resolution": 1},
        ),
        (
            {
                "ratings": {
                    "servqual": {"empathy": {"perception": 4, "expectation": 6}},
                    "dimensions": {"speed": 2, "attitude": 5},
                }
            },
            "rating",
            lambda e: (
                e["ratings"]["servqual"]["empathy"]["expectation"] == 6 and e["ratings"]["dimensions"]["speed"] == 2
            ),
        ),
    ],
)
async def test_post_feedback__accepts_and_publishes_each_kind(
    stack: Stack, org_client: Org, body: dict[str, Any], kind: str, expect: Any
) -> None:
    _, http = org_client
    posted = await http.post("/api/v1/feedback", json={"unit_id": "b-001", "channel": "in_branch", **body})
    assert posted.status_code == 201, posted.text
    assert posted.json()["kind"] == kind
    event = await received(stack, posted.json()["id"])
    assert event["kind"] == kind
    assert expect(event), event
