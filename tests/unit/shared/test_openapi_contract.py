"""Every service's OpenAPI document declares the bearer scheme and its problem+json errors on every operation;
query moments are read in UTC and refused outside the years every period walk can step through."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from devstack.cli import SERVICES
from shared.app import create_app
from shared.contract import moment_in_range
from shared.settings import PlatformSettings

METHODS = {"get", "put", "post", "patch", "delete"}


def _document(service: str, public_key: Path) -> dict:
    definition = importlib.import_module(f"services.{service}.main").DEFINITION
    extra = {"pseudonym_key": SecretStr("k")} if "pseudonym_key" in definition.settings_type.model_fields else {}
    settings = definition.settings_type(port=0, database="x", **extra)
    platform = PlatformSettings(kafka_bootstrap="x:1", mongo_uri="mongodb://x", auth_public_key_file=public_key)
    return create_app(definition, platform, settings).openapi()


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation__declares_the_bearer_scheme_and_its_errors_as_problem_json(service, public_key):
    document = _document(service, public_key)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, method, operation in _operations(document):
        assert operation["security"] == [{"bearerAuth": []}], (path, method)
        responses = operation["responses"]
        expected = {"401", "403", "404", "429", "503"}
        if method != "get":
            expected.add("409")
        assert expected <= set(responses), (path, method)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                content = response["content"]
                assert list(content) == ["application/problem+json"], (path, method, status)
                assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


@pytest.mark.parametrize("service", SERVICES)
def test_operation_ids__are_the_endpoint_names(service, public_key):
    ids = [operation["operationId"] for _, _, operation in _operations(_document(service, public_key))]
    assert ids and all(name.isidentifier() and not name.endswith(("_get", "_post")) for name in ids), ids


def test_validation_errors__are_documented_as_problems_not_fastapi_defaults(public_key):
    document = _document("feedback", public_key)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    post = document["paths"]["/api/v1/feedback"]["post"]["responses"]
    assert {"413", "422"} <= set(post)


def test_every_operation__says_which_roles_may_call_it(public_key):
    operations = list(_operations(_document("scoring", public_key)))
    change = next(op for path, method, op in operations if op["operationId"] == "change_index_system")
    assert change["x-roles"] == ["admin", "quality_manager"] and change["x-organisation-wide-token"] is True
    assert "Who may call it: `quality_manager`, `admin` (organisation-wide token)." in change["description"]
    assert all("x-roles" in op for _, _, op in operations)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (datetime(2026, 11, 30, 23, 1), datetime(2026, 11, 30, 23, 1, tzinfo=UTC)),
        (datetime(2026, 12, 1, 7, 1, tzinfo=timezone(timedelta(hours=8))), datetime(2026, 11, 30, 23, 1, tzinfo=UTC)),
        (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_query_moments_are_utc(given: datetime, expected: datetime):
    moment = moment_in_range(given)
    assert moment == expected and moment.tzinfo is UTC


@pytest.mark.parametrize("year", [1, 191, 1969, 9000, 9999])
def test_query_moments_outside_1970_to_8999_are_refused(year: int):
    with pytest.raises(ValueError, match="1970"):
        moment_in_range(datetime(year, 6, 1, tzinfo=UTC))
