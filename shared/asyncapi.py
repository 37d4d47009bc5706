"""The AsyncAPI 3.0 document of the event contract, generated from the same pydantic models."""

from __future__ import annotations

from typing import Any

from shared.events import EVENT_TYPES, SPEC_VERSION, dead_letter_topic

CLOUDEVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": SPEC_VERSION},
        "ce_id": {"type": "string", "description": "Unique event id; consumers deduplicate on it"},
        "ce_source": {"type": "string", "description": "/services/<name>"},
        "ce_type": {"type": "string", "description": "qualityloop.<topic>.v1"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "The unit path"},
        "traceparent": {"type": "string", "description": "W3C trace context"},
        "tracestate": {"type": "string"},
    },
}


def asyncapi_document() -> dict[str, Any]:
    """Channels, messages and payload schemas of every event type, and each topic's dead-letter channel."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, model in EVENT_TYPES.items():
        name = model.__name__
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": (model.__doc__ or "").strip(),
            "contentType": "application/json",
            "headers": CLOUDEVENT_HEADERS,
            "payload": model.model_json_schema(),
            "bindings": {"kafka": {"key": {"type": "string", "description": "<org>/<unit_id>"}}},
        }
        channels[model.topic] = {
            "address": model.topic,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        channels[dead_letter_topic(model.topic)] = {
            "address": dead_letter_topic(model.topic),
            "description": "Messages that could not be processed; headers dlq_reason, dlq_source_topic, "
            "dlq_source_partition, dlq_source_offset, dlq_consumer, dlq_time",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "QualityLoop events", "version": "1.0.0"},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages},
    }
