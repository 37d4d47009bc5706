"""Use cases of feedback intake: decide each submission, store the accepted ones and tell the other services."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from services.feedback import enrichment, repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.domain import Kind, Rejected, check_comment, check_kind, check_occurred_at, pseudonym
from services.feedback.enrichment import Enrichment
from services.feedback.models import FeedbackCreate
from services.feedback.settings import FeedbackSettings
from shared.auth import Principal
from shared.events import Envelope, FeedbackReceived
from shared.ids import new_id
from shared.problems import Problem, validation_errors
from shared.storage import Database, Document, UnitOfWork


@dataclass(frozen=True)
class Submission:
    """One feedback to take in: the body, the id it is idempotent by, and the event that brought it."""

    feedback_in: FeedbackCreate
    source_id: str | None
    cause: Envelope | None = None


@dataclass
class Outcome:
    """What became of one submission: accepted or duplicate (with the stored feedback), or rejected."""

    status: Literal["accepted", "duplicate", "rejected"]
    feedback: Document | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Checked:
    submission: Submission
    unit: Document
    kind: Kind
    occurred_at: datetime
    comment: str | None


_ERASED = {"field": "source_id", "reason": "the feedback taken under this id was erased"}


def check_submission(
    settings: FeedbackSettings, feedback_in: FeedbackCreate, *, now: datetime
) -> tuple[Kind, datetime, str | None]:
    """The rules that need no stored state: kind, time and comment; raises Rejected."""
    occurred_at = check_occurred_at(
        feedback_in.occurred_at, now=now, max_skew=timedelta(seconds=settings.max_future_skew_seconds)
    )
    comment = check_comment(feedback_in.comment, max_chars=settings.max_comment_chars)
    kind = check_kind(
        feedback_in.kind,
        has_scores=feedback_in.ratings.has_scores,
        has_measures=bool(feedback_in.ratings.measures),
        has_comment=comment is not None,
        has_complaint=feedback_in.complaint is not None,
        has_audit=feedback_in.audit is not None,
    )
    return kind, occurred_at, comment


async def stage_feedback(
    db: Database,
    settings: FeedbackSettings,
    *,
    org: str,
    submitted_by: str,
    submissions: Sequence[Submission],
    can_see: Callable[[str], bool],
    work: UnitOfWork,
    session: AsyncClientSession | None = None,
) -> list[Outcome]:
    """Decide each submission and stage the accepted ones with their events in ``work``.

    ``submitted_by`` (the token's subject) is kept with each feedback: an integration reads back only its own.

    Earlier feedback and units are read in one query each; comments are enriched in one worker
    thread (jieba and snownlp are CPU-bound and would stall the event loop).
    """
    now = datetime.now(UTC)
    earlier = await repository.find_feedback_by_source_ids(
        db, org=org, source_ids=[s.source_id for s in submissions if s.source_id], session=session
    )
    by_id, by_code = await repository.find_units(
        db,
        org=org,
        ids=[s.feedback_in.unit_id for s in submissions if s.feedback_in.unit_id],
        codes=[s.feedback_in.unit_code for s in submissions if s.feedback_in.unit_code],
        session=session,
    )
    outcomes: list[Outcome | None] = [None] * len(submissions)
    checked: dict[int, _Checked] = {}
    claimed: dict[str, int] = {}
    duplicate_of: dict[int, int] = {}
    for index, submission in enumerate(submissions):
        source_id = submission.source_id
        if source_id and source_id in earlier:
            outcomes[index] = _duplicate_of(earlier[source_id])
            continue
        if source_id and source_id in claimed:
            duplicate_of[index] = claimed[source_id]
            continue
        try:
            unit = _unit_of(submission.feedback_in, by_id, by_code, can_see)
            kind, occurred_at, comment = check_submission(settings, submission.feedback_in, now=now)
        except Rejected as error:
            outcomes[index] = Outcome("rejected", errors=[{"field": error.field, "reason": error.reason}])
            continue
        checked[index] = _Checked(submission, unit, kind, occurred_at, comment)
        if source_id:
            claimed[source_id] = index
    enriched = await _enrich([c.comment for c in checked.values()])
    for (index, item), enriched_item in zip(checked.items(), enriched, strict=True):
        document = _feedback_document(settings, org, item, enriched_item, received_at=now)
        document["submitted_by"] = submitted_by
        repository.create_feedback(work, document)
        work.publish(FeedbackReceived.from_feedback(document), cause=item.submission.cause)
        outcomes[index] = Outcome("accepted", document)
    for index, first in duplicate_of.items():
        outcomes[index] = Outcome("duplicate", cast(Outcome, outcomes[first]).feedback)
    return [cast(Outcome, o) for o in outcomes]


def _duplicate_of(earlier: Document | None) -> Outcome:
    """A submission whose source id was taken: by the stored feedback, or by one since erased."""
    return Outcome("duplicate", earlier) if earlier is not None else Outcome("duplicate", errors=[dict(_ERASED)])


def _unit_of(
    feedback_in: FeedbackCreate,
    by_id: dict[str, Document],
    by_code: dict[str, Document],
    can_see: Callable[[str], bool],
) -> Document:
    if feedback_in.unit_id is not None:
        unit, field_name, ident = by_id.get(feedback_in.unit_id), "unit_id", feedback_in.unit_id
    elif feedback_in.unit_code is not None:
        unit, field_name, ident = by_code.get(feedback_in.unit_code), "unit_code", feedback_in.unit_code
    else:
        raise Rejected("unit_id", "name the unit by unit_id or unit_code")
    if unit is None or not can_see(unit["path"]):
        raise Rejected(field_name, f"no unit {ident!r}")
    if not unit["active"]:
        raise Rejected(field_name, f"unit {ident!r} is deactivated")
    return unit


async def _enrich(comments: list[str | None]) -> list[Enrichment | None]:
    if not any(comments):
        return [None] * len(comments)
    return await asyncio.to_thread(lambda: [enrichment.enrich(c) if c else None for c in comments])


def _feedback_document(
    settings: FeedbackSettings, org: str, item: _Checked, enriched: Enrichment | None, *, received_at: datetime
) -> Document:
    feedback_in = item.submission.feedback_in
    customer = (
        pseudonym(settings.pseudonym_key.get_secret_value().encode(), org, feedback_in.customer_ref)
        if feedback_in.customer_ref
        else None
    )
    return {
        "_id": new_id("fb"),
        "org": org,
        "unit_id": item.unit["id"],
        "unit_path": item.unit["path"],
        "lineage": item.unit["lineage"],
        "channel": feedback_in.channel,
        "kind": item.kind,
        "occurred_at": item.occurred_at,
        "received_at": received_at,
        "ratings": feedback_in.ratings.model_dump(),
        # BSON has no date type: the visit date is kept as its ISO string.
        "complaint": feedback_in.complaint.model_dump() if feedback_in.complaint else None,
        "audit": feedback_in.audit.model_dump(mode="json") if feedback_in.audit else None,
        "comment": item.comment,
        "comment_language": enriched.language if enriched else None,
        "sentiment": enriched.sentiment if enriched else None,
        "polarity": enriched.polarity if enriched else None,
        "keywords": enriched.keywords if enriched else [],
        "tags": feedback_in.tags,
        "source_id": item.submission.source_id,
        "customer_ref": customer,
        "metadata": feedback_in.metadata,
    }


async def _take_in(
    runtime: FeedbackRuntime, *, principal: Principal, submissions: Sequence[Submission]
) -> list[Outcome]:
    """Stage and commit submissions as one unit of work (one transaction, shared with concurrent requests)."""
    settings = runtime.settings
    for attempt in range(2):
        work = runtime.unit_of_work()
        outcomes = await stage_feedback(
            runtime.db,
            settings,
            org=principal.org,
            submitted_by=principal.subject,
            submissions=submissions,
            can_see=principal.can_see,
            work=work,
        )
        if not work.envelopes:
            return outcomes
        try:
            await runtime.commit(work)
        except DuplicateKeyError:
            # A concurrent request stored one of these ids first: decide again, it is now a duplicate.
            if attempt:
                raise
            continue
        return outcomes
    raise AssertionError("unreachable")


async def create_feedback(
    runtime: FeedbackRuntime, *, principal: Principal, feedback_in: FeedbackCreate, idempotency_key: str | None
) -> tuple[Document, bool]:
    """Store a feedback and publish ``feedback.received``; return it and whether it was new.

    The same integration id (or Idempotency-Key) accepted twice stores one feedback and answers
    the first one; if that one was erased since, it answers 410 and stores nothing.
    """
    submission = Submission(feedback_in, feedback_in.source_id or idempotency_key)
    (outcome,) = await _take_in(runtime, principal=principal, submissions=[submission])
    if outcome.status == "rejected":
        raise Problem(422, "Invalid request", outcome.errors[0]["reason"], errors=outcome.errors)
    if outcome.feedback is None:
        raise Problem(410, "Gone", _ERASED["reason"], errors=outcome.errors)
    return outcome.feedback, outcome.status == "accepted"


async def create_feedback_batch(
    runtime: FeedbackRuntime, *, principal: Principal, items: Sequence[dict[str, Any]]
) -> list[Outcome]:
    """Take in up to 1,000 feedback in one transaction; each item is accepted, a duplicate or rejected."""
    outcomes: list[Outcome | None] = [None] * len(items)
    valid: dict[int, Submission] = {}
    for index, item in enumerate(items):
        try:
            feedback_in = FeedbackCreate.model_validate(item)
        except ValidationError as error:
            outcomes[index] = Outcome("rejected", errors=validation_errors(error.errors()))
            continue
        valid[index] = Submission(feedback_in, feedback_in.source_id)
    staged = await _take_in(runtime, principal=principal, submissions=list(valid.values()))
    for index, outcome in zip(valid, staged, strict=True):
        outcomes[index] = outcome
    return [cast(Outcome, o) for o in outcomes]
