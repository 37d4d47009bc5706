"""The improvement service in this process, and feeding it events through the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.improvement import repository
from services.improvement.main import DEFINITION
from services.improvement.settings import ImprovementSettings
from shared.app import create_app
from shared.events import Envelope, Event, IndicatorScore, ScoreUpdated, ThresholdBreached, UnitChanged
from shared.storage import Database
from tests.harness import RunningService, Stack, eventually, staged_events, unique


@pytest.fixture(scope="module")
async def improvement(stack: Stack) -> AsyncIterator[RunningService]:
    """One improvement service for the module, with its own database and consumer group."""
    service = await RunningService(create_app(DEFINITION, stack.platform(), settings())).start()
    yield service
    await service.stop()


def settings(database: str | None = None) -> ImprovementSettings:
    """The service's settings for a test: its own database unless one is shared."""
    return ImprovementSettings(port=0, database=database or unique("improvement"))


def db_of(service: RunningService) -> Database:
    """The service's database."""
    db: Database = service.app.state.runtime.db
    return db


def envelope(event: Event) -> Envelope[Any]:
    """An event as a test producer sends it."""
    return Envelope(data=event, source="/tests")


def unit_created(org: str, path: str) -> Envelope[UnitChanged]:
    """unit.changed creating the unit at ``path`` (its id is the path's last part)."""
    parent, _, unit_id = path.rpartition("/")
    return envelope(
        UnitChanged(
            org=org,
            unit_id=unit_id,
            unit_path=path,
            change="created",
            name=unit_id.upper(),
            kind="unit",
            parent_id=parent.rpartition("/")[2] or None,
        )
    )


def breach(
    org: str,
    path: str,
    *,
    alert_id: str | None = None,
    group_id: str | None = None,
    rule_id: str = "rule-csat",
    value: float = 40,
    threshold: float = 60,
    clear_bound: float | None = 65,
    level: str = "orange",
    period: str = "day",
) -> Envelope[ThresholdBreached]:
    """threshold.breached for a CSAT floor on the unit at ``path``."""
    alert = alert_id or unique("alert")
    return envelope(
        ThresholdBreached.model_validate(
            {
                "org": org,
                "unit_id": path.rpartition("/")[2],
                "unit_path": path,
                "alert_id": alert,
                "group_id": group_id or f"group-{alert}",
                "rule_id": rule_id,
                "rule_kind": "threshold",
                "rule_name": "CSAT floor",
                "fingerprint": f"fp-{alert}",
                "indicator": "csat",
                "value": value,
                "threshold": threshold,
                "clear_bound": clear_bound,
                "comparison": "below",
                "level": level,
                "sample_size": 10,
                "period": period,
            }
        )
    )


def score(
    org: str, path: str, period_start: datetime, value: float, *, samples: int = 10, period: str = "day"
) -> Envelope[ScoreUpdated]:
    """score.updated with the unit's CSAT for one period."""
    return envelope(
        ScoreUpdated(
            org=org,
            unit_id=path.rpartition("/")[2],
            unit_path=path,
            period=period,
            period_start=period_start.astimezone(UTC),
            sample_size=samples,
            indicators={
                "csat": IndicatorScore(value=value, score=value, sample_size=samples, insufficient=samples < 5)
            },
            min_samples=5,
        )
    )


def client(
    stack: Stack, service: RunningService, org: str, *roles: str, scopes: Sequence[str] = ("*",)
) -> httpx.AsyncClient:
    """An HTTP client of the service with a token of the organisation, roles and scopes."""
    return httpx.AsyncClient(base_url=service.url, headers=stack.headers(org, *roles, scopes=scopes), timeout=10)


async def actions_of(db: Database, org: str) -> list[dict[str, Any]]:
    """Every action of the organisation, oldest first."""
    return await db[repository.ACTIONS].find({"org": org}).sort("_id", 1).to_list(None)


async def events_of(db: Database, topic: str, org: str) -> list[dict[str, Any]]:
    """The events the service staged on ``topic`` for the organisation, oldest first (their values)."""
    return [e["value"] for e in await staged_events(db, topic) if e["value"]["org"] == org]


async def action_where(db: Database, org: str, check: Any, timeout: float = 30) -> dict[str, Any]:
    """Wait for the organisation's first action that passes ``check``."""

    async def found() -> dict[str, Any] | None:
        return next((a for a in await actions_of(db, org) if check(a)), None)

    result: dict[str, Any] = await eventually(found, timeout=timeout)
    return result
