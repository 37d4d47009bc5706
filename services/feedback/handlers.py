"""Intake over Kafka: raw feedback from integrations on ``feedback.ingest``, a polled batch at a time."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.feedback.domain import Rejected, pseudonym
from services.feedback.models import FeedbackIngested, FeedbackIngestIn
from services.feedback.service import intake
from services.feedback.settings import FeedbackSettings
from shared.access import access_row
from shared.auth import TOKEN_HEADER, Principal, TokenVerifier, bearer_token
from shared.consumer import BatchContext
from shared.dead_letters import DeadLetterRedaction, Redacted
from shared.events import TRACE_HEADERS, Envelope, UnparseableEvent
from shared.problems import Problem, validation_errors
from shared.tree import in_subtree

INGEST_TYPE = FeedbackIngested.type_name()
STRUCTURED = "application/cloudevents+json"


def ingest_parser(
    settings: FeedbackSettings, verifier: TokenVerifier
) -> Callable[[dict[str, str], bytes | None], Awaitable[Envelope[FeedbackIngested]]]:
    """Read a ``feedback.ingest`` record (CloudEvents binary or structured mode), check its token, apply the rules.

    The record proves its tenant as a REST request does: the integration's bearer token in the record
    header ``authorization``, verified by the same verifier; the organisation and the subtrees come from
    the token, never from the payload. What fails here goes to ``feedback.ingest.dlq`` at once, with the
    reason, without retries, as the dead letter of the organisation the token proved (none without one).
    """
    intake_access = access_row("feedback", "post_feedback")
    assert intake_access is not None, "the role table has a row for posting feedback"

    async def parse(headers: dict[str, str], value: bytes | None) -> Envelope[FeedbackIngested]:
        principal = await _producer(verifier, headers)
        if not intake_access.allows(principal):
            raise UnparseableEvent(
                f"the token's roles ({', '.join(sorted(principal.roles))}) may not post feedback", org=principal.org
            )
        try:
            return _envelope(settings, principal, headers, value)
        except UnparseableEvent as error:
            raise UnparseableEvent(str(error), org=principal.org) from error

    return parse


async def _producer(verifier: TokenVerifier, headers: dict[str, str]) -> Principal:
    """Who produced the record: the principal of the bearer token in its ``authorization`` header."""
    value = next((v for name, v in headers.items() if name.lower() == TOKEN_HEADER), None)
    token = bearer_token(value)
    if token is None:
        raise UnparseableEvent(f"no integration token: send the record header {TOKEN_HEADER}: Bearer <token>")
    try:
        return await verifier.principal(token)
    except Problem as problem:
        raise UnparseableEvent(f"invalid integration token: {problem}") from problem


def _envelope(
    settings: FeedbackSettings, principal: Principal, headers: dict[str, str], value: bytes | None
) -> Envelope[FeedbackIngested]:
    attributes, payload = _cloudevent(headers, value)
    if not attributes.get("id"):
        raise UnparseableEvent("missing CloudEvents attribute id")
    if attributes.get("type") != INGEST_TYPE:
        raise UnparseableEvent(f"unknown event type {attributes.get('type')!r}; expected {INGEST_TYPE!r}")
    try:
        feedback_in = FeedbackIngestIn.model_validate(payload)
        intake.check_submission(settings, feedback_in, now=datetime.now(UTC))
    except ValidationError as error:
        raise UnparseableEvent(f"invalid feedback: {_reasons(validation_errors(error.errors()))}") from error
    except Rejected as error:
        raise UnparseableEvent(f"invalid feedback: {error.field}: {error.reason}") from error
    if feedback_in.org not in (None, principal.org):
        raise UnparseableEvent(f"the feedback names organisation {feedback_in.org!r}, its token another")
    try:
        time = datetime.fromisoformat(attributes["time"]) if attributes.get("time") else datetime.now(UTC)
    except ValueError as error:
        raise UnparseableEvent(f"invalid CloudEvents time {attributes['time']!r}") from error
    return Envelope(
        data=FeedbackIngested(
            org=principal.org,
            submitted_by=principal.subject,
            scopes=principal.scopes,
            unit_id=feedback_in.unit_id or feedback_in.unit_code or "",
            unit_path="",  # resolved by the handler, which reads the units
            feedback=feedback_in,
        ),
        source=attributes.get("source", "unknown"),
        id=attributes["id"],
        time=time,
        trace_carrier={name: headers[name] for name in TRACE_HEADERS if name in headers},
    )


def _cloudevent(headers: dict[str, str], value: bytes | None) -> tuple[dict[str, str], Any]:
    """The CloudEvents attributes (without prefix) and the JSON payload, from either content mode."""
    try:
        body = json.loads(value or b"")
    except ValueError as error:
        raise UnparseableEvent("the record value is not JSON") from error
    if not _structured(headers, body):
        return {name.removeprefix("ce_"): v for name, v in headers.items() if name.startswith("ce_")}, body
    if not isinstance(body, dict):
        raise UnparseableEvent("a structured CloudEvent must be a JSON object")
    attributes = {name: str(v) for name, v in body.items() if name != "data" and isinstance(v, str | int)}
    return attributes, body.get("data")


def _structured(headers: dict[str, str], body: Any) -> bool:
    """Structured mode: said by the content type, or, when a producer leaves it out, by the event's own shape
    (no ``ce_`` headers, and a JSON object carrying the required attributes ``specversion``, ``id``, ``type``)."""
    if headers.get("content-type", "").startswith(STRUCTURED):
        return True
    has_binary_attributes = any(name.startswith("ce_") for name in headers)
    return not has_binary_attributes and isinstance(body, dict) and {"specversion", "id", "type"} <= body.keys()


def _reasons(errors: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{e['field']}: {e['reason']}" for e in errors)


def ingest_handler(
    settings: FeedbackSettings,
) -> Callable[[Sequence[Envelope[FeedbackIngested]], BatchContext], Awaitable[None]]:
    """Store a batch of ingested feedback and publish ``feedback.received``, idempotent by source id.

    A feedback the rules refuse (an unknown unit, say) is rejected alone: it goes to the dead-letter
    topic with the reason and the rest of the batch is stored.
    """

    async def handle(envelopes: Sequence[Envelope[FeedbackIngested]], batch: BatchContext) -> None:
        by_producer: dict[tuple[str, str, tuple[str, ...]], list[intake.Submission]] = {}
        for envelope in envelopes:
            feedback_in, event = envelope.data.feedback, envelope.data
            by_producer.setdefault((event.org, event.submitted_by, event.scopes), []).append(
                intake.Submission(feedback_in, feedback_in.source_id, cause=envelope)
            )
        for (org, submitted_by, scopes), submissions in by_producer.items():
            outcomes = await intake.stage_feedback(
                batch.db,
                settings,
                org=org,
                submitted_by=submitted_by,
                submissions=submissions,
                # A unit outside the token's subtrees is answered as a missing one, as over REST.
                can_see=_inside(scopes),
                work=batch.unit,
                session=batch.session,
            )
            for submission, outcome in zip(submissions, outcomes, strict=True):
                if outcome.status == "rejected" and submission.cause is not None:
                    batch.reject(submission.cause, f"invalid feedback: {_reasons(outcome.errors)}")

    return handle


def _inside(scopes: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda path: any(in_subtree(path, scope) for scope in scopes)


def ingest_redaction(settings: FeedbackSettings) -> DeadLetterRedaction:
    """What a dead ``feedback.ingest`` record keeps: its customer reference pseudonymised, as intake stores it.

    Binary mode carries the feedback as the value, structured mode under ``data``; a value that is not a
    JSON object is kept as it is (it names no reference the service could recognise).
    """
    key = settings.pseudonym_key.get_secret_value().encode()

    def redact(value: bytes | None) -> Redacted:
        try:
            body = json.loads(value or b"")
        except ValueError:
            return Redacted(value)
        if not isinstance(body, dict):
            return Redacted(value)
        data = body.get("data")
        feedback: dict[str, Any] = data if isinstance(data, dict) else body
        reference, org = feedback.get("customer_ref"), feedback.get("org")
        if not isinstance(reference, str) or not isinstance(org, str):
            return Redacted(value)
        hidden = pseudonym(key, org, reference)
        feedback["customer_ref"] = hidden
        return Redacted(json.dumps(body, ensure_ascii=False).encode(), (hidden,))

    return redact
