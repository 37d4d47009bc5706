"""Request and response schemas of the alerts service's REST API; rules are a discriminated union by kind."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from services.alerts.escalation import ChainSpec, Step
from services.alerts.rules import baseline, burn_rate, event, spc, threshold
from services.alerts.rules.base import Level
from services.alerts.silences import SilenceSpec
from shared.tree import WHOLE_ORGANISATION

AlertStatus = Literal["firing", "acknowledged", "resolved"]


class RuleCommon(BaseModel):
    """What every rule has besides its kind's parameters: where it looks and how loud it is."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scope: str = Field(default=WHOLE_ORGANISATION, min_length=1, max_length=500, description="Unit subtree; * all")
    unit_kinds: list[str] = Field(default_factory=list, max_length=20, description="Only units of these kinds")
    depths: list[Annotated[int, Field(ge=1, le=20)]] = Field(
        default_factory=list, max_length=20, description="Only units at these depths (1: top level)"
    )
    level: Level = "yellow"
    group_depth: int = Field(
        default=1, ge=0, le=20, description="Alerts under one unit at this depth form one group (0: the whole scope)"
    )
    enabled: bool = True


class ThresholdRuleCreate(RuleCommon, threshold.Params):
    """A static threshold rule."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "CSAT floor",
                    "indicator": "csat",
                    "period": "day",
                    "threshold": 60,
                    "clear_bound": 65,
                    "min_samples": 5,
                    "level": "orange",
                    "scope": "north",
                }
            ]
        }
    )


class BaselineRuleCreate(RuleCommon, baseline.Params):
    """A drop-against-baseline rule."""


class SpcRuleCreate(RuleCommon, spc.Params):
    """A statistical process control rule."""


class EventRuleCreate(RuleCommon, event.Params):
    """A rule on single feedback."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Serious complaint",
                    "kind": "event",
                    "match": "complaint",
                    "severity_at_least": "serious",
                    "level": "red",
                }
            ]
        }
    )


class BurnRateRuleCreate(RuleCommon, burn_rate.Params):
    """An SLO burn-rate rule."""


def _kind_of(value: Any) -> str:
    # A rule posted without a kind is a threshold, as every rule was before there were other kinds.
    if isinstance(value, dict):
        return str(value.get("kind", "threshold"))
    return str(getattr(value, "kind", "threshold"))


RuleCreate = Annotated[
    Annotated[ThresholdRuleCreate, Tag("threshold")]
    | Annotated[BaselineRuleCreate, Tag("baseline")]
    | Annotated[SpcRuleCreate, Tag("spc")]
    | Annotated[EventRuleCreate, Tag("event")]
    | Annotated[BurnRateRuleCreate, Tag("burn_rate")],
    Discriminator(_kind_of),
]
RULE_MODELS: dict[str, type[RuleCommon]] = {
    "threshold": ThresholdRuleCreate,
    "baseline": BaselineRuleCreate,
    "spc": SpcRuleCreate,
    "event": EventRuleCreate,
    "burn_rate": BurnRateRuleCreate,
}
COMMON_FIELDS = frozenset(RuleCommon.model_fields)


class RuleRead(BaseModel):
    """A stored rule: its fields, its kind's parameters, its revision."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    revision: int
    name: str
    scope: str
    level: Level
    enabled: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class TryRequest(BaseModel):
    """A rule (saved or not) to evaluate against a unit's stored history."""

    model_config = ConfigDict(extra="forbid")

    unit_id: str = Field(min_length=1)
    rule: dict[str, Any] | None = Field(default=None, description="A rule as posted; omit to try the saved one")


class TryTransition(BaseModel):
    """When the rule would have fired or cleared, and on what figure."""

    at: datetime
    firing: bool
    value: float | None
    threshold: float | None
    sample_size: int
    reason: str


class TryResult(BaseModel):
    """What a rule would have done over a unit's stored history."""

    unit_id: str
    unit_path: str
    period: str
    points: int
    transitions: list[TryTransition]
    firing_at_end: bool


class AcknowledgeIn(BaseModel):
    """Taking an alert in hand, with a comment every later reader sees."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class ResolveIn(BaseModel):
    """Resolving an alert by hand (an event alert, say), with why."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class HistoryEntry(BaseModel):
    """One transition of an alert: what, when, who and why."""

    at: datetime
    status: str
    by: str
    why: str = ""


class AlertRead(BaseModel):
    """An alert raised by a rule on a unit."""

    model_config = ConfigDict(extra="allow")

    id: str
    rule_id: str
    rule_revision: int
    rule_name: str
    kind: str
    group_id: str
    fingerprint: str
    unit_id: str
    unit_path: str
    indicator: str
    period: str
    status: AlertStatus
    level: Level
    value: float | None
    threshold: float | None
    clear_bound: float | None
    comparison: str | None
    sample_size: int
    started_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    comment: str | None = None
    resolved_at: datetime | None
    notified: bool = False
    suppressed: str | None = None
    escalation_step: int = 0
    history: list[HistoryEntry]


class AlertDetail(AlertRead):
    """One alert with its group and the delivery log of its notifications."""

    group: dict[str, Any] | None
    deliveries: list[dict[str, Any]]


class Counts(BaseModel):
    """A subtree's open alerts and those resolved since ``resolved_since``, counted by level and by status."""

    unit: str
    resolved_since: datetime
    by_level: dict[str, int]
    by_status: dict[str, int]
    by_level_and_status: dict[str, dict[str, int]]


class SilenceCreate(SilenceSpec):
    """A silence: which alerts (matchers) and when (absolute, weekly, calendar)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "matchers": {"scope": "north/b-001"},
                    "weekly": [{"days": [5, 6]}],
                    "timezone": "Asia/Shanghai",
                    "comment": "装修",
                }
            ]
        }
    )


class SilenceRead(SilenceCreate):
    """A stored silence."""

    model_config = ConfigDict(extra="allow")

    id: str
    created_at: datetime
    created_by: str
    expired: bool = False


class ChainPut(BaseModel):
    """The steps of one level's escalation chain."""

    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(min_length=1, max_length=20)


class ChainRead(ChainSpec):
    """A stored escalation chain."""

    updated_at: datetime
    updated_by: str


class PolicyPut(BaseModel):
    """Organisation-wide alerting settings."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(default="Asia/Shanghai", description="IANA zone for silences' windows")
    patience_minutes: int = Field(
        default=240, ge=5, le=30 * 24 * 60, description="After this, an acknowledged alert still firing is re-notified"
    )


class PolicyRead(PolicyPut):
    """The organisation's alerting settings."""


class DeliveryRead(BaseModel):
    """One notification to one channel and every attempt to deliver it."""

    model_config = ConfigDict(extra="allow")

    id: str
    channel_id: str
    group_id: str
    kind: str
    status: str
    attempts: list[dict[str, Any]]
