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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from pymongo import IndexModel

from shared.auth import CurrentPrincipal, Principal
from shared.contract import Moment
from shared.ids import new_id
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, PAGE_KEYS, Page, keyset_page, page_keys, page_keys_index
from shared.storage import Database, Document, UnitOfWork
from shared.tree import WHOLE_ORGANISATION

AUDIT = "audit"
# Keyset pagination (shared/pagination.py): each entry is keyed under the whole organisation and under its
# object, its actor and its kind, so each filter an admin uses is a bounded range of its own (one index;
# the log grows only with configuration changes, so four keys an entry cost little).
AUDIT_INDEXES: dict[str, list[IndexModel]] = {AUDIT: [page_keys_index()]}
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
    ident, at = new_id("au"), datetime.now(UTC)
    unit.insert(
        AUDIT,
        {
            "_id": ident,
            "org": principal.org,
            "at": at,
            "actor": principal.subject,
            "roles": sorted(principal.roles),
            "action": action,
            "kind": kind,
            "object_id": object_id,
            "before": before,
            "after": after,
            PAGE_KEYS: page_keys(principal.org, audit_scopes(kind, object_id, principal.subject), at, ident),
        },
    )


def audit_scopes(kind: str, object_id: str, actor: str) -> list[str]:
    """The lists an entry is keyed under: the organisation's, its object's, its actor's and its kind's."""
    return [WHOLE_ORGANISATION, f"object:{object_id}", f"actor:{actor}", f"kind:{kind}"]


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
    """A page of audit entries, newest first, and the cursor of the next page."""

    items: list[AuditEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


def audit_view(document: Document) -> dict[str, Any]:
    """An audit entry as the API shows it."""
    return {"id": document["_id"], **{name: document.get(name) for name in CSV_COLUMNS[1:]}}


@dataclass(frozen=True)
class AuditSelection:
    """Which entries to list: the most selective filter picks the keyed list, the others are checked on it."""

    scope: str
    match: dict[str, Any]
    since: datetime | None
    until: datetime | None


def audit_selection(
    *,
    kind: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditSelection:
    """The keyed list and residual conditions for filters by kind, object, actor and time."""
    filters = {"object_id": object_id, "actor": actor, "kind": kind}
    match = {name: value for name, value in filters.items() if value}
    scope = WHOLE_ORGANISATION
    for name, prefix in (("object_id", "object"), ("actor", "actor"), ("kind", "kind")):
        if name in match:
            scope = f"{prefix}:{match.pop(name)}"
            break
    return AuditSelection(scope, match, since, until)


class AuditFilters:
    """The query parameters that filter the audit log."""

    def __init__(
        self,
        kind: Annotated[str | None, Query(description="Object kind, e.g. `rule`, `unit`.")] = None,
        object_id: Annotated[str | None, Query(description="One object's id.")] = None,
        actor: Annotated[str | None, Query(description="The token subject who made the change.")] = None,
        since: Annotated[Moment | None, Query(description="Changes at or after this time.")] = None,
        until: Annotated[Moment | None, Query(description="Changes before this time.")] = None,
    ) -> None:
        self.kind, self.object_id, self.actor, self.since, self.until = kind, object_id, actor, since, until

    def selection(self) -> AuditSelection:
        """The keyed list and residual conditions of these filters."""
        return audit_selection(
            kind=self.kind, object_id=self.object_id, actor=self.actor, since=self.since, until=self.until
        )


async def audit_page(db: Database, org: str, selection: AuditSelection, *, cursor: str | None, limit: int) -> Page:
    """One page of an organisation's audit entries, newest first."""
    return await keyset_page(
        db,
        AUDIT,
        org=org,
        scopes=[selection.scope],
        cursor=cursor,
        limit=limit,
        match=selection.match,
        since=selection.since,
        until=selection.until,
        view=audit_view,
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
        """Changes made through this service, newest first, filtered by kind, object, actor and time.

        A page may hold fewer items than ``limit`` (even none) while ``next_cursor`` is set: keep following it.
        """
        return await audit_page(db, principal.org, filters.selection(), cursor=cursor, limit=limit)

    @router.get(
        "/export",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}},
    )
    async def export_audit_entries(db: DatabaseDep, principal: CurrentPrincipal, filters: Filters) -> Any:
        """The filtered audit entries as CSV (before and after as JSON), newest first."""
        return StreamingResponse(
            _csv(_entries(db, principal.org, filters.selection())),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="audit-{service}.csv"'},
        )

    return router


async def _entries(db: Database, org: str, selection: AuditSelection) -> AsyncIterator[dict[str, Any]]:
    """Every selected entry (up to EXPORT_ROWS), page after page."""
    cursor: str | None = None
    sent = 0
    while sent < EXPORT_ROWS:
        result = await audit_page(db, org, selection, cursor=cursor, limit=MAX_LIMIT)
        for item in result.items:
            yield item
        sent += len(result.items)
        if result.next_cursor is None:
            return
        cursor = result.next_cursor


async def _csv(entries: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for view in entries:
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
