"""Keyset pagination on the real database: every item exactly once while items arrive and are erased."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.ids import new_id
from shared.pagination import (
    PAGE_KEYS,
    backfill_page_keys,
    keyset_page,
    list_scopes,
    matches,
    moved_page_keys,
    page_keys,
    page_keys_index,
    visible_scopes,
)
from shared.problems import Problem
from shared.storage import Database, Document
from shared.tree import WHOLE_ORGANISATION, lineage
from tests.harness import Stack, unique

pytestmark = pytest.mark.integration

ITEMS = "items"
UNITS = ["north/bj/b1", "north/bj/b2", "north/sh/b3", "south/gz/b4"]
CHANNELS = ["app", "web", "sms"]
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongo_uri)
    database = client[unique("paging")]
    await database[ITEMS].create_indexes([page_keys_index()])
    yield database
    await client.drop_database(database.name)
    await client.close()


def item(org: str, unit: str, at: datetime, channel: str) -> Document:
    ident = new_id("it")
    keys = page_keys(org, list_scopes(lineage(unit)), at, ident)
    return {"_id": ident, "org": org, "unit_path": unit, "at": at, "channel": channel, PAGE_KEYS: keys}


async def store(db: Database, rows: list[Document]) -> None:
    if rows:
        await db[ITEMS].insert_many(rows)


async def walk(db: Database, *, between_pages: Any = None, **options: Any) -> list[str]:
    """Every id the pages give, in order, following next_cursor to the end."""
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = await keyset_page(db, ITEMS, cursor=cursor, **options)
        seen.extend(i["id"] for i in page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
        if between_pages is not None:
            await between_pages()
    raise AssertionError("the walk did not end")


async def test_every_item_exactly_once_while_items_arrive_and_are_erased(db: Database) -> None:
    rng = random.Random(7)
    rows = [
        item("o", rng.choice(UNITS), START + timedelta(minutes=rng.randint(0, 60 * 24 * 90)), "app") for _ in range(600)
    ]
    await store(db, rows)
    stable = {r["_id"] for r in rows}
    erased: set[str] = set()
    arrived: set[str] = set()

    async def churn() -> None:
        fresh = [item("o", rng.choice(UNITS), datetime.now(UTC), "app") for _ in range(5)]
        await store(db, fresh)
        arrived.update(r["_id"] for r in fresh)
        gone = rng.sample(sorted(stable - erased), 5)
        await db[ITEMS].delete_many({"_id": {"$in": gone}})
        erased.update(gone)

    for newest_first in (True, False):
        since = None if newest_first else START
        seen = await walk(
            db, between_pages=churn, org="o", scopes=["*"], limit=25, newest_first=newest_first, since=since
        )
        assert len(seen) == len(set(seen)), "an item came twice"
        missing = stable - erased - set(seen)
        assert not missing, f"{len(missing)} items present throughout were never listed"
        assert not (set(seen) - stable - arrived), "an item of nowhere was listed"
        times = {r["_id"]: r["at"] for r in rows}
        listed = [times[i] for i in seen if i in times]
        assert listed == sorted(listed, reverse=newest_first)


async def test_subtree_time_range_and_filters_combined(db: Database) -> None:
    rng = random.Random(11)
    rows = [
        item("o", rng.choice(UNITS), START + timedelta(hours=rng.randint(0, 24 * 60)), rng.choice(CHANNELS))
        for _ in range(500)
    ]
    await store(db, [*rows, item("other", "north/bj/b1", START, "app")])
    since, until = START + timedelta(days=10), START + timedelta(days=40)
    match = {"channel": {"$in": ["app", "sms"]}}
    seen = await walk(
        db, org="o", scopes=visible_scopes(["north/bj", "north/bj/b2"]), limit=7, match=match, since=since, until=until
    )
    expected = {
        r["_id"]
        for r in rows
        if r["unit_path"].startswith("north/bj/") and since <= r["at"] < until and r["channel"] in ("app", "sms")
    }
    assert len(seen) == len(set(seen))
    assert set(seen) == expected and expected


async def test_sparse_scope_over_years_and_an_empty_filter_end(db: Database) -> None:
    rows = [item("o", "south/gz/b4", START - timedelta(days=400 * n), "web") for n in range(12)]
    await store(db, rows)
    assert set(await walk(db, org="o", scopes=["south"], limit=5)) == {r["_id"] for r in rows}
    oldest = START - timedelta(days=400 * 12)
    ascending = await walk(db, org="o", scopes=["south"], limit=5, newest_first=False, since=oldest)
    assert set(ascending) == {r["_id"] for r in rows}
    with pytest.raises(ValueError, match="since"):
        await keyset_page(db, ITEMS, org="o", scopes=["*"], cursor=None, limit=5, newest_first=False)
    # A filter nothing meets: pages may come back empty with a cursor, and the walk still ends.
    assert await walk(db, org="o", scopes=["south"], limit=2, match={"channel": "fax"}, scan_budget=3) == []


async def test_a_move_rewrites_the_keys_and_a_backfill_gives_missing_ones(db: Database) -> None:
    moved = [item("o", "north/bj/b1", START + timedelta(minutes=n), "app") for n in range(30)]
    await store(db, moved)
    new_scopes = list_scopes(lineage("south/gz/b1"))
    await db[ITEMS].update_many(
        {"_id": {"$in": [r["_id"] for r in moved]}},
        [{"$set": {"unit_path": "south/gz/b1", PAGE_KEYS: moved_page_keys("o", new_scopes)}}],
    )
    assert set(await walk(db, org="o", scopes=["south/gz"], limit=8)) == {r["_id"] for r in moved}
    assert await walk(db, org="o", scopes=["north"], limit=8) == []
    bare = [{"_id": new_id("it"), "org": "o", "unit_path": "north/sh/b3", "at": START} for _ in range(3)]
    await store(db, bare)
    given = await backfill_page_keys(
        db, ITEMS, lambda d: page_keys(d["org"], list_scopes(lineage(d["unit_path"])), d["at"], d["_id"])
    )
    assert given == 3
    assert set(await walk(db, org="o", scopes=["north/sh"], limit=2)) == {r["_id"] for r in bare}


async def test_a_cursor_not_ours_is_a_400(db: Database) -> None:
    with pytest.raises(Problem) as raised:
        await keyset_page(db, ITEMS, org="o", scopes=["*"], cursor="bm90IGpzb24=", limit=5)
    assert raised.value.status == 400


def test_visible_scopes_narrow_to_the_unit_and_fold_nested_ones() -> None:
    assert visible_scopes([WHOLE_ORGANISATION, "north"]) == [WHOLE_ORGANISATION]
    assert visible_scopes(["north", "north/bj"]) == ["north"]
    assert visible_scopes(["north"], "north/bj") == ["north/bj"]
    assert visible_scopes(["north/bj", "north/sh", "south"], "north") == ["north/bj", "north/sh"]
    assert visible_scopes(["south"], "north") == []


def test_matches_reads_conditions_as_mongodb_does() -> None:
    document = {"channel": "app", "tags": ["slow", "rude"], "ratings": {"csat": 2}, "comment": None}
    assert matches(document, {"channel": {"$in": ["app", "web"]}, "tags": "slow", "ratings.csat": {"$lte": 2}})
    assert matches(document, {"tags": {"$all": ["rude", "slow"]}, "comment": None})
    assert not matches(document, {"comment": {"$type": "string"}})
    assert not matches(document, {"ratings.csat": {"$gte": 3}})
    assert not matches(document, {"ratings.nps": {"$gte": 0}})
