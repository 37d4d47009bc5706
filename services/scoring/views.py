"""The scoring service's REST API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.scoring import repository
from services.scoring.aggregation import PERIODS, score
from services.scoring.index_system import IndexSystem, default_index_system
from services.scoring.settings import ScoringSettings
from services.scoring.statistics import MetricStats
from shared.auth import CurrentPrincipal
from shared.problems import NotFound
from shared.service import RuntimeDep

router = APIRouter(prefix="/api/v1")
Period = Annotated[str, Query(pattern=f"^({'|'.join(PERIODS)})$")]


@router.get("/index-systems/current", response_model=IndexSystem, tags=["index-systems"])
async def current_index_system(principal: CurrentPrincipal) -> IndexSystem:
    """The index system scores are computed with."""
    return default_index_system()


@router.get("/scores/{unit_id}", tags=["scores"])
async def current_score(
    unit_id: str, runtime: RuntimeDep, principal: CurrentPrincipal, period: Period = "all"
) -> dict[str, Any]:
    """A unit's latest figures for a period: composite, every indicator, sample size and intervals."""
    unit = await runtime.db[repository.UNITS].find_one({"org": principal.org, "id": unit_id})
    if unit is None or not principal.can_see(unit["path"]):
        raise NotFound("unit", unit_id)
    document = await runtime.db[repository.AGGREGATES].find_one(
        {"org": principal.org, "unit_path": unit["path"], "period": period}, sort=[("period_start", -1)]
    )
    if document is None:
        raise NotFound("score for unit", unit_id)
    settings: ScoringSettings = runtime.settings  # type: ignore[assignment]
    stats = MetricStats.from_document(document.get("stats", {}))
    result, indicators = score(default_index_system(), stats, settings.min_samples)
    return {
        "unit_id": unit_id,
        "unit_path": unit["path"],
        "period": period,
        "period_start": document["period_start"],
        "sample_size": stats.n,
        "composite": result.score,
        "index_version": result.system_version,
        "indicators": {name: figure.model_dump() for name, figure in indicators.items()},
    }
