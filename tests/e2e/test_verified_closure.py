"""Through the gateway: feedback drives a branch below its rule, the alert becomes an action assigned to the
branch's owner, who takes it in hand (acknowledging the alert) and does it; recovering feedback verifies it."""

from __future__ import annotations

from functools import partial

import httpx
import pytest

from shared.auth import issue_token
from tests.e2e.conftest import Platform
from tests.harness import Stack, eventually, unique

pytestmark = pytest.mark.e2e


async def test_breach_action_done_and_verified_by_recovering_feedback(stack: Stack, platform: Platform):
    org = unique("org")
    async with httpx.AsyncClient(base_url=platform.gateway, headers=stack.headers(org, "admin"), timeout=10) as http:
        await _post(http, "/api/v1/units", {"id": "north", "name": "华北区", "kind": "region"})
        await _post(http, "/api/v1/units", {"id": "b-001", "name": "北京一分行", "parent_id": "north"})
        await _post(
            http,
            "/api/v1/rules",
            {
                "kind": "threshold",
                "name": "CSAT floor",
                "indicator": "csat",
                "threshold": 60,
                "clear_bound": 70,
                "min_samples": 3,
                "level": "orange",
            },
        )
        await _post(http, "/api/v1/responsibilities", {"scope": "north/b-001", "responsible": "li.wei"})
        await _patch(http, "/api/v1/responsibilities/settings", {"verification_periods": 2})
        for rating in (2, 1, 2):
            await _post(http, "/api/v1/feedback", {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": rating}})

        alert = await eventually(lambda: _firing_alert(http, "b-001"))
        action = await eventually(lambda: _action_for(http, alert["id"]))
        assert (action["assignee"], action["status"], action["indicator"]) == ("li.wei", "open", "csat")
        assert action["routing"]["entry_id"] is not None
        assert action["watch"] == {"indicator": "csat", "period": "all", "clear_bound": 70.0, "comparison": "below"}

    # The branch's owner works the action with their own token, inside their own subtree.
    owner_token = issue_token(
        stack.private_key.read_bytes(), org=org, roles=["unit_manager"], scopes=["north/b-001"], subject="li.wei"
    )
    owner = {"Authorization": f"Bearer {owner_token}"}
    path = f"/api/v1/actions/{action['id']}"
    async with httpx.AsyncClient(base_url=platform.gateway, headers=owner, timeout=10) as http:
        taken = await http.post(f"{path}/transitions", json={"to": "in_progress"})
        assert taken.status_code == 200, taken.text
        assert await eventually(lambda: _alert_status(http, alert["id"], "acknowledged"))
        refused = await http.post(f"{path}/transitions", json={"to": "verified"})
        assert refused.status_code == 409
        assert (refused.json()["errors"][0]["current_state"], refused.json()["errors"][0]["allowed"]) == (
            "in_progress",
            ["done"],
        )
        done = await http.post(f"{path}/transitions", json={"to": "done"})
        assert done.status_code == 200, done.text
        assert done.json()["verification"]["outcome"] == "watching"

    # Happy customers, one at a time: CSAT climbs back past the clearing bound (70 %) and stays there.
    async with httpx.AsyncClient(base_url=platform.gateway, headers=stack.headers(org, "admin"), timeout=10) as http:
        for count in range(4, 16):
            await _post(http, "/api/v1/feedback", {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": 5}})
            await eventually(partial(_sample_size, http, "b-001", at_least=count))
        verified = await eventually(lambda: _action_in(http, action["id"], "verified"))
    assert "back past 70 for 2 consecutive period(s)" in verified["status_reason"]
    assert [h["to"] for h in verified["history"] if h["what"] == "status"] == ["in_progress", "done", "verified"]


async def _post(http: httpx.AsyncClient, path: str, body: dict) -> dict:
    response = await http.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _patch(http: httpx.AsyncClient, path: str, body: dict) -> dict:
    response = await http.patch(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _firing_alert(http: httpx.AsyncClient, unit_id: str) -> dict | None:
    alerts = (await http.get("/api/v1/alerts", params={"status": "firing"})).json()["items"]
    return next((a for a in alerts if a["unit_id"] == unit_id), None)


async def _alert_status(http: httpx.AsyncClient, alert_id: str, status: str) -> bool:
    response = await http.get(f"/api/v1/alerts/{alert_id}")
    return response.status_code == 200 and response.json()["status"] == status


async def _action_for(http: httpx.AsyncClient, alert_id: str) -> dict | None:
    actions = (await http.get("/api/v1/actions", params={"alert_id": alert_id})).json()["items"]
    return actions[0] if actions else None


async def _action_in(http: httpx.AsyncClient, action_id: str, status: str) -> dict | None:
    action = (await http.get(f"/api/v1/actions/{action_id}")).json()
    return action if action["status"] == status else None


async def _sample_size(http: httpx.AsyncClient, unit_id: str, *, at_least: int) -> bool:
    response = await http.get(f"/api/v1/scores/{unit_id}")
    return response.status_code == 200 and response.json()["sample_size"] >= at_least
