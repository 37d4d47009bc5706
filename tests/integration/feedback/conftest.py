"""The feedback service under test, and a small organisation tree to post against."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.feedback.main import DEFINITION
from services.feedback.settings import FeedbackSettings
from shared.app import create_app
from tests.harness import RunningService, Stack, eventually, read_topic, unique


@pytest.fixture(scope="module")
async def feedback_service(stack: Stack) -> AsyncIterator[RunningService]:
    """The feedback service on its own database."""
    settings = FeedbackSettings(port=0, database=unique("fb"), pseudonym_key=SecretStr("test-key"))
    service = await RunningService(create_app(DEFINITION, stack.platform(), settings)).start()
    yield service
    await service.stop()


async def make_tree(http: httpx.AsyncClient) -> None:
    """north/b-001 (code BJ001) and south/s-001."""
    for unit in (
        {"id": "north", "name": "华北区", "kind": "region"},
        {"id": "b-001", "name": "北京一分行", "parent_id": "north", "external_code": "BJ001"},
        {"id": "south", "name": "华南区", "kind": "region"},
        {"id": "s-001", "name": "广州一分行", "parent_id": "south"},
    ):
        response = await http.post("/api/v1/units", json=unit)
        assert response.status_code == 201, response.text


@pytest.fixture
async def org_client(stack: Stack, feedback_service: RunningService) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A fresh organisation with its tree, and an admin client of it."""
    org = unique("org")
    # A generous timeout: an import of thousands of units takes seconds when the machine's cores are shared.
    headers = stack.headers(org, "admin")
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=headers, timeout=60) as http:
        await make_tree(http)
        yield org, http


async def received(stack: Stack, feedback_id: str, topic: str = "feedback.received") -> dict[str, Any]:
    """The payload published for one feedback."""
    records = await read_topic(
        stack.bootstrap, topic, until=lambda seen: any(r["value"]["feedback_id"] == feedback_id for r in seen)
    )
    value: dict[str, Any] = next(r["value"] for r in records if r["value"]["feedback_id"] == feedback_id)
    return value


async def listed(http: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """The organisation's feedback, once at least ``count`` are there."""

    async def check() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await http.get("/api/v1/feedback", params={"limit": 500})).json()["items"]
        return items if len(items) >= count else []

    result: list[dict[str, Any]] = await eventually(check)
    return result
