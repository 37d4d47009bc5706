"""Cursor pagination over time-sortable ids, and reads of one document."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from shared.problems import NotFound, Problem
from shared.storage import Database

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel):
    """One page of a list and the cursor of the next (None on the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    """An opaque cursor after ``last_id``."""
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def decode_cursor(cursor: str) -> str:
    """The id a cursor points after; 400 if it is not one of ours."""
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError) as error:
        raise Problem(400, "Invalid cursor", "pass back the next_cursor of a previous page") from error


async def paginate(
    db: Database, collection: str, query: dict[str, Any], *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Documents matching ``query`` in id order, after the cursor, and the next cursor."""
    if cursor:
        query = {"$and": [query, {"_id": {"$gt": decode_cursor(cursor)}}]}
    rows = await db[collection].find(query).sort("_id", 1).limit(limit + 1).to_list(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["_id"]) if more and rows else None


async def find_or_404(db: Database, collection: str, query: dict[str, Any], *, kind: str, ident: str) -> dict[str, Any]:
    """The document matching ``query`` (which carries the caller's tenancy), or a 404 as for a missing one."""
    document = await db[collection].find_one(query)
    if document is None:
        raise NotFound(kind, ident)
    return document


def public_view(document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as an API shows it: ``_id`` as ``id``, without the tenancy fields."""
    return {"id": document["_id"], **{k: v for k, v in document.items() if k not in ("_id", "org", "lineage")}}


async def page(
    db: Database,
    collection: str,
    query: dict[str, Any],
    *,
    cursor: str | None,
    limit: int,
    view: Callable[[dict[str, Any]], dict[str, Any]] = public_view,
) -> Page:
    """One page of documents matching ``query``, each shown through ``view``."""
    rows, next_cursor = await paginate(db, collection, query, cursor=cursor, limit=limit)
    return Page(items=[view(row) for row in rows], next_cursor=next_cursor)
