"""RFC 9457 problem details for every error a REST API answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """An error to answer as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors, self.headers = errors, headers


class NotFound(Problem):
    """The object does not exist, or lies outside the caller's organisation or scopes."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(404, "Not found", f"no {what} {ident!r}")


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    """The problem+json response of a Problem."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "instance": request.url.path,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{field, reason}`` pairs a caller can act on."""
    return [
        {
            "field": ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",)),
            "reason": error.get("msg"),
        }
        for error in errors
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, expected or not, as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, problem: Problem) -> JSONResponse:
        return problem_response(request, problem)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problem = Problem(
            422, "Invalid request", "the request does not validate", errors=validation_errors(error.errors())
        )
        return problem_response(request, problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            request, Problem(error.status_code, str(error.detail), headers=dict(error.headers or {}))
        )

    @app.exception_handler(ConnectionFailure)
    async def _unavailable(request: Request, error: ConnectionFailure) -> JSONResponse:
        log.warning("database unreachable", extra={"path": request.url.path, "error": str(error)})
        problem = Problem(
            503,
            "Service unavailable",
            "the database is unreachable; nothing was stored, retry later",
            headers={"Retry-After": "5"},
        )
        return problem_response(request, problem)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(request, Problem(500, "Internal error", "the error was logged"))
