"""Escalation chains: per organisation and level, steps of wait-then-notify that run while nobody has
acknowledged the alert; an acknowledged alert still firing after the organisation's patience is
notified again until it clears."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.alerts.rules.base import Level

OWNER_UP = "owner_up"
Target = Annotated[str, StringConstraints(pattern=r"^(user:[\w.@-]{1,200}|role:[a-z_]{1,50}|owner_up)$")]


class Step(BaseModel):
    """Wait this long (after the alert fired or the previous step), then notify these targets; repeat N times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wait_minutes: int = Field(ge=1, le=30 * 24 * 60)
    notify: list[Target] = Field(
        min_length=1, max_length=20, description="user:<id>, role:<role>, or owner_up (the owner one level up)"
    )
    repeat: int = Field(default=0, ge=0, le=10, description="Times the step runs again, each after wait_minutes")


class ChainSpec(BaseModel):
    """The steps of one level's escalation chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Level
    steps: list[Step] = Field(min_length=1, max_length=20)


def expanded(steps: list[Step]) -> list[Step]:
    """The steps with their repeats written out: step n of the chain is ``expanded(steps)[n]``."""
    return [step for step in steps for _ in range(step.repeat + 1)]


def due_at(previous: datetime, steps: list[Step], index: int) -> datetime | None:
    """When step ``index`` runs, counted from the previous step (or the firing); None past the last."""
    chain = expanded(steps)
    return previous + timedelta(minutes=chain[index].wait_minutes) if index < len(chain) else None


def targets(step: Step, unit_path: str) -> list[str]:
    """The step's targets, with owner_up made concrete: the owner of the unit's parent (or the unit at the top)."""
    parent = unit_path.rpartition("/")[0] or unit_path
    return [f"owner:{parent}" if target == OWNER_UP else target for target in step.notify]


def reminder_due(acknowledged_at: datetime, patience_minutes: int, last_reminder: datetime | None) -> datetime:
    """When an acknowledged alert that still fires is notified again."""
    return (last_reminder or acknowledged_at) + timedelta(minutes=patience_minutes)
