"""The alerts service's REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status

from services.alerts import repository
from services.alerts.dependencies import RuntimeDep
from services.alerts.models import AlertRead, RuleCreate, RuleRead
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.ids import new_id
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, find_or_404, page, public_view

router = APIRouter(prefix="/api/v1")
RuleEditor = Annotated[Principal, Depends(require_role("quality_manager"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/rules", status_code=status.HTTP_201_CREATED, response_model=RuleRead, tags=["rules"])
async def create_rule(rule_in: RuleCreate, runtime: RuntimeDep, principal: RuleEditor) -> dict[str, Any]:
    """Add a threshold rule."""
    rule = {
        "_id": new_id("rule"),
        "org": principal.org,
        **rule_in.model_dump(),
        "created_at": datetime.now(UTC),
        "created_by": principal.subject,
    }
    work = runtime.unit_of_work()
    work.insert(repository.RULES, rule)
    await runtime.commit(work)
    return public_view(rule)


@router.get("/rules", response_model=Page, tags=["rules"])
async def list_rules(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The organisation's rules."""
    return await page(runtime.db, repository.RULES, {"org": principal.org}, cursor=cursor, limit=limit)


@router.get("/rules/{rule_id}", response_model=RuleRead, tags=["rules"])
async def get_rule(rule_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One rule."""
    query = {"_id": rule_id, "org": principal.org}
    return public_view(await find_or_404(runtime.db, repository.RULES, query, kind="rule", ident=rule_id))


@router.get("/alerts", response_model=Page, tags=["alerts"])
async def list_alerts(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    status: Literal["firing", "resolved"] | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page:
    """Alerts on units the caller may see, oldest first."""
    query = principal.scope_filter()
    if status is not None:
        query["status"] = status
    return await page(runtime.db, repository.ALERTS, query, cursor=cursor, limit=limit)


@router.get("/alerts/{alert_id}", response_model=AlertRead, tags=["alerts"])
async def get_alert(alert_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One alert."""
    query = {"_id": alert_id, **principal.scope_filter()}
    return public_view(await find_or_404(runtime.db, repository.ALERTS, query, kind="alert", ident=alert_id))
