"""Request and response schemas of the alerts service's REST API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.alerts.domain import Comparison, Level


class RuleCreate(BaseModel):
    """A threshold rule on one indicator of the units in a scope."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    indicator: str = Field(default="csat", description="Indicator key of score.updated, e.g. csat or composite")
    comparison: Comparison = "below"
    threshold: float
    min_samples: int = Field(default=5, ge=1)
    scope: str = Field(default="*", description="Unit path whose subtree the rule watches; * for all")
    period: str = Field(default="all", description="Score period the rule watches")
    level: Level = "yellow"
    clear_margin: float = Field(default=0.0, ge=0)


class RuleRead(RuleCreate):
    """A stored rule."""

    id: str
    created_at: datetime
    created_by: str


class AlertRead(BaseModel):
    """An alert raised by a rule on a unit."""

    id: str
    rule_id: str
    fingerprint: str
    unit_id: str
    unit_path: str
    indicator: str
    status: str
    level: Level
    value: float
    threshold: float
    sample_size: int
    started_at: datetime
    resolved_at: datetime | None
