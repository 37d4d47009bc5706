"""Every operation in the OpenAPI documents, through the gateway: without a token 401, without its role 403.

The operations come from the documents the services publish, the expected answers from the role table
(shared/access.py), so a new endpoint is covered the moment it exists.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from devstack.cli import SERVICES
from shared.access import access_row
from shared.auth import ROLES
from tests.e2e.conftest import Platform
from tests.harness import Stack, unique

pytestmark = pytest.mark.e2e

METHODS = ("get", "put", "post", "patch", "delete")


async def _operations(http: httpx.AsyncClient) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    found = []
    for service in SERVICES:
        document = (await http.get(f"/openapi/{service}.json")).json()
        for path, item in document["paths"].items():
            for method in METHODS:
                if method in item:
                    found.append((service, method, path, item[method]["operationId"], item[method]))
    return found


def _request(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """A request for the operation: ids that name nothing, and an empty JSON body where one is expected."""
    request: dict[str, Any] = {"method": method.upper(), "url": re.sub(r"\{[^}]+\}", "x-1", path)}
    if "requestBody" in operation:
        request["json"] = {}
    return request


async def test_every_operation__answers_401_without_a_token_and_403_without_its_role(platform: Platform, stack: Stack):
    org = unique("org")
    headers = {role: stack.headers(org, role) for role in ROLES}
    subtree = {role: stack.headers(org, role, scopes=("north",)) for role in ROLES}
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as http:
        operations = await _operations(http)
        assert len(operations) > 50

        async def check(service: str, method: str, path: str, operation_id: str, operation: dict) -> list[str]:
            row = access_row(service, operation_id)
            if row is None:
                return [f"{service}.{operation_id} has no row in shared/access.py"]
            wrong = []
            request = _request(method, path, operation)
            anonymous = await http.request(**request)
            if anonymous.status_code != 401:
                wrong.append(f"{method.upper()} {path} without a token: {anonymous.status_code}")
            for role in sorted(ROLES - row.roles):
                answer = await http.request(**request, headers=headers[role])
                if answer.status_code != 403 or answer.headers["content-type"] != "application/problem+json":
                    wrong.append(f"{method.upper()} {path} as {role}: {answer.status_code}")
            if row.whole_organisation:
                role = sorted(row.roles)[0]
                answer = await http.request(**request, headers=subtree[role])
                if answer.status_code != 403:
                    wrong.append(f"{method.upper()} {path} as {role} scoped to a subtree: {answer.status_code}")
            if not {"401", "403"} <= set(operation["responses"]):
                wrong.append(f"{method.upper()} {path} does not document 401 and 403")
            return wrong

        found = await asyncio.gather(*(check(*operation) for operation in operations))
        assert [problem for problems in found for problem in problems] == []
