"""Dead letters: what is kept of a message a service could not process, listing and replaying them over REST,
and erasing a customer's from them.

What is kept passes the service's redaction hook first (``ServiceDefinition.dead_letter_redaction``), so
customer references are stored pseudonymised, and the pseudonyms it names let an erasure find them.
Bearer tokens carried in record headers are never kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pymongo import ASCENDING, IndexModel

from shared.auth import TOKEN_HEADER, CurrentPrincipal
from shared.events import SIGNED_TOPICS
from shared.ids import new_id
from shared.inbox import Inbox
from shared.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PAGE_KEYS,
    Page,
    backfill_page_keys,
    find_or_404,
    keyset_page,
    page_keys,
    page_keys_index,
)
from shared.storage import DEAD_LETTERS, Database, Document
from shared.tree import WHOLE_ORGANISATION

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
REPLAY_DROPS_HEADERS = ("dlq_",)
# Headers that carry credentials (the ingest topic's bearer token): never stored, never forwarded.
SECRET_HEADERS = frozenset({"authorization", "ql_authorization", "ce_authorization"})
# Erasure finds a customer's dead letters by pseudonym without scanning (created at start-up by create_app).
# The list pages by keys (shared.pagination): one per dead letter of a known organisation.
DEAD_LETTER_INDEXES = [IndexModel([("org", ASCENDING), ("pseudonyms", ASCENDING)]), page_keys_index()]


@dataclass(frozen=True)
class Redacted:
    """A record's value with personal data replaced, and the pseudonyms of whom it concerns."""

    value: bytes | None
    pseudonyms: Sequence[str] = ()


DeadLetterRedaction = Callable[[bytes | None], Redacted]


def keep_as_is(value: bytes | None) -> Redacted:
    """The default redaction: values of internal events carry no raw personal data."""
    return Redacted(value)


def dead_letter_document(
    *,
    org: str | None,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    reason: str,
    redact: DeadLetterRedaction = keep_as_is,
) -> Document:
    """What is kept of a dead letter (and sent to its dead-letter topic): redacted, without credentials."""
    redacted = redact(value)
    ident, dead_at = new_id("dl"), datetime.now(UTC)
    return {
        "_id": ident,
        "org": org,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "value": redacted.value,
        "headers": [[name, value] for name, value in headers if name.lower() not in SECRET_HEADERS],
        "pseudonyms": list(redacted.pseudonyms),
        "reason": reason,
        "dead_at": dead_at,
        "replayed_at": None,
        PAGE_KEYS: dead_letter_keys(org, dead_at, ident),
    }


def dead_letter_keys(org: str | None, dead_at: datetime, ident: str) -> list[str]:
    """A dead letter's list keys: under its organisation, by the time it died (none if its org is unknown)."""
    return page_keys(org, [WHOLE_ORGANISATION], dead_at, ident) if org is not None else []


async def backfill_dead_letter_keys(db: Database) -> int:
    """Give dead letters kept by an earlier version their list keys (a scan of the few there are)."""
    return await backfill_page_keys(db, DEAD_LETTERS, lambda d: dead_letter_keys(d.get("org"), d["dead_at"], d["_id"]))


async def erase_dead_letters(db: Database, org: str, pseudonym: str) -> int:
    """Delete an organisation's dead letters that concern a customer (by pseudonym); how many there were."""
    result = await db[DEAD_LETTERS].delete_many({"org": org, "pseudonyms": pseudonym})
    return result.deleted_count


async def _runtime(request: Request) -> Any:
    # From the app's state rather than shared.runtime: the consumer imports this module, the runtime the consumer.
    return request.app.state.runtime


RuntimeDep = Annotated[Any, Depends(_runtime)]


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
        principal: CurrentPrincipal,
        topic: str | None = None,
        cursor: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page:
        """Messages this service could not process, newest first, with the reason."""
        return await keyset_page(
            runtime.db,
            DEAD_LETTERS,
            org=principal.org,
            scopes=[WHOLE_ORGANISATION],
            cursor=cursor,
            limit=limit,
            match={"topic": topic} if topic else None,
            view=shown,
        )

    @router.post("/{dead_letter_id}/replay")
    async def replay_dead_letter(
        dead_letter_id: str, request: Request, runtime: RuntimeDep, principal: CurrentPrincipal
    ) -> dict[str, Any]:
        """Publish the message again on its original topic (after the cause was fixed).

        A record of a topic integrations sign (``feedback.ingest``) kept no token: the replay carries the
        replaying admin's, so it is taken in as theirs, in their organisation.
        """
        query = {"_id": dead_letter_id, "org": principal.org}
        document = await find_or_404(runtime.db, DEAD_LETTERS, query, kind="dead letter", ident=dead_letter_id)
        headers = [
            (name, bytes(value))
            for name, value in document.get("headers", [])
            if not name.startswith(REPLAY_DROPS_HEADERS)
        ]
        if document["topic"] in SIGNED_TOPICS:
            headers.append((TOKEN_HEADER, request.headers["authorization"].encode()))
        key = bytes(document["key"]) if document.get("key") is not None else None
        # A message its handler refused had its id recorded, so that a redelivery changes nothing; the
        # replay after a fix must be handled, once: forget the id (handling records it again).
        event_id = dict(headers).get("ce_id")
        if event_id is not None:
            inbox = Inbox(runtime.db, retention=timedelta(seconds=runtime.platform.outbox_retention_seconds))
            await inbox.prepare(datetime.now(UTC))
            await inbox.forget(event_id.decode(errors="replace"))
        await runtime.producer.send_and_wait(
            document["topic"], value=bytes(document["value"] or b""), key=key, headers=headers
        )
        replayed_at = datetime.now(UTC)
        await runtime.db[DEAD_LETTERS].update_one({"_id": dead_letter_id}, {"$set": {"replayed_at": replayed_at}})
        return shown({**document, "replayed_at": replayed_at})

    return router
