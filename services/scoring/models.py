"""Response schemas of the scoring service's REST API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.scoring.index_system import Consistency, IndexSystem, IndexSystemDraft
from shared.events import IndicatorScore


class ScoreRead(BaseModel):
    """A unit's figures for one period: composite, every indicator, sample size and intervals."""

    unit_id: str
    unit_path: str
    period: str
    period_start: datetime
    sample_size: int
    composite: float | None
    index_version: int
    indicators: dict[str, IndicatorScore]


class SeriesPoint(IndicatorScore):
    """One period's figure of an indicator."""

    period_start: datetime


class SeriesRead(BaseModel):
    """An indicator of a unit over time, oldest period first; periods without feedback are left out."""

    unit_id: str
    unit_path: str
    indicator: str
    period: str
    index_version: int
    points: list[SeriesPoint]


class ChildRank(IndicatorScore):
    """One child unit's place on an indicator."""

    rank: int
    unit_id: str
    unit_path: str
    name: str


class RankingRead(BaseModel):
    """A unit's children ranked on an indicator, best first; children without a score last."""

    unit_id: str
    unit_path: str
    indicator: str
    period: str
    period_start: datetime
    index_version: int
    children: list[ChildRank]


class IndicatorChange(BaseModel):
    """One indicator in two periods, and how much its value moved from a to b."""

    indicator: str
    a: IndicatorScore | None
    b: IndicatorScore | None
    difference: float | None


class ComparisonRead(BaseModel):
    """A unit's figures in two periods side by side."""

    unit_id: str
    unit_path: str
    period: str
    a_start: datetime
    b_start: datetime
    index_version: int
    indicators: list[IndicatorChange]


class IndexSystemUpdate(IndexSystemDraft):
    """A new index system version as submitted, and optionally the organisation's minimum sample size."""

    min_samples: int | None = Field(
        default=None, ge=1, description="Below this, a figure is flagged and raises no alert; omitted: unchanged"
    )


class IndexSystemRead(BaseModel):
    """An organisation's current index system, with the AHP consistency of the groups weighted by AHP."""

    index_system: IndexSystem
    min_samples: int
    consistency: list[Consistency]
    changed_at: datetime | None
    changed_by: str | None
