"""The FastAPI app around a service's runtime: its routers, health, readiness, metrics and problem+json errors."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError
from starlette.routing import BaseRoute

from shared import asyncapi
from shared.access import enforce_access, operation_id, resolve_access
from shared.audit import AUDIT_INDEXES, audit_router
from shared.auth import TokenVerifier
from shared.contract import install_contract
from shared.dead_letters import DEAD_LETTER_INDEXES, backfill_dead_letter_keys, dead_letter_router
from shared.problems import install_problem_handlers
from shared.runtime import Runtime, S, ServiceDefinition, start_runtime, stop_runtime
from shared.settings import PlatformSettings
from shared.storage import DEAD_LETTERS
from shared.telemetry import RequestIds, setup_tracing


def service_routers(definition: ServiceDefinition[Any]) -> list[APIRouter]:
    """Every router a service's app serves: its own, and the shared dead-letter and audit routers."""
    return [*definition.routers, dead_letter_router(definition.name), audit_router(definition.name)]


def service_app_routes(service: str) -> list[BaseRoute]:
    """A service's API routes with the operation ids its app gives them (for the docs and tests)."""
    definition = importlib.import_module(f"services.{service}.main").DEFINITION
    app = FastAPI(generate_unique_id_function=operation_id)
    for router in service_routers(definition):
        app.include_router(router)
    return list(app.routes)


def create_app(definition: ServiceDefinition[S], platform: PlatformSettings, settings: S) -> FastAPI:
    """The service's FastAPI app: its routers, health, readiness, metrics and problem+json errors."""
    setup_tracing(definition.name)
    # Every service keeps an audit log; its collection and index are created with the service's own.
    definition = replace(definition, indexes={**AUDIT_INDEXES, **definition.indexes})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await start_runtime(definition, platform, settings)
        await app.state.runtime.db[DEAD_LETTERS].create_indexes(DEAD_LETTER_INDEXES)
        await backfill_dead_letter_keys(app.state.runtime.db)
        try:
            yield
        finally:
            await stop_runtime(app.state.runtime)

    app = FastAPI(
        title=f"QualityLoop {definition.name} service",
        description=definition.description,
        version="1.0.0",
        lifespan=lifespan,
        # Operation ids are the endpoint functions' names: what a generated client's methods are called,
        # and the key of the role table (shared/access.py).
        generate_unique_id_function=operation_id,
        # Every route passes the role table; views need no role checks of their own.
        dependencies=[Depends(enforce_access)],
        # FastAPI's own OpenTelemetry: a server span per request (W3C context from the headers, the
        # route template as its name), around every middleware. Spans per dependency, endpoint and
        # serialisation are off: they cost a fifth of a request's CPU and say little the request's
        # own span and the database spans do not. Metrics are Prometheus' (/metrics).
        telemetry={"operation_spans": False, "metrics": False, "exclude": _unobserved},
    )
    app.state.token_verifier = TokenVerifier(platform)
    install_problem_handlers(app)
    for router in service_routers(definition):
        app.include_router(router)

    async def asyncapi_document() -> dict[str, Any]:  # named as the role table's public row
        return asyncapi.asyncapi_document(definition.intake)

    app.add_api_route("/asyncapi.json", asyncapi_document, include_in_schema=False)
    app.add_api_route("/healthz", _healthz, include_in_schema=False)
    app.add_api_route("/readyz", _readyz, include_in_schema=False)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    app.state.access = resolve_access(definition.name, app.routes)
    install_contract(app, definition.name)

    app.add_middleware(RequestIds)
    return app


UNOBSERVED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _unobserved(scope: Any) -> bool:
    """Probes and scrapes get no span: they would drown the traces that matter."""
    return scope.get("path") in UNOBSERVED_PATHS


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _readyz(request: Request) -> JSONResponse:
    runtime: Runtime[Any] | None = getattr(request.app.state, "runtime", None)
    checks: dict[str, Any] = {"database": False, "broker": False}
    if runtime is not None:
        with suppress(PyMongoError, TimeoutError):
            await asyncio.wait_for(runtime.client.admin.command("ping"), 2)
            checks["database"] = True
        with suppress(KafkaError, TimeoutError, OSError):
            await asyncio.wait_for(runtime.producer.client.fetch_all_metadata(), 2)
            checks["broker"] = True
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503)
