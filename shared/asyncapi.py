"""The AsyncAPI 3.0 document of the event contract, generated from the same pydantic models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.auth import TOKEN_HEADER
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


@dataclass(frozen=True)
class IntakeChannel:
    """A topic integrations produce onto, signed with their token: what a record must carry."""

    topic: str
    type_name: str
    payload: type[BaseModel]
    summary: str


def _intake_messages(channel: IntakeChannel) -> dict[str, Any]:
    name = channel.payload.__name__
    token = {TOKEN_HEADER: {"type": "string", "description": "Bearer <the integration's token>; says whose data it is"}}
    binary_headers = {
        **CLOUDEVENT_HEADERS,
        "required": [*CLOUDEVENT_HEADERS["required"], TOKEN_HEADER],
        "properties": {
            **CLOUDEVENT_HEADERS["properties"],
            "ce_type": {"type": "string", "const": channel.type_name},
            "ce_source": {"type": "string", "description": "The integration, e.g. /crm"},
            **token,
        },
    }
    attributes = {
        name.removeprefix("ce_"): schema
        for name, schema in binary_headers["properties"].items()
        if name.startswith("ce_")
    }
    structured = {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "data"],
        "properties": {
            **attributes,
            "data": {"$ref": "#/components/schemas/" + name},
        },
    }
    key = {"kafka": {"key": {"type": "string", "description": "Any; <org>/<unit> keeps a unit's records in order"}}}
    return {
        f"{name}Binary": {
            "name": channel.type_name,
            "title": f"{name} (CloudEvents binary mode)",
            "summary": channel.summary,
            "contentType": "application/json",
            "headers": binary_headers,
            "payload": {"$ref": "#/components/schemas/" + name},
            "bindings": key,
        },
        f"{name}Structured": {
            "name": channel.type_name,
            "title": f"{name} (CloudEvents structured mode)",
            "summary": channel.summary
            + " Structured mode is recognised by the content type application/cloudevents+json, or by the"
            " event's own shape when a producer sets none.",
            "contentType": "application/cloudevents+json",
            "headers": {"type": "object", "required": [TOKEN_HEADER], "properties": token},
            "payload": structured,
            "bindings": key,
        },
    }


def asyncapi_document(intake: Sequence[IntakeChannel] = ()) -> dict[str, Any]:
    """Channels, messages and payload schemas of every event type, each topic's dead-letter channel, and the
    intake topics a service consumes from integrations."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for channel in intake:
        schema = channel.payload.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[channel.payload.__name__] = schema
        kinds = _intake_messages(channel)
        messages.update(kinds)
        channels[channel.topic] = {
            "address": channel.topic,
            "description": channel.summary,
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in kinds},
        }
        channels[dead_letter_topic(channel.topic)] = _dead_letter_channel(channel.topic)
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
        channels[dead_letter_topic(model.topic)] = _dead_letter_channel(model.topic)
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "QualityLoop events", "version": "1.0.0"},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }


def _dead_letter_channel(topic: str) -> dict[str, Any]:
    return {
        "address": dead_letter_topic(topic),
        "description": "Messages that could not be processed; headers dlq_reason, dlq_source_topic, "
        "dlq_source_partition, dlq_source_offset, dlq_consumer, dlq_time",
    }
