"""Keyset pagination on the real database: every item exactly once while items arrive and are erased."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from services.feedback.main import DEFINITION
from services.feedback.settings import FeedbackSettings
from shared.app import create_app
from shared.dead_letters import dead_letter_document
from shared.ids import new_id
from shared.pagination import (
    KEY_SEPARATOR,
    PAGE_KEYS,
    backfill_page_keys,
    keyset_page,
    list_scopes,
    matches,
    moved_page_keys,
    overlapping_scopes,
    page_keys,
    page_keys_index,
    scope_page_keys,
    visible_scopes,
)
from shared.problems import Problem
from shared.storage import DEAD_LETTERS, Database, Document
from shared.tree import WHOLE_ORGANISATION, lineage
from tests.harness import RunningService, Stack, unique

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


async def test_far_time_bounds_list_what_lies_between_them_instead_of_failing(db: Database) -> None:
    rows = [item("o", "north/bj/b1", START + timedelta(days=n), "app") for n in range(5)]
    await store(db, rows)
    ids = {r["_id"] for r in rows}
    year_191, year_9999 = datetime(191, 11, 30, 23, 1, 21, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)
    assert set(await walk(db, org="o", scopes=["*"], limit=2, since=year_191)) == ids
    assert set(await walk(db, org="o", scopes=["*"], limit=2, until=year_9999)) == ids
    assert set(await walk(db, org="o", scopes=["*"], limit=2, since=year_191, newest_first=False)) == ids
    assert await walk(db, org="o", scopes=["*"], limit=2, until=year_191) == []


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


def test_overlapping_scopes_add_the_exact_scopes_above_the_caller() -> None:
    assert overlapping_scopes([WHOLE_ORGANISATION, "north"]) == [WHOLE_ORGANISATION]
    assert overlapping_scopes(["north/bj", "north"]) == ["north", "*#on"]
    assert overlapping_scopes(["north/bj/b1", "south"]) == ["north/bj/b1", "south", "*#on", "north#on", "north/bj#on"]


def test_scope_page_keys_list_a_subtree_setting_under_its_paths_and_its_exact_scope() -> None:
    at = datetime(2026, 5, 1, tzinfo=UTC)

    def scopes(keys: list[str]) -> list[str]:
        return [key.split(KEY_SEPARATOR)[1] for key in keys]

    assert scopes(scope_page_keys("o", "north/bj", at, "rule_1")) == ["*", "north", "north/bj", "north/bj#on"]
    assert scopes(scope_page_keys("o", WHOLE_ORGANISATION, at, "rule_2")) == ["*", "*#on"]


def test_matches_reads_conditions_as_mongodb_does() -> None:
    document = {"channel": "app", "tags": ["slow", "rude"], "ratings": {"csat": 2}, "comment": None}
    assert matches(document, {"channel": {"$in": ["app", "web"]}, "tags": "slow", "ratings.csat": {"$lte": 2}})
    assert matches(document, {"tags": {"$all": ["rude", "slow"]}, "comment": None})
    assert not matches(document, {"comment": {"$type": "string"}})
    assert not matches(document, {"ratings.csat": {"$gte": 3}})
    assert not matches(document, {"ratings.nps": {"$gte": 0}})


# The list endpoints that page by keys: the feedback service's units and feedback, and dead letters.


@pytest.fixture(scope="module")
async def feedback(stack: Stack) -> AsyncIterator[RunningService]:
    service = await _feedback_on(stack, unique("fb-paging"))
    yield service
    await service.stop()


async def _feedback_on(stack: Stack, database: str) -> RunningService:
    settings = FeedbackSettings(port=0, database=database, pseudonym_key=SecretStr("test-key"))
    return await RunningService(create_app(DEFINITION, stack.platform(), settings)).start()


def _service_db(service: RunningService) -> Database:
    db: Database = service.app.state.runtime.db
    return db


async def _api_walk(
    http: httpx.AsyncClient, path: str, params: dict[str, Any], between_pages: Any = None
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(500):
        response = await http.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        seen.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen
        if between_pages is not None:
            await between_pages()
    raise AssertionError("the walk did not end")


async def _tree(http: httpx.AsyncClient) -> None:
    for unit in (
        {"id": "north", "name": "North", "kind": "region"},
        {"id": "b-001", "name": "B1", "parent_id": "north"},
        {"id": "b-002", "name": "B2", "parent_id": "north"},
        {"id": "south", "name": "South", "kind": "region"},
        {"id": "s-001", "name": "S1", "parent_id": "south"},
    ):
        assert (await http.post("/api/v1/units", json=unit)).status_code == 201


async def _post(http: httpx.AsyncClient, items: list[dict[str, Any]]) -> list[str]:
    result = (await http.post("/api/v1/feedback/batch", json={"items": items})).json()
    assert result["accepted"] == len(items), result
    return [r["id"] for r in result["results"]]


async def test_feedback_list__every_item_once_with_filters_while_feedback_arrives_and_is_erased(
    stack: Stack, feedback: RunningService
) -> None:
    rng = random.Random(3)
    now = datetime.now(UTC)
    units, channels = ["b-001", "b-002", "s-001"], ["app", "sms", "web"]
    items = [
        {
            "unit_id": rng.choice(units),
            "channel": rng.choice(channels),
            "ratings": {"csat": rng.randint(1, 5)},
            "occurred_at": (now - timedelta(hours=rng.randint(1, 24 * 30))).isoformat(),
            "customer_ref": f"c-{n}",
        }
        for n in range(150)
    ]
    async with httpx.AsyncClient(base_url=feedback.url, headers=stack.headers(unique("org"), "admin")) as http:
        await _tree(http)
        ids = await _post(http, items)
        by_id = dict(zip(ids, items, strict=True))
        since, until = now - timedelta(days=20), now - timedelta(days=2)
        params = {"unit_id": "north", "channel": ["app", "sms"], "csat_min": 2, "from": since.isoformat()}
        params |= {"to": until.isoformat(), "limit": 6}

        def wanted(item: dict[str, Any]) -> bool:
            at = datetime.fromisoformat(item["occurred_at"])
            in_north, rated = item["unit_id"] != "s-001", item["ratings"]["csat"] >= 2
            return in_north and item["channel"] in ("app", "sms") and rated and since <= at < until

        expected = {i for i, item in by_id.items() if wanted(item)}
        erased: set[str] = set()
        arrived: set[str] = set()

        async def churn() -> None:
            fresh = [{**items[0], "customer_ref": None, "occurred_at": None}, {**items[1], "customer_ref": None}]
            arrived.update(await _post(http, fresh))
            victim = rng.choice(sorted(set(ids) - erased))
            erasure = await http.post("/api/v1/erasures", json={"customer_ref": by_id[victim]["customer_ref"]})
            assert erasure.status_code == 201, erasure.text
            erased.add(victim)

        seen = [f["id"] for f in await _api_walk(http, "/api/v1/feedback", params, churn)]
    assert expected, "the filters leave something to list"
    assert len(seen) == len(set(seen)), "a feedback came twice"
    assert not (expected - erased) - set(seen), "a feedback present throughout was not listed"
    assert set(seen) <= expected | arrived, "a feedback outside the filters was listed"


async def test_unit_list__every_unit_once_while_units_are_added(stack: Stack, feedback: RunningService) -> None:
    async with httpx.AsyncClient(base_url=feedback.url, headers=stack.headers(unique("org"), "admin")) as http:
        await _tree(http)
        added: list[str] = []

        async def churn() -> None:
            unit_id = f"n-{len(added)}"
            assert (await http.post("/api/v1/units", json={"id": unit_id, "name": unit_id})).status_code == 201
            added.append(unit_id)

        seen = [u["id"] for u in await _api_walk(http, "/api/v1/units", {"limit": 2}, churn)]
        other = (await http.get("/api/v1/units", headers=stack.headers(unique("org"), "admin"))).json()["items"]
    assert len(seen) == len(set(seen))
    assert set(seen) - set(added) == {"north", "b-001", "b-002", "south", "s-001"}
    assert other == []


async def test_feedback_list__a_move_lists_the_feedback_under_the_new_parent(
    stack: Stack, feedback: RunningService
) -> None:
    org = unique("org")
    async with httpx.AsyncClient(base_url=feedback.url, headers=stack.headers(org, "admin")) as http:
        await _tree(http)
        ids = set(await _post(http, [{"unit_id": "b-001", "channel": "app", "ratings": {"csat": 4}}] * 7))
        moved = await http.patch("/api/v1/units/b-001", json={"parent_id": "south"})
        assert moved.status_code == 200, moved.text
        south = {f["id"] for f in await _api_walk(http, "/api/v1/feedback", {"unit_id": "south", "limit": 3})}
        north = await _api_walk(http, "/api/v1/feedback", {"unit_id": "north", "limit": 3})
        units = {u["id"]: u["path"] for u in await _api_walk(http, "/api/v1/units", {"limit": 2})}
    assert south == ids and north == []
    assert units["b-001"] == "south/b-001"


async def test_start_up__gives_a_0_1_database_its_keys_so_nothing_disappears(stack: Stack) -> None:
    database, org = unique("fb-keys"), unique("org")
    earlier = await _feedback_on(stack, database)
    try:
        async with httpx.AsyncClient(base_url=earlier.url, headers=stack.headers(org, "admin")) as http:
            await _tree(http)
            ids = set(await _post(http, [{"unit_id": "s-001", "channel": "web", "ratings": {"csat": 3}}] * 5))
        db = _service_db(earlier)
        # Back to what 0.1 stored: no keys, and its (org, lineage, _id) index.
        for name in ("units", "feedback"):
            await db[name].update_many({}, {"$unset": {PAGE_KEYS: ""}})
        await db["feedback"].create_index([("org", 1), ("lineage", 1), ("_id", 1)])
    finally:
        await earlier.stop()
    migrated = await _feedback_on(stack, database)
    try:
        async with httpx.AsyncClient(base_url=migrated.url, headers=stack.headers(org, "admin")) as http:
            listed = {f["id"] for f in await _api_walk(http, "/api/v1/feedback", {"limit": 2})}
            units = {u["id"] for u in await _api_walk(http, "/api/v1/units", {"limit": 2})}
        assert sorted(await _service_db(migrated)["feedback"].index_information()) == ["_id_", PAGE_KEYS + "_1"]
    finally:
        await migrated.stop()
    assert listed == ids
    assert units == {"north", "b-001", "b-002", "south", "s-001"}


async def test_dead_letter_list__every_one_once_while_some_arrive_and_are_erased(
    stack: Stack, feedback: RunningService
) -> None:
    org = unique("org")
    db = _service_db(feedback)

    def dead(n: int, topic: str = "feedback.ingest") -> Document:
        return dead_letter_document(
            org=org, topic=topic, partition=0, offset=n, key=None, value=b"{}", headers=[], reason=f"bad {n}"
        )

    kept = [dead(n, "feedback.ingest" if n % 3 else "other") for n in range(40)]
    await db[DEAD_LETTERS].insert_many(kept)
    erased: set[str] = set()

    async def churn() -> None:
        await db[DEAD_LETTERS].insert_one(dead(99))
        victim = next(d["_id"] for d in kept if d["_id"] not in erased)
        await db[DEAD_LETTERS].delete_one({"_id": victim})
        erased.add(victim)

    async with httpx.AsyncClient(base_url=feedback.url, headers=stack.headers(org, "admin")) as http:
        params = {"topic": "feedback.ingest", "limit": 4}
        seen = [d["id"] for d in await _api_walk(http, "/api/v1/dead-letters/feedback", params, churn)]
    expected = {d["_id"] for d in kept if d["topic"] == "feedback.ingest"}
    assert len(seen) == len(set(seen))
    assert not (expected - erased) - set(seen)
    assert set(seen) <= expected
