"""Listing and replaying a service's dead letters over REST (for SREs and organisation admins)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from shared.auth import Principal, require_role
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, find_or_404, page
from shared.runtime import Runtime, get_runtime
from shared.storage import DEAD_LETTERS, Document

Admin = Annotated[Principal, Depends(require_role("admin"))]
RuntimeDep = Annotated[Runtime[Any], Depends(get_runtime)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
REPLAY_DROPS_HEADERS = ("dlq_",)


def shown(document: Document) -> dict[str, Any]:
    """A dead letter as the API shows it: the value as text where it is text."""
    value = document.get("value") or b""
    try:
        text: str | None = bytes(value).decode()
    except UnicodeDecodeError:
        text = None
    return {
        "id": document["_id"],
        "topic": document["topic"],
        "partition": document["partition"],
        "offset": document["offset"],
        "reason": document["reason"],
        "dead_at": document["dead_at"],
        "replayed_at": document.get("replayed_at"),
        "value": text,
        "headers": {name: bytes(v).decode(errors="replace") for name, v in document.get("headers", [])},
    }


def dead_letter_router(service: str) -> APIRouter:
    """``/api/v1/dead-letters/<service>``: list the organisation's dead letters and replay one."""
    router = APIRouter(prefix=f"/api/v1/dead-letters/{service}", tags=["dead letters"])

    @router.get("", response_model=Page)
    async def list_dead_letters(
        runtime: RuntimeDep,
        principal: Admin,
        topic: str | None = None,
        cursor: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page:
        """Messages this service could not process, oldest first, with the reason."""
        query: dict[str, Any] = {"org": principal.org}
        if topic:
            query["topic"] = topic
        return await page(runtime.db, DEAD_LETTERS, query, cursor=cursor, limit=limit, view=shown)

    @router.post("/{dead_letter_id}/replay")
    async def replay(dead_letter_id: str, runtime: RuntimeDep, principal: Admin) -> dict[str, Any]:
        """Publish the message again on its original topic (after the cause was fixed)."""
        query = {"_id": dead_letter_id, "org": principal.org}
        document = await find_or_404(runtime.db, DEAD_LETTERS, query, kind="dead letter", ident=dead_letter_id)
        headers = [
            (name, bytes(value))
            for name, value in document.get("headers", [])
            if not name.startswith(REPLAY_DROPS_HEADERS)
        ]
        key = bytes(document["key"]) if document.get("key") is not None else None
        await runtime.producer.send_and_wait(
            document["topic"], value=bytes(document["value"] or b""), key=key, headers=headers
        )
        replayed_at = datetime.now(UTC)
        await runtime.db[DEAD_LETTERS].update_one({"_id": dead_letter_id}, {"$set": {"replayed_at": replayed_at}})
        return shown({**document, "replayed_at": replayed_at})

    return router
