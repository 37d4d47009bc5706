"""Request and response schemas of the feedback service's REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Ratings

UNIT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Channel = Literal["survey", "app", "web", "call_centre", "kiosk", "social", "email", "sms", "in_branch", "other"]


class Strict(BaseModel):
    """Unknown fields are rejected, so a misspelt field never passes silently."""

    model_config = ConfigDict(extra="forbid")


class RatingsIn(Ratings):
    """Ratings as posted: an unknown rating is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitCreate(Strict):
    """A new unit of the organisation's tree."""

    id: str = Field(pattern=UNIT_ID_PATTERN, description="Unique within the organisation; a segment of the path")
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="branch", min_length=1, max_length=40)
    parent_id: str | None = Field(default=None, description="None for a root unit")
    external_code: str | None = Field(default=None, max_length=100)


class UnitRead(BaseModel):
    """A unit as stored."""

    id: str
    name: str
    kind: str
    parent_id: str | None
    path: str
    external_code: str | None
    active: bool
    created_at: datetime


class FeedbackCreate(Strict):
    """A customer's feedback about one unit."""

    unit_id: str | None = Field(default=None, description="The unit's id")
    unit_code: str | None = Field(default=None, description="Or the unit's external code")
    channel: Channel
    occurred_at: datetime | None = Field(default=None, description="When it happened; defaults to now")
    ratings: RatingsIn = RatingsIn()
    comment: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    source_id: str | None = Field(default=None, max_length=200, description="The integration's own id")
    customer_ref: str | None = Field(default=None, max_length=200, description="Pseudonymised on arrival")
    metadata: dict[str, Any] = Field(default_factory=dict)


class FeedbackRead(BaseModel):
    """A feedback as stored."""

    id: str
    unit_id: str
    unit_path: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    ratings: Ratings
    comment: str | None
    tags: list[str]
    source_id: str | None
    customer_ref: str | None
    metadata: dict[str, Any]
