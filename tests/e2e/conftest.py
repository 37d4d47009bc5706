"""The whole platform for end-to-end tests: four services in this process, nginx in front."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from devstack.processes import free_port, start_gateway
from services.alerts.main import DEFINITION as ALERTS
from services.feedback.main import DEFINITION as FEEDBACK
from services.improvement.main import DEFINITION as IMPROVEMENT
from services.scoring.main import DEFINITION as SCORING
from shared.app import create_app
from shared.runtime import ServiceDefinition
from tests.harness import RunningService, Stack, unique


@dataclass
class Platform:
    """The gateway's URL and the services behind it."""

    gateway: str
    services: dict[str, RunningService]


@pytest.fixture(scope="session")
async def platform(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """All four services against the shared broker and database, behind a real nginx gateway."""
    platform_settings = stack.platform()
    services: dict[str, RunningService] = {}
    definitions: tuple[ServiceDefinition[Any], ...] = (FEEDBACK, SCORING, ALERTS, IMPROVEMENT)
    for definition in definitions:
        extra: dict[str, Any] = {"pseudonym_key": SecretStr("e2e-key")} if definition is FEEDBACK else {}
        settings = definition.settings_type(port=0, database=unique(definition.name), min_samples=3, **extra)
        services[definition.name] = await RunningService(create_app(definition, platform_settings, settings)).start()
    gateway = start_gateway(
        free_port(), {name: s.port for name, s in services.items()}, tmp_path_factory.mktemp("gateway")
    )
    try:
        yield Platform(f"http://127.0.0.1:{gateway.port}", services)
    finally:
        gateway.stop()
        for service in reversed(list(services.values())):
            await service.stop()
