"""The audit log: who changed what, when, before and after, written in the same transaction as the change.

A use case that changes configuration or a case calls ``record(unit, principal, ...)`` on the unit of
work it commits, so the entry exists exactly when the change does. Admins read a service's log at
``/api/v1/audit/<service>`` (filters: kind, object id, actor, time) or export it as CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from shared.auth import CurrentPrincipal, Principal
from shared.ids import new_id
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, page
from shared.storage import Database, Document, UnitOfWork

AUDIT = "audit"
# One index per filter an admin uses, each led by the organisation: equality (and a time range) on
# indexed fields, never a scan; the audit log grows only with configuration changes, so the extra
# index cost per insert is paid rarely.
AUDIT_INDEXES: dict[str, list[IndexModel]] = {
    AUDIT: [
        IndexModel([("org", ASCENDING), ("at", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("kind", ASCENDING), ("object_id", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("actor", ASCENDING)]),
    ]
}
EXPORT_ROWS = 100_000
CSV_COLUMNS = ("id", "at", "actor", "roles", "action", "kind", "object_id", "before", "after")


def record(
    unit: UnitOfWork,
    principal: Principal,
    action: str,
    kind: str,
    object_id: str,
    before: Document | None,
    after: Document | None,
) -> None:
    """Stage an audit entry in ``unit``: it commits (or not) with the change it describes.

    ``action`` is a verb (create, update, delete, transition…), ``kind`` the object's kind (rule, unit…);
    ``before`` is None for a creation, ``after`` None for a deletion. Pass documents without secrets.
    """
    unit.insert(
        AUDIT,
        {
            "_id": new_id("au"),
            "org": principal.org,
            "at": datetime.now(UTC),
            "actor": principal.subject,
            "roles": sorted(principal.roles),
            "action": action,
            "kind": kind,
            "object_id": object_id,
            "before": before,
            "after": after,
        },
    )


class AuditEntry(BaseModel):
    """One change: who made it, when, and the object before and after."""

    id: str
    at: datetime
    actor: str
    roles: list[str]
    action: str
    kind: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    """A page of audit entries, oldest first, and the cursor of the next page."""

    items: list[AuditEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


def audit_view(document: Document) -> dict[str, Any]:
    """An audit entry as the API shows it."""
    return {"id": document["_id"], **{name: document.get(name) for name in CSV_COLUMNS[1:]}}


def audit_query(
    org: str,
    *,
    kind: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The filter of an organisation's audit entries by kind, object, actor and time."""
    query: dict[str, Any] = {"org": org}
    if kind:
        query["kind"] = kind
    if object_id:
        query["object_id"] = object_id
    if actor:
        query["actor"] = actor
    if since or until:
        query["at"] = {**({"$gte": since} if since else {}), **({"$lt": until} if until else {})}
    return query


class AuditFilters:
    """The query parameters that filter the audit log."""

    def __init__(
        self,
        kind: Annotated[str | None, Query(description="Object kind, e.g. `rule`, `unit`.")] = None,
        object_id: Annotated[str | None, Query(description="One object's id.")] = None,
        actor: Annotated[str | None, Query(description="The token subject who made the change.")] = None,
        since: Annotated[datetime | None, Query(description="Changes at or after this time.")] = None,
        until: Annotated[datetime | None, Query(description="Changes before this time.")] = None,
    ) -> None:
        self.kind, self.object_id, self.actor, self.since, self.until = kind, object_id, actor, since, until

    def query(self, org: str) -> dict[str, Any]:
        """The database filter for an organisation."""
        return audit_query(
            org, kind=self.kind, object_id=self.object_id, actor=self.actor, since=self.since, until=self.until
        )


async def _database(request: Request) -> Database:
    # The runtime is read from the app's state rather than shared.runtime, which imports this module's users.
    db: Database = request.app.state.runtime.db
    return db


DatabaseDep = Annotated[Database, Depends(_database)]
Filters = Annotated[AuditFilters, Depends()]


def audit_router(service: str) -> APIRouter:
    """``/api/v1/audit/<service>``: the organisation's audit entries of this service, and their CSV export."""
    router = APIRouter(prefix=f"/api/v1/audit/{service}", tags=["audit"])

    @router.get("", response_model=AuditPage)
    async def list_audit_entries(
        db: DatabaseDep,
        principal: CurrentPrincipal,
        filters: Filters,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Any:
        """Changes made through this service, oldest first, filtered by kind, object, actor and time."""
        return await page(db, AUDIT, filters.query(principal.org), cursor=cursor, limit=limit, view=audit_view)

    @router.get(
        "/export",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}},
    )
    async def export_audit_entries(db: DatabaseDep, principal: CurrentPrincipal, filters: Filters) -> Any:
        """The filtered audit entries as CSV (before and after as JSON), oldest first."""
        rows = db[AUDIT].find(filters.query(principal.org)).sort("_id", ASCENDING).limit(EXPORT_ROWS)
        return StreamingResponse(
            _csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="audit-{service}.csv"'},
        )

    return router


async def _csv(rows: Any) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for document in rows:
        view = audit_view(document)
        writer.writerow(
            [
                view["id"],
                view["at"].isoformat() if view["at"] else "",
                view["actor"],
                " ".join(view["roles"] or ()),
                view["action"],
                view["kind"],
                view["object_id"],
                _json(view["before"]),
                _json(view["after"]),
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
