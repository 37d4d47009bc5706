"""Reads of stored feedback inside the caller's scopes: one, a page, and counts."""

from __future__ import annotations

from typing import Any

from services.feedback import repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.models import Count, CountsQuery, FeedbackCounts, FeedbackFilter, FeedbackQuery
from services.feedback.service.units import get_unit
from shared.auth import Principal
from shared.problems import NotFound
from shared.storage import Document

# A token with no role beyond these reads back its own submissions only (the role table lets it read no list).
INTEGRATION_ONLY = frozenset({"integration"})


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
    """How many matching feedback each unit (its direct unit) or channel has, inside the caller's scopes."""
    query = await _feedback_query(runtime, principal=principal, filters=query_in)
    by_unit = query_in.group_by == "unit"
    rows = await repository.count_feedback(runtime.db, query, group_by="unit_id" if by_unit else "channel")
    counts = [Count(key=r["_id"], unit_path=r["unit_path"] if by_unit else None, count=r["count"]) for r in rows]
    return FeedbackCounts(group_by=query_in.group_by, total=sum(c.count for c in counts), counts=counts)


async def _feedback_query(runtime: FeedbackRuntime, *, principal: Principal, filters: FeedbackFilter) -> dict[str, Any]:
    unit_path = await _unit_path(runtime, principal=principal, filters=filters)
    return repository.feedback_query(principal, filters, unit_path=unit_path)


async def _unit_path(runtime: FeedbackRuntime, *, principal: Principal, filters: FeedbackFilter) -> str | None:
    if filters.unit_id is None:
        return None
    unit: Document = await get_unit(runtime, principal=principal, unit_id=filters.unit_id)
    return str(unit["path"])
