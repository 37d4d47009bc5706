"""Erasure of a customer's feedback, and answers only within the token's organisation, scopes and roles."""

from __future__ import annotations

import httpx
import pytest

from shared.auth import issue_token
from tests.harness import RunningService, Stack, unique
from tests.integration.feedback.conftest import make_tree, received

pytestmark = pytest.mark.integration


async def test_erasure__deletes_the_customers_feedback_and_publishes_feedback_erased(
    stack: Stack, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client
    mine = {"unit_id": "b-001", "channel": "app", "customer_ref": "cust-42"}
    first = (await http.post("/api/v1/feedback", json={**mine, "ratings": {"csat": 2}})).json()
    second = (await http.post("/api/v1/feedback", json={**mine, "comment": "服务太差了"})).json()
    other = (await http.post("/api/v1/feedback", json={**mine, "customer_ref": "cust-7", "ratings": {"nps": 9}})).json()
    assert first["customer_ref"] != "cust-42", "the raw reference is never stored"

    response = await http.post("/api/v1/erasures", json={"customer_ref": "cust-42"})
    assert response.status_code == 201, response.text
    assert response.json()["erased"] == 2
    assert (await http.get(f"/api/v1/feedback/{first['id']}")).status_code == 404
    assert (await http.get(f"/api/v1/feedback/{second['id']}")).status_code == 404
    assert (await http.get(f"/api/v1/feedback/{other['id']}")).status_code == 200
    erased = await received(stack, first["id"], topic="feedback.erased")
    assert (erased["org"], erased["unit_path"], erased["ratings"]["csat"]) == (org, "north/b-001", 2)
    assert erased["occurred_at"]
    erased_comment = await received(stack, second["id"], topic="feedback.erased")
    assert erased_comment["sentiment"] == second["sentiment"] is not None


async def test_erasure__needs_the_admin_role(stack: Stack, feedback_service: RunningService) -> None:
    headers = stack.headers(unique("org"), "quality_manager")
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=headers) as http:
        response = await http.post("/api/v1/erasures", json={"customer_ref": "c"})
    assert response.status_code == 403


async def test_scopes__another_organisations_and_a_sibling_subtrees_objects_answer_404(
    stack: Stack, feedback_service: RunningService, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, http = org_client
    south = await http.post("/api/v1/feedback", json={"unit_id": "s-001", "channel": "app", "ratings": {"csat": 3}})
    south_id = south.json()["id"]
    stranger = stack.headers(unique("org"), "admin")
    north_manager = stack.headers(org, "unit_manager", scopes=["north"])
    async with httpx.AsyncClient(base_url=feedback_service.url) as client:
        for headers in (stranger, north_manager):
            assert (await client.get(f"/api/v1/feedback/{south_id}", headers=headers)).status_code == 404
            assert (await client.get("/api/v1/units/s-001", headers=headers)).status_code == 404
            listed = await client.get("/api/v1/feedback", headers=headers)
            assert south_id not in [f["id"] for f in listed.json()["items"]]
        posted = await client.post(
            "/api/v1/feedback",
            headers=north_manager,
            json={"unit_id": "s-001", "channel": "app", "ratings": {"csat": 3}},
        )
        assert posted.status_code == 422
        assert posted.json()["errors"][0] == {"field": "unit_id", "reason": "no unit 's-001'"}
        assert (await client.get("/api/v1/units/b-001", headers=north_manager)).status_code == 200


async def test_roles__a_token_without_the_needed_role_gets_403(stack: Stack, feedback_service: RunningService) -> None:
    org = unique("org")
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=stack.headers(org, "admin")) as admin:
        await make_tree(admin)
    analyst = stack.headers(org, "analyst")
    async with httpx.AsyncClient(base_url=feedback_service.url, headers=analyst) as http:
        body = {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 3}}
        assert (await http.post("/api/v1/feedback", json=body)).status_code == 403
        assert (await http.post("/api/v1/feedback/batch", json={"items": [body]})).status_code == 403
        assert (await http.post("/api/v1/units", json={"id": "x", "name": "x"})).status_code == 403
        assert (await http.get("/api/v1/units/b-001")).status_code == 200


async def test_an_integration__reads_back_what_it_submitted_and_nothing_else(
    stack: Stack, feedback_service: RunningService, org_client: tuple[str, httpx.AsyncClient]
) -> None:
    org, admin = org_client

    def integration(subject: str) -> httpx.AsyncClient:
        token = issue_token(stack.private_key.read_bytes(), org=org, roles=["integration"], subject=subject)
        return httpx.AsyncClient(base_url=feedback_service.url, headers={"Authorization": f"Bearer {token}"})

    body = {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": 4}}
    async with integration("pos-system") as pos, integration("survey-tool") as survey:
        posted = await pos.post("/api/v1/feedback", json=body)
        assert posted.status_code == 201, posted.text
        by_admin = (await admin.post("/api/v1/feedback", json=body)).json()
        own = await pos.get(f"/api/v1/feedback/{posted.json()['id']}")
        assert own.status_code == 200 and own.json()["ratings"]["csat"] == 4
        # Another integration of the organisation, or the admin's feedback: as missing as an unknown id.
        assert (await survey.get(f"/api/v1/feedback/{posted.json()['id']}")).status_code == 404
        assert (await pos.get(f"/api/v1/feedback/{by_admin['id']}")).status_code == 404
        assert (await pos.get("/api/v1/feedback")).status_code == 403
    assert (await admin.get(f"/api/v1/feedback/{posted.json()['id']}")).status_code == 200
