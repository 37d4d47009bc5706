"""The side rows that stand in for secondary indexes on feedback: source ids and customers, and their migration."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pymongo import ASCENDING, IndexModel

from services.feedback import legacy_storage, repository
from services.feedback.main import DEFINITION
from services.feedback.settings import FeedbackSettings
from shared.app import create_app
from shared.storage import Database
from tests.harness import RunningService, Stack, unique
from tests.integration.feedback.conftest import make_tree

pytestmark = pytest.mark.integration

Org = tuple[str, httpx.AsyncClient]
BODY = {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 4}}


def _db(service: RunningService) -> Database:
    db: Database = service.app.state.runtime.db
    return db


async def _rows_of(db: Database, feedback_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every side row that names a feedback, by collection."""
    return {
        name: await db[name].find({"feedback_id": feedback_id}).to_list(None)
        for name in (repository.SOURCE_IDS, repository.CUSTOMER_FEEDBACK)
    }


async def test_intake__writes_side_rows_only_for_a_source_id_and_a_customer_ref(
    feedback_service: RunningService, org_client: Org
) -> None:
    org, http = org_client
    db = _db(feedback_service)
    full = (await http.post("/api/v1/feedback", json={**BODY, "source_id": "crm-9", "customer_ref": "c-9"})).json()
    keyed = await http.post("/api/v1/feedback", json=BODY, headers={"Idempotency-Key": "k-9"})
    bare = (await http.post("/api/v1/feedback", json=BODY)).json()

    assert await _rows_of(db, full["id"]) == {
        repository.SOURCE_IDS: [{"_id": f"{org}\x1fcrm-9", "feedback_id": full["id"]}],
        repository.CUSTOMER_FEEDBACK: [
            {"_id": f"{org}\x1f{full['customer_ref']}\x1f{full['id']}", "feedback_id": full["id"]}
        ],
    }
    assert await db[repository.SOURCE_IDS].find_one({"_id": f"{org}\x1fk-9"}) == {
        "_id": f"{org}\x1fk-9",
        "feedback_id": keyed.json()["id"],
    }
    assert await _rows_of(db, bare["id"]) == {repository.SOURCE_IDS: [], repository.CUSTOMER_FEEDBACK: []}
    indexes = await db[repository.FEEDBACK].index_information()
    assert sorted(indexes) == ["_id_", "page_keys_1"], "feedback keeps only the list keys index"


async def test_intake__separator_in_an_organisation_or_source_id_keeps_keys_apart(
    stack: Stack, feedback_service: RunningService
) -> None:
    base = unique("org")
    first, second = (f"{base}\x1fx", "a"), (base, "x\x1fa")
    assert repository.source_key(*first) != repository.source_key(*second)
    ids = []
    for org, source_id in (first, second):
        async with httpx.AsyncClient(base_url=feedback_service.url, headers=stack.headers(org, "admin")) as http:
            await make_tree(http)
            posted = await http.post("/api/v1/feedback", json={**BODY, "source_id": source_id})
        assert posted.status_code == 201, posted.text
        ids.append(posted.json()["id"])
    assert ids[0] != ids[1]


async def test_intake__concurrent_posts_of_one_source_id_store_one_and_all_name_it(
    feedback_service: RunningService, org_client: Org
) -> None:
    _, http = org_client
    body = {**BODY, "source_id": "race-1"}
    answers = await asyncio.gather(*(http.post("/api/v1/feedback", json=body) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    stored = (await http.get("/api/v1/feedback", params={"limit": 500})).json()["items"]
    assert [f["source_id"] for f in stored] == ["race-1"]


async def test_intake__concurrent_batches_with_one_source_id_store_it_once(
    feedback_service: RunningService, org_client: Org
) -> None:
    _, http = org_client
    batches = [{"items": [{**BODY, "source_id": "shared"}, {**BODY, "source_id": unique("own")}]} for _ in range(3)]
    answers = await asyncio.gather(*(http.post("/api/v1/feedback/batch", json=batch) for batch in batches))
    assert all(a.json()["results"][1]["status"] == "accepted" for a in answers)
    results = [a.json()["results"][0] for a in answers]
    assert sorted(r["status"] for r in results) == ["accepted", "duplicate", "duplicate"]
    assert len({r["id"] for r in results}) == 1


async def test_erasure__removes_customer_rows_and_keeps_the_source_id_as_erased(
    feedback_service: RunningService, org_client: Org
) -> None:
    org, http = org_client
    db = _db(feedback_service)
    mine = (await http.post("/api/v1/feedback", json={**BODY, "source_id": "crm-e", "customer_ref": "c-e"})).json()
    other = (await http.post("/api/v1/feedback", json={**BODY, "source_id": "crm-o", "customer_ref": "c-o"})).json()

    erasure = await http.post("/api/v1/erasures", json={"customer_ref": "c-e"})
    assert erasure.json()["erased"] == 1

    rows = await _rows_of(db, mine["id"])
    assert rows[repository.CUSTOMER_FEEDBACK] == []
    (tombstone,) = rows[repository.SOURCE_IDS]
    assert tombstone["_id"] == f"{org}\x1fcrm-e"
    assert tombstone["erased_at"] is not None
    assert set(tombstone) == {"_id", "feedback_id", "erased_at"}, "nothing of the customer is kept"
    assert all((await _rows_of(db, other["id"])).values()), "another customer's rows stay"

    again = await http.post("/api/v1/feedback", json={**BODY, "source_id": "crm-e", "customer_ref": "c-e"})
    assert again.status_code == 410, again.text
    batch = await http.post("/api/v1/feedback/batch", json={"items": [{**BODY, "source_id": "crm-e"}]})
    (result,) = batch.json()["results"]
    assert (result["status"], result["id"], result["errors"][0]["field"]) == ("duplicate", None, "source_id")
    assert (await http.get(f"/api/v1/feedback/{other['id']}")).status_code == 200
    stored = (await http.get("/api/v1/feedback", params={"limit": 500})).json()["items"]
    assert [f["id"] for f in stored] == [other["id"]], "the erased feedback did not come back"


async def test_erasure__by_a_scoped_admin_leaves_the_customers_feedback_outside_its_scope(
    stack: Stack, feedback_service: RunningService, org_client: Org
) -> None:
    org, http = org_client
    north = (await http.post("/api/v1/feedback", json={**BODY, "customer_ref": "c-s"})).json()
    south = (await http.post("/api/v1/feedback", json={**BODY, "unit_id": "s-001", "customer_ref": "c-s"})).json()
    scoped = stack.headers(org, "admin", scopes=["north"])
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=scoped) as north_admin:
        assert (await north_admin.post("/api/v1/erasures", json={"customer_ref": "c-s"})).json()["erased"] == 1
    assert (await http.get(f"/api/v1/feedback/{north['id']}")).status_code == 404
    assert (await http.get(f"/api/v1/feedback/{south['id']}")).status_code == 200
    assert (await _rows_of(_db(feedback_service), south["id"]))[repository.CUSTOMER_FEEDBACK]


LEGACY_INDEXES = [
    IndexModel(
        [("org", ASCENDING), ("source_id", ASCENDING)],
        unique=True,
        partialFilterExpression={"source_id": {"$type": "string"}},
    ),
    IndexModel([("org", ASCENDING), ("customer_ref", ASCENDING)]),
]


async def _service_on(stack: Stack, database: str) -> RunningService:
    settings = FeedbackSettings(port=0, database=database, pseudonym_key=SecretStr("test-key"))
    return await RunningService(create_app(DEFINITION, stack.platform(), settings)).start()


async def test_start_up__migrates_a_database_with_the_legacy_indexes(stack: Stack) -> None:
    database, org = unique("fb-legacy"), unique("org")
    earlier = await _service_on(stack, database)
    try:
        async with httpx.AsyncClient(base_url=earlier.url, headers=stack.headers(org, "admin")) as http:
            await make_tree(http)
            old = (
                await http.post("/api/v1/feedback", json={**BODY, "source_id": "old-1", "customer_ref": "c-1"})
            ).json()
            bare = (await http.post("/api/v1/feedback", json=BODY)).json()
        # Back to what an earlier version stored: no side rows, the legacy indexes on feedback.
        db = _db(earlier)
        for name in (repository.SOURCE_IDS, repository.CUSTOMER_FEEDBACK):
            await db[name].delete_many({})
        await db[repository.FEEDBACK].create_indexes(LEGACY_INDEXES)
    finally:
        await earlier.stop()

    migrated = await _service_on(stack, database)
    try:
        db = _db(migrated)
        assert sorted(await db[repository.FEEDBACK].index_information()) == ["_id_", "page_keys_1"]
        assert {k: [r["_id"] for r in v] for k, v in (await _rows_of(db, old["id"])).items()} == {
            repository.SOURCE_IDS: [f"{org}\x1fold-1"],
            repository.CUSTOMER_FEEDBACK: [f"{org}\x1f{old['customer_ref']}\x1f{old['id']}"],
        }
        assert await _rows_of(db, bare["id"]) == {repository.SOURCE_IDS: [], repository.CUSTOMER_FEEDBACK: []}
        assert await legacy_storage.migrate_legacy_indexes(db) is False, "nothing left to migrate"

        async with httpx.AsyncClient(base_url=migrated.url, headers=stack.headers(org, "admin")) as http:
            again = await http.post("/api/v1/feedback", json={**BODY, "source_id": "old-1"})
            assert (again.status_code, again.json()["id"]) == (200, old["id"])
            assert (await http.post("/api/v1/erasures", json={"customer_ref": "c-1"})).json()["erased"] == 1
    finally:
        await migrated.stop()


async def test_migration__is_idempotent_and_skips_rows_already_there(
    stack: Stack, feedback_service: RunningService
) -> None:
    db = _db(feedback_service).client[unique("fb-migration")]
    org = unique("org")
    stored = [
        {"_id": f"fb_{i}", "org": org, "source_id": f"s-{i}", "customer_ref": "ab" * 32 if i % 2 else None}
        for i in range(5)
    ]
    await db[repository.FEEDBACK].insert_many([*stored, {"_id": "fb_bare", "org": org, "source_id": None}])
    await db[repository.FEEDBACK].create_indexes(LEGACY_INDEXES)
    # A start-up that stopped half-way: one row is already there.
    await db[repository.SOURCE_IDS].insert_one({"_id": f"{org}\x1fs-0", "feedback_id": "fb_0"})

    assert await legacy_storage.migrate_legacy_indexes(db) is True
    await db[repository.FEEDBACK].create_indexes(LEGACY_INDEXES[:1])
    assert await legacy_storage.migrate_legacy_indexes(db) is True, "a legacy index left behind is dropped again"

    assert await db[repository.SOURCE_IDS].count_documents({}) == 5
    assert await db[repository.CUSTOMER_FEEDBACK].count_documents({}) == 2
    assert sorted(await db[repository.FEEDBACK].index_information()) == ["_id_"]
    found = await repository.find_feedback_by_source_ids(db, org=org, source_ids=["s-3", "s-9"])
    assert {k: v["_id"] if v else None for k, v in found.items()} == {"s-3": "fb_3"}
    await db.client.drop_database(db.name)
