"""Request and response schemas of the improvement service's REST API."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contract import Changes

Level = Literal["blue", "yellow", "orange", "red"]
LEVELS: tuple[Level, ...] = ("blue", "yellow", "orange", "red")
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=5000)]
RootCauseCategory = Literal["people", "machine", "material", "method", "environment", "measurement"]
Priority = Literal["low", "normal", "high", "urgent"]
Channel = Literal["email", "phone", "wecom", "dingtalk", "feishu", "slack", "webhook", "sms"]


class Strict(BaseModel):
    """Input that refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid")


class Person(Strict):
    """A person (or a role) the matrix names, with how to reach them per notification channel."""

    id: Name
    name: str | None = Field(default=None, max_length=200)
    contacts: dict[Channel, Annotated[str, Field(max_length=500)]] = Field(default_factory=dict)


class ResponsibilityBase(Strict):
    """An entry of the responsibility matrix: for a unit subtree, optionally narrowed, who is R, A, C, I."""

    scope: str = Field(default="*", min_length=1, max_length=1000, description="Unit path whose subtree it covers")
    indicators: list[Name] = Field(default_factory=list, max_length=100, description="Only these; empty: all")
    rule_kinds: list[Name] = Field(default_factory=list, max_length=20, description="Only these; empty: all")
    levels: list[Level] = Field(default_factory=list, description="Only these warning levels; empty: all")
    responsible: Name
    accountable: Name | None = None
    consulted: list[Name] = Field(default_factory=list, max_length=50)
    informed: list[Name] = Field(default_factory=list, max_length=50)
    people: list[Person] = Field(default_factory=list, max_length=100, description="Contact details")


class ResponsibilityCreate(ResponsibilityBase):
    """A new entry."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scope": "north/b-001",
                    "responsible": "li.wei",
                    "accountable": "wang.fang",
                    "informed": ["quality.duty"],
                    "people": [{"id": "li.wei", "name": "李伟", "contacts": {"email": "li.wei@example.com"}}],
                }
            ]
        }
    )


class ResponsibilityUpdate(Changes):
    """Changes to an entry; fields left out stay as they are, ``accountable`` may be removed (null)."""

    removable = frozenset({"accountable"})

    scope: str | None = Field(default=None, min_length=1, max_length=1000)
    indicators: list[Name] | None = None
    rule_kinds: list[Name] | None = None
    levels: list[Level] | None = None
    responsible: Name | None = None
    accountable: Name | None = None
    consulted: list[Name] | None = None
    informed: list[Name] | None = None
    people: list[Person] | None = None


class ResponsibilityRead(ResponsibilityBase):
    """A stored entry."""

    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: datetime
    updated_at: datetime | None = None


class OwnerRead(BaseModel):
    """Who owns a breach, the entry that says so, and why."""

    unit_id: str
    unit_path: str
    indicator: str | None
    level: str | None
    rule_kind: str | None
    responsible: str | None
    accountable: str | None
    consulted: list[str]
    informed: list[str]
    entry_id: str | None
    default_owner: bool
    reason: str
    candidates: list[str]
    people: list[Person] = Field(default_factory=list, description="How to reach the people named, per channel")


class CalendarIn(Strict):
    """Working days and hours, holidays and make-up working days (调休) of an organisation."""

    timezone: str = "UTC"
    workdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(default=[0, 1, 2, 3, 4], description="Monday = 0")
    start: time = time(9, 0)
    end: time = time(18, 0)
    holidays: list[date] = Field(default_factory=list, max_length=1000)
    extra_workdays: list[date] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _ordered(self) -> CalendarIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class OrgSettingsUpdate(Changes):
    """The organisation's improvement settings; fields left out stay as they are.

    ``default_owner`` and ``calendar`` may be removed (null); the other settings fall back to their
    defaults only when never set.
    """

    removable = frozenset({"default_owner", "calendar"})

    default_owner: Name | None = None
    deadline_hours: dict[Level, Annotated[float, Field(gt=0, le=24 * 365)]] | None = None
    calendar: CalendarIn | None = None
    use_calendar: bool | None = Field(default=None, description="Count deadlines in the calendar's working hours")
    verification_periods: int | None = Field(default=None, ge=1, le=52)
    verification_window_hours: float | None = Field(default=None, gt=0, le=24 * 365)
    remind_before_share: float | None = Field(default=None, ge=0, lt=1)
    escalate_accountable_after_hours: float | None = Field(default=None, ge=0, le=24 * 365)
    escalate_parent_after_hours: float | None = Field(default=None, ge=0, le=24 * 365)
    recurrence_days: int | None = Field(default=None, ge=1, le=365)


class OrgSettingsRead(BaseModel):
    """The organisation's improvement settings, defaults filled in."""

    default_owner: str | None
    deadline_hours: dict[str, float]
    calendar: CalendarIn | None
    use_calendar: bool
    verification_periods: int
    verification_window_hours: float
    remind_before_share: float
    escalate_accountable_after_hours: float
    escalate_parent_after_hours: float
    recurrence_days: int


class ActionCreate(Strict):
    """An action opened by hand."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "b-001",
                    "title": "午间增开一个窗口",
                    "level": "orange",
                    "priority": "high",
                    "indicator": "csat",
                    "clear_bound": 65,
                }
            ]
        }
    )

    unit_id: Name
    title: Name
    description: Text = ""
    level: Level = "yellow"
    priority: Priority = "normal"
    indicator: str | None = Field(default=None, max_length=200, description="Verified on this indicator's scores")
    clear_bound: float | None = Field(default=None, description="With indicator: the value it must come back past")
    comparison: Literal["below", "above"] = Field(default="below", description="The breach's direction")
    period: str = Field(default="day", max_length=20)
    assignee: Name | None = Field(default=None, description="Routed by the matrix when left out")
    accountable: Name | None = None
    due_at: datetime | None = Field(default=None, description="By the organisation's deadline when left out")
    plan_id: str | None = None
    complaint: bool = False


class ActionUpdate(Changes):
    """Changes to an action's description; its state moves through transitions; null ``plan_id`` detaches it."""

    removable = frozenset({"plan_id"})

    title: Name | None = None
    description: Text | None = None
    priority: Priority | None = None
    due_at: datetime | None = None
    plan_id: str | None = None


class TransitionIn(Strict):
    """Move an action to another state."""

    to: Literal["open", "in_progress", "done", "verified", "reopened", "cancelled"]
    reason: Text | None = None


class CommentIn(Strict):
    """A comment on an action."""

    text: Annotated[str, Field(min_length=1, max_length=5000)]


class RootCauseIn(Strict):
    """The root cause and its category (人机料法环测)."""

    category: RootCauseCategory
    description: Text


class MeasuresIn(Strict):
    """Corrective measures (fix this occurrence) and preventive ones (stop it recurring)."""

    corrective: list[Annotated[str, Field(min_length=1, max_length=2000)]] | None = None
    preventive: list[Annotated[str, Field(min_length=1, max_length=2000)]] | None = None


class FollowUpIn(Strict):
    """The follow-up with the customer of a complaint."""

    contacted_at: datetime
    outcome: Literal["resolved", "partially_resolved", "unresolved", "unreachable"]
    notes: Text = ""


class AttachmentIn(Strict):
    """A reference to a file kept elsewhere."""

    name: Name
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    media_type: str | None = Field(default=None, max_length=200)


class ReassignIn(Strict):
    """Give the action to another responsible person."""

    assignee: Name
    accountable: Name | None = None
    reason: Text | None = None


class ActionRead(BaseModel):
    """An improvement action with its history."""

    model_config = ConfigDict(extra="ignore")

    id: str
    source: str
    alert_id: str | None
    alert_ids: list[str] = []
    group_id: str | None = None
    rule_id: str | None = None
    rule_kind: str | None = None
    unit_id: str
    unit_path: str
    title: str
    description: str = ""
    priority: str = "normal"
    assignee: str | None
    accountable: str | None
    consulted: list[str] = []
    informed: list[str] = []
    routing: dict[str, Any] | None = None
    status: str
    status_reason: str | None = None
    level: str
    indicator: str | None
    due_at: datetime
    overdue: bool = False
    steps: list[str] = []
    escalations: list[dict[str, Any]] = []
    watch: dict[str, Any] | None = Field(
        default=None, description="What verifies it: indicator, period, clearing bound, direction"
    )
    verification: dict[str, Any] | None = None
    root_cause: dict[str, Any] | None = None
    corrective: list[str] = []
    preventive: list[str] = []
    complaint: bool = False
    follow_up: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = []
    comments: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    plan_id: str | None = None
    risk_id: str | None = None
    firing_id: str | None = None
    alert_resolved_at: datetime | None = None
    created_at: datetime
    updated_at: datetime | None = None
    acknowledged_at: datetime | None = None
    done_at: datetime | None = None
    verified_at: datetime | None = None
    reopened: int = 0


class TargetIn(Strict):
    """Where a plan wants an indicator of a unit to be, and by when."""

    indicator: Name
    value: float
    date: date
    baseline: float | None = None


class PlanCreate(Strict):
    """A new improvement plan (PDCA)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "CSAT back to 80",
                    "unit_id": "b-001",
                    "target": {"indicator": "csat", "value": 80, "date": "2027-03-31", "baseline": 62},
                }
            ]
        }
    )

    title: Name
    description: Text = ""
    unit_id: Name
    target: TargetIn
    period: str = Field(default="week", max_length=20)
    owner: Name | None = None


class PlanUpdate(Changes):
    """Changes to a plan; fields left out stay as they are, ``owner`` may be removed (null)."""

    removable = frozenset({"owner"})

    title: Name | None = None
    description: Text | None = None
    target: TargetIn | None = None
    owner: Name | None = None


class PhaseMoveIn(Strict):
    """Move a plan to its next phase, with what was learned (needed when leaving check and act)."""

    to: Literal["plan", "do", "check", "act", "closed"]
    learning: Text | None = None


class PlanRead(BaseModel):
    """A plan, its phase, learnings and progress."""

    model_config = ConfigDict(extra="ignore")

    id: str
    title: str
    description: str
    unit_id: str
    unit_path: str
    target: dict[str, Any]
    period: str
    owner: str | None
    phase: str
    cycle: int
    learnings: list[dict[str, Any]]
    current_value: float | None = None
    progress: float | None = None
    reached: bool = False
    actions: dict[str, int] = {}
    created_at: datetime
    updated_at: datetime | None = None


class PlaybookStepIn(Strict):
    """One action of a contingency playbook: who takes it and how soon after the firing."""

    title: Name
    assignee: Name = Field(description="responsible, accountable, risk_owner, or a person's id")
    due_in_hours: float = Field(gt=0, le=24 * 365)
    description: Text = ""


class RiskBase(Strict):
    """A service risk of a unit subtree."""

    title: Name
    description: Text = ""
    scope: str = Field(default="*", min_length=1, max_length=1000)
    likelihood: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    indicators: list[Name] = Field(default_factory=list, max_length=50)
    rule_ids: list[Name] = Field(default_factory=list, max_length=50, description="Rules whose firing is this risk")
    prevention: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(default_factory=list)
    owner: Name
    playbook: list[PlaybookStepIn] = Field(default_factory=list, max_length=50)


class RiskCreate(RiskBase):
    """A new risk."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "午间客流高峰",
                    "scope": "north",
                    "likelihood": 4,
                    "impact": 3,
                    "indicators": ["csat"],
                    "owner": "wang.fang",
                    "playbook": [{"title": "调配备岗柜员", "assignee": "responsible", "due_in_hours": 4}],
                }
            ]
        }
    )


class RiskUpdate(Changes):
    """Changes to a risk; fields left out stay as they are."""

    title: Name | None = None
    description: Text | None = None
    likelihood: int | None = Field(default=None, ge=1, le=5)
    impact: int | None = Field(default=None, ge=1, le=5)
    indicators: list[Name] | None = None
    rule_ids: list[Name] | None = None
    prevention: list[Annotated[str, Field(min_length=1, max_length=2000)]] | None = None
    owner: Name | None = None
    playbook: list[PlaybookStepIn] | None = None


class RiskRead(RiskBase):
    """A stored risk with its rating."""

    model_config = ConfigDict(extra="ignore")

    id: str
    score: int
    rating: str
    firings: int = 0
    created_at: datetime
    updated_at: datetime | None = None


class FiringRead(BaseModel):
    """One materialisation of a risk: the alert, the actions it created and how it ended."""

    model_config = ConfigDict(extra="ignore")

    id: str
    risk_id: str
    alert_id: str
    rule_id: str
    unit_path: str
    fired_at: datetime
    action_ids: list[str]
    outcome: str


class DurationsRead(BaseModel):
    """Median and p90 in hours."""

    count: int
    median_hours: float | None
    p90_hours: float | None


class FiguresRead(BaseModel):
    """Improvement figures of a unit subtree over a period."""

    unit_path: str
    start: datetime
    end: datetime
    actions: int
    time_to_acknowledge: DurationsRead
    time_to_resolve: DurationsRead
    on_time_rate: float | None
    reopened_rate: float | None
    verified_rate: float | None
    recurrence_rate: float | None
    recurrences: int
    recurrence_days: int
    open_by_age: dict[str, int]
    open_by_owner: dict[str, int]
