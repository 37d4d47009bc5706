"""The feedback events built from a stored feedback: the contract's fields, nothing of the customer."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import Complaint, FeedbackErased, FeedbackReceived

STORED = {
    "_id": "fb_1",
    "org": "acme",
    "unit_id": "b-001",
    "unit_path": "north/b-001",
    "lineage": ["north", "north/b-001"],
    "channel": "app",
    "kind": "complaint",
    "occurred_at": datetime(2026, 5, 1, 9, tzinfo=UTC),
    "received_at": datetime(2026, 5, 1, 9, 1, tzinfo=UTC),
    "ratings": {"csat": 2, "nps": None, "ces": None, "servqual": {}, "dimensions": {}, "measures": {}},
    "complaint": {"category": "queue", "severity": "serious"},
    "audit": None,
    "comment": "等了一个小时",
    "comment_language": "zh",
    "sentiment": 0.1,
    "polarity": "negative",
    "keywords": ["等"],
    "tags": ["vip"],
    "source_id": "crm-9",
    "customer_ref": "ab" * 32,
    "metadata": {"agent": "a-7"},
}


def test_feedback_received__carries_the_stored_feedbacks_fields_under_its_id():
    event = FeedbackReceived.from_feedback(STORED)
    assert (event.feedback_id, event.org, event.unit_path, event.kind) == ("fb_1", "acme", "north/b-001", "complaint")
    assert (event.channel, event.received_at, event.tags, event.keywords) == (
        "app",
        STORED["received_at"],
        ["vip"],
        ["等"],
    )
    assert event.complaint == Complaint(category="queue", severity="serious")
    assert (event.ratings.csat, event.sentiment, event.polarity, event.comment_language) == (2, 0.1, "negative", "zh")


def test_feedback_events__leave_out_the_comment_the_customer_and_the_source_id():
    for event in (FeedbackReceived.from_feedback(STORED), FeedbackErased.from_feedback(STORED)):
        payload = event.model_dump()
        assert not payload.keys() & {"_id", "comment", "customer_ref", "source_id", "metadata", "lineage"}


def test_feedback_erased__carries_what_consumers_take_back_out():
    event = FeedbackErased.from_feedback(STORED)
    received = FeedbackReceived.from_feedback(STORED)
    shared = ("ratings", "complaint", "audit", "sentiment", "polarity")
    assert [getattr(event, name) for name in shared] == [getattr(received, name) for name in shared]
    assert (event.feedback_id, event.unit_id, event.occurred_at) == ("fb_1", "b-001", STORED["occurred_at"])
    assert (event.kind, event.ratings.csat, event.complaint, event.sentiment) == (
        "complaint",
        2,
        Complaint(category="queue", severity="serious"),
        0.1,
    )


def test_feedback_erased__of_an_earlier_feedback_without_complaint_or_audit_fields():
    earlier = {k: v for k, v in STORED.items() if k not in ("complaint", "audit")}
    event = FeedbackErased.from_feedback(earlier)
    assert (event.complaint, event.audit) == (None, None)
