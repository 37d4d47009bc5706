"""The role table: every operation has a row, the docs show the table as it is, create_app enforces it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from devstack.cli import SERVICES
from shared.access import (
    ACCESS,
    DOC,
    EVERY_SERVICE,
    MANAGE_ORGANISATION,
    READ,
    api_routes,
    operation_of,
    render_table,
    unlisted_operations,
    with_table,
)
from shared.app import create_app, service_app_routes
from shared.auth import CurrentPrincipal, ensure_signing_key, issue_token
from shared.runtime import ServiceDefinition
from shared.settings import PlatformSettings, ServiceSettings


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation__has_a_row_in_the_role_table(service):
    assert unlisted_operations(service, service_app_routes(service)) == [], (
        "add a row for each of these operations to shared/access.py ACCESS, then run `python -m shared.access`"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_operation_ids__are_unique_within_a_service(service):
    ids = Counter(operation_of(route) for route in api_routes(service_app_routes(service)))
    assert [name for name, count in ids.items() if count > 1] == []


def test_the_table_in_the_docs__is_the_table_in_the_code():
    routes = {service: service_app_routes(service) for service in SERVICES}
    document = DOC.read_text()
    assert with_table(document, render_table(routes)) == document, "run `python -m shared.access`"


def test_integration__may_only_post_feedback_and_read_its_submissions():
    allowed = {
        (service, operation)
        for service, rows in ACCESS.items()
        for operation, access in rows.items()
        if "integration" in access.roles
    }
    assert allowed == {("feedback", "post_feedback"), ("feedback", "post_feedback_batch"), ("feedback", "get_feedback")}


def test_admin__may_call_every_operation():
    assert all("admin" in access.roles for rows in ACCESS.values() for access in rows.values() if not access.public)


def test_dead_letters_and_audit__are_for_organisation_wide_admins_only():
    shared = {name: access for name, access in ACCESS[EVERY_SERVICE].items() if not access.public}
    assert set(shared) == {"list_dead_letters", "replay_dead_letter", "list_audit_entries", "export_audit_entries"}
    assert {(access.roles, access.whole_organisation) for access in shared.values()} == {(frozenset({"admin"}), True)}


# --- enforcement by create_app, on a small service of its own ---------------------------------------------------

router = APIRouter(prefix="/api/v1/things")


@router.get("")
async def list_things(principal: CurrentPrincipal) -> dict[str, str]:
    return {"org": principal.org}


@router.put("/settings")
async def put_thing_settings() -> dict[str, str]:
    return {"ok": "yes"}


@router.get("/hidden", include_in_schema=False)
async def hidden_things() -> dict[str, str]:
    return {"hidden": "yes"}


@router.post("/{thing_id}/unlisted")
async def poke_thing(thing_id: str) -> dict[str, str]:
    return {"poked": thing_id}


class ThingSettings(ServiceSettings):
    port: int = 0
    database: str = "things"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ensure_signing_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def client(keys, monkeypatch):
    monkeypatch.setitem(ACCESS, "things", {"list_things": READ, "put_thing_settings": MANAGE_ORGANISATION})
    definition = ServiceDefinition(name="things", settings_type=ThingSettings, routers=[router])
    platform = PlatformSettings(kafka_bootstrap="x:1", mongo_uri="mongodb://x", auth_public_key_file=keys[1])
    app = create_app(definition, platform, ThingSettings())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://things")


def _auth(keys, *roles: str, scopes=("*",)) -> dict[str, str]:
    token = issue_token(keys[0].read_bytes(), org="acme", roles=roles, scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "roles", "scopes", "status"),
    [
        ("GET", "/api/v1/things", ("analyst",), ("*",), 200),
        ("GET", "/api/v1/things", ("integration",), ("*",), 403),
        ("GET", "/api/v1/things", (), ("*",), 403),
        ("PUT", "/api/v1/things/settings", ("quality_manager",), ("*",), 200),
        ("PUT", "/api/v1/things/settings", ("quality_manager",), ("north",), 403),
        ("PUT", "/api/v1/things/settings", ("analyst",), ("*",), 403),
        # A route without a row fails closed: only admins.
        ("POST", "/api/v1/things/t-1/unlisted", ("quality_manager",), ("*",), 403),
        ("POST", "/api/v1/things/t-1/unlisted", ("admin",), ("*",), 200),
        # Leaving a route out of the OpenAPI document does not open it.
        ("GET", "/api/v1/things/hidden", ("analyst",), ("*",), 403),
        ("GET", "/api/v1/things/hidden", ("admin",), ("*",), 200),
    ],
)
async def test_create_app__lets_through_only_the_roles_of_the_row(client, keys, method, path, roles, scopes, status):
    async with client:
        response = await client.request(method, path, headers=_auth(keys, *roles, scopes=scopes))
    assert response.status_code == status
    if status == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Forbidden"


def test_only_probes_metrics_and_the_event_contract__are_public():
    public = {(service, name) for service, rows in ACCESS.items() for name, access in rows.items() if access.public}
    assert public == {(EVERY_SERVICE, name) for name in ("_healthz", "_readyz", "_metrics", "asyncapi_document")}


async def test_create_app__answers_401_without_a_token_and_lets_probes_through(client):
    async with client:
        missing = await client.get("/api/v1/things")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.headers["content-type"] == "application/problem+json"
        assert (await client.get("/healthz")).status_code == 200


async def test_create_app__logs_an_operation_without_a_row(keys, monkeypatch, caplog):
    monkeypatch.setitem(ACCESS, "things", {"list_things": READ})
    definition = ServiceDefinition(name="things", settings_type=ThingSettings, routers=[router])
    platform = PlatformSettings(kafka_bootstrap="x:1", mongo_uri="mongodb://x", auth_public_key_file=keys[1])
    create_app(definition, platform, ThingSettings())
    unlisted = {r.operation for r in caplog.records if r.levelname == "ERROR" and hasattr(r, "operation")}
    assert unlisted == {"put_thing_settings", "poke_thing", "hidden_things"}


@pytest.mark.parametrize("service", SERVICES)
def test_the_gateway__routes_every_operation_to_its_service(service):
    from devstack.processes import ROUTES, SHARED_PREFIXES

    prefixes = [f"/api/v1/{p}" for p in ROUTES[service]] + [f"/api/v1/{p}/{service}" for p in SHARED_PREFIXES]
    unrouted = [
        route.path_format
        for route in api_routes(service_app_routes(service))
        if route.include_in_schema and not any(route.path_format.startswith(prefix) for prefix in prefixes)
    ]
    assert unrouted == [], "add the path prefix to devstack/processes.py ROUTES"
