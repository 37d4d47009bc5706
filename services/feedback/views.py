"""The feedback service's REST API: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from services.feedback import repository
from services.feedback.dependencies import RuntimeDep
from services.feedback.models import (
    BatchCreate,
    BatchResult,
    CountsQuery,
    ErasureCreate,
    ErasureRead,
    FeedbackCounts,
    FeedbackCreate,
    FeedbackQuery,
    FeedbackRead,
    ImportResult,
    ItemResult,
    UnitCreate,
    UnitImport,
    UnitRead,
    UnitUpdate,
)
from services.feedback.service import erasure, intake, reads, unit_import, units
from shared.auth import CurrentPrincipal
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/api/v1")
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/units", status_code=status.HTTP_201_CREATED, response_model=UnitRead, tags=["units"])
async def create_unit(unit_in: UnitCreate, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Add a unit to the organisation's tree."""
    unit = await units.create_unit(runtime, principal=principal, unit_in=unit_in)
    return repository.unit_read(unit)


@router.post(
    "/units/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportResult,
    tags=["units"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": UnitImport.model_json_schema()},
                "text/csv": {
                    "schema": {"type": "string", "description": "header: id,name,kind,parent_id,external_code"}
                },
            },
        }
    },
)
async def import_units(request: Request, runtime: RuntimeDep, principal: CurrentPrincipal) -> ImportResult:
    """Add a whole tree (JSON or CSV, parents in any order): all rows or none, with a per-row error report."""
    rows = unit_import.read_import(request.headers.get("content-type", ""), await request.body())
    return ImportResult(created=await unit_import.import_units(runtime, principal=principal, rows=rows))


@router.get("/units/{unit_id}", response_model=UnitRead, tags=["units"])
async def get_unit(unit_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One unit."""
    return repository.unit_read(await units.get_unit(runtime, principal=principal, unit_id=unit_id))


@router.patch("/units/{unit_id}", response_model=UnitRead, tags=["units"])
async def update_unit(
    unit_id: str, unit_in: UnitUpdate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Rename a unit, change its kind or external code, or move it (``parent_id``) with its whole subtree."""
    unit = await units.update_unit(runtime, principal=principal, unit_id=unit_id, unit_in=unit_in)
    return repository.unit_read(unit)


@router.post("/units/{unit_id}/deactivate", response_model=UnitRead, tags=["units"])
async def deactivate_unit(unit_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Deactivate a unit: it takes no more feedback."""
    return repository.unit_read(await units.deactivate_unit(runtime, principal=principal, unit_id=unit_id))


@router.get("/units", response_model=Page, tags=["units"])
async def list_units(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The units the caller may see, newest first."""
    rows, next_cursor = await units.list_units(runtime, principal=principal, cursor=cursor, limit=limit)
    return Page(items=[repository.unit_read(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackRead,
    tags=["feedback"],
    responses={
        200: {"description": "Already accepted under this source id or Idempotency-Key"},
        410: {"description": "The feedback accepted under this source id or Idempotency-Key was erased"},
    },
)
async def post_feedback(
    feedback_in: FeedbackCreate,
    response: Response,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Accept one feedback; repeating it under the same id answers the first result."""
    feedback, created = await intake.create_feedback(
        runtime, principal=principal, feedback_in=feedback_in, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return repository.feedback_read(feedback)


@router.post("/feedback/batch", response_model=BatchResult, tags=["feedback"])
async def post_feedback_batch(batch_in: BatchCreate, runtime: RuntimeDep, principal: CurrentPrincipal) -> BatchResult:
    """Accept up to 1,000 feedback in one transaction, with a result per item."""
    outcomes = await intake.create_feedback_batch(runtime, principal=principal, items=batch_in.items)
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
async def create_erasure(erasure_in: ErasureCreate, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Erase every feedback of one customer and tell the other services."""
    return repository.erasure_read(await erasure.create_erasure(runtime, principal=principal, erasure_in=erasure_in))


@router.get("/feedback/counts", response_model=FeedbackCounts, tags=["feedback"])
async def count_feedback(
    query_in: Annotated[CountsQuery, Query()], runtime: RuntimeDep, principal: CurrentPrincipal
) -> FeedbackCounts:
    """How many matching feedback each unit (its direct unit) or each channel has."""
    return await reads.count_feedback(runtime, principal=principal, query_in=query_in)


@router.get("/feedback/{feedback_id}", response_model=FeedbackRead, tags=["feedback"])
async def get_feedback(feedback_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One feedback."""
    return repository.feedback_read(await reads.get_feedback(runtime, principal=principal, feedback_id=feedback_id))


@router.get("/feedback", response_model=Page, tags=["feedback"])
async def list_feedback(
    query_in: Annotated[FeedbackQuery, Query()], runtime: RuntimeDep, principal: CurrentPrincipal
) -> Page:
    """Feedback the caller may see that matches the filters, newest occurrence first, a page at a time."""
    rows, next_cursor = await reads.list_feedback(runtime, principal=principal, query_in=query_in)
    return Page(items=[repository.feedback_read(r) for r in rows], next_cursor=next_cursor)
