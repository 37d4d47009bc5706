"""Reads of stored feedback inside the caller's scopes: one, a page, and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.feedback import repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.models import Count, CountsQuery, FeedbackCounts, FeedbackFilter, FeedbackQuery
from services.feedback.service.units import get_unit
from shared.auth import Principal
from shared.problems import NotFound, Problem
from shared.storage import Document

# A token with no role beyond these reads back its own submissions only (the role table lets it read no list).
INTEGRATION_ONLY = frozenset({"integration"})
DEFAULT_COUNT_SPAN = timedelta(days=30)
MAX_COUNT_SPAN = timedelta(days=92)


async def get_feedback(runtime: FeedbackRuntime, *, principal: Principal, feedback_id: str) -> Document:
    """One feedback inside the caller's scopes, or 404; an integration sees only what it submitted itself."""
    feedback = await repository.get_feedback(runtime.db, principal=principal, feedback_id=feedback_id)
    if feedback is None or (principal.roles <= INTEGRATION_ONLY and feedback.get("submitted_by") != principal.subject):
        raise NotFound("feedback", feedback_id)
    return feedback


async def list_feedback(
    runtime: FeedbackRuntime, *, principal: Principal, query_in: FeedbackQuery
) -> tuple[list[Document], str | None]:
    """A page of the matching feedback inside the caller's scopes, newest occurrence first, and the next cursor.

    Pages cost a page, not the collection (``shared.pagination.keyset_page``); feedback that arrives while
    a client pages is newer than its first page, so it is not in that walk, and none is listed twice.
    """
    unit_path = await _unit_path(runtime, principal=principal, filters=query_in)
    return await repository.list_feedback(
        runtime.db,
        principal=principal,
        filters=query_in,
        unit_path=unit_path,
        cursor=query_in.cursor,
        limit=query_in.limit,
    )


async def count_feedback(runtime: FeedbackRuntime, *, principal: Principal, query_in: CountsQuery) -> FeedbackCounts:
    """How many matching feedback each unit (its direct unit) or channel has, inside the caller's scopes.

    Over a bounded stretch of occurrence (by default the last 30 days, at most 92): a count reads every
    feedback of its stretch. Longer stretches are the scores' sample sizes (the scoring service's aggregates).
    """
    end = query_in.to or datetime.now(UTC)
    since = query_in.from_ or end - DEFAULT_COUNT_SPAN
    if end - since > MAX_COUNT_SPAN:
        raise Problem(
            422,
            "Counting stretch too long",
            f"counts cover at most {MAX_COUNT_SPAN.days} days of occurrence (from/to); longer stretches are "
            "the sample sizes of GET /api/v1/scores/{unit_id}?period=month",
        )
    unit_path = await _unit_path(runtime, principal=principal, filters=query_in)
    by_unit = query_in.group_by == "unit"
    rows = await repository.count_feedback(
        runtime.db,
        principal=principal,
        filters=query_in,
        unit_path=unit_path,
        since=since,
        until=query_in.to,
        group_by="unit_id" if by_unit else "channel",
    )
    counts = [Count(key=key, unit_path=path, count=count) for key, path, count in rows]
    total = sum(c.count for c in counts)
    return FeedbackCounts(group_by=query_in.group_by, since=since, until=query_in.to, total=total, counts=counts)


async def _unit_path(runtime: FeedbackRuntime, *, principal: Principal, filters: FeedbackFilter) -> str | None:
    if filters.unit_id is None:
        return None
    unit: Document = await get_unit(runtime, principal=principal, unit_id=filters.unit_id)
    return str(unit["path"])
