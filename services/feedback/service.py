"""Use cases of the feedback service: each loads, decides, and commits state with its events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from pydantic import ValidationError
from pymongo import DeleteMany, UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from services.feedback import enrichment, repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.domain import (
    Kind,
    NewUnit,
    Rejected,
    RowError,
    check_comment,
    check_kind,
    check_move,
    check_occurred_at,
    child_path,
    moved_path,
    place_units,
    pseudonym,
    read_unit_csv,
)
from services.feedback.enrichment import Enrichment
from services.feedback.models import (
    MAX_IMPORT,
    Count,
    CountsQuery,
    ErasureCreate,
    FeedbackCounts,
    FeedbackCreate,
    FeedbackFilter,
    FeedbackQuery,
    UnitCreate,
    UnitImport,
    UnitUpdate,
)
from services.feedback.settings import FeedbackSettings
from shared.auth import Principal
from shared.events import Audit, Complaint, Envelope, FeedbackErased, FeedbackReceived, Ratings, UnitChange, UnitChanged
from shared.ids import new_id
from shared.pagination import find_or_404, paginate
from shared.problems import NotFound, Problem, validation_errors
from shared.storage import Database, Document, UnitOfWork, chunks
from shared.tree import lineage


def _rejected(error: Rejected) -> Problem:
    return Problem(422, "Invalid request", error.reason, errors=[{"field": error.field, "reason": error.reason}])


async def create_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_in: UnitCreate) -> Document:
    """Add a unit under its parent (or as a root) and tell the other services."""
    path = child_path(await _parent_path(runtime, principal=principal, parent_id=unit_in.parent_id), unit_in.id)
    unit = _new_unit(principal.org, unit_in, path, created_at=datetime.now(UTC))
    work = runtime.unit_of_work()
    work.insert(repository.UNITS, unit)
    work.publish(_unit_changed(unit, "created"))
    await _commit_tree_change(
        runtime, work, org=principal.org, conflict=f"a unit with id {unit_in.id!r} or that external code exists"
    )
    return unit


def _new_unit(org: str, unit_in: UnitCreate, path: str, *, created_at: datetime) -> Document:
    # A time-sortable string id, as for feedback: the unit list's cursor pages over it.
    return {
        "_id": new_id("un"),
        **unit_in.model_dump(),
        "org": org,
        "path": path,
        "lineage": lineage(path),
        "active": True,
        "created_at": created_at,
    }


def read_import(content_type: str, body: bytes) -> list[Any]:
    """The rows of an import body: CSV (``text/csv``, header ``id,name,kind,parent_id,external_code``) or JSON."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "text/csv":
        try:
            return read_unit_csv(body.decode("utf-8-sig"))
        except UnicodeDecodeError as error:
            raise _rejected(Rejected("body", "a CSV must be UTF-8")) from error
        except Rejected as error:
            raise _rejected(error) from error
    if media_type in ("application/json", ""):
        try:
            return UnitImport.model_validate_json(body).units
        except ValidationError as error:
            raise Problem(
                422, "Invalid request", "the request does not validate", errors=validation_errors(error.errors())
            ) from error
    raise Problem(415, "Unsupported media type", "send application/json or text/csv")


async def import_units(runtime: FeedbackRuntime, *, principal: Principal, rows: Sequence[Any]) -> int:
    """Add a whole tree in one unit of work, or nothing: any bad row answers 422 with every row's errors."""
    if len(rows) > MAX_IMPORT:
        raise _rejected(Rejected("units", f"has {len(rows)} rows, more than the {MAX_IMPORT} allowed"))
    errors: list[RowError] = []
    checked: dict[int, UnitCreate] = {}
    for row, raw in enumerate(rows, 1):
        try:
            checked[row] = UnitCreate.model_validate(raw)
        except ValidationError as error:
            errors.extend(RowError(row, e["field"], e["reason"]) for e in validation_errors(error.errors()))
    new = [_tree_row(row, raw, checked.get(row)) for row, raw in enumerate(rows, 1)]
    named = [u for u in new if u is not None]
    existing = await repository.find_units_by(
        runtime.db,
        org=principal.org,
        field_name="id",
        values={u.id for u in named} | {u.parent_id for u in named if u.parent_id},
    )
    taken = await repository.find_units_by(
        runtime.db,
        org=principal.org,
        field_name="external_code",
        values={u.external_code for u in named if u.external_code is not None},
    )
    placed, tree_errors = place_units(
        named,
        existing={
            u["id"]: u["path"] if u["active"] and principal.can_see(u["path"]) else None for u in existing.values()
        },
        taken_codes=taken.keys(),
        may_add_roots=principal.sees_whole_organisation,
    )
    errors = sorted([*errors, *tree_errors], key=lambda e: e.row)
    if errors:
        report = [{"row": e.row, "field": e.field, "reason": e.reason} for e in errors]
        raise Problem(
            422, "Invalid import", f"{len({e.row for e in errors})} rows are invalid; nothing was stored", errors=report
        )
    now = datetime.now(UTC)
    work = runtime.unit_of_work()
    for new_unit, path in placed:
        unit = _new_unit(principal.org, checked[new_unit.row], path, created_at=now)
        work.insert(repository.UNITS, unit)
        work.publish(_unit_changed(unit, "created"))
    await _commit_tree_change(runtime, work, org=principal.org, conflict="a unit of the import was added meanwhile")
    return len(placed)


def _tree_row(row: int, raw: Any, unit_in: UnitCreate | None) -> NewUnit | None:
    """Where a row sits in the tree; a row that failed its checks still names its id, so its children stay put."""
    if unit_in is not None:
        return NewUnit(row, unit_in.id, unit_in.parent_id, unit_in.external_code)
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        parent_id, code = raw.get("parent_id"), raw.get("external_code")
        return NewUnit(
            row,
            raw["id"],
            parent_id if isinstance(parent_id, str) else None,
            code if isinstance(code, str) else None,
            ok=False,
        )
    return None


async def update_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_id: str, unit_in: UnitUpdate) -> Document:
    """Change a unit's name, kind or external code, or move it with its subtree; only sent fields change."""
    unit = await get_unit(runtime, principal=principal, unit_id=unit_id)
    changes = {k: v for k, v in unit_in.model_dump(exclude_unset=True).items() if v != unit.get(k)}
    if not changes:
        return unit
    work = runtime.unit_of_work()
    if "parent_id" in changes:
        await _stage_move(runtime, work, principal=principal, unit=unit, changes=changes)
    else:
        work.write(repository.UNITS, UpdateOne({"org": principal.org, "id": unit_id}, {"$set": changes}))
        if changes.keys() & {"name", "kind"}:
            work.publish(_unit_changed({**unit, **changes}, "renamed"))
    await _commit_tree_change(runtime, work, org=principal.org, conflict="another unit has that external code")
    return await get_unit(runtime, principal=principal, unit_id=unit_id)


async def _stage_move(
    runtime: FeedbackRuntime, work: UnitOfWork, *, principal: Principal, unit: Document, changes: Document
) -> None:
    """Stage the move of a unit's subtree: every unit's path and lineage, and its stored feedback's."""
    parent_path = await _parent_path(runtime, principal=principal, parent_id=changes["parent_id"])
    try:
        new_root = check_move(unit["path"], parent_path)
    except Rejected as error:
        raise _rejected(error) from error
    for member in await repository.get_subtree(runtime.db, org=principal.org, unit_path=unit["path"]):
        path = moved_path(member["path"], old_root=unit["path"], new_root=new_root)
        fields = {**(changes if member["id"] == unit["id"] else {}), "path": path, "lineage": lineage(path)}
        work.write(repository.UNITS, UpdateOne({"org": principal.org, "id": member["id"]}, {"$set": fields}))
        # One update per unit, not per feedback: a region's feedback may be millions of rows, and the
        # lineage index finds the unit's own rows without reading them first.
        work.write(
            repository.FEEDBACK,
            UpdateMany(
                {"org": principal.org, "lineage": member["path"], "unit_id": member["id"]},
                {"$set": {"unit_path": path, "lineage": fields["lineage"]}},
            ),
        )
        work.publish(_unit_changed({**member, **fields}, "moved", previous_path=member["path"]))


async def deactivate_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_id: str) -> Document:
    """Mark a unit inactive, so that it takes no more feedback, and tell the other services."""
    unit = await get_unit(runtime, principal=principal, unit_id=unit_id)
    if unit["active"]:
        work = runtime.unit_of_work()
        work.write(repository.UNITS, UpdateOne({"org": principal.org, "id": unit_id}, {"$set": {"active": False}}))
        work.publish(_unit_changed({**unit, "active": False}, "deactivated"))
        await _commit_tree_change(runtime, work, org=principal.org, conflict="the unit changed meanwhile")
    return await get_unit(runtime, principal=principal, unit_id=unit_id)


async def _parent_path(runtime: FeedbackRuntime, *, principal: Principal, parent_id: str | None) -> str | None:
    """The path of a unit's new parent (None for a root), which must be visible and active."""
    if parent_id is None:
        if not principal.sees_whole_organisation:
            raise Problem(403, "Forbidden", "only an organisation-wide token may make a root unit")
        return None
    parent = await repository.get_unit(runtime.db, org=principal.org, unit_id=parent_id)
    if parent is None or not principal.can_see(parent["path"]):
        raise _rejected(Rejected("parent_id", f"no unit {parent_id!r}"))
    if not parent["active"]:
        raise _rejected(Rejected("parent_id", f"unit {parent_id!r} is deactivated"))
    path: str = parent["path"]
    return path


def _unit_changed(unit: Document, change: UnitChange, previous_path: str | None = None) -> UnitChanged:
    return UnitChanged(
        org=unit["org"],
        unit_id=unit["id"],
        unit_path=unit["path"],
        change=change,
        name=unit["name"],
        kind=unit["kind"],
        parent_id=unit["parent_id"],
        previous_path=previous_path,
        active=unit["active"],
    )


async def _commit_tree_change(runtime: FeedbackRuntime, work: UnitOfWork, *, org: str, conflict: str) -> None:
    """Commit a change of the unit tree, then drop the organisation's cached units so intake sees it at once.

    Other processes see it when their cache entries expire (``UnitCache`` ttl).
    """
    try:
        await runtime.commit(work)
    except DuplicateKeyError as error:
        raise Problem(409, "Conflict", conflict) from error
    repository.UNIT_CACHE.forget(runtime.db.name, org)


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
    submissions: Sequence[Submission],
    can_see: Callable[[str], bool],
    work: UnitOfWork,
    session: AsyncClientSession | None = None,
) -> list[Outcome]:
    """Decide each submission and stage the accepted ones with their events in ``work``.

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
        work.insert(repository.FEEDBACK, document)
        # Same unit of work: a concurrent post of the same source id fails its commit on the row's _id.
        for collection, row in repository.side_rows(document):
            work.insert(collection, row)
        work.publish(_received(document, item.submission.feedback_in), cause=item.submission.cause)
        outcomes[index] = Outcome("accepted", document)
    for index, first in duplicate_of.items():
        outcomes[index] = Outcome("duplicate", cast(Outcome, outcomes[first]).feedback)
    return [cast(Outcome, o) for o in outcomes]


_ERASED = {"field": "source_id", "reason": "the feedback taken under this id was erased"}


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


def _received(document: Document, feedback_in: FeedbackCreate) -> FeedbackReceived:
    return FeedbackReceived(
        org=document["org"],
        unit_id=document["unit_id"],
        unit_path=document["unit_path"],
        feedback_id=document["_id"],
        channel=document["channel"],
        occurred_at=document["occurred_at"],
        received_at=document["received_at"],
        kind=document["kind"],
        ratings=feedback_in.ratings.as_event(),
        complaint=Complaint.model_validate(document["complaint"]) if document["complaint"] else None,
        audit=Audit.model_validate(document["audit"]) if document["audit"] else None,
        tags=document["tags"],
        comment_language=document["comment_language"],
        sentiment=document["sentiment"],
        polarity=document.get("polarity"),
        keywords=document["keywords"],
    )


async def _take_in(
    runtime: FeedbackRuntime, *, principal: Principal, submissions: Sequence[Submission]
) -> list[Outcome]:
    """Stage and commit submissions as one unit of work (one transaction, shared with concurrent requests)."""
    settings: FeedbackSettings = runtime.settings  # type: ignore[assignment]
    for attempt in range(2):
        work = runtime.unit_of_work()
        outcomes = await stage_feedback(
            runtime.db, settings, org=principal.org, submissions=submissions, can_see=principal.can_see, work=work
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


async def record_feedback(
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


async def record_batch(
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


async def erase_customer(runtime: FeedbackRuntime, *, principal: Principal, erasure_in: ErasureCreate) -> Document:
    """Delete one customer's feedback and publish ``feedback.erased`` for each, in one transaction.

    The feedback's customer rows go with it. Its source-id rows stay, marked erased, without anything
    of the customer: the integration id stays taken, so a retry or a re-sync of the same record answers
    "erased" (410 for a single POST, a duplicate without id in a batch, nothing on ``feedback.ingest``)
    instead of bringing the erased feedback back. Freeing the id would let any replay undo the erasure.
    New feedback of the same customer, under new ids, is taken as usual.
    """
    settings: FeedbackSettings = runtime.settings  # type: ignore[assignment]
    customer = pseudonym(settings.pseudonym_key.get_secret_value().encode(), principal.org, erasure_in.customer_ref)
    erased = await repository.find_feedback_of_customer(runtime.db, principal=principal, customer_ref=customer)
    work = runtime.unit_of_work()
    _stage_erasure(work, principal.org, erased, erased_at=datetime.now(UTC))
    for feedback in erased:
        work.publish(
            FeedbackErased(
                org=principal.org,
                unit_id=feedback["unit_id"],
                unit_path=feedback["unit_path"],
                feedback_id=feedback["_id"],
                occurred_at=feedback["occurred_at"],
                kind=feedback["kind"],
                ratings=Ratings.model_validate(feedback["ratings"]),
                complaint=Complaint.model_validate(feedback["complaint"]) if feedback.get("complaint") else None,
                audit=Audit.model_validate(feedback["audit"]) if feedback.get("audit") else None,
                sentiment=feedback.get("sentiment"),
            )
        )
    # The request is recorded without the customer's pseudonym: nothing left links to them.
    erasure = {
        "_id": new_id("er"),
        "org": principal.org,
        "requested_by": principal.subject,
        "requested_at": datetime.now(UTC),
        "erased": len(erased),
    }
    work.insert(repository.ERASURES, erasure)
    await runtime.commit(work)
    return erasure


def _stage_erasure(work: UnitOfWork, org: str, erased: Sequence[Document], *, erased_at: datetime) -> None:
    """Stage the deletion of feedback with their customer rows, and the tombstones of their source ids."""
    for chunk in chunks([f["_id"] for f in erased]):
        work.write(repository.FEEDBACK, DeleteMany({"_id": {"$in": list(chunk)}}))
    customer_keys = [repository.customer_key(org, f["customer_ref"], f["_id"]) for f in erased]
    for chunk in chunks(customer_keys):
        work.write(repository.CUSTOMER_FEEDBACK, DeleteMany({"_id": {"$in": list(chunk)}}))
    for feedback in erased:
        if isinstance(feedback.get("source_id"), str):
            key = repository.source_key(org, feedback["source_id"])
            # Upserted, so the tombstone holds even if the row was never written.
            tombstone = {"feedback_id": feedback["_id"], "erased_at": erased_at}
            work.write(repository.SOURCE_IDS, UpdateOne({"_id": key}, {"$set": tombstone}, upsert=True))


async def get_feedback(runtime: FeedbackRuntime, *, principal: Principal, feedback_id: str) -> Document:
    """One feedback inside the caller's scopes, or 404."""
    query = {"_id": feedback_id, **principal.scope_filter()}
    return await find_or_404(runtime.db, repository.FEEDBACK, query, kind="feedback", ident=feedback_id)


async def list_feedback(
    runtime: FeedbackRuntime, *, principal: Principal, query_in: FeedbackQuery
) -> tuple[list[Document], str | None]:
    """A page of the matching feedback inside the caller's scopes, oldest first, and the next cursor.

    Ids sort by creation time, so feedback that arrives while a client pages lands after its cursor.
    """
    query = await _feedback_query(runtime, principal=principal, filters=query_in)
    return await paginate(runtime.db, repository.FEEDBACK, query, cursor=query_in.cursor, limit=query_in.limit)


async def count_feedback(runtime: FeedbackRuntime, *, principal: Principal, query_in: CountsQuery) -> FeedbackCounts:
    """How many matching feedback each unit (its direct unit) or channel has, inside the caller's scopes."""
    query = await _feedback_query(runtime, principal=principal, filters=query_in)
    by_unit = query_in.group_by == "unit"
    rows = await repository.count_feedback(runtime.db, query, group_by="unit_id" if by_unit else "channel")
    counts = [Count(key=r["_id"], unit_path=r["unit_path"] if by_unit else None, count=r["count"]) for r in rows]
    return FeedbackCounts(group_by=query_in.group_by, total=sum(c.count for c in counts), counts=counts)


async def _feedback_query(runtime: FeedbackRuntime, *, principal: Principal, filters: FeedbackFilter) -> dict[str, Any]:
    unit_path = None
    if filters.unit_id is not None:
        unit_path = (await get_unit(runtime, principal=principal, unit_id=filters.unit_id))["path"]
    return repository.feedback_query(principal, filters, unit_path=unit_path)


async def get_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_id: str) -> Document:
    """One unit inside the caller's scopes, or 404."""
    unit = await repository.get_unit(runtime.db, org=principal.org, unit_id=unit_id)
    if unit is None or not principal.can_see(unit["path"]):
        raise NotFound("unit", unit_id)
    return unit
