"""Improvement rules in plain Python: who is responsible for a unit, and when an action is due."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.tree import WHOLE_ORGANISATION, in_subtree

# How long the responsible person has, by warning level: the worse the breach, the sooner.
DUE_IN = {
    "red": timedelta(days=1),
    "orange": timedelta(days=3),
    "yellow": timedelta(days=7),
    "blue": timedelta(days=14),
}


@dataclass(frozen=True)
class Responsibility:
    """Who answers for breaches in a unit subtree (RACI: responsible, accountable, consulted, informed)."""

    id: str
    scope: str
    responsible: str
    accountable: str | None = None
    indicator: str | None = None

    def covers(self, unit_path: str, indicator: str) -> bool:
        """Whether this entry covers a breach of ``indicator`` in the unit."""
        return in_subtree(unit_path, self.scope) and self.indicator in (None, indicator)

    def specificity(self) -> tuple[int, int]:
        """Deeper scopes, then indicator-specific entries, win."""
        depth = 0 if self.scope == WHOLE_ORGANISATION else self.scope.count("/") + 1
        return depth, int(self.indicator is not None)


def route(matrix: Iterable[Responsibility], unit_path: str, indicator: str) -> Responsibility | None:
    """The most specific entry of the responsibility matrix that covers the breach, if any."""
    covering = [r for r in matrix if r.covers(unit_path, indicator)]
    return max(covering, key=Responsibility.specificity, default=None)


def due_at(level: str, raised_at: datetime) -> datetime:
    """When an action for a breach of this level is due."""
    return raised_at + DUE_IN.get(level, DUE_IN["yellow"])
