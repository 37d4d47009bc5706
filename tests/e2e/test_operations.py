"""What SREs rely on: readiness, metrics and the contract documents, for every service."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.e2e.conftest import Platform
from tests.harness import Stack, unique

pytestmark = pytest.mark.e2e


async def test_every_service__is_ready_and_exposes_its_metrics(platform: Platform):
    async with httpx.AsyncClient(timeout=10) as http:
        for name, service in platform.services.items():
            ready = await http.get(f"{service.url}/readyz")
            assert ready.status_code == 200, name
            assert ready.json() == {"status": "ready", "database": True, "broker": True}
            metrics = (await http.get(f"{service.url}/metrics")).text
            assert "qualityloop_outbox_backlog" in metrics, name
            assert "qualityloop_events_consumed_total" in metrics, name


async def test_gateway__links_the_openapi_and_asyncapi_documents(platform: Platform):
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as http:
        index = await http.get("/")
        assert index.status_code == 200 and "/asyncapi.json" in index.text
        for name in platform.services:
            document = (await http.get(f"/openapi/{name}.json")).json()
            assert document["info"]["title"] == f"QualityLoop {name} service"
            assert all(path.startswith("/api/v1/") for path in document["paths"])
        asyncapi = (await http.get("/asyncapi.json")).json()
        assert "feedback.received" in asyncapi["channels"]


async def test_gateway__answers_unknown_paths_and_missing_tokens_as_problems(platform: Platform):
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as http:
        unknown = await http.get("/nowhere")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")
        assert unknown.headers["x-request-id"]
        anonymous = await http.get("/api/v1/alerts")
        assert anonymous.status_code == 401
        assert anonymous.json()["title"] == "Missing token"


async def test_gateway_request_id__is_on_the_request_span(
    platform: Platform, stack: Stack, spans: InMemorySpanExporter
):
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as http:
        response = await http.get("/api/v1/rules", headers=stack.headers(unique("org"), "analyst"))
    request_id = response.headers["x-request-id"]
    tagged = [s for s in spans.get_finished_spans() if (s.attributes or {}).get("app.request_id") == request_id]
    assert [s.name for s in tagged] == ["GET /api/v1/rules"]
