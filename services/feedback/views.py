"""The feedback service's REST API: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from services.feedback import repository, service
from services.feedback.models import (
    BatchCreate,
    BatchResult,
    ErasureCreate,
    ErasureRead,
    FeedbackCreate,
    FeedbackRead,
    ItemResult,
    UnitCreate,
    UnitRead,
)
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from shared.service import RuntimeDep

router = APIRouter(prefix="/api/v1")
Admin = Annotated[Principal, Depends(require_role("admin"))]
Poster = Annotated[Principal, Depends(require_role("integration", "quality_manager", "unit_manager"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/units", status_code=status.HTTP_201_CREATED, response_model=UnitRead, tags=["units"])
async def create_unit(unit_in: UnitCreate, runtime: RuntimeDep, principal: Admin) -> dict[str, Any]:
    """Add a unit to the organisation's tree."""
    unit = await service.create_unit(runtime, principal=principal, unit_in=unit_in)
    return repository.unit_read(unit)


@router.get("/units/{unit_id}", response_model=UnitRead, tags=["units"])
async def get_unit(unit_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One unit."""
    return repository.unit_read(await service.get_unit(runtime, principal=principal, unit_id=unit_id))


@router.get("/units", response_model=Page, tags=["units"])
async def list_units(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The units the caller may see, in creation order."""
    rows, next_cursor = await paginate(
        runtime.db, repository.UNITS, principal.scope_filter(), cursor=cursor, limit=limit
    )
    return Page(items=[repository.unit_read(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackRead,
    tags=["feedback"],
    responses={200: {"description": "Already accepted under this source id or Idempotency-Key"}},
)
async def post_feedback(
    feedback_in: FeedbackCreate,
    response: Response,
    runtime: RuntimeDep,
    principal: Poster,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Accept one feedback; repeating it under the same id answers the first result."""
    feedback, created = await service.record_feedback(
        runtime, principal=principal, feedback_in=feedback_in, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return repository.feedback_read(feedback)


@router.post("/feedback/batch", response_model=BatchResult, tags=["feedback"])
async def post_feedback_batch(batch_in: BatchCreate, runtime: RuntimeDep, principal: Poster) -> BatchResult:
    """Accept up to 1,000 feedback in one transaction, with a result per item."""
    outcomes = await service.record_batch(runtime, principal=principal, items=batch_in.items)
    results = [
        ItemResult(index=i, status=o.status, id=o.feedback["_id"] if o.feedback else None, errors=o.errors)
        for i, o in enumerate(outcomes)
    ]
    statuses = [o.status for o in outcomes]
    return BatchResult(
        accepted=statuses.count("accepted"),
        duplicates=statuses.count("duplicate"),
        rejected=statuses.count("rejected"),
        results=results,
    )


@router.post("/erasures", status_code=status.HTTP_201_CREATED, response_model=ErasureRead, tags=["erasures"])
async def create_erasure(erasure_in: ErasureCreate, runtime: RuntimeDep, principal: Admin) -> dict[str, Any]:
    """Erase every feedback of one customer and tell the other services."""
    erasure = await service.erase_customer(runtime, principal=principal, erasure_in=erasure_in)
    return {"id": erasure["_id"], **erasure}


@router.get("/feedback/{feedback_id}", response_model=FeedbackRead, tags=["feedback"])
async def get_feedback(feedback_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One feedback."""
    return repository.feedback_read(await service.get_feedback(runtime, principal=principal, feedback_id=feedback_id))


@router.get("/feedback", response_model=Page, tags=["feedback"])
async def list_feedback(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    unit_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page:
    """Feedback the caller may see, oldest first; ``unit_id`` narrows to a subtree."""
    query = principal.scope_filter()
    if unit_id is not None:
        unit = await service.get_unit(runtime, principal=principal, unit_id=unit_id)
        query = {"$and": [query, {"lineage": unit["path"]}]}
    rows, next_cursor = await paginate(runtime.db, repository.FEEDBACK, query, cursor=cursor, limit=limit)
    return Page(items=[repository.feedback_read(r) for r in rows], next_cursor=next_cursor)
