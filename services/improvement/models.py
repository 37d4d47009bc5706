"""Request and response schemas of the improvement service's REST API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ResponsibilityCreate(BaseModel):
    """An entry of the responsibility matrix: who answers for a unit subtree."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(default="*", description="Unit path whose subtree this covers; * for all")
    indicator: str | None = Field(default=None, description="Only breaches of this indicator; None for all")
    responsible: str = Field(min_length=1, max_length=200)
    accountable: str | None = Field(default=None, max_length=200)


class ResponsibilityRead(ResponsibilityCreate):
    """A stored responsibility."""

    id: str
    created_at: datetime


class ActionRead(BaseModel):
    """An improvement action."""

    id: str
    alert_id: str | None
    unit_id: str
    unit_path: str
    title: str
    assignee: str | None
    accountable: str | None
    status: str
    level: str
    indicator: str
    due_at: datetime
    created_at: datetime
