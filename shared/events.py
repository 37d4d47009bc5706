"""The event contract: payload models, topics and the CloudEvents envelope (Kafka binary mode)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TYPE_PREFIX = "qualityloop."
WHOLE_ORGANISATION = "*"


def in_subtree(unit_path: str, scope: str) -> bool:
    """Whether a unit path lies in the subtree rooted at ``scope`` (``*``: the whole organisation)."""
    return scope == WHOLE_ORGANISATION or unit_path == scope or unit_path.startswith(f"{scope}/")


ServqualDimension = Literal["tangibles", "reliability", "responsiveness", "assurance", "empathy"]
QualityDimension = Literal["effect", "speed", "attitude", "reliability", "cost", "innovation"]
UnitChange = Literal["created", "renamed", "moved", "deactivated"]
FeedbackKind = Literal["rating", "comment", "complaint", "audit", "measure"]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Sentiment = Annotated[float | None, Field(ge=0, le=1, description="Comment sentiment, 0 negative to 1 positive")]


class ServqualItem(BaseModel):
    """Perception and expectation of one SERVQUAL dimension, both on 1–7."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    perception: int = Field(ge=1, le=7)
    expectation: int = Field(ge=1, le=7)


class Event(BaseModel):
    """A fact one service tells the others; subclasses name their topic and CloudEvents type."""

    # Consumers ignore fields they do not know, so producers may add fields without a new version.
    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: ClassVar[str]
    org: str
    unit_id: str
    unit_path: str

    @classmethod
    def type_name(cls) -> str:
        """The CloudEvents type, e.g. ``qualityloop.feedback.received.v1``."""
        return f"{TYPE_PREFIX}{cls.topic}.v1"

    def key(self) -> str:
        """The Kafka key: one unit's events stay in order on one partition."""
        return f"{self.org}/{self.unit_id}"


class Ratings(BaseModel):
    """The ratings a feedback carries; every field is optional."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    ces: int | None = Field(default=None, ge=1, le=7)
    servqual: dict[ServqualDimension, ServqualItem] = Field(
        default_factory=dict, description="Perception and expectation (1–7) per SERVQUAL dimension"
    )
    dimensions: dict[QualityDimension, Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=dict, description="Ratings (1–5) of the six service-quality dimensions"
    )
    measures: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")], NonNegative] = Field(
        default_factory=dict,
        description="Operational measures, e.g. waiting_time_seconds, handling_time_seconds, first_contact_resolution",
    )


class Complaint(BaseModel):
    """A complaint (投诉): its category and severity; a severe complaint is itself a breach."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    category: str = Field(min_length=1, max_length=100)
    severity: Literal["minor", "moderate", "serious", "critical"]


class AuditItem(BaseModel):
    """One checklist item of a mystery-shopper visit and its score."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    item: str = Field(min_length=1, max_length=200)
    score: float = Field(ge=0)
    max_score: float = Field(gt=0)


class Audit(BaseModel):
    """A mystery-shopper audit (神秘顾客): a checklist scored on one visit."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    visit_date: date
    checklist: list[AuditItem] = Field(min_length=1, max_length=500)

    @property
    def percent(self) -> float:
        """The visit's score as a percentage of the maximum."""
        return 100 * sum(i.score for i in self.checklist) / sum(i.max_score for i in self.checklist)


class UnitChanged(Event):
    """A unit of an organisation's tree was created, renamed, moved or deactivated."""

    topic: ClassVar[str] = "unit.changed"
    change: UnitChange
    name: str
    kind: str
    parent_id: str | None
    previous_path: str | None = None
    active: bool = True


class FeedbackReceived(Event):
    """A customer's feedback was accepted and stored."""

    topic: ClassVar[str] = "feedback.received"
    feedback_id: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    kind: FeedbackKind = "rating"
    ratings: Ratings = Ratings()
    complaint: Complaint | None = None
    audit: Audit | None = None
    tags: list[str] = []
    comment_language: str | None = None
    sentiment: Sentiment = None
    polarity: Literal["negative", "neutral", "positive"] | None = None
    keywords: list[str] = []


class FeedbackErased(Event):
    """A feedback was erased; consumers take its contribution back out."""

    topic: ClassVar[str] = "feedback.erased"
    feedback_id: str
    occurred_at: datetime
    kind: FeedbackKind = "rating"
    ratings: Ratings = Ratings()
    complaint: Complaint | None = None
    audit: Audit | None = None
    sentiment: Sentiment = None


class IndicatorScore(BaseModel):
    """One indicator's figure with its sample and 95% confidence interval."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    value: float | None = Field(description="In the metric's own unit (CSAT share in %, NPS −100..100, …)")
    score: float | None = Field(default=None, description="Normalised to 0–100, 100 best")
    ci_low: float | None = None
    ci_high: float | None = None
    sample_size: int
    insufficient: bool


class ScoreUpdated(Event):
    """A unit's score for a period changed."""

    topic: ClassVar[str] = "score.updated"
    period: str
    period_start: datetime | None = None
    sample_size: int
    indicators: dict[str, IndicatorScore]
    composite: float | None = None
    index_version: int = 1
    min_samples: int = 1


class ThresholdBreached(Event):
    """A rule's condition started to hold for a unit: an alert was raised."""

    topic: ClassVar[str] = "threshold.breached"
    alert_id: str
    rule_id: str
    fingerprint: str
    indicator: str
    value: float
    threshold: float
    level: Literal["blue", "yellow", "orange", "red"]
    sample_size: int
    period: str


class AlertResolved(Event):
    """An alert's condition cleared."""

    topic: ClassVar[str] = "alert.resolved"
    alert_id: str
    rule_id: str
    fingerprint: str
    indicator: str
    value: float


class ActionAssigned(Event):
    """An improvement action was assigned to the person responsible."""

    topic: ClassVar[str] = "action.assigned"
    action_id: str
    alert_id: str | None
    assignee: str
    title: str
    due_at: datetime
    level: str


class ActionUpdated(Event):
    """An improvement action changed status."""

    topic: ClassVar[str] = "action.updated"
    action_id: str
    status: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type_name(): cls
    for cls in (
        UnitChanged,
        FeedbackReceived,
        FeedbackErased,
        ScoreUpdated,
        ThresholdBreached,
        AlertResolved,
        ActionAssigned,
        ActionUpdated,
    )
}
TOPICS: tuple[str, ...] = (
    "feedback.ingest",
    *sorted({cls.topic for cls in EVENT_TYPES.values()}),
)


def dead_letter_topic(topic: str) -> str:
    """The topic where a consumed topic's unprocessable messages go."""
    return f"{topic}.dlq"


class UnparseableEvent(ValueError):
    """A record that is not a valid event of a known type; it goes to the dead-letter topic."""


@dataclass(frozen=True)
class Envelope:
    """An event with its CloudEvents attributes and the trace context it travels with."""

    data: Event
    source: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    trace_carrier: dict[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """The CloudEvents type of the payload."""
        return self.data.type_name()

    @property
    def topic(self) -> str:
        """The topic the event is published on."""
        return self.data.topic

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka record headers in CloudEvents binary content mode, plus W3C trace context."""
        attributes = {
            "ce_specversion": SPEC_VERSION,
            "ce_id": self.id,
            "ce_source": self.source,
            "ce_type": self.type,
            "ce_time": self.time.isoformat(),
            "ce_subject": self.data.unit_path,
            "content-type": CONTENT_TYPE,
            **self.trace_carrier,
        }
        return [(name, value.encode()) for name, value in attributes.items()]

    def value(self) -> bytes:
        """The record value: the payload's JSON."""
        return self.data.model_dump_json().encode()


TRACE_HEADERS = ("traceparent", "tracestate")


def decode_headers(headers: Any) -> dict[str, str]:
    """Record headers as a dict of strings (undecodable values are dropped)."""
    decoded: dict[str, str] = {}
    for name, value in headers or ():
        try:
            decoded[name] = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            continue
    return decoded


def parse_envelope(headers: dict[str, str], value: bytes | None) -> Envelope:
    """Read a binary-mode CloudEvent; raise UnparseableEvent saying why it cannot be read."""
    event_type = headers.get("ce_type")
    if event_type is None:
        raise UnparseableEvent("missing header ce_type")
    if not headers.get("ce_id"):
        raise UnparseableEvent("missing header ce_id")
    model = EVENT_TYPES.get(event_type)
    if model is None:
        raise UnparseableEvent(f"unknown event type {event_type!r}")
    try:
        payload = json.loads(value or b"")
        data = model.model_validate(payload)
    except (ValueError, ValidationError) as error:
        raise UnparseableEvent(f"invalid {event_type} payload: {_first_line(error)}") from error
    try:
        time = datetime.fromisoformat(headers["ce_time"]) if "ce_time" in headers else datetime.now(UTC)
    except ValueError as error:
        raise UnparseableEvent(f"invalid ce_time {headers['ce_time']!r}") from error
    return Envelope(
        data=data,
        source=headers.get("ce_source", "unknown"),
        id=headers["ce_id"],
        time=time,
        trace_carrier={name: headers[name] for name in TRACE_HEADERS if name in headers},
    )


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:500]
