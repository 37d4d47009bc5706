"""The OpenAPI contract every service publishes: the bearer scheme and every error it answers, as problem+json.

Done once here, for every operation of every service, so the documents tell generated clients and
contract testers what the services really answer: 401 and 403 (the token and the role table), 404 (an
object named in the request is missing or out of scope), 409 on changes, 413 and 429 (the gateway's
body-size and rate limits), 422 (validation), 503 (the database unreachable), and 400 for a body that
cannot be parsed or a cursor that is not ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

from shared.access import access_row
from shared.problems import PROBLEM_JSON

EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)


def moment_in_range(moment: datetime) -> datetime:
    """A query's moment in UTC (one without a zone is UTC), refused (422) outside 1970–8999.

    Every period, window and page walk steps from such a moment by up to a century; a year 1 or 9999
    would overflow Python's datetimes in the middle of a read instead of answering with a clear error.
    """
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise ValueError("must be between 1970-01-01 and 9000-01-01 (UTC)")
    return moment


Moment = Annotated[datetime, AfterValidator(moment_in_range)]
"""A time in a query (since, until, start, end, at): ISO 8601, in UTC when it names no zone."""


class Changes(BaseModel):
    """A PATCH body: only the fields sent change; unknown fields are refused.

    A field sent as null is removed, so only the fields named in ``removable`` may be null; any other
    null answers 422 instead of storing a hole that every later read of the object would trip over.
    """

    model_config = ConfigDict(extra="forbid")
    removable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _removable_if_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only on the fields sent: defaults are not validated.
        if value is None and info.field_name not in cls.removable:
            raise ValueError("may be changed but not removed (null)")
        return value


SECURITY_SCHEME = "bearerAuth"
WRITES = frozenset({"post", "put", "patch", "delete"})

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status"],
    "examples": [
        {
            "type": "about:blank",
            "title": "Invalid request",
            "status": 422,
            "instance": "/api/v1/feedback",
            "detail": "the request does not validate",
            "errors": [{"field": "ratings.csat", "reason": "Input should be less than or equal to 5"}],
        }
    ],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem; `about:blank` here."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path."},
        "errors": {
            "type": "array",
            "description": "Which fields did not validate, and why (422).",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "400": ("Bad request: a body that cannot be parsed, or a cursor that is not one of ours.", {}),
    "401": ("Missing, expired or invalid bearer token.", {"WWW-Authenticate": {"schema": {"type": "string"}}}),
    "403": ("The token's roles (or scope) do not allow this operation.", {}),
    "404": ("An object named in the request does not exist or lies outside the caller's organisation or scopes.", {}),
    "409": ("The change conflicts with the object's current state.", {}),
    "413": ("The request body is larger than the gateway accepts.", {}),
    "422": ("The request does not validate; `errors` says which fields and why.", {}),
    "429": ("Too many requests from this client; retry after `Retry-After` seconds.", RETRY_AFTER),
    "503": ("A dependency (the database) is unreachable; nothing was changed. Retry later.", RETRY_AFTER),
}


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses an operation can answer."""
    # 404 on every operation: an object named in the path, the query or the body (a unit, say) may not
    # exist or lie outside the caller's scopes, and the gateway answers 404 for paths it does not route.
    statuses = ["401", "403", "404", "429", "503"]
    parameters = operation.get("parameters", [])
    if method in WRITES:
        statuses.append("409")
    if "requestBody" in operation:
        statuses.append("413")
    if parameters or "requestBody" in operation:
        statuses.append("422")
    if "requestBody" in operation or any(p.get("name") == "cursor" for p in parameters):
        statuses.append("400")
    return sorted(statuses)


def document_errors(schema: dict[str, Any], service: str | None = None) -> dict[str, Any]:
    """The OpenAPI document with the bearer scheme and the problem+json errors on every operation.

    Given the service, each operation also says which roles may call it (``x-roles`` and its description).
    """
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An RS256 token from the OIDC provider (`qualityloop token` on the embedded default).",
    }
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "put", "post", "patch", "delete", "head", "options"}:
                continue
            operation["security"] = [{SECURITY_SCHEME: []}]
            row = access_row(service, operation.get("operationId", "")) if service else None
            if row is not None:
                operation["x-roles"] = sorted(row.roles)
                operation["x-organisation-wide-token"] = row.whole_organisation
                who = f"Who may call it: {row.describe()}."
                operation["description"] = f"{operation.get('description', '').rstrip()}\n\n{who}".lstrip()
            responses = operation.setdefault("responses", {})
            # Errors a view declares itself are answered as problems too (shared/problems.py).
            for status, declared in responses.items():
                if str(status).startswith(("4", "5")):
                    declared["content"] = _problem_content()
            for status in error_statuses(path, method, operation):
                description, headers = ERRORS[status]
                response: dict[str, Any] = {"description": description, "content": _problem_content()}
                if headers:
                    response["headers"] = headers
                responses[status] = response
    return schema


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def install_contract(app: FastAPI, service: str) -> None:
    """Make the app's ``/openapi.json`` the full contract (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    separate_input_output_schemas=app.separate_input_output_schemas,
                ),
                service,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
