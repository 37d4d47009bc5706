"""No data crosses organisations or subtrees: every operation of every OpenAPI document, called by
another organisation's admin and by tokens scoped to a sibling subtree, with the ids of objects that exist.

One organisation gets a small tree (north with a branch, and south), feedback, a rule and a responsibility,
each carrying a marker; then every GET operation, and every change on those objects' paths, is called with
those ids by the intruders. Each answer must be a documented status and must not contain the marker; no
change may succeed, and the objects are as they were afterwards.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from devstack.cli import SERVICES
from tests.e2e.conftest import Platform
from tests.harness import Stack, eventually, unique

pytestmark = pytest.mark.e2e


async def _seed(http: httpx.AsyncClient, marker: str) -> dict[str, str]:
    """Objects in the north subtree, each naming ``marker``; their ids by the parameter names that take them."""

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await http.post(path, json=body)
        assert response.status_code == 201, f"{path}: {response.text}"
        return dict(response.json())

    await post("/api/v1/units", {"id": "north", "name": f"north {marker}", "kind": "region"})
    await post("/api/v1/units", {"id": "south", "name": "south", "kind": "region"})
    await post("/api/v1/units", {"id": "b-1", "name": f"branch {marker}", "parent_id": "north"})
    feedback = await post(
        "/api/v1/feedback", {"unit_id": "b-1", "channel": "kiosk", "ratings": {"csat": 2}, "comment": marker}
    )
    rule = await post(
        "/api/v1/rules",
        {
            "name": f"floor {marker}",
            "scope": "north",
            "indicator": "csat",
            "threshold": 60,
            "min_samples": 1,
            "level": "orange",
        },
    )
    responsibility = await post("/api/v1/responsibilities", {"scope": "north/b-1", "responsible": marker})

    async def scored() -> bool:
        return (await http.get("/api/v1/scores/b-1")).status_code == 200

    await eventually(scored)
    return {
        "unit_id": "b-1",
        "feedback_id": str(feedback.get("id") or feedback.get("feedback_id")),
        "rule_id": str(rule["id"]),
        "entry_id": str(responsibility["id"]),
    }


async def _operations(http: httpx.AsyncClient) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for service in SERVICES:
        document = (await http.get(f"/openapi/{service}.json")).json()
        for path, item in document["paths"].items():
            found += [
                (method, path, item[method]) for method in ("get", "put", "post", "patch", "delete") if method in item
            ]
    return found


def _request(path: str, operation: dict[str, Any], ids: dict[str, str]) -> tuple[str, dict[str, str]]:
    url = re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), "x-1"), path)
    query = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter["name"] in ("unit_id", "unit"):
            query[parameter["name"]] = "b-1" if parameter["name"] == "unit_id" else "north/b-1"
    return url, query


async def test_no_operation__shows_or_changes_another_organisations_or_a_sibling_subtrees_data(
    platform: Platform, stack: Stack
):
    org, marker = unique("org"), unique("secret")
    async with httpx.AsyncClient(base_url=platform.gateway, headers=stack.headers(org, "admin"), timeout=30) as http:
        ids = await _seed(http, marker)
        intruders = {
            "another organisation's admin": stack.headers(unique("org"), "admin"),
            "an admin of the sibling subtree": stack.headers(org, "admin", scopes=("south",)),
            "an analyst of the sibling subtree": stack.headers(org, "analyst", scopes=("south",)),
        }
        operations = await _operations(http)

        async def probe(method: str, path: str, operation: dict[str, Any]) -> list[str]:
            url, query = _request(path, operation, ids)
            body: dict[str, Any] | None = {} if "requestBody" in operation else None
            leaks = []
            for who, headers in intruders.items():
                answer = await http.request(method.upper(), url, params=query, headers=headers, json=body)
                if marker in answer.text:
                    leaks.append(f"{method.upper()} {url} by {who}: {answer.status_code} shows the other's data")
                if str(answer.status_code) not in operation["responses"]:
                    leaks.append(f"{method.upper()} {url} by {who}: undocumented {answer.status_code}")
                if method != "get" and "{" in path and answer.status_code < 300:
                    leaks.append(f"{method.upper()} {url} by {who}: {answer.status_code} changed the other's object")
            return leaks

        reads = [(m, p, o) for m, p, o in operations if m == "get"]
        # Changes to the objects' own paths only, after every read (a working change would spoil the reads).
        changes = [
            (m, p, o)
            for m, p, o in operations
            if m != "get" and re.search(r"\{(unit_id|feedback_id|rule_id|entry_id)\}", p)
        ]
        found = await asyncio.gather(*(probe(*operation) for operation in reads))
        found += [await probe(*operation) for operation in changes]
        leaks = [leak for leaks in found for leak in leaks]
        assert not leaks, "\n".join(leaks)
        for path in (
            "/api/v1/units/b-1",
            f"/api/v1/rules/{ids['rule_id']}",
            f"/api/v1/responsibilities/{ids['entry_id']}",
        ):
            assert marker in (await http.get(path)).text, f"{path} changed"
        # The owner sees its own data, so the probes above could have found it.
        assert marker in (await http.get("/api/v1/units/b-1")).text
