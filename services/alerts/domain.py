"""Alert rules in plain Python: when a score breaches a threshold and when it clears."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from shared.tree import in_subtree

Level = Literal["blue", "yellow", "orange", "red"]
Comparison = Literal["below", "above"]


@dataclass(frozen=True)
class ThresholdRule:
    """A static threshold on one indicator, for units inside a scope, with a clearing margin."""

    id: str
    org: str
    indicator: str
    comparison: Comparison
    threshold: float
    min_samples: int
    scope: str
    period: str
    level: Level
    # Hysteresis: the alert clears only once the value is this far back on the good side, so a score
    # hovering at the threshold does not raise and clear an alert on every feedback.
    clear_margin: float = 0.0

    def applies_to(self, unit_path: str, period: str) -> bool:
        """Whether the rule watches this unit and period."""
        return in_subtree(unit_path, self.scope) and period == self.period


class Transition(Enum):
    """What an evaluation decides for one rule and unit."""

    NONE = "none"
    BREACH = "breach"
    CLEAR = "clear"


def fingerprint(rule_id: str, unit_path: str) -> str:
    """Identifies 'this rule on this unit', so one breach raises one alert."""
    return hashlib.sha256(f"{rule_id}\x1f{unit_path}".encode()).hexdigest()[:32]


def evaluate(
    rule: ThresholdRule, *, value: float | None, sample_size: int, insufficient: bool, firing: bool
) -> Transition:
    """Decide whether an alert starts, clears or stays as it is, given the latest figure."""
    if value is None or insufficient or sample_size < rule.min_samples:
        # Too few samples say nothing either way: keep the alert's current state.
        return Transition.NONE
    if rule.comparison == "below":
        breached, cleared = value < rule.threshold, value >= rule.threshold + rule.clear_margin
    else:
        breached, cleared = value > rule.threshold, value <= rule.threshold - rule.clear_margin
    if breached and not firing:
        return Transition.BREACH
    if cleared and firing:
        return Transition.CLEAR
    return Transition.NONE
