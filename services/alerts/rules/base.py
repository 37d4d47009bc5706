"""What every rule kind shares: levels, the figures it reads, and the verdict it gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["blue", "yellow", "orange", "red"]
LEVELS: tuple[Level, ...] = ("blue", "yellow", "orange", "red")
Comparison = Literal["below", "above"]
# The periods scoring publishes in score.updated (rolling windows exist only at read time, never as events).
Period = Literal["all", "hour", "day", "week", "month"]
State = dict[str, Any]


def level_rank(level: str) -> int:
    """A level's severity: blue 0 … red 3."""
    return LEVELS.index(level)


class RuleParams(BaseModel):
    """Parameters every rule kind takes; each kind adds its own and a ``kind`` literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    indicator: str = Field(default="csat", min_length=1, max_length=100, description="Indicator id or composite")
    period: Period = Field(default="all", description="Score period the rule reads: all, hour, day, week or month")


@dataclass(frozen=True)
class Point:
    """One figure of an indicator for a unit: a period's value and the sample behind it."""

    at: datetime
    value: float | None
    sample_size: int
    insufficient: bool = False

    def usable(self, min_samples: int) -> bool:
        """Whether the figure says anything: a value on enough samples."""
        return self.value is not None and not self.insufficient and self.sample_size >= min_samples


@dataclass(frozen=True)
class Observation:
    """A new figure of a unit's indicator and the completed periods before it, oldest first."""

    at: datetime
    point: Point
    history: tuple[Point, ...] = ()


@dataclass(frozen=True)
class Feedback:
    """The parts of one feedback that rules on single feedback read."""

    at: datetime
    kind: str
    csat: int | None = None
    nps: int | None = None
    has_comment: bool = False
    complaint_severity: str | None = None
    audit_percent: float | None = None


@dataclass(frozen=True)
class Verdict:
    """What a rule kind says about one fingerprint: firing, clear, or nothing to say (``holds`` None)."""

    holds: bool | None
    value: float | None = None
    threshold: float | None = None
    clear_bound: float | None = None
    comparison: Comparison | None = None
    sample_size: int = 0
    reason: str = ""
    recheck_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)


UNCHANGED = Verdict(holds=None)
