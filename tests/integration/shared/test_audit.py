"""The audit log on the real database: entries commit with their change or not at all, filters, CSV, access."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel
from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from shared import audit
from shared.access import ACCESS, MANAGE, READ
from shared.app import create_app
from shared.auth import CurrentPrincipal
from shared.problems import NotFound, Problem
from shared.runtime import Runtime, ServiceDefinition, get_runtime
from shared.settings import ServiceSettings
from tests.harness import RunningService, Stack, unique

pytestmark = pytest.mark.integration

NOTES = "notes"
RuntimeDep = Annotated[Runtime[Any], Depends(get_runtime)]
router = APIRouter(prefix="/api/v1/notes")


class NoteIn(BaseModel):
    id: str
    text: str


@router.post("", status_code=201)
async def create_note(note_in: NoteIn, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    note = {"_id": note_in.id, "org": principal.org, "text": note_in.text}
    unit = runtime.unit_of_work()
    unit.insert(NOTES, note)
    audit.record(unit, principal, "create", "note", note_in.id, None, {"text": note_in.text})
    try:
        await runtime.commit(unit)
    except DuplicateKeyError as error:
        raise Problem(409, "Conflict", f"note {note_in.id!r} exists") from error
    return {"id": note_in.id}


@router.patch("/{note_id}")
async def update_note(note_id: str, note_in: NoteIn, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict:
    before = await runtime.db[NOTES].find_one({"_id": note_id, "org": principal.org})
    if before is None:
        raise NotFound("note", note_id)
    unit = runtime.unit_of_work()
    unit.write(NOTES, UpdateOne({"_id": note_id}, {"$set": {"text": note_in.text}}))
    audit.record(unit, principal, "update", "note", note_id, {"text": before["text"]}, {"text": note_in.text})
    await runtime.commit(unit)
    return {"id": note_id}


class NotesSettings(ServiceSettings):
    port: int = 0
    database: str = "notes"


@pytest.fixture(scope="module")
async def notes(stack: Stack) -> AsyncIterator[RunningService]:
    ACCESS["notes"] = {"create_note": MANAGE, "update_note": READ}
    definition = ServiceDefinition(name="notes", settings_type=NotesSettings, routers=[router])
    settings = NotesSettings(database=unique("notes"))
    service = await RunningService(create_app(definition, stack.platform(), settings)).start()
    try:
        yield service
    finally:
        await service.stop()
        ACCESS.pop("notes")


async def test_audit__records_each_change_in_its_transaction_and_lists_it_to_admins(stack: Stack, notes):
    org = unique("org")
    manager = stack.headers(org, "quality_manager")
    async with httpx.AsyncClient(base_url=notes.url, headers=stack.headers(org, "admin")) as http:
        assert (
            await http.post("/api/v1/notes", json={"id": "n-1", "text": "first"}, headers=manager)
        ).status_code == 201
        # The second insert fails its transaction: its audit entry must not survive it.
        again = await http.post("/api/v1/notes", json={"id": "n-1", "text": "again"}, headers=manager)
        assert again.status_code == 409
        assert (await http.post("/api/v1/notes", json={"id": "n-2", "text": "other"})).status_code == 201
        assert (await http.patch("/api/v1/notes/n-1", json={"id": "n-1", "text": "second"})).status_code == 200

        listed = await _all(http)
        assert [(e["action"], e["object_id"]) for e in listed] == [
            ("update", "n-1"),
            ("create", "n-2"),
            ("create", "n-1"),
        ]
        updated, _, created = listed
        assert created["before"] is None and created["after"] == {"text": "first"}
        assert created["actor"] == "developer" and created["roles"] == ["quality_manager"]
        assert updated["before"] == {"text": "first"} and updated["after"] == {"text": "second"}

        one_note = await _all(http, kind="note", object_id="n-1")
        assert [e["action"] for e in one_note] == ["update", "create"]
        assert [e["object_id"] for e in await _all(http, kind="note")] == ["n-1", "n-2", "n-1"]
        assert await _all(http, actor="someone-else") == []
        assert len(await _all(http, actor="developer")) == 3
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        earlier = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        assert await _all(http, since=later) == []
        assert len(await _all(http, since=earlier, until=later)) == 3

        walked = await _all(http, limit=1)
        assert [e["id"] for e in walked] == [e["id"] for e in listed]

        exported = await http.get("/api/v1/audit/notes/export", params={"object_id": "n-1"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(r["action"], r["actor"]) for r in rows] == [("update", "developer"), ("create", "developer")]
        assert json.loads(rows[0]["before"]) == {"text": "first"}

        assert await _all(http, headers=stack.headers(unique("org"), "admin")) == []
        subtree_admin = await http.get("/api/v1/audit/notes", headers=stack.headers(org, "admin", scopes=("north",)))
        assert subtree_admin.status_code == 403
        for role in ("quality_manager", "analyst", "integration"):
            refused = await http.get("/api/v1/audit/notes", headers=stack.headers(org, role))
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"


async def _all(http: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    """Every entry the filters select, following next_cursor to the end (pages may be short, even empty)."""
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await http.get("/api/v1/audit/notes", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return entries


@pytest.mark.parametrize("bounds", [{"since": "0191-11-30T23:01:21Z"}, {"until": "9999-12-31T23:59:59Z"}])
async def test_audit__a_time_filter_outside_1970_to_8999_answers_422_not_500(stack: Stack, notes, bounds):
    async with httpx.AsyncClient(base_url=notes.url, headers=stack.headers(unique("org"), "admin")) as http:
        response = await http.get("/api/v1/audit/notes", params=bounds)
        naive = await http.get("/api/v1/audit/notes", params={"since": "2026-11-30T23:01:21"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "1970" in response.text
    assert naive.status_code == 200 and naive.json()["items"] == []
