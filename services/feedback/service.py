"""Use cases of the feedback service: each loads, decides, and commits state with its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.feedback import repository
from services.feedback.domain import Rejected, check_comment, check_occurred_at, child_path, pseudonym
from services.feedback.models import FeedbackCreate, UnitCreate
from services.feedback.settings import FeedbackSettings
from shared.auth import Principal, lineage
from shared.events import FeedbackReceived, UnitChanged
from shared.pagination import new_id
from shared.problems import NotFound, Problem
from shared.service import Runtime
from shared.storage import Document


def _rejected(error: Rejected) -> Problem:
    return Problem(422, "Invalid request", error.reason, errors=[{"field": error.field, "reason": error.reason}])


async def create_unit(runtime: Runtime, *, principal: Principal, unit_in: UnitCreate) -> Document:
    """Add a unit under its parent (or as a root) and tell the other services."""
    parent_path = None
    if unit_in.parent_id is not None:
        parent = await repository.get_unit(runtime.db, org=principal.org, unit_id=unit_in.parent_id)
        if parent is None or not principal.can_see(parent["path"]):
            raise _rejected(Rejected("parent_id", f"no unit {unit_in.parent_id!r}"))
        parent_path = parent["path"]
    elif not principal.sees_whole_organisation:
        raise Problem(403, "Forbidden", "only an organisation-wide token may create a root unit")
    path = child_path(parent_path, unit_in.id)
    unit = {
        **unit_in.model_dump(),
        "org": principal.org,
        "path": path,
        "lineage": lineage(path),
        "active": True,
        "created_at": datetime.now(UTC),
    }
    work = runtime.unit_of_work()
    work.insert(repository.UNITS, unit)
    work.publish(
        UnitChanged(
            org=principal.org,
            unit_id=unit_in.id,
            unit_path=path,
            change="created",
            name=unit_in.name,
            kind=unit_in.kind,
            parent_id=unit_in.parent_id,
        )
    )
    try:
        await runtime.commit(work)
    except DuplicateKeyError as error:
        raise Problem(409, "Conflict", f"a unit with id {unit_in.id!r} or that external code exists") from error
    return unit


async def resolve_unit(runtime: Runtime, *, principal: Principal, feedback_in: FeedbackCreate) -> Document:
    """The unit a feedback names by id or external code, if the caller may post for it."""
    if feedback_in.unit_id is not None:
        unit = await repository.get_unit(runtime.db, org=principal.org, unit_id=feedback_in.unit_id)
        field, ident = "unit_id", feedback_in.unit_id
    elif feedback_in.unit_code is not None:
        unit = await repository.get_unit_by_code(runtime.db, org=principal.org, external_code=feedback_in.unit_code)
        field, ident = "unit_code", feedback_in.unit_code
    else:
        raise _rejected(Rejected("unit_id", "name the unit by unit_id or unit_code"))
    if unit is None or not principal.can_see(unit["path"]):
        raise _rejected(Rejected(field, f"no unit {ident!r}"))
    if not unit["active"]:
        raise _rejected(Rejected(field, f"unit {ident!r} is deactivated"))
    return unit


async def record_feedback(
    runtime: Runtime, *, principal: Principal, feedback_in: FeedbackCreate, idempotency_key: str | None
) -> tuple[Document, bool]:
    """Store a feedback and publish ``feedback.received``; return it and whether it was new.

    The same integration id (or Idempotency-Key) accepted twice stores one feedback and answers
    the first one.
    """
    settings: FeedbackSettings = runtime.settings  # type: ignore[assignment]
    source_id = feedback_in.source_id or idempotency_key
    if source_id and (
        earlier := await repository.get_feedback_by_source_id(runtime.db, org=principal.org, source_id=source_id)
    ):
        return earlier, False
    unit = await resolve_unit(runtime, principal=principal, feedback_in=feedback_in)
    now = datetime.now(UTC)
    try:
        occurred_at = check_occurred_at(
            feedback_in.occurred_at, now=now, max_skew=timedelta(seconds=settings.max_future_skew_seconds)
        )
        comment = check_comment(feedback_in.comment, max_chars=settings.max_comment_chars)
    except Rejected as error:
        raise _rejected(error) from error
    feedback = _feedback_document(settings, principal.org, unit, feedback_in, occurred_at, now, comment, source_id)
    work = runtime.unit_of_work()
    work.insert(repository.FEEDBACK, feedback)
    work.publish(
        FeedbackReceived(
            org=principal.org,
            unit_id=unit["id"],
            unit_path=unit["path"],
            feedback_id=feedback["_id"],
            channel=feedback["channel"],
            occurred_at=occurred_at,
            received_at=now,
            ratings=feedback_in.ratings,
        )
    )
    try:
        await runtime.commit(work)
    except DuplicateKeyError:
        # A concurrent request with the same id won the race: answer what it stored.
        earlier = await repository.get_feedback_by_source_id(runtime.db, org=principal.org, source_id=source_id or "")
        if earlier is None:
            raise
        return earlier, False
    return feedback, True


def _feedback_document(
    settings: FeedbackSettings,
    org: str,
    unit: Document,
    feedback_in: FeedbackCreate,
    occurred_at: datetime,
    received_at: datetime,
    comment: str | None,
    source_id: str | None,
) -> dict[str, Any]:
    customer = (
        pseudonym(settings.pseudonym_key.get_secret_value().encode(), org, feedback_in.customer_ref)
        if feedback_in.customer_ref
        else None
    )
    return {
        "_id": new_id("fb"),
        "org": org,
        "unit_id": unit["id"],
        "unit_path": unit["path"],
        "lineage": unit["lineage"],
        "channel": feedback_in.channel,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "ratings": feedback_in.ratings.model_dump(),
        "comment": comment,
        "tags": feedback_in.tags,
        "source_id": source_id,
        "customer_ref": customer,
        "metadata": feedback_in.metadata,
    }


async def get_feedback(runtime: Runtime, *, principal: Principal, feedback_id: str) -> Document:
    """One feedback inside the caller's scopes, or 404."""
    feedback = await repository.get_feedback(runtime.db, principal=principal, feedback_id=feedback_id)
    if feedback is None:
        raise NotFound("feedback", feedback_id)
    return feedback


async def get_unit(runtime: Runtime, *, principal: Principal, unit_id: str) -> Document:
    """One unit inside the caller's scopes, or 404."""
    unit = await repository.get_unit(runtime.db, org=principal.org, unit_id=unit_id)
    if unit is None or not principal.can_see(unit["path"]):
        raise NotFound("unit", unit_id)
    return unit
