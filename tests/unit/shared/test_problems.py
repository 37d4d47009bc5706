"""Every error is answered as problem+json, with a status that tells the caller what to do."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from pymongo.errors import AutoReconnect

from shared.problems import NotFound, install_problem_handlers


class Body(BaseModel):
    rating: int


def _client() -> httpx.AsyncClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("unit", "b-9")

    @app.get("/outage")
    async def outage() -> None:
        raise AutoReconnect("connection refused")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    @app.post("/validate")
    async def validate(body: Body) -> None:
        return None

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://service")


async def test_not_found__names_what_is_missing():
    response = await _client().get("/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "no unit 'b-9'"


async def test_invalid_body__names_the_field_and_the_reason():
    response = await _client().post("/validate", json={"rating": "high"})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "rating"
    assert "integer" in error["reason"]


async def test_database_outage__is_503_with_retry_after():
    response = await _client().get("/outage")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["title"] == "Service unavailable"


async def test_unexpected_error__is_500_without_internals():
    response = await _client().get("/bug")
    assert response.status_code == 500
    assert "a bug" not in response.text
