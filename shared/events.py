"""The event contract: payload models, topics and the CloudEvents envelope (Kafka binary mode)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.tree import WHOLE_ORGANISATION

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TYPE_PREFIX = "qualityloop."
ServqualDimension = Literal["tangibles", "reliability", "responsiveness", "assurance", "empathy"]
QualityDimension = Literal["effect", "speed", "attitude", "reliability", "cost", "innovation"]
UnitChange = Literal["created", "renamed", "moved", "deactivated"]
FeedbackKind = Literal["rating", "comment", "complaint", "audit", "measure"]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
SENTIMENT_SCALE = (0.0, 1.0)
Sentiment = Annotated[
    float | None,
    Field(ge=SENTIMENT_SCALE[0], le=SENTIMENT_SCALE[1], description="Comment sentiment, 0 negative to 1 positive"),
]
Polarity = Literal["negative", "neutral", "positive"]
ComplaintSeverity = Literal["minor", "moderate", "serious", "critical"]
MEASURE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
# Rating scales (inclusive): the bounds of the fields below, and the scales scoring reads them on.
CSAT_SCALE = (1, 5)
NPS_SCALE = (0, 10)
CES_SCALE = (1, 7)
SERVQUAL_SCALE = (1, 7)
DIMENSION_SCALE = (1, 5)


class ServqualItem(BaseModel):
    """Perception and expectation of one SERVQUAL dimension, both on 1–7."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    perception: int = Field(ge=SERVQUAL_SCALE[0], le=SERVQUAL_SCALE[1])
    expectation: int = Field(ge=SERVQUAL_SCALE[0], le=SERVQUAL_SCALE[1])


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

    csat: int | None = Field(default=None, ge=CSAT_SCALE[0], le=CSAT_SCALE[1])
    nps: int | None = Field(default=None, ge=NPS_SCALE[0], le=NPS_SCALE[1])
    ces: int | None = Field(default=None, ge=CES_SCALE[0], le=CES_SCALE[1])
    servqual: dict[ServqualDimension, ServqualItem] = Field(
        default_factory=dict, description="Perception and expectation (1–7) per SERVQUAL dimension"
    )
    dimensions: dict[QualityDimension, Annotated[int, Field(ge=DIMENSION_SCALE[0], le=DIMENSION_SCALE[1])]] = Field(
        default_factory=dict, description="Ratings (1–5) of the six service-quality dimensions"
    )
    measures: dict[Annotated[str, StringConstraints(pattern=MEASURE_NAME_PATTERN)], NonNegative] = Field(
        default_factory=dict,
        description="Operational measures, e.g. waiting_time_seconds, handling_time_seconds, first_contact_resolution",
    )


class Complaint(BaseModel):
    """A complaint (投诉): its category and severity; a severe complaint is itself a breach."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    category: str = Field(min_length=1, max_length=100)
    severity: ComplaintSeverity


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


class FeedbackFacts(Event):
    """What every feedback event tells of its feedback: which one, when, its kind and what it counts."""

    feedback_id: str
    occurred_at: datetime
    kind: FeedbackKind = "rating"
    ratings: Ratings = Ratings()
    complaint: Complaint | None = None
    audit: Audit | None = None
    sentiment: Sentiment = None
    polarity: Polarity | None = None

    @classmethod
    def from_feedback(cls, feedback: Mapping[str, Any]) -> Self:
        """The event of a stored feedback: each field from the feedback's field of that name, the id from ``_id``.

        Only the event's own fields are taken, so the comment and the customer never leave the feedback
        service; a field the stored feedback lacks (an earlier version's) takes the event's default.
        """
        facts = {name: feedback[name] for name in cls.model_fields if name in feedback}
        return cls.model_validate({**facts, "feedback_id": feedback["_id"]})


class FeedbackReceived(FeedbackFacts):
    """A customer's feedback was accepted and stored."""

    topic: ClassVar[str] = "feedback.received"
    channel: str
    received_at: datetime
    tags: list[str] = []
    comment_language: str | None = None
    keywords: list[str] = []


class FeedbackErased(FeedbackFacts):
    """A feedback was erased; consumers take its contribution back out (the facts sent when it was received).

    Older producers leave ``polarity`` out; scoring then takes the polarity it counted the feedback with.
    """

    topic: ClassVar[str] = "feedback.erased"


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


class IndexSystemChanged(Event):
    """An organisation's evaluation index system was replaced by a new version (unit: the whole organisation)."""

    topic: ClassVar[str] = "index_system.changed"
    unit_id: str = WHOLE_ORGANISATION
    unit_path: str = WHOLE_ORGANISATION
    index_version: int
    indicators: list[str] = Field(description="The indicator ids in force, composite included")


class ThresholdBreached(Event):
    """A rule's condition started to hold for a unit: an alert was raised (one per rule and unit while it holds).

    Alerts of one rule on a unit and its descendants share a ``group_id``: one problem, one notification.
    """

    topic: ClassVar[str] = "threshold.breached"
    alert_id: str
    group_id: str
    rule_id: str
    rule_revision: int = 1
    rule_kind: str = "threshold"
    rule_name: str = ""
    fingerprint: str
    indicator: str
    value: float
    threshold: float = Field(description="The bound crossed")
    clear_bound: float | None = Field(default=None, description="Where the condition clears (recovery)")
    comparison: Literal["below", "above"] | None = None
    level: Literal["blue", "yellow", "orange", "red"]
    sample_size: int
    period: str


class AlertAcknowledged(Event):
    """Someone took an alert in hand (directly, or by starting its improvement action)."""

    topic: ClassVar[str] = "alert.acknowledged"
    alert_id: str
    group_id: str
    by: str
    comment: str = ""


class AlertEscalated(Event):
    """Nobody acknowledged an alert in time: a step of its level's escalation chain notified more people."""

    topic: ClassVar[str] = "alert.escalated"
    alert_id: str
    group_id: str
    step: int
    targets: list[str]


class AlertResolved(Event):
    """An alert's condition cleared (or someone resolved it)."""

    topic: ClassVar[str] = "alert.resolved"
    alert_id: str
    group_id: str
    rule_id: str
    fingerprint: str
    indicator: str
    value: float


class ActionAssigned(Event):
    """An improvement action got its responsible person: the first time, or reassigned to another."""

    topic: ClassVar[str] = "action.assigned"
    action_id: str
    alert_id: str | None
    group_id: str | None = None
    assignee: str
    accountable: str | None = None
    title: str
    due_at: datetime
    level: str
    indicator: str | None = None
    reassigned: bool = False


class ActionUpdated(Event):
    """An improvement action changed: its state (``previous_status`` differs from ``status``), or anything else.

    ``change`` says what: ``status``, or ``reminder``, ``overdue``, ``escalated_*``, ``commented``…, which
    keep ``previous_status`` equal to ``status``. ``status`` ``in_progress`` after another state means the
    responsible person took the action in hand: the alerts service acknowledges the alert.
    """

    topic: ClassVar[str] = "action.updated"
    action_id: str
    alert_id: str | None = None
    group_id: str | None = None
    status: str
    previous_status: str | None = None
    by: str = "system"
    change: str = "status"
    detail: str | None = None
    assignee: str | None = None
    escalated_to: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type_name(): cls
    for cls in (
        UnitChanged,
        FeedbackReceived,
        FeedbackErased,
        ScoreUpdated,
        IndexSystemChanged,
        ThresholdBreached,
        AlertAcknowledged,
        AlertEscalated,
        AlertResolved,
        ActionAssigned,
        ActionUpdated,
    )
}
# Topics that integrations produce onto: each record carries its producer's bearer token (header
# ``authorization``), which alone says whose data it is.
SIGNED_TOPICS = frozenset({"feedback.ingest"})
TOPICS: tuple[str, ...] = (
    *sorted(SIGNED_TOPICS),
    *sorted({cls.topic for cls in EVENT_TYPES.values()}),
)


def dead_letter_topic(topic: str) -> str:
    """The topic where a consumed topic's unprocessable messages go."""
    return f"{topic}.dlq"


class UnparseableEvent(ValueError):
    """A record that is not a valid event of a known type; it goes to the dead-letter topic.

    ``org`` names the organisation a signed record proved it came from (its producer's token), whose
    dead letter it then is; None when it proved none.
    """

    def __init__(self, reason: str, *, org: str | None = None) -> None:
        super().__init__(reason)
        self.org = org


E = TypeVar("E", bound=Event)
E_co = TypeVar("E_co", bound=Event, covariant=True)


@dataclass(frozen=True)
class Envelope(Generic[E_co]):
    """An event with its CloudEvents attributes and the trace context it travels with."""

    data: E_co
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


def parse_envelope(headers: dict[str, str], value: bytes | None) -> Envelope[Event]:
    """Read a binary-mode CloudEvent of any known type; raise UnparseableEvent saying why it cannot be read."""
    event_type = _required(headers, "ce_type")
    model = EVENT_TYPES.get(event_type)
    if model is None:
        raise UnparseableEvent(f"unknown event type {event_type!r}")
    return read_event(headers, value, model)


def read_event(headers: dict[str, str], value: bytes | None, event_class: type[E]) -> Envelope[E]:
    """Read a binary-mode CloudEvent that must be of ``event_class``; raise UnparseableEvent saying why not."""
    event_type = _required(headers, "ce_type")
    _required(headers, "ce_id")
    if event_type != event_class.type_name():
        raise UnparseableEvent(f"unexpected event type {event_type!r}; expected {event_class.type_name()!r}")
    try:
        payload = json.loads(value or b"")
        data = event_class.model_validate(payload)
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


def _required(headers: dict[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise UnparseableEvent(f"missing header {name}")
    return value


def _first_line(error: Exception) -> str:
    # The fields and what is wrong with them, never the values: a reason is kept with the dead letter and
    # logged, and the values may be personal data.
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        return "; ".join(f"{'.'.join(map(str, p['loc'])) or 'payload'}: {p['msg']}" for p in problems)[:500]
    return " ".join(str(error).split())[:500]
