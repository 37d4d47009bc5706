"""The inbox's generations against the real database: ids remembered long enough, old ones dropped whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient, IndexModel

from shared.inbox import LEGACY_INBOX, PREFIX, Inbox
from shared.storage import Database, UnitOfWork, apply, in_transaction
from tests.harness import Stack, unique

pytestmark = pytest.mark.integration

RETENTION = timedelta(hours=1)  # generations of two hours
START = datetime(2026, 11, 25, 0, 30, tzinfo=UTC)


async def _record(client: AsyncMongoClient, inbox: Inbox, db: Database, event_id: str, now: datetime) -> None:
    await inbox.prepare(now)
    unit = UnitOfWork("test")
    inbox.record(unit, event_id, "topic", now)
    await in_transaction(client, lambda session: apply(db, session, [unit]))


async def _seen(client: AsyncMongoClient, inbox: Inbox, ids: list[str], now: datetime) -> set[str]:
    await inbox.prepare(now)
    async with client.start_session() as session:
        return await inbox.seen(ids, session)


@pytest.fixture
async def database(stack: Stack):
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    yield client, client[unique("inbox")]
    await client.close()


async def test_an_id__remembered_through_the_next_generation_then_dropped_with_its_collection(database):
    client, db = database
    inbox = Inbox(db, retention=RETENTION)
    await _record(client, inbox, db, "e-1", START)

    assert await _seen(client, inbox, ["e-1", "e-2"], START) == {"e-1"}
    assert await _seen(client, inbox, ["e-1"], START + timedelta(hours=2)) == {"e-1"}, "previous generation"
    assert await _seen(client, inbox, ["e-1"], START + timedelta(hours=4)) == set()
    names = await db.list_collection_names()
    first = int(START.timestamp() // 7200)
    assert f"{PREFIX}{first}" not in names
    assert {f"{PREFIX}{first + 2}", f"{PREFIX}{first + 3}"} <= set(names), "made ahead"


async def test_the_single_inbox_of_earlier_versions__becomes_the_previous_generation(database):
    client, db = database
    await db[LEGACY_INBOX].insert_one({"_id": "old-1", "topic": "t", "received_at": START})
    await db[LEGACY_INBOX].create_indexes([IndexModel("received_at")])
    inbox = Inbox(db, retention=RETENTION)

    assert await _seen(client, inbox, ["old-1"], START) == {"old-1"}
    assert LEGACY_INBOX not in await db.list_collection_names()
    assert await _seen(client, inbox, ["old-1"], START + timedelta(hours=4)) == set()
