"""One feedback's path through the gateway: feedback → score → alert → action, in one trace."""

from __future__ import annotations

import os

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.e2e.conftest import Platform
from tests.harness import Stack, eventually, unique

pytestmark = pytest.mark.e2e


async def test_low_csat__raises_an_alert_and_assigns_an_action_in_one_trace(
    stack: Stack, platform: Platform, spans: InMemorySpanExporter
):
    org = unique("org")
    admin = stack.headers(org, "admin")
    async with httpx.AsyncClient(base_url=platform.gateway, headers=admin, timeout=10) as http:
        await _post(http, "/api/v1/units", {"id": "north", "name": "华北区", "kind": "region"})
        await _post(http, "/api/v1/units", {"id": "b-001", "name": "北京一分行", "parent_id": "north"})
        await _post(
            http,
            "/api/v1/rules",
            {"name": "CSAT floor", "indicator": "csat", "threshold": 60, "min_samples": 3, "level": "orange"},
        )
        await _post(http, "/api/v1/responsibilities", {"scope": "north/b-001", "responsible": "li.wei"})
        for rating in (2, 1):
            await _post(http, "/api/v1/feedback", {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": rating}})
        await eventually(lambda: _sample_size(http, "b-001", at_least=2))

        trace_id = os.urandom(16).hex()
        await _post(
            http,
            "/api/v1/feedback",
            {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": 2}},
            headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"},
        )

        alert = await eventually(lambda: _firing_alert(http, "b-001"))
        assert alert["indicator"] == "csat"
        assert alert["value"] == 0.0
        assert alert["level"] == "orange"
        action = await eventually(lambda: _action_for(http, alert["id"]))
        assert action["assignee"] == "li.wei"
        assert action["status"] == "open"

        # The breach is raised once, however many scores stay below the floor.
        await _post(http, "/api/v1/feedback", {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": 1}})
        await eventually(lambda: _sample_size(http, "b-001", at_least=4))
        firing = (await http.get("/api/v1/alerts", params={"status": "firing"})).json()["items"]
        assert [a["unit_id"] for a in firing].count("b-001") == 1

    flow = await eventually(lambda: _spans_until_action(spans, trace_id))
    names = {span.name for span in flow}
    for topic in ("feedback.received", "score.updated", "threshold.breached"):
        assert f"{topic} publish" in names, f"no {topic} publish span in the trace"
        assert f"{topic} process" in names, f"no {topic} process span in the trace"
    assert "action.assigned publish" in names
    services = {span.instrumentation_scope.name for span in flow if span.instrumentation_scope}
    assert {"qualityloop.feedback", "qualityloop.scoring", "qualityloop.alerts", "qualityloop.improvement"} <= services
    assert any(span.name.startswith("POST /api/v1/feedback") for span in flow), "the HTTP request is in the trace"


async def _post(http: httpx.AsyncClient, path: str, body: dict, headers: dict | None = None) -> dict:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _sample_size(http: httpx.AsyncClient, unit_id: str, *, at_least: int) -> bool:
    response = await http.get(f"/api/v1/scores/{unit_id}")
    return response.status_code == 200 and response.json()["sample_size"] >= at_least


async def _firing_alert(http: httpx.AsyncClient, unit_id: str) -> dict | None:
    alerts = (await http.get("/api/v1/alerts", params={"status": "firing"})).json()["items"]
    return next((a for a in alerts if a["unit_id"] == unit_id), None)


async def _action_for(http: httpx.AsyncClient, alert_id: str) -> dict | None:
    actions = (await http.get("/api/v1/actions", params={"alert_id": alert_id})).json()["items"]
    return actions[0] if actions else None


async def _spans_until_action(spans: InMemorySpanExporter, trace_id: str) -> list | None:
    flow = [s for s in spans.get_finished_spans() if s.context and format(s.context.trace_id, "032x") == trace_id]
    return flow if any(s.name == "action.assigned publish" for s in flow) else None
