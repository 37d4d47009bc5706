"""The event contract: envelopes round-trip through Kafka headers, bad records are refused with a reason."""

from __future__ import annotations

import pytest

from services.feedback.main import DEFINITION as FEEDBACK
from shared.asyncapi import asyncapi_document
from shared.events import (
    EVENT_TYPES,
    Envelope,
    FeedbackReceived,
    Ratings,
    UnparseableEvent,
    decode_headers,
    parse_envelope,
)


def _feedback() -> FeedbackReceived:
    return FeedbackReceived(
        org="acme",
        unit_id="b-1",
        unit_path="north/b-1",
        feedback_id="fb-1",
        channel="app",
        occurred_at="2026-11-25T08:00:00Z",
        received_at="2026-11-25T08:00:01Z",
        ratings=Ratings(csat=4, servqual={"empathy": {"perception": 5, "expectation": 6}}),
    )


def test_envelope__round_trips_through_binary_mode_headers():
    envelope = Envelope(data=_feedback(), source="/services/feedback", trace_carrier={"traceparent": "00-ab-cd-01"})
    headers = decode_headers(envelope.headers())
    assert headers["ce_type"] == "qualityloop.feedback.received.v1"
    assert headers["ce_subject"] == "north/b-1"
    parsed = parse_envelope(headers, envelope.value())
    assert parsed.id == envelope.id
    assert parsed.data == envelope.data
    assert parsed.trace_carrier == {"traceparent": "00-ab-cd-01"}
    assert parsed.data.key() == "acme/b-1"


def test_parse__ignores_fields_it_does_not_know():
    envelope = Envelope(data=_feedback(), source="/x")
    value = envelope.value().replace(b'{"org"', b'{"added_in_a_later_version": 1, "org"')
    assert parse_envelope(decode_headers(envelope.headers()), value).data == envelope.data


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ({"ce_id": "1"}, b"{}", "missing header ce_type"),
        ({"ce_type": FeedbackReceived.type_name()}, b"{}", "missing header ce_id"),
        ({"ce_id": "1", "ce_type": "qualityloop.nope.v1"}, b"{}", "unknown event type"),
        ({"ce_id": "1", "ce_type": FeedbackReceived.type_name()}, b"{not json", "invalid"),
        ({"ce_id": "1", "ce_type": FeedbackReceived.type_name()}, b'{"org": "a"}', "invalid"),
    ],
)
def test_parse__refuses_what_it_cannot_read_with_the_reason(headers, value, reason):
    with pytest.raises(UnparseableEvent, match=reason):
        parse_envelope(headers, value)


def test_asyncapi__describes_every_event_and_its_dead_letter_channel():
    document = asyncapi_document()
    for model in EVENT_TYPES.values():
        assert model.topic in document["channels"]
        assert f"{model.topic}.dlq" in document["channels"]
        schema = document["components"]["messages"][model.__name__]["payload"]
        assert {"org", "unit_id", "unit_path"} <= set(schema["properties"])


def test_asyncapi__documents_the_intake_topic_a_service_consumes_from_integrations():
    document = asyncapi_document(FEEDBACK.intake)
    channel = document["channels"]["feedback.ingest"]
    assert "feedback.ingest.dlq" in document["channels"]
    binary, structured = (document["components"]["messages"][m] for m in sorted(channel["messages"]))
    assert "authorization" in binary["headers"]["required"]
    assert binary["headers"]["properties"]["ce_type"]["const"] == "qualityloop.feedback.ingest.v1"
    assert structured["contentType"] == "application/cloudevents+json"
    assert structured["payload"]["properties"]["data"] == binary["payload"]
    payload = document["components"]["schemas"]["FeedbackIngestIn"]
    assert {"unit_id", "channel", "ratings", "org"} <= set(payload["properties"])
    assert "org" not in payload.get("required", [])
    assert "feedback.ingest" not in asyncapi_document()["channels"]
