"""Request and response schemas of the feedback service's REST API and its ingest topic."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.contract import Changes
from shared.events import (
    CES_SCALE,
    CSAT_SCALE,
    DIMENSION_SCALE,
    MEASURE_NAME_PATTERN,
    NPS_SCALE,
    SERVQUAL_SCALE,
    Audit,
    Complaint,
    ComplaintSeverity,
    Event,
    FeedbackKind,
    Polarity,
    QualityDimension,
    Ratings,
    ServqualDimension,
)
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT

UNIT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_BATCH = 1000
# Thousands of units in one transaction are fine on this stack (3,000 with their events: about 2 s); the cap
# keeps one request's transaction and its per-row error report within reason.
MAX_IMPORT = 20_000
Channel = Literal["survey", "app", "web", "call_centre", "kiosk", "social", "email", "sms", "in_branch", "other"]
MeasureName = Annotated[str, StringConstraints(pattern=MEASURE_NAME_PATTERN)]


class Strict(BaseModel):
    """Unknown fields are rejected, so a misspelt field never passes silently."""

    model_config = ConfigDict(extra="forbid")


class ServqualItemIn(Strict):
    """Perception and expectation of one SERVQUAL dimension as posted, both on 1–7."""

    perception: int = Field(ge=SERVQUAL_SCALE[0], le=SERVQUAL_SCALE[1])
    expectation: int = Field(ge=SERVQUAL_SCALE[0], le=SERVQUAL_SCALE[1])


class RatingsIn(Strict):
    """Ratings as posted: an unknown rating is an error, not ignored (``shared.events.Ratings`` ignores it)."""

    csat: int | None = Field(default=None, ge=CSAT_SCALE[0], le=CSAT_SCALE[1])
    nps: int | None = Field(default=None, ge=NPS_SCALE[0], le=NPS_SCALE[1])
    ces: int | None = Field(default=None, ge=CES_SCALE[0], le=CES_SCALE[1])
    servqual: dict[ServqualDimension, ServqualItemIn] = Field(default_factory=dict)
    dimensions: dict[QualityDimension, Annotated[int, Field(ge=DIMENSION_SCALE[0], le=DIMENSION_SCALE[1])]] = Field(
        default_factory=dict
    )
    measures: dict[MeasureName, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="Operational measures, e.g. waiting_time_seconds, handling_time_seconds, first_contact_resolution",
    )

    @property
    def has_scores(self) -> bool:
        """Whether any customer rating (not a measure) is present."""
        return any(v is not None for v in (self.csat, self.nps, self.ces)) or bool(self.servqual or self.dimensions)


class ComplaintIn(Strict):
    """A complaint (投诉) as posted."""

    category: str = Field(min_length=1, max_length=100)
    severity: ComplaintSeverity


class AuditItemIn(Strict):
    """One checklist item of a mystery-shopper visit as posted."""

    item: str = Field(min_length=1, max_length=200)
    score: float = Field(ge=0, allow_inf_nan=False)
    max_score: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _score_within_max(self) -> Self:
        if self.score > self.max_score:
            raise ValueError(f"score {self.score:g} is above max_score {self.max_score:g}")
        return self


class AuditIn(Strict):
    """A mystery-shopper audit (神秘顾客) as posted: the visit date and its scored checklist."""

    visit_date: date
    checklist: list[AuditItemIn] = Field(min_length=1, max_length=500)


class UnitCreate(Strict):
    """A new unit of the organisation's tree."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "b-001", "name": "北京一分行", "kind": "branch", "parent_id": "north", "external_code": "BJ001"}
            ]
        }
    )

    id: str = Field(pattern=UNIT_ID_PATTERN, description="Unique within the organisation; a segment of the path")
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="branch", min_length=1, max_length=40)
    parent_id: str | None = Field(default=None, description="None for a root unit")
    external_code: str | None = Field(default=None, max_length=100)


class UnitUpdate(Changes):
    """Changes to a unit: only the fields sent change; ``parent_id`` moves it with its whole subtree."""

    removable = frozenset({"parent_id", "external_code"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: str | None = Field(default=None, min_length=1, max_length=40)
    parent_id: str | None = Field(default=None, description="The new parent; null makes the unit a root")
    external_code: str | None = Field(default=None, max_length=100, description="null removes the code")


class UnitImport(Strict):
    """A tree to add at once, as JSON: each row is a UnitCreate body, parents in any order."""

    units: list[Any] = Field(min_length=1, description="Each row is a UnitCreate body")


class ImportResult(BaseModel):
    """What an import added."""

    created: int


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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "b-001",
                    "channel": "kiosk",
                    "ratings": {"csat": 4, "nps": 9},
                    "comment": "排队时间有点长，但柜员很耐心",
                    "source_id": "kiosk-7-000123",
                    "customer_ref": "cust-42",
                },
                {
                    "unit_code": "BJ001",
                    "channel": "call_centre",
                    "kind": "complaint",
                    "comment": "柜员态度很差",
                    "complaint": {"category": "staff attitude", "severity": "serious"},
                },
            ]
        }
    )

    unit_id: str | None = Field(default=None, description="The unit's id")
    unit_code: str | None = Field(default=None, description="Or the unit's external code")
    channel: Channel
    kind: FeedbackKind | None = Field(default=None, description="Inferred from what the feedback carries if omitted")
    occurred_at: datetime | None = Field(default=None, description="When it happened; defaults to now")
    ratings: RatingsIn = Field(default_factory=RatingsIn)
    complaint: ComplaintIn | None = None
    audit: AuditIn | None = None
    comment: str | None = None
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    source_id: str | None = Field(default=None, max_length=200, description="The integration's own id")
    customer_ref: str | None = Field(default=None, max_length=200, description="Pseudonymised on arrival")
    metadata: dict[str, Any] = Field(default_factory=dict)


class FeedbackIngestIn(FeedbackCreate):
    """A feedback produced onto ``feedback.ingest``: the REST body; the record's token says whose it is."""

    org: str | None = Field(
        default=None, min_length=1, max_length=100, description="Optional; if given, the token's organisation"
    )


class FeedbackIngested(Event):
    """A raw feedback from an integration on ``feedback.ingest``, before its unit is resolved.

    ``org``, ``submitted_by`` (the token's subject) and ``scopes`` are the producer's, from the token its
    record carried.
    """

    topic: ClassVar[str] = "feedback.ingest"
    submitted_by: str
    scopes: tuple[str, ...]
    feedback: FeedbackCreate


class FeedbackRead(BaseModel):
    """A feedback as stored."""

    id: str
    unit_id: str
    unit_path: str
    channel: str
    kind: FeedbackKind
    occurred_at: datetime
    received_at: datetime
    ratings: Ratings
    complaint: Complaint | None = None
    audit: Audit | None = None
    comment: str | None
    comment_language: str | None = None
    sentiment: float | None = None
    polarity: str | None = None
    keywords: list[str] = []
    tags: list[str]
    source_id: str | None
    customer_ref: str | None
    metadata: dict[str, Any]


class FeedbackFilter(Strict):
    """Which feedback to read: every filter given must hold. A time without offset is taken as UTC."""

    model_config = ConfigDict(populate_by_name=True)

    unit_id: str | None = Field(default=None, description="The unit and everything below it")
    from_: datetime | None = Field(default=None, alias="from", description="occurred_at at or after")
    to: datetime | None = Field(default=None, description="occurred_at before")
    channel: list[Channel] = Field(default_factory=list, description="Any of these channels (repeatable)")
    kind: FeedbackKind | None = None
    csat_min: int | None = Field(default=None, ge=1, le=5)
    csat_max: int | None = Field(default=None, ge=1, le=5)
    nps_min: int | None = Field(default=None, ge=0, le=10)
    nps_max: int | None = Field(default=None, ge=0, le=10)
    sentiment: Polarity | None = Field(default=None, description="The comment's polarity")
    tag: list[str] = Field(default_factory=list, description="All of these tags (repeatable)")
    has_comment: bool | None = None

    @model_validator(mode="after")
    def _ranges_in_order(self) -> Self:
        for low, high in (("from_", "to"), ("csat_min", "csat_max"), ("nps_min", "nps_max")):
            start, end = getattr(self, low), getattr(self, high)
            if start is not None and end is not None and start > end:
                raise ValueError(f"{low.rstrip('_')} is after {high}")
        return self


class FeedbackQuery(FeedbackFilter):
    """The filters of the feedback list and its page."""

    cursor: str | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class CountsQuery(FeedbackFilter):
    """The filters of the feedback counts and what to count by."""

    group_by: Literal["unit", "channel"]


class Count(BaseModel):
    """How many feedback one unit (by its direct unit) or one channel has."""

    key: str
    unit_path: str | None = None
    count: int


class FeedbackCounts(BaseModel):
    """Counts of the matching feedback that occurred in [since, until) per unit or channel, most first."""

    group_by: Literal["unit", "channel"]
    since: datetime
    until: datetime | None = Field(description="None: up to now")
    total: int
    counts: list[Count]


class BatchCreate(Strict):
    """Up to 1,000 feedback; each item is validated on its own so one bad item never loses the others."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"unit_id": "b-001", "channel": "app", "ratings": {"csat": 5}, "source_id": "app-1"},
                        {"unit_id": "b-002", "channel": "web", "ratings": {"ces": 2}, "source_id": "web-9"},
                    ]
                }
            ]
        }
    )

    items: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_BATCH, description="Each item is a FeedbackCreate body"
    )


class ItemResult(BaseModel):
    """What became of one batch item."""

    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = Field(default=None, description="None if rejected, or a duplicate of a feedback since erased")
    errors: list[dict[str, Any]] = []


class BatchResult(BaseModel):
    """Per-item results of a batch and their counts."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[ItemResult]


class ErasureCreate(Strict):
    """A request to erase every feedback of one customer."""

    customer_ref: str = Field(min_length=1, max_length=200, description="The raw reference; pseudonymised to match")


class ErasureRead(BaseModel):
    """An erasure request as recorded."""

    id: str
    requested_at: datetime
    requested_by: str
    erased: int
