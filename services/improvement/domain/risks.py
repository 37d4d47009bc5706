"""The risk register (风险管理与应对策略): a 5×5 likelihood × impact rating and contingency playbooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Rating = Literal["low", "medium", "high", "critical"]
# Upper bounds of each rating's band on the 1–25 score: the usual four bands of a 5×5 matrix.
BANDS: tuple[tuple[int, Rating], ...] = ((4, "low"), (9, "medium"), (16, "high"), (25, "critical"))


def rating(likelihood: int, impact: int) -> tuple[int, Rating]:
    """The score (likelihood × impact, each 1–5) and its band."""
    if not (1 <= likelihood <= 5 and 1 <= impact <= 5):
        raise ValueError("likelihood and impact are each 1 to 5")
    score = likelihood * impact
    return score, next(band for bound, band in BANDS if score <= bound)


def matrix() -> list[list[Rating]]:
    """The whole 5×5 matrix of bands, likelihood rows 1–5 by impact columns 1–5."""
    return [[rating(likelihood, impact)[1] for impact in range(1, 6)] for likelihood in range(1, 6)]


@dataclass(frozen=True)
class PlaybookStep:
    """One action a playbook runs: who takes it (a role of the matrix or a named person) and how soon."""

    title: str
    assignee: str
    due_in_hours: float
    description: str = ""


# A playbook step names the person by the breach's routing ("responsible", "accountable") or by id.
ROLE_NAMES = frozenset({"responsible", "accountable", "risk_owner"})


@dataclass(frozen=True)
class PlannedAction:
    """An action a firing creates: its title, who takes it, when it is due."""

    step: int
    title: str
    description: str
    assignee: str | None
    due_at: datetime


def run_playbook(
    steps: list[PlaybookStep],
    *,
    fired_at: datetime,
    responsible: str | None,
    accountable: str | None,
    risk_owner: str | None,
) -> list[PlannedAction]:
    """The actions a firing creates, assigned to the people the steps name, due relative to the firing."""
    people = {"responsible": responsible, "accountable": accountable or responsible, "risk_owner": risk_owner}
    return [
        PlannedAction(
            step=index,
            title=step.title,
            description=step.description,
            assignee=people[step.assignee] if step.assignee in ROLE_NAMES else step.assignee,
            due_at=fired_at + timedelta(hours=step.due_in_hours),
        )
        for index, step in enumerate(steps)
    ]


def firing_outcome(states: list[str]) -> str:
    """How a firing ended, from its actions' states: contained, failed, cancelled, or still active."""
    if not states:
        return "active"
    if all(state == "verified" for state in states):
        return "contained"
    if all(state in ("verified", "cancelled") for state in states):
        return "cancelled" if all(state == "cancelled" for state in states) else "contained"
    if any(state == "reopened" for state in states):
        return "failed"
    return "active"
