"""The scoring service's REST API: scores, series, rankings, comparisons (JSON or CSV) and the index system."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.scoring import service
from services.scoring.aggregation import PERIODS, READ_PERIODS
from services.scoring.dependencies import RuntimeDep
from services.scoring.index_system import AhpInconsistentError
from services.scoring.models import (
    ComparisonRead,
    IndexSystemRead,
    IndexSystemUpdate,
    RankingRead,
    ScoreRead,
    SeriesRead,
)
from shared.auth import CurrentPrincipal
from shared.contract import Moment
from shared.events import IndicatorScore
from shared.problems import Problem, validation_errors
from shared.storage import Document

router = APIRouter(prefix="/api/v1")
Period = Annotated[str, Query(pattern=f"^({'|'.join(READ_PERIODS)})$")]
SeriesPeriod = Annotated[str, Query(pattern=f"^({'|'.join(p for p in PERIODS if p != 'all')})$")]
Indicator = Annotated[str, Query(description="An indicator id of the index system, or composite")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="csv, or send Accept: text/csv")]
FIGURE_COLUMNS = list(IndicatorScore.model_fields)


async def visible_unit(unit_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> Document:
    """FastAPI dependency: the path's unit within the caller's organisation and scopes, or 404."""
    return await service.get_unit(runtime, principal=principal, unit_id=unit_id)


VisibleUnit = Annotated[Document, Depends(visible_unit)]


@router.get("/index-systems/current", response_model=IndexSystemRead, tags=["index-systems"])
async def current_index_system(runtime: RuntimeDep, principal: CurrentPrincipal) -> IndexSystemRead:
    """The index system the organisation's scores are computed with."""
    return await service.get_index_system_read(runtime, org=principal.org)


@router.put("/index-systems/current", response_model=IndexSystemRead, tags=["index-systems"])
async def change_index_system(
    index_system_in: IndexSystemUpdate, runtime: RuntimeDep, principal: CurrentPrincipal
) -> IndexSystemRead:
    """Set a new version of the index system (weights direct or by AHP, CR < 0.1) and the minimum sample size."""
    try:
        return await service.change_index_system(runtime, principal=principal, update=index_system_in)
    except AhpInconsistentError as error:
        raise Problem(422, "Inconsistent AHP judgements", str(error)) from error
    except ValidationError as error:
        raise Problem(
            422, "Invalid index system", "the index system does not validate", errors=validation_errors(error.errors())
        ) from error
    except ValueError as error:
        raise Problem(422, "Invalid index system", str(error)) from error


@router.get("/scores/{unit_id}", response_model=ScoreRead, tags=["scores"])
async def current_score(
    request: Request, unit: VisibleUnit, runtime: RuntimeDep, period: Period = "all", format: Format = None
) -> ScoreRead | Response:
    """A unit's latest figures for a period or rolling window: composite, every indicator, samples, intervals."""
    read = await service.get_score(runtime, unit=unit, period=period)
    if not _wants_csv(request, format):
        return read
    rows = [{"indicator": name, **figure.model_dump()} for name, figure in read.indicators.items()]
    return _csv(rows, ["indicator", *FIGURE_COLUMNS], f"score-{read.unit_id}-{period}.csv")


@router.get("/scores/{unit_id}/series", response_model=SeriesRead, tags=["scores"])
async def score_series(
    request: Request,
    unit: VisibleUnit,
    runtime: RuntimeDep,
    indicator: Indicator = "composite",
    period: SeriesPeriod = "day",
    start: Moment | None = None,
    end: Moment | None = None,
    format: Format = None,
) -> SeriesRead | Response:
    """An indicator of a unit per hour, day, week or month from start to end (UTC), oldest first."""
    read = await service.get_series(
        runtime,
        unit=unit,
        indicator=indicator,
        period=period,
        start=start,
        end=end,
    )
    if not _wants_csv(request, format):
        return read
    rows = [point.model_dump() for point in read.points]
    return _csv(rows, ["period_start", *FIGURE_COLUMNS], f"series-{read.unit_id}-{indicator}-{period}.csv")


@router.get("/scores/{unit_id}/children", response_model=RankingRead, tags=["scores"])
async def children_ranking(
    request: Request,
    unit: VisibleUnit,
    runtime: RuntimeDep,
    indicator: Indicator = "composite",
    period: Period = "all",
    at: Annotated[Moment | None, Query(description="A moment in the period; now by default")] = None,
    format: Format = None,
) -> RankingRead | Response:
    """A unit's children ranked on an indicator, best first."""
    read = await service.get_ranking(
        runtime,
        unit=unit,
        indicator=indicator,
        period=period,
        at=at,
    )
    if not _wants_csv(request, format):
        return read
    rows = [child.model_dump() for child in read.children]
    columns = ["rank", "unit_id", "unit_path", "name", *FIGURE_COLUMNS]
    return _csv(rows, columns, f"children-{read.unit_id}-{indicator}-{period}.csv")


@router.get("/scores/{unit_id}/compare", response_model=ComparisonRead, tags=["scores"])
async def compare_periods(
    request: Request,
    unit: VisibleUnit,
    runtime: RuntimeDep,
    a: Annotated[Moment, Query(description="A moment in the first period, e.g. 2026-11-01")],
    b: Annotated[Moment, Query(description="A moment in the second period, e.g. 2026-11-02")],
    period: Period = "day",
    format: Format = None,
) -> ComparisonRead | Response:
    """Every indicator of a unit in two periods, and how much each moved from a to b."""
    read = await service.get_comparison(runtime, unit=unit, period=period, a=a, b=b)
    if not _wants_csv(request, format):
        return read
    rows = [
        {
            "indicator": change.indicator,
            **_prefixed("a_", change.a),
            **_prefixed("b_", change.b),
            "difference": change.difference,
        }
        for change in read.indicators
    ]
    columns = ["indicator", *(f"a_{c}" for c in FIGURE_COLUMNS), *(f"b_{c}" for c in FIGURE_COLUMNS), "difference"]
    return _csv(rows, columns, f"compare-{read.unit_id}-{period}.csv")


def _wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _prefixed(prefix: str, figure: IndicatorScore | None) -> dict[str, Any]:
    values = figure.model_dump() if figure else dict.fromkeys(FIGURE_COLUMNS)
    return {f"{prefix}{name}": value for name, value in values.items()}


def _csv(rows: Sequence[Mapping[str, Any]], columns: list[str], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
