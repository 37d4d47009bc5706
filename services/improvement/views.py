"""The improvement service's REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from services.improvement import repository
from services.improvement.dependencies import RuntimeDep
from services.improvement.models import ActionRead, ResponsibilityCreate, ResponsibilityRead
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.ids import new_id
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, find_or_404, page, public_view

router = APIRouter(prefix="/api/v1")
MatrixEditor = Annotated[Principal, Depends(require_role("quality_manager"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post(
    "/responsibilities",
    status_code=status.HTTP_201_CREATED,
    response_model=ResponsibilityRead,
    tags=["responsibilities"],
)
async def create_responsibility(
    responsibility_in: ResponsibilityCreate, runtime: RuntimeDep, principal: MatrixEditor
) -> dict[str, Any]:
    """Add an entry to the responsibility matrix."""
    entry = {
        "_id": new_id("resp"),
        "org": principal.org,
        **responsibility_in.model_dump(),
        "created_at": datetime.now(UTC),
    }
    work = runtime.unit_of_work()
    work.insert(repository.RESPONSIBILITIES, entry)
    await runtime.commit(work)
    return public_view(entry)


@router.get("/responsibilities", response_model=Page, tags=["responsibilities"])
async def list_responsibilities(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The organisation's responsibility matrix."""
    return await page(runtime.db, repository.RESPONSIBILITIES, {"org": principal.org}, cursor=cursor, limit=limit)


@router.get("/actions", response_model=Page, tags=["actions"])
async def list_actions(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    alert_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page:
    """Actions on units the caller may see, oldest first."""
    query = principal.scope_filter()
    if alert_id is not None:
        query["alert_id"] = alert_id
    return await page(runtime.db, repository.ACTIONS, query, cursor=cursor, limit=limit)


@router.get("/actions/{action_id}", response_model=ActionRead, tags=["actions"])
async def get_action(action_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One action."""
    query = {"_id": action_id, **principal.scope_filter()}
    return public_view(await find_or_404(runtime.db, repository.ACTIONS, query, kind="action", ident=action_id))
